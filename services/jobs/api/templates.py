"""TemplateService: templates, data types and system prompts; translation only."""

from __future__ import annotations

from google.protobuf import empty_pb2

from bytereview.core.rpc import Context
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from services.jobs.api import convert
from services.jobs.domain import JobsContext, Templates, caller_id, names


class TemplateServicer(jobs_grpc.TemplateServiceServicer):
    def __init__(self, ctx: JobsContext) -> None:
        self._templates = Templates(ctx)

    async def CreateTemplate(
        self, request: jobs_pb.CreateTemplateRequest, context: Context
    ) -> pb.Template:
        t = request.template
        row = await self._templates.create(
            caller_id(), t.display_name, t.description, convert.field_specs(t.fields)
        )
        return convert.template(row)

    async def GetTemplate(
        self, request: jobs_pb.GetTemplateRequest, context: Context
    ) -> pb.Template:
        template_id = names.parse("template", request.name)["template"]
        return convert.template(await self._templates.get(caller_id(), template_id))

    async def ListTemplates(
        self, request: jobs_pb.ListTemplatesRequest, context: Context
    ) -> jobs_pb.ListTemplatesResponse:
        rows, token = await self._templates.list_templates(
            caller_id(), request.page_size, request.page_token
        )
        return jobs_pb.ListTemplatesResponse(
            templates=[convert.template(r) for r in rows], next_page_token=token
        )

    async def UpdateTemplate(
        self, request: jobs_pb.UpdateTemplateRequest, context: Context
    ) -> pb.Template:
        t = request.template
        template_id = names.parse("template", t.name, field="template.name")["template"]
        row = await self._templates.update(
            caller_id(),
            template_id,
            list(request.update_mask.paths),
            t.display_name,
            t.description,
            convert.field_specs(t.fields),
        )
        return convert.template(row)

    async def DeleteTemplate(
        self, request: jobs_pb.DeleteTemplateRequest, context: Context
    ) -> empty_pb2.Empty:
        template_id = names.parse("template", request.name)["template"]
        await self._templates.delete(caller_id(), template_id)
        return empty_pb2.Empty()

    async def ListDataTypes(
        self, request: jobs_pb.ListDataTypesRequest, context: Context
    ) -> jobs_pb.ListDataTypesResponse:
        rows = await self._templates.data_types()
        return jobs_pb.ListDataTypesResponse(data_types=[convert.data_type(r) for r in rows])

    async def ListSystemPrompts(
        self, request: jobs_pb.ListSystemPromptsRequest, context: Context
    ) -> jobs_pb.ListSystemPromptsResponse:
        rows = await self._templates.system_prompts()
        return jobs_pb.ListSystemPromptsResponse(
            system_prompts=[convert.system_prompt(r) for r in rows]
        )
