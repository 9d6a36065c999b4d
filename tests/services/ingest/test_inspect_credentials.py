"""InspectArchive checks the caller's credential before it reads any request field (#14)."""

from __future__ import annotations

import grpc
import pytest

from bytereview.ingest.v1 import ingest_service_pb2 as ingest_pb
from bytereview.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from tests.services.ingest.test_inspect import ingest

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
__all__ = ["ingest"]

FILE = f"jobs/{'0' * 32}/files/{'1' * 32}"


@pytest.mark.parametrize(
    "request_fields",
    [{"page_token": "²"}, {"page_token": "9" * 5000}, {"page_size": -(2**31)}],
)
@pytest.mark.parametrize(
    "metadata", [(), (("authorization", "Bearer garbage"),), (("x-api-key", "brk_nope"),)]
)
async def test_a_bad_credential_is_refused_before_the_fields_are_read(
    ingest: ingest_grpc.IngestServiceAsyncStub,
    request_fields: dict[str, object],
    metadata: tuple[tuple[str, str], ...],
) -> None:
    request = ingest_pb.InspectArchiveRequest(file=FILE, **request_fields)  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ingest.InspectArchive(request, metadata=metadata)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
