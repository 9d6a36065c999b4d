"""A local HTTP server that speaks the Gemini API's REST wire format (models:generateContent).

Gemini cannot be reached from here, so the real google-genai SDK is pointed at this server
through its base URL option. It answers like the real service: JSON bodies in the API's
camelCase shapes, `{"error": {code, message, status, details}}` on failure (a key it does
not know: 400 INVALID_ARGUMENT with the ErrorInfo reason API_KEY_INVALID, as the Gemini
Developer API answers), Retry-After on 429, and an optional requests-per-minute quota. What
the model "reads" is scripted by the test.

A request without documents (the extract workers' health probe of the service) is not one
of the script's: the model answers it (the schema's fields null) while the service is up,
and it is kept in `probes`, not `seen`. `outage` is the service down: every request,
probes too, is answered with it (a 500, a 504, a stall past the client's timeout).
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "test-gemini-key"
_UPLOAD_START = re.compile(r"^/upload/v1(?:beta|alpha)?/files$")
_UPLOAD_SESSION = re.compile(r"^/upload/session/(?P<id>[0-9a-f]+)$")
_ROUTE = re.compile(r"^/v1(?:beta|alpha)?/models/(?P<model>[^/:]+):generateContent$")
_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    408: "DEADLINE_EXCEEDED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _get(message: dict[str, Any], camel: str) -> Any:
    """A field by its JSON name or its proto name: the API, like any proto JSON parser, takes both."""
    snake = re.sub(r"([A-Z])", lambda m: "_" + m[1].lower(), camel)
    return message.get(camel, message.get(snake))


def _bytes(data: str) -> bytes:
    """proto JSON `bytes`: base64, standard or URL-safe alphabet, padding optional."""
    return base64.urlsafe_b64decode(
        data.replace("+", "-").replace("/", "_") + "=" * (-len(data) % 4)
    )


@dataclass
class Reply:
    """One scripted answer: a JSON object for the model to return, or an HTTP error."""

    values: dict[str, Any] | None = None
    text: str | None = None  # raw model text, for answers that are not valid JSON
    status: int = 200
    retry_after: float | None = None
    # The error's body as the service words it (`_error_body` makes a plain one otherwise).
    error: dict[str, Any] | None = None
    finish_reason: str = "STOP"
    # Seconds the service takes before it answers: a model working on a request too long,
    # or a service stalled, past the client's timeout.
    delay: float = 0.0


def _error_info(reason: str, **metadata: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com", **metadata},
    }


def key_invalid() -> Reply:
    """The Gemini Developer API's answer to a key not valid (expired, deleted, mistyped)."""
    message = "API key not valid. Please pass a valid API key."
    details = [
        _error_info("API_KEY_INVALID"),
        {
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "en-US",
            "message": message,
        },
    ]
    error = {"code": 400, "message": message, "status": "INVALID_ARGUMENT", "details": details}
    return Reply(status=400, error={"error": error})


def consumer_suspended(key: str) -> Reply:
    """A 403 PERMISSION_DENIED for the key's project suspended: the real message quotes the
    key itself."""
    error = {
        "code": 403,
        "message": f"Permission denied: Consumer 'api_key:{key}' has been suspended.",
        "status": "PERMISSION_DENIED",
        "details": [_error_info("CONSUMER_SUSPENDED", consumer="projects/578829824020")],
    }
    return Reply(status=403, error={"error": error})


def service_disabled() -> Reply:
    """A 403 PERMISSION_DENIED for the API not enabled in the key's project."""
    error = {
        "code": 403,
        "message": "Generative Language API has not been used in project 411082643095 before"
        " or it is disabled. Enable it by visiting https://console.developers.google.com/apis/"
        "api/generativelanguage.googleapis.com/overview?project=411082643095 then retry.",
        "status": "PERMISSION_DENIED",
        "details": [_error_info("SERVICE_DISABLED", consumer="projects/411082643095")],
    }
    return Reply(status=403, error={"error": error})


