"""The operator's runtime: its credentials, which replica acts (peering), no finalizers."""

from __future__ import annotations

import base64
from pathlib import Path

import kopf
import pytest
import yaml

from bytereview_operator.credentials import NoCredentials, connection, http_client
from bytereview_operator.peering import priority


def test_an_earlier_replica_outranks_a_later_one() -> None:
    start = 1_800_000_000.0
    # A millisecond apart is enough, whatever the random tails are.
    for _ in range(200):
        assert priority(start) > priority(start + 0.001)
    # Within the JSON-exact integer range, so the peering object keeps it as it is.
    assert 0 < priority(start) < 2**53


def test_the_kubeconfig_token_reaches_kopf_and_our_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "sa", "namespace": "ns"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "sa", "user": {"token": "minted-token"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    info = connection(kopf.OperatorSettings())
    assert (info.server, info.token, info.default_namespace) == (
        "https://127.0.0.1:6443",
        "minted-token",
        "ns",
    )
    client = http_client(info)
    assert client.headers["Authorization"] == "Bearer minted-token"
    assert str(client.base_url) == "https://127.0.0.1:6443"


def test_no_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(NoCredentials, match="KUBECONFIG"):
        connection(kopf.OperatorSettings())


def test_inline_ca_data_is_trusted(tmp_path: Path) -> None:
    import ssl

    # Any valid PEM certificate will do: the system bundle's first one.
    bundle = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    pem = bundle.read_text().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    info = kopf.ConnectionInfo(
        server="https://127.0.0.1:6443", ca_data=base64.b64encode(pem.encode()).decode()
    )
    client = http_client(info)
    assert "Authorization" not in client.headers


def test_pools_carry_no_finalizer() -> None:
    """helm uninstall removes the operator's Role before the pools: a finalizer would stick."""
    from bytereview_operator import handlers

    spawning = kopf.get_default_registry()._spawning.get_all_handlers()
    [daemon] = [h for h in spawning if h.fn is handlers.pool_daemon]
    assert daemon.requires_finalizer is False
