"""Where the operator's Kubernetes credentials come from, for kopf and HttpKubeApi alike.

In a pod: the mounted service-account token. Outside one: the current context of
KUBECONFIG (a token minted for the chart's ServiceAccount, or any user). Both kopf's
watches and our own API calls use the same ConnectionInfo, so the operator never acts
with more rights than the ones it watches with.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile

import httpx
import kopf


class NoCredentials(RuntimeError):
    """Neither a service-account token nor a kubeconfig was found."""


def connection(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo:
    """The service account when mounted (in a pod), else the kubeconfig's current context."""
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
        settings=settings
    )
    if info is None:
        raise NoCredentials("no service-account token mounted and no KUBECONFIG")
    return info


def _as_path(data: str | bytes, suffix: str) -> str:
    """Inline kubeconfig data (base64) to a private file: ssl wants paths for client certs."""
    raw = data if isinstance(data, bytes) else data.encode()
    fd, name = tempfile.mkstemp(prefix="bytereview-kube-", suffix=suffix)
    with os.fdopen(fd, "wb") as f:
        f.write(base64.b64decode(raw))
    return name


def http_client(info: kopf.ConnectionInfo, *, timeout: float = 10) -> httpx.AsyncClient:
    """An httpx client speaking to the API server as `info` says (TLS, token or client cert)."""
    context = ssl.create_default_context()
    if info.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif info.ca_path:
        context.load_verify_locations(cafile=os.fsdecode(info.ca_path))
    elif info.ca_data:
        raw = info.ca_data if isinstance(info.ca_data, bytes) else info.ca_data.encode()
        context.load_verify_locations(cadata=base64.b64decode(raw).decode())
    cert = info.certificate_path or (
        _as_path(info.certificate_data, ".crt") if info.certificate_data else None
    )
    key = info.private_key_path or (
        _as_path(info.private_key_data, ".key") if info.private_key_data else None
    )
    if cert:
        context.load_cert_chain(os.fsdecode(cert), os.fsdecode(key) if key else None)
    headers = {}
    if info.token:
        headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
    return httpx.AsyncClient(base_url=info.server, headers=headers, verify=context, timeout=timeout)