def model_not_found(model: str) -> Reply:
    """The answer for a model the API does not serve (mistyped, or retired by Google)."""
    error = {
        "code": 404,
        "message": f"models/{model} is not found for API version v1beta, or is not supported"
        " for generateContent. Call ListModels to see the list of available models and their"
        " supported methods.",
        "status": "NOT_FOUND",
    }
    return Reply(status=404, error={"error": error})


def location_unsupported() -> Reply:
    """A 400 FAILED_PRECONDITION: the API not served where the call comes from."""
    error = {
        "code": 400,
        "message": "User location is not supported for the API use.",
        "status": "FAILED_PRECONDITION",
    }
    return Reply(status=400, error={"error": error})


def bad_request(message: str = "Request payload size exceeds the limit") -> Reply:
    """A 400 INVALID_ARGUMENT about the request itself: no ErrorInfo reason about the key."""
    error = {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}
    return Reply(status=400, error={"error": error})


@dataclass
class Seen:
    model: str
    body: dict[str, Any]
    api_key: str
    files: dict[str, bytes] = field(default_factory=dict, repr=False)  # the Files API's
    at: float = field(default_factory=time.monotonic)  # when it came

    @property
    def documents(self) -> list[bytes]:
        """The documents sent with the request: inline, or uploaded through the Files API."""
        uploaded = [self.files.get(uri, b"") for _, uri in self.file_uris]
        return [data for _, data in self.inline_files] + uploaded

    def reads(self, marker: bytes) -> bool:
        """Whether one of its documents holds `marker` (a poisoned document)."""
        return any(marker in data for data in self.documents)

    def config(self, name: str) -> Any:
        return _get(_get(self.body, "generationConfig") or {}, name)

    @property
    def schema(self) -> dict[str, Any]:
        config = _get(self.body, "generationConfig") or {}
        return dict(_get(config, "responseJsonSchema") or _get(config, "responseSchema") or {})

    @property
    def system_prompt(self) -> str:
        parts = (_get(self.body, "systemInstruction") or {}).get("parts", [])
        return "".join(p.get("text", "") for p in parts)

    @property
    def file_uris(self) -> list[tuple[str, str]]:
        """(mime type, URI) of the parts that point at Files API uploads."""
        out = []
        for content in self.body.get("contents", []):
            for part in content.get("parts", []):
                data = _get(part, "fileData")
                if data:
                    out.append((_get(data, "mimeType"), _get(data, "fileUri")))
        return out

    @property
    def inline_files(self) -> list[tuple[str, bytes]]:
        out = []
        for content in self.body.get("contents", []):
            for part in content.get("parts", []):
                inline = _get(part, "inlineData")
                if inline:
                    out.append((_get(inline, "mimeType"), _bytes(inline["data"])))
        return out


@dataclass
class GeminiStandIn:
    """Scripted replies are used in order; when none are left `default` answers."""

    replies: deque[Reply] = field(default_factory=deque)
    default: Callable[[Seen], Reply] | None = None
    quota_rpm: int = 0
    # The key the service accepts; any other is answered with `key_invalid()`.
    api_key: str = API_KEY
    # The service down: every request is answered so, probes too (None: it is up).
    outage: Reply | None = None
    seen: list[Seen] = field(default_factory=list)
    probes: list[Seen] = field(default_factory=list)  # requests without documents
    rejected: int = 0
    # Files API: upload sessions in progress, and finished files by URI.
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    _starts: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def answer(self, seen: Seen) -> Reply:
        probe = not seen.documents
        with self._lock:
            if self.outage is not None:
                (self.probes if probe else self.seen).append(seen)
                return self.outage
            if self.quota_rpm:
                now = time.monotonic()
                while self._starts and now - self._starts[0] >= 60.0:
                    self._starts.popleft()
                if len(self._starts) >= self.quota_rpm:
                    self.rejected += 1
                    wait = self._starts[0] + 60.0 - now
                    return Reply(status=429, retry_after=round(max(wait, 0.05), 2))
                self._starts.append(now)
            if probe:  # the model up answers a question without documents, not the script
                self.probes.append(seen)
                return Reply(values={name: None for name in seen.schema.get("properties", {})})
            self.seen.append(seen)
            if self.replies:
                return self.replies.popleft()
        if self.default is not None:
            return self.default(seen)
        return Reply(values={name: None for name in seen.schema.get("properties", {})})


