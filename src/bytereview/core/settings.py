"""One settings object per process, read from `BYTEREVIEW_*` environment variables."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Well-known values that only dev mode may use. Production refuses to start with them.
DEV_TOKEN = "dev-token-not-for-production"  # noqa: S105 - a public dev value, by design
DEV_SIGNING_SECRET = "dev-signing-secret-not-for-production"  # noqa: S105
DEV_WORKER_TOKEN = "dev-worker-token-not-for-production"  # noqa: S105
# Extractors only benchmarks may select (BYTEREVIEW_BENCH_EXTRACTOR), in dev mode only:
# "noop" answers every task at once, "noop-fail" fails every task (bench/big_job.py's retry).
BENCH_EXTRACTORS = frozenset({"noop", "noop-fail"})


class Environment(StrEnum):
    DEV = "dev"
    PRODUCTION = "production"


class StorageBackend(StrEnum):
    LOCAL = "local"
    GCS = "gcs"


class Settings(BaseSettings):
    """Everything a ByteReview process can be told. Defaults run one machine in dev mode."""

    # hide_input_in_errors: a refused setting's error printed the input, and for the checks
    # over the whole model that is every setting: the tail of its repr showed whichever
    # came last (a Gemini API key, a DSN's password) in the log of a process that would
    # not start.
    model_config = SettingsConfigDict(
        env_prefix="BYTEREVIEW_", extra="ignore", hide_input_in_errors=True
    )

    env: Environment = Environment.DEV
    data_dir: Path = Path(".bytereview")
    log_level: str = "INFO"
    log_json: bool = False

    # Database: SQLite by default, PostgreSQL (postgresql+asyncpg://...) in production.
    database_url: str = ""
    database_pool_size: int = 10
    # The jobs service migrates at start-up unless a separate `bytereview migrate` step does.
    migrate_on_start: bool = True

    # NATS JetStream.
    nats_url: str = "nats://127.0.0.1:4222"
    ingest_stream: str = "BYTEREVIEW_INGEST"
    extract_stream: str = "BYTEREVIEW_EXTRACT"
    stream_replicas: int = 1

    # Object storage.
    storage_backend: StorageBackend = StorageBackend.LOCAL
    storage_dir: Path | None = None
    gcs_bucket: str = ""
    # Set to reach an emulator (fake-gcs-server) instead of Google.
    gcs_endpoint: str = ""
    gcs_project: str = "bytereview"

    # Service addresses (host:port).
    jobs_addr: str = "127.0.0.1:50051"
    ingest_addr: str = "127.0.0.1:50052"
    extract_addr: str = "127.0.0.1:50053"
    grpc_port: int = 0
    # Prometheus /metrics port for the gRPC services and workers; 0 turns it off.
    metrics_port: int = 0
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    # URL browsers use to reach the gateway; signed upload URLs point here.
    public_url: str = ""
    cors_origins: list[str] = Field(default_factory=list)

    # Secrets. Dev mode fills them with well-known values; production must set them.
    dev_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    worker_token: SecretStr | None = None
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_jwks_url: str = ""
    # The admin role (AdminService: every tenant's jobs, dead letters, queues). Granted to a
    # bearer JWT whose claim has a value (`roles=bytereview-admin`: the claim equals it or is a
    # list holding it; a dotted name reaches nested claims, `realm_access.roles=...`), or to
    # these subjects (`issuer|sub`, a JSON list). Never to an API key; in dev mode
    # also to the dev token's user (the one-machine operator is the developer).
    admin_claim: str = ""
    admin_subjects: list[str] = Field(default_factory=list)

    # The web app's OpenID Connect client (authorization code + PKCE against jwt_issuer).
    oidc_client_id: str = ""

    # Extraction.
    gemini_api_key: SecretStr | None = None
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str = ""
    gemini_timeout_seconds: float = 120.0
    # The model's own output ceiling: each request's bound (thinking plus room per field,
    # services/extract/model/gemini.py) is capped at it. 65,536 is the 2.5 models'; set a
    # model's lower one (gemini-2.0-flash: 8,192) if its API refuses a bound above it, or 0 to
    # send no bound at all.
    gemini_max_output_tokens: int = Field(default=65_536, ge=0)
    extract_concurrency: int = 8
    # Requests per minute allowed by the model quota, shared by every extract replica
    # (a schedule in NATS KV); 0 = no ceiling.
    extract_rpm: int = 0
    # How long a task waits out 429s in place before it is handed back to the queue.
    extract_rate_limit_max_wait_seconds: float = 600.0
    # Benchmarks only: "noop" selects an extractor that reads nothing and answers nulls
    # (bench/throughput_vs_arq.py). Refused outside dev mode, so production cannot pick it.
    bench_extractor: str = ""
    # A value below this confidence (or unverified) needs review; the default is the one
    # bench/fit_confidence.py chose to flag at most a fifth of the labelled values.
    review_confidence_threshold: float = Field(default=0.794, ge=0.0, le=1.0)

    # Ingest limits (archives are refused beyond them, with a reason the user can read).
    ingest_concurrency: int = 1
    ingest_max_entries: int = 10_000
    ingest_max_total_bytes: int = 8 * 1024**3
    ingest_max_ratio: float = 200.0
    ingest_max_depth: int = 3
    max_upload_bytes: int = 2 * 1024**3
    # Files one job may hold, declared and unpacked together (a 100,000-file job needs
    # ingest_max_entries raised too when it arrives as one archive).
    max_files_per_job: int = Field(default=10_000, ge=1, le=1_000_000)
    upload_url_ttl_seconds: int = 3600
    # Local copies of stored files RenderPage keeps on the ingest pod's temporary disk, so
    # that paging through a document downloads it once (services/ingest/local_copies.py):
    # the bytes of those not in use; 0 keeps none. The chart's ingest.tmpSizeLimit holds it.
    render_copies_bytes: int = Field(default=1024**3, ge=0)

    # `bytereview up`: the autoscaling policy adds worker processes up to this many per pool
    # (1 turns local scaling off) and retires extras after this long below their count.
    local_max_workers: int = 3
    local_scale_down_seconds: float = 30.0

    # Workers.
    # Names this process in worker heartbeats (the pod name in Kubernetes; the host otherwise).
    pod_name: str = ""
    # Serve the queue only, not the component's gRPC API (extra local workers).
    worker_only: bool = False
    # A worker killed mid-task holds its messages until AckWait runs out; live workers renew
    # it with in-progress acks every third of it, so it can be short (#17: recovery <= 20 s).
    ack_wait_seconds: float = 15.0
    max_deliver: int = 5
    drain_grace_seconds: float = 25.0
    # A task's handler is cancelled and its message released after this long (waits for a
    # dependency that is down excluded). Above the model's timeout and the rate-limit wait.
    task_max_run_seconds: float = 1800.0
    # Deadline of every worker -> jobs service call.
    jobs_call_timeout_seconds: float = 30.0
    # How often the jobs service checks that every open task and file still has its message
    # in JetStream (a lost NATS store), queueing again what is missing.
    outbox_reconcile_seconds: float = 60.0
    # A worker whose fetch loop has not pulled for this long, with a free slot and work
    # waiting in its queue, reports NOT_SERVING and exits non-zero to be restarted.
    worker_stall_seconds: float = 60.0

    @model_validator(mode="after")
    def _fill_and_check(self) -> Self:
        if self.env is Environment.DEV:
            self.dev_token = self.dev_token or SecretStr(DEV_TOKEN)
            self.signing_secret = self.signing_secret or SecretStr(DEV_SIGNING_SECRET)
            self.worker_token = self.worker_token or SecretStr(DEV_WORKER_TOKEN)
            self._refuse_public_dev_secrets()
        else:
            self._refuse_dev_secrets()
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'bytereview.db'}"
        if self.storage_dir is None:
            self.storage_dir = self.data_dir / "storage"
        if not self.public_url:
            self.public_url = f"http://{self.gateway_host}:{self.gateway_port}"
        self._check_bench_extractor()
        if self.admin_claim and "=" not in self.admin_claim.strip("="):
            raise ValueError("BYTEREVIEW_ADMIN_CLAIM must read claim=value, e.g. roles=admin")
        if self.storage_backend is StorageBackend.GCS and not self.gcs_bucket:
            raise ValueError("BYTEREVIEW_GCS_BUCKET is required with the gcs storage backend")
        return self

    def _check_bench_extractor(self) -> None:
        if not self.bench_extractor:
            return
        if self.bench_extractor not in BENCH_EXTRACTORS:
            raise ValueError(
                f"BYTEREVIEW_BENCH_EXTRACTOR must be one of {sorted(BENCH_EXTRACTORS)} or unset"
            )
        if self.env is not Environment.DEV:
            raise ValueError(
                "BYTEREVIEW_BENCH_EXTRACTOR selects a benchmarking stand-in that extracts "
                "nothing; it is refused with BYTEREVIEW_ENV=production"
            )

    def _refuse_dev_secrets(self) -> None:
        dev_values = {DEV_TOKEN, DEV_SIGNING_SECRET, DEV_WORKER_TOKEN}
        if self.dev_token is not None:
            raise ValueError("BYTEREVIEW_DEV_TOKEN is only allowed with BYTEREVIEW_ENV=dev")
        for name in ("signing_secret", "worker_token"):
            value: SecretStr | None = getattr(self, name)
            if value is None or not value.get_secret_value():
                raise ValueError(f"BYTEREVIEW_{name.upper()} must be set in production")
            if value.get_secret_value() in dev_values or len(value.get_secret_value()) < 16:
                raise ValueError(
                    f"BYTEREVIEW_{name.upper()} is a dev or too-short value; "
                    "use a random secret of 16+ characters in production"
                )

    def _refuse_public_dev_secrets(self) -> None:
        """Dev mode's well-known secrets only where nobody else can connect: with any of them,
        whoever reaches a non-loopback bind is the dev user (an admin), reads every tenant's
        files (the worker token) or signs upload URLs. `bytereview up` generates its own for
        such binds; a process started by hand must be given them."""
        exposed = [
            f"BYTEREVIEW_{name.upper()}={value}"
            for name, value in (
                ("gateway_host", self.gateway_host),
                ("jobs_addr", self.jobs_addr),
                ("ingest_addr", self.ingest_addr),
                ("extract_addr", self.extract_addr),
            )
            if not is_loopback(value if name == "gateway_host" else value.rpartition(":")[0])
        ]
        if self.grpc_port:
            exposed.append(f"BYTEREVIEW_GRPC_PORT={self.grpc_port} (binds 0.0.0.0)")
        public = {DEV_TOKEN, DEV_SIGNING_SECRET, DEV_WORKER_TOKEN}
        well_known = [
            f"BYTEREVIEW_{name.upper()}"
            for name in ("dev_token", "signing_secret", "worker_token")
            if self.secret(name) in public or len(self.secret(name)) < 16
        ]
        if exposed and well_known:
            raise ValueError(
                f"{', '.join(exposed)} can be reached from other machines, but "
                f"{', '.join(well_known)} would be dev mode's public value or shorter than 16 "
                "characters; set each to a random secret of 16+ characters, or bind to 127.0.0.1"
            )

    @property
    def is_dev(self) -> bool:
        return self.env is Environment.DEV

    def secret(self, name: str) -> str:
        """The plain value of a secret setting, or '' when unset."""
        value: SecretStr | None = getattr(self, name)
        return value.get_secret_value() if value is not None else ""


def is_loopback(host: str) -> bool:
    """Whether a bind (or service) host is reachable from this machine only."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost, or "" (every interface)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, validated once."""
    return Settings()
