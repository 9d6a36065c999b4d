"""The few Kubernetes API calls the autoscaler makes, behind one small interface.

HttpKubeApi speaks the API server's REST/JSON directly, over a client made from the same
credentials kopf logs in with (credentials.py), so tests can point it at a recorder speaking
the same wire format or at a real API server.
Everything the operator needs from RBAC is listed in RBAC_RULES.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Protocol

import httpx

GROUP = "autoscaling.bytereview.io"
VERSION = "v1alpha1"
PLURAL = "workerpools"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"

# What the operator must be allowed to do (the Helm chart's Role is built from this).
RBAC_RULES: list[dict[str, list[str]]] = [
    {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["get", "patch"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
    {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    # kopf's own bookkeeping: peering and the cluster-wide resource scan.
    {
        "apiGroups": ["kopf.dev"],
        "resources": ["kopfpeerings"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {
        "apiGroups": ["kopf.dev"],
        "resources": ["clusterkopfpeerings"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["list", "watch"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
]


class KubeApi(Protocol):
    async def get_scale(self, namespace: str, deployment: str) -> tuple[int, str]: ...
    async def set_scale(self, namespace: str, deployment: str, replicas: int) -> None: ...
    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...
    async def annotate_pod(self, namespace: str, pod: str, annotations: dict[str, str]) -> None: ...
    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None: ...
    async def event(
        self,
        namespace: str,
        pool: dict[str, Any],
        reason: str,
        message: str,
        *,
        warning: bool = False,
    ) -> None: ...


class KubeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class HttpKubeApi:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._client.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise KubeError(response.status_code, response.text[:500])
        body: dict[str, Any] = response.json() if response.content else {}
        return body

    async def _merge_patch(self, path: str, patch: dict[str, Any]) -> None:
        await self._request(
            "PATCH", path, json=patch, headers={"Content-Type": "application/merge-patch+json"}
        )

    async def pool_exists(self, namespace: str, name: str) -> bool:
        try:
            await self._request(
                "GET", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"
            )
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def get_scale(self, namespace: str, deployment: str) -> tuple[int, str]:
        body = await self._request(
            "GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}/scale"
        )
        return int(body.get("spec", {}).get("replicas", 0)), str(
            body.get("status", {}).get("selector", "")
        )

    async def set_scale(self, namespace: str, deployment: str, replicas: int) -> None:
        await self._merge_patch(
            f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}/scale",
            {"spec": {"replicas": replicas}},
        )

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        body = await self._request(
            "GET", f"/api/v1/namespaces/{namespace}/pods", params={"labelSelector": selector}
        )
        items: list[dict[str, Any]] = body.get("items", [])
        return items

    async def annotate_pod(self, namespace: str, pod: str, annotations: dict[str, str]) -> None:
        await self._merge_patch(
            f"/api/v1/namespaces/{namespace}/pods/{pod}",
            {"metadata": {"annotations": annotations}},
        )

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        await self._merge_patch(
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status",
            {"status": status},
        )

    async def event(
        self,
        namespace: str,
        pool: dict[str, Any],
        reason: str,
        message: str,
        *,
        warning: bool = False,
    ) -> None:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        name = pool["metadata"]["name"]
        await self._request(
            "POST",
            f"/api/v1/namespaces/{namespace}/events",
            json={
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{name}.{uuid.uuid4().hex[:12]}", "namespace": namespace},
                "involvedObject": {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "WorkerPool",
                    "name": name,
                    "namespace": namespace,
                    "uid": pool["metadata"].get("uid", ""),
                },
                "reason": reason,
                "message": message[:1000],
                "type": "Warning" if warning else "Normal",
                "source": {"component": "bytereview-autoscaler"},
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            },
        )
