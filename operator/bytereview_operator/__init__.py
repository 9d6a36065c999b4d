"""The autoscaler (the owner's operator/ folder): scales worker pools from JetStream lag.

Importable as `bytereview_operator`, never as a top-level `operator`, which would shadow
the standard library. This module names what others may use: the pure scaling policy, the
per-pool controller and its Kubernetes API, and the local mode that `bytereview up` drives.
The kopf handlers (`bytereview_operator.handlers`) are not re-exported: importing them
registers them with kopf, which only `bytereview operator` should do.
"""

from bytereview_operator.estimates import Observation
from bytereview_operator.kube import (
    DELETION_COST,
    GROUP,
    PLURAL,
    RBAC_RULES,
    VERSION,
    HttpKubeApi,
    KubeApi,
    KubeError,
)
from bytereview_operator.local import LocalPool
from bytereview_operator.policy import Decision, decide, recommend
from bytereview_operator.pool_policy import PoolPolicy
from bytereview_operator.reconcile import (
    InvalidSpec,
    PoolController,
    PoolSpec,
    ScaleState,
    observe_consumer,
)

__all__ = [
    "DELETION_COST",
    "GROUP",
    "PLURAL",
    "RBAC_RULES",
    "VERSION",
    "Decision",
    "HttpKubeApi",
    "InvalidSpec",
    "KubeApi",
    "KubeError",
    "LocalPool",
    "Observation",
    "PoolController",
    "PoolPolicy",
    "PoolSpec",
    "ScaleState",
    "decide",
    "observe_consumer",
    "recommend",
]
