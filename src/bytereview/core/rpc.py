"""gRPC server wiring shared by every service: interceptors, health, reflection, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from bytereview.core import request_checks
from bytereview.core.auth import Credentials, Principal
from bytereview.core.errors import DomainError, Unauthenticated
from bytereview.core.outages import is_outage

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]
else:
    Context = grpc.aio.ServicerContext

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

Handler = Callable[[Any, Context], Any]


# A request id is logged with every line of its call: only a short one of safe characters is
# kept (a direct gRPC client could send 8 KB of anything, newlines included, into every log
# line of its call); the gateway keeps the same ones (gateway/request_ids.py).
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# How long a stopping server waits for its cancelled calls' handlers to unwind: a page read
# cut by the cancellation returns at once (services/jobs/domain/pages/uncut.py), then closes
# its connection in milliseconds.
UNWIND_SECONDS = 15.0


def safe_request_id(given: str | bytes | None) -> str:
    """`given` if it is a safe request id, else a new one."""
    text = given.decode(errors="replace") if isinstance(given, bytes) else (given or "")
    return text if SAFE_REQUEST_ID.fullmatch(text) else uuid.uuid4().hex


def _request_id_from(context: Context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id":
            return safe_request_id(value)
    return uuid.uuid4().hex


# Bytes of a status message. It travels in trailing metadata, which receivers cap (8 KiB by
# default, after percent-encoding): a message quoting a 100,000-character input failed the
# call as RESOURCE_EXHAUSTED ("received metadata size exceeds hard limit"), a 429 at the
# gateway, instead of arriving as the INVALID_ARGUMENT it was.
MAX_STATUS_MESSAGE = 1000


def status_message(text: str) -> str:
    """`text`, cut to MAX_STATUS_MESSAGE bytes of UTF-8 (never inside a character)."""
    raw = text.encode()
    if len(raw) <= MAX_STATUS_MESSAGE:
        return text
    return raw[: MAX_STATUS_MESSAGE - 3].decode(errors="ignore") + "..."


async def _abort_for(exc: Exception, method: str, context: Context) -> None:
    if isinstance(exc, DomainError):
        await context.abort(grpc.StatusCode[exc.code], status_message(exc.message))
    if is_outage(exc):
        # The database (or storage) is restarting or unreachable: the caller's request was
        # fine and will succeed later. UNAVAILABLE is what clients and workers retry.
        log.warning("%s: a dependency is unavailable: %s", method, exc)
        await context.abort(grpc.StatusCode.UNAVAILABLE, "a dependency is unavailable; retry")
    log.exception("unhandled error in %s", method)
    # No traceback or internals reach the caller.
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server logs")


Authenticate = Callable[[Credentials], Awaitable[Principal]]
# Runs per call after authentication, with the full method name and the principal: a service's
# own rules (who may call which service; per-call state such as a user id in a ContextVar).
Authorize = Callable[[str, Principal], Awaitable[None]]

# Calls that need no credential: health checks and reflection.
OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


def current_principal() -> Principal:
    """The caller of the RPC being served; set by CallInterceptor before the servicer runs."""
    principal = _principal.get()
    if principal is None:
        raise Unauthenticated("no credential")
    return principal


_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "principal", default=None
)


class CallInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Per call: request id, the caller's principal (when `authenticate` is given), the
    request's checks (core.request_checks: after authentication, so a caller without a
    credential learns nothing of the request's shape), and DomainError -> status code
    mapping. Other errors become INTERNAL without details.

    `internal_services` (full names) are called by our own workers only: their requests get
    the decoding check alone, their servicers check the rest (see request_checks)."""

    def __init__(
        self,
        authenticate: Authenticate | None = None,
        authorize: Authorize | None = None,
        *,
        internal_services: frozenset[str] = frozenset(),
    ) -> None:
        self._authenticate = authenticate
        self._authorize = authorize
        self._internal = internal_services
        self._wrapped: dict[str, Any] = {}
        self._running: set[asyncio.Task[Any]] = set()

    async def settled(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the calls still running to end. gRPC's stop
        returns once it has cancelled them, not once their handlers have unwound: a handler
        still closing its database connection then ran into the engine's disposal and the
        event loop's end ('Task was destroyed but it is pending', a driver thread answering
        a closed loop)."""
        if self._running:
            await asyncio.wait(set(self._running), timeout=timeout)

    async def _prelude(self, method: str, context: Context) -> None:
        request_id.set(_request_id_from(context))
        if self._authenticate is None or method.startswith(OPEN_PREFIXES):
            return
        credentials = Credentials.from_metadata(context.invocation_metadata())
        if not credentials.bearer and not credentials.api_key:
            raise Unauthenticated("missing credential: send a bearer token or an x-api-key")
        principal = await self._authenticate(credentials)
        _principal.set(principal)
        if self._authorize is not None:
            await self._authorize(method, principal)

    @contextlib.contextmanager
    def _counted(self) -> Iterator[None]:
        """The call's task among the running ones while its handler runs."""
        task = asyncio.current_task()
        if task is None:
            yield
            return
        self._running.add(task)
        try:
            yield
        finally:
            self._running.discard(task)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        method = handler_call_details.method
        # A method's handler never changes: wrap it once, not on every call.
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            wrapped = self._wrap(method, await continuation(handler_call_details))
            if wrapped is not None:
                self._wrapped[method] = wrapped
        return wrapped

    def _wrap(self, method: str, handler: Any) -> Any:
        # grpc-stubs types handlers for the sync API; the aio ones are looser, hence Any.
        if handler is None:
            return handler
        prelude = self._prelude
        running = self._counted
        public = method.lstrip("/").split("/")[0] not in self._internal
        deserialize = request_checks.tolerant(handler.request_deserializer)
        if handler.unary_unary is not None:
            unary: Any = handler.unary_unary

            async def unary_unary(request: Any, context: Context) -> Any:
                with running():
                    try:
                        await prelude(method, context)
                        request_checks.check(request, public=public)
                        return await unary(request, context)
                    except (grpc.aio.AbortError, grpc.aio.UsageError):
                        raise
                    except Exception as exc:
                        await _abort_for(exc, method, context)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary,
                request_deserializer=deserialize,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            stream: Any = handler.unary_stream

            async def unary_stream(request: Any, context: Context) -> AsyncIterator[Any]:
                with running():
                    try:
                        await prelude(method, context)
                        request_checks.check(request, public=public)
                        async for item in stream(request, context):
                            yield item
                    except (grpc.aio.AbortError, grpc.aio.UsageError):
                        raise
                    except Exception as exc:
                        await _abort_for(exc, method, context)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream,
                request_deserializer=deserialize,
                response_serializer=handler.response_serializer,
            )
        return handler


