"""Library code shared by every ByteReview process: settings, storage, auth, errors, gRPC wiring.

The names below are what services, the gateway, the operator and the client may use.
Two parts are used as modules rather than through names here: `bytereview.core.streams`
(JetStream queue declarations and the worker runtime) and `bytereview.core.workers` (a worker
process's wiring); `from bytereview.core import streams` reads best at their call sites, whose
calls name the module (`streams.extract_queue(settings)`). `signing` likewise.
"""

from bytereview.core import signing
from bytereview.core.auth import (
    WORKER,
    Credentials,
    JwtVerifier,
    Principal,
    PrincipalKind,
    TokenAuthenticator,
    hash_api_key,
    new_api_key,
)
from bytereview.core.clients import Metadata, channel, worker_metadata
from bytereview.core.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from bytereview.core.lifecycle import settle_heap, setup_logging, shutdown_event
from bytereview.core.rpc import (
    CallInterceptor,
    Context,
    GrpcServer,
    ServiceBinding,
    current_principal,
    request_id,
    service_name,
)
from bytereview.core.settings import (
    DEV_SIGNING_SECRET,
    DEV_TOKEN,
    DEV_WORKER_TOKEN,
    Environment,
    Settings,
    StorageBackend,
    get_settings,
)
from bytereview.core.storage import (
    GcsStorage,
    InvalidKeyError,
    LocalStorage,
    ObjectExistsError,
    SignedRequest,
    Storage,
    check_key,
    make_storage,
)

__all__ = [
    "DEV_SIGNING_SECRET",
    "DEV_TOKEN",
    "DEV_WORKER_TOKEN",
    "WORKER",
    "AlreadyExists",
    "CallInterceptor",
    "Context",
    "Credentials",
    "DomainError",
    "Environment",
    "FailedPrecondition",
    "GcsStorage",
    "GrpcServer",
    "InvalidArgument",
    "InvalidKeyError",
    "JwtVerifier",
    "LocalStorage",
    "Metadata",
    "NotFound",
    "ObjectExistsError",
    "PermissionDenied",
    "Principal",
    "PrincipalKind",
    "ResourceExhausted",
    "ServiceBinding",
    "Settings",
    "SignedRequest",
    "Storage",
    "StorageBackend",
    "TokenAuthenticator",
    "Unauthenticated",
    "Unavailable",
    "channel",
    "check_key",
    "current_principal",
    "get_settings",
    "hash_api_key",
    "make_storage",
    "new_api_key",
    "request_id",
    "service_name",
    "settle_heap",
    "setup_logging",
    "shutdown_event",
    "signing",
    "worker_metadata",
]
