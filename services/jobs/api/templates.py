"""TemplateService: templates, data types and system prompts; translation only."""

from __future__ import annotations

from google.protobuf import empty_pb2

from bytereview.core.errors import NotFound
from bytereview.core.rpc import Context
from bytereview.jobs.v1 import jobs_service_pb2 as jobs_pb
from bytereview.jobs.v1 import jobs_service_pb2_grpc as jobs_grpc
from bytereview.jobs.v1 import resources_pb2 as pb
from services.jobs.api import convert
from services.jobs.domain import (
    GoldenDocuments,
    JobsContext,
    Scoring,
    Templates,
    TemplateVersions,
    caller_actor,
    caller_id,
    names,
)
from services.jobs.store import models


def _template_id(name: str, field: str = "parent") -> str:
    return names.parse("template", name, field=field)["template"]


def _version(name: str) -> tuple[str, int]:
    ids = names.parse("template_version", name)
    return ids["template"], int(ids["template_version"])


class TemplateServicer(jobs_grpc.TemplateServiceServicer):
    def __init__(self, ctx: JobsContext) -> None:
        self._templates = Templates(ctx)
        self._versions = TemplateVersions(ctx)
        self._golden = GoldenDocuments(ctx)
        self._scoring = Scoring(ctx)

    async def _version_pb(self, row: models.TemplateVersion) -> pb.TemplateVersion:
        return convert.template_version(row, await self._scoring.run_job(row))

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
            score_new_version=request.score_new_version,
            actor=caller_actor(),
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

    async def ListTemplateVersions(
        self, request: jobs_pb.ListTemplateVersionsRequest, context: Context
    ) -> jobs_pb.ListTemplateVersionsResponse:
        rows, token = await self._versions.list_versions(
            caller_id(), _template_id(request.parent), request.page_size, request.page_token
        )
        return jobs_pb.ListTemplateVersionsResponse(
            versions=[await self._version_pb(r) for r in rows], next_page_token=token
        )

    async def GetTemplateVersion(
        self, request: jobs_pb.GetTemplateVersionRequest, context: Context
    ) -> pb.TemplateVersion:
        template_id, version = _version(request.name)
        return await self._version_pb(await self._versions.get(caller_id(), template_id, version))

    async def ScoreTemplateVersion(
        self, request: jobs_pb.ScoreTemplateVersionRequest, context: Context
    ) -> pb.TemplateVersion:
        template_id, version = _version(request.name)
        row = await self._scoring.start(
            user_id=caller_id(), actor=caller_actor(), template_id=template_id, version=version
        )
        return await self._version_pb(row)

    async def CompareTemplateVersions(
        self, request: jobs_pb.CompareTemplateVersionsRequest, context: Context
    ) -> jobs_pb.CompareTemplateVersionsResponse:
        template_id, version = _version(request.name)
        base = 0
        if request.base_version:
            ids = names.parse("template_version", request.base_version, field="base_version")
            if ids["template"] != template_id:
                raise NotFound(f"{request.base_version} is not a version of this template")
            base = int(ids["template_version"])
        found = await self._versions.compare(caller_id(), template_id, version, base)
        return convert.comparison(
            found,
            await self._scoring.run_job(found.base),
            await self._scoring.run_job(found.version),
        )

    async def CreateGoldenDocument(
        self, request: jobs_pb.CreateGoldenDocumentRequest, context: Context
    ) -> pb.GoldenDocument:
        template_id = _template_id(request.parent)
        ids = names.parse("result", request.golden_document.result, field="golden_document.result")
        row, paths = await self._golden.create(
            user_id=caller_id(),
            actor=caller_actor(),
            template_id=template_id,
            job_id=ids["job"],
            result_id=ids["result"],
        )
        return convert.golden_document(row, paths)

    async def ListGoldenDocuments(
        self, request: jobs_pb.ListGoldenDocumentsRequest, context: Context
    ) -> jobs_pb.ListGoldenDocumentsResponse:
        rows, token = await self._golden.list_golden(
            caller_id(), _template_id(request.parent), request.page_size, request.page_token
        )
        return jobs_pb.ListGoldenDocumentsResponse(
            golden_documents=[convert.golden_document(r, p) for r, p in rows],
            next_page_token=token,
        )

    async def DeleteGoldenDocument(
        self, request: jobs_pb.DeleteGoldenDocumentRequest, context: Context
    ) -> empty_pb2.Empty:
        ids = names.parse("golden_document", request.name)
        await self._golden.delete(caller_id(), ids["template"], ids["golden_document"])
        return empty_pb2.Empty()