@dataclass(frozen=True, slots=True)
class ServiceBinding:
    """A servicer, the function that adds it to a server, and its full service name.

    `internal`: only our own workers call it (CallInterceptor's `internal_services`)."""

    servicer: object
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    full_name: str
    internal: bool = False


class GrpcServer:
    """An aio server with health and reflection; `async with` starts and stops it."""

    def __init__(
        self,
        *,
        bindings: Sequence[ServiceBinding],
        address: str,
        grace_seconds: float = 10.0,
        authenticate: Authenticate | None = None,
        authorize: Authorize | None = None,
    ) -> None:
        self._calls = CallInterceptor(
            authenticate,
            authorize,
            internal_services=frozenset(b.full_name for b in bindings if b.internal),
        )
        self._server = grpc.aio.server(
            interceptors=[self._calls],
            options=[
                ("grpc.max_receive_message_length", 32 * 1024 * 1024),
                ("grpc.max_send_message_length", 32 * 1024 * 1024),
            ],
        )
        self.health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        for binding in bindings:
            binding.add_to_server(binding.servicer, self._server)
        self._names = [b.full_name for b in bindings]
        reflection.enable_server_reflection(
            [
                *self._names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            self._server,
        )
        self.port = self._server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"cannot bind gRPC server to {address}")
        self._grace = grace_seconds

    async def start(self) -> None:
        await self._server.start()
        for name in ("", *self._names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self) -> None:
        # Health first, so load balancers stop sending new calls during the grace period.
        await self.health.enter_graceful_shutdown()
        await self._server.stop(self._grace)
        # The cancelled calls' handlers unwind (a cut page read closes its connection) before
        # the service behind them goes; bounded, so a stuck one cannot hold the shutdown.
        await self._calls.settled(UNWIND_SECONDS)

    async def wait(self) -> None:
        await self._server.wait_for_termination()

    async def __aenter__(self) -> GrpcServer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()


def service_name(descriptor_module: Any, service: str) -> str:
    return str(descriptor_module.DESCRIPTOR.services_by_name[service].full_name)