def _error_body(status: int, retry_after: float | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": status,
        "message": f"stand-in error {status}",
        "status": _STATUS.get(status, "UNKNOWN"),
    }
    if retry_after is not None:
        # As the real API does: google.rpc.RetryInfo in the details.
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after}s"}
        ]
    return {"error": error}


def _ok_body(reply: Reply, seen: Seen) -> dict[str, Any]:
    text = reply.text if reply.text is not None else json.dumps(reply.values or {})
    files = len(seen.inline_files)
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": reply.finish_reason,
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 250 * max(files, 1),
            "candidatesTokenCount": max(1, len(text) // 4),
            "totalTokenCount": 250 * max(files, 1) + max(1, len(text) // 4),
        },
        "modelVersion": seen.model,
    }


def make_handler(state: GeminiStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up waiting (its timeout)

        def _upload(self, raw: bytes) -> bool:
            """The Files API's resumable upload protocol; False if the path is not one of it."""
            path = self.path.split("?", 1)[0]
            host = self.headers.get("Host", "")
            if _UPLOAD_START.match(path):
                if self.headers.get("x-goog-api-key", "") != state.api_key:
                    refused = key_invalid()
                    self._send(refused.status, refused.error or {}, {})
                    return True
                meta = _get(json.loads(raw or b"{}"), "file") or {}
                session = uuid.uuid4().hex
                state.sessions[session] = {
                    "mime": self.headers.get("X-Goog-Upload-Header-Content-Type")
                    or _get(meta, "mimeType"),
                    "size": int(self.headers.get("X-Goog-Upload-Header-Content-Length") or 0),
                    "data": b"",
                }
                headers = {
                    "x-goog-upload-url": f"http://{host}/upload/session/{session}",
                    "x-goog-upload-status": "active",
                }
                self._send(200, {}, headers)
                return True
            match = _UPLOAD_SESSION.match(path)
            if match is None:
                return False
            upload = state.sessions.get(match["id"])
            command = self.headers.get("X-Goog-Upload-Command", "")
            if upload is None or int(self.headers.get("X-Goog-Upload-Offset", -1)) != len(
                upload["data"]
            ):
                self._send(400, _error_body(400), {"x-goog-upload-status": "final"})
                return True
            upload["data"] += raw
            if "finalize" not in command:
                self._send(200, {}, {"x-goog-upload-status": "active"})
                return True
            uri = f"http://{host}/v1beta/files/{match['id']}"
            state.files[uri] = upload["data"]
            body = {
                "file": {
                    "name": f"files/{match['id']}",
                    "uri": uri,
                    "mimeType": upload["mime"],
                    "sizeBytes": str(len(upload["data"])),
                    "state": "ACTIVE",
                }
            }
            self._send(200, body, {"x-goog-upload-status": "final"})
            return True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self._upload(raw):
                return
            route = _ROUTE.match(self.path.split("?", 1)[0])
            if route is None:
                self._send(404, _error_body(404), {})
                return
            key = self.headers.get("x-goog-api-key", "")
            if key != state.api_key:
                refused = key_invalid()
                self._send(refused.status, refused.error or {}, {})
                return
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                self._send(400, _error_body(400), {})
                return
            seen = Seen(model=route["model"], body=body, api_key=key, files=state.files)
            reply = state.answer(seen)
            if reply.delay:
                time.sleep(reply.delay)  # each request is served on its own thread
            if reply.status != 200:
                headers = {}
                if reply.retry_after is not None:
                    headers["Retry-After"] = str(math.ceil(reply.retry_after))
                body = reply.error or _error_body(reply.status, reply.retry_after)
                self._send(reply.status, body, headers)
                return
            self._send(200, _ok_body(reply, seen), {})

    return Handler


class RunningStandIn:
    def __init__(self, state: GeminiStandIn) -> None:
        self.state = state
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
        self._server.daemon_threads = True
        # serve_forever checks for shutdown every poll_interval (0.5 s by default): every
        # test using a stand-in waited that out on exit.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> RunningStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
