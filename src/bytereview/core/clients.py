"""gRPC channels between services, with the credentials each call carries."""

from __future__ import annotations

import grpc

from bytereview.core.settings import Settings

# Retries for idempotent calls on UNAVAILABLE (a jobs replica restarting): gRPC's own policy.
_SERVICE_CONFIG = """{
  "methodConfig": [{
    "name": [{}],
    "retryPolicy": {
      "maxAttempts": 5,
      "initialBackoff": "0.2s",
      "maxBackoff": "5s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}"""


def channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        address,
        options=[
            ("grpc.service_config", _SERVICE_CONFIG),
            ("grpc.enable_retries", 1),
            ("grpc.max_receive_message_length", 32 * 1024 * 1024),
            ("grpc.max_send_message_length", 32 * 1024 * 1024),
            ("grpc.keepalive_time_ms", 30_000),
        ],
    )


Metadata = tuple[tuple[str, str], ...]


def worker_metadata(settings: Settings) -> Metadata:
    """Metadata that identifies a ByteReview worker to the jobs service."""
    return (("authorization", f"Bearer {settings.secret('worker_token')}"),)
