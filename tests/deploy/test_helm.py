"""The Helm chart: rendered offline (helm-python-sdk) for several value sets, linted strictly,
every manifest validated with kubernetes-validate, and the wiring between components checked."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from bytereview.core import Settings, streams
from bytereview.core.limits import PDF_PROCESSES
from bytereview_operator import RBAC_RULES

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "bytereview"
RELEASE, NAMESPACE = "br", "docs"
FULL = f"{RELEASE}-bytereview"
KUBE_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]

EXTERNAL: dict[str, Any] = {
    "nats": {"enabled": False},
    "postgresql": {"enabled": False},
    "externalNats": {"url": "nats://nats.messaging:4222"},
    "secrets": {"databaseUrl": "postgresql+asyncpg://br:pw@db.data:5432/br"},
}
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "external-services": EXTERNAL,
    "gcs-gemini": {
        **EXTERNAL,
        "storage": {
            "backend": "gcs",
            "gcs": {"bucket": "br-docs", "project": "p", "credentialsSecret": "gcs-key"},
        },
        "secrets": {**EXTERNAL["secrets"], "geminiApiKey": "AIza-test"},
        "config": {"extract": {"requestsPerMinute": 900}},
    },
    "ingress-netpol-monitor": {
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "tls": [{"secretName": "br-tls", "hosts": ["bytereview.local"]}],
        },
        "networkPolicy": {"enabled": True},
        "metrics": {"serviceMonitor": {"enabled": True}},
    },
    "existing-secret-clusterwide": {
        **EXTERNAL,
        "secrets": {"existingSecret": "mine"},
        "operator": {"namespaced": False},
        "migrations": {"enabled": False},
    },
}


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    chart = helm.Chart.load(CHART)
    out = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return list(spec["template"]["spec"]["containers"])


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(VALUE_SETS[request.param])


def test_every_manifest_validates_strictly(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    crd = yaml.safe_load((CHART / "crds" / "workerpools.yaml").read_text())
    pool_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for doc in docs:
        if doc["kind"] == "WorkerPool":
            # OpenAPI v3.0 schema semantics (boolean exclusiveMinimum) are JSON Schema draft 4's.
            jsonschema.Draft4Validator(pool_schema["properties"]["spec"]).validate(doc["spec"])
            continue
        if doc["kind"] == "ServiceMonitor":  # prometheus-operator's CRD: not in the schemas
            assert doc["spec"]["endpoints"][0]["port"] == "metrics"
            continue
        if doc["kind"] in ("KopfPeering", "ClusterKopfPeering"):  # crds/kopfpeerings.yaml
            assert doc["apiVersion"] == "kopf.dev/v1"
            continue
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
    peerings = list(yaml.safe_load_all((CHART / "crds" / "kopfpeerings.yaml").read_text()))
    for version in KUBE_VERSIONS:
        for definition in (crd, *peerings):
            kubernetes_validate.validate(definition, version, strict=True)


def test_strict_lint(tmp_path: Path) -> None:
    # The optional NATS and PostgreSQL charts cannot be fetched here (no internet), so lint a
    # copy without them; on the real chart the only finding allowed is that they are absent.
    report = helm.lint(CHART, {}, strict=True, namespace=NAMESPACE)
    assert report["errors"] == ["chart directory is missing these dependencies: nats,postgresql"]
    copy_dir = tmp_path / "bytereview"
    shutil.copytree(CHART, copy_dir)
    meta = yaml.safe_load((copy_dir / "Chart.yaml").read_text())
    del meta["dependencies"]
    (copy_dir / "Chart.yaml").write_text(yaml.safe_dump(meta))
    for values in VALUE_SETS.values():
        report = helm.lint(copy_dir, values, strict=True, namespace=NAMESPACE)
        assert report["errors"] == [], report
        assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


def test_components_find_each_other(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, docs = rendered
    services = by_kind(docs, "Service")
    deployments = by_kind(docs, "Deployment")
    for component in ("gateway", "jobs", "ingest", "extract"):
        deployment = deployments[f"{FULL}-{component}"]
        [container] = containers(deployment)
        assert container["args"] == [component]
        env = env_of(container)
        assert env["BYTEREVIEW_ENV"] == "production"
        for target, setting in (
            ("jobs", "BYTEREVIEW_JOBS_ADDR"),
            ("ingest", "BYTEREVIEW_INGEST_ADDR"),
            ("extract", "BYTEREVIEW_EXTRACT_ADDR"),
        ):
            host, port = env[setting].split(":")
            assert host == f"{FULL}-{target}"
            service = services[host]
            assert int(port) in [p["port"] for p in service["spec"]["ports"]]
            # The Service selects the pods of that component.
            selected = service["spec"]["selector"]
            labels = deployments[host]["spec"]["template"]["metadata"]["labels"]
            assert selected.items() <= labels.items()
        nats_url = env["BYTEREVIEW_NATS_URL"]
        if VALUE_SETS[name].get("nats", {}).get("enabled", True):
            assert nats_url == f"nats://{RELEASE}-nats:4222"
        else:
            assert nats_url == "nats://nats.messaging:4222"
        # The gRPC services listen where their probes and Services look.
        if component != "gateway":
            assert env["BYTEREVIEW_GRPC_PORT"] == str(container["ports"][0]["containerPort"])
            assert container["readinessProbe"]["grpc"]["port"] == int(env["BYTEREVIEW_GRPC_PORT"])
    gateway_env = env_of(containers(deployments[f"{FULL}-gateway"])[0])
    assert gateway_env["BYTEREVIEW_GATEWAY_HOST"] == "0.0.0.0"  # noqa: S104 - inside a pod


def test_the_bundled_nats_takes_clients_from_the_release_alone() -> None:
    """It has no credentials: with the policies on, any other pod could read, publish to or
    delete the work queues. NATS brought by URL is not the chart's to fence."""
    [policy] = [
        d
        for d in render({"networkPolicy": {"enabled": True}})
        if d["kind"] == "NetworkPolicy" and d["metadata"]["name"].endswith("-nats")
    ]
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "nats",
        "app.kubernetes.io/instance": "br",
    }
    clients, peers, monitor = spec["ingress"]
    assert clients["from"] == [
        {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "bytereview",
                    "app.kubernetes.io/instance": "br",
                }
            }
        }
    ]
    assert [p["port"] for p in clients["ports"]] == [4222]
    assert peers["from"][0]["podSelector"] == spec["podSelector"]
    assert "from" not in monitor
    assert [p["port"] for p in monitor["ports"]] == [8222]
    external = render({**EXTERNAL, "networkPolicy": {"enabled": True}})
    assert not [d for d in external if d["metadata"]["name"].endswith("-nats")]


def test_worker_pools_are_owned_by_the_operator(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = rendered
    deployments = by_kind(docs, "Deployment")
    pools = by_kind(docs, "WorkerPool")
    settings = Settings()
    for component, spec in (
        ("ingest", streams.ingest_queue(settings)),
        ("extract", streams.extract_queue(settings)),
    ):
        deployment = deployments[f"{FULL}-{component}"]
        assert "replicas" not in deployment["spec"]  # a Helm upgrade must not reset the scale
        pool = pools[f"{FULL}-{component}"]["spec"]
        assert pool["deployment"] == deployment["metadata"]["name"]
        assert (pool["stream"], pool["consumer"]) == (spec.stream, spec.durable)
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        drain = env_of(containers(deployment)[0])["BYTEREVIEW_DRAIN_GRACE_SECONDS"]
        assert float(drain) < grace


def test_both_pools_take_their_concurrency_from_the_same_place() -> None:
    """`ingest.concurrency` and `extract.concurrency` reach the workers and the operator alike."""
    values = copy.deepcopy(EXTERNAL)
    values["ingest"] = {**values.get("ingest", {}), "concurrency": 2}
    values["extract"] = {**values.get("extract", {}), "concurrency": 5}
    docs = render(values)
    config = by_kind(docs, "ConfigMap")[f"{FULL}-config"]["data"]
    pools = by_kind(docs, "WorkerPool")
    for component, concurrency in (("ingest", 2), ("extract", 5)):
        assert config[f"BYTEREVIEW_{component.upper()}_CONCURRENCY"] == str(concurrency)
        assert pools[f"{FULL}-{component}"]["spec"]["perReplicaConcurrency"] == concurrency


def test_pods_are_locked_down(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    for doc in docs:
        if doc["kind"] not in ("Deployment", "CronJob", "Job"):
            continue
        spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["limits"]["memory"]
        if doc["kind"] == "Deployment":
            annotations = spec["template"]["metadata"]["annotations"]
            assert {"checksum/config", "checksum/secret"} <= set(annotations)


QUANTITY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


def quantity_bytes(value: str) -> float:
    for suffix, factor in sorted(QUANTITY.items(), key=lambda item: -len(item[0])):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def test_worker_pods_tmp_is_bounded_and_holds_what_they_copy(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    """Workers copy PDFs (and large images) to /tmp: bounded, so that one pod cannot fill
    the node's disk; and large enough for every PDF read at once at the upload limit, since
    past the bound the kubelet evicts the pod with all its work."""
    _, docs = rendered
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    deployments = by_kind(docs, "Deployment")
    for component in ("ingest", "extract"):
        pod = deployments[f"{FULL}-{component}"]["spec"]["template"]["spec"]
        tmp = {v["name"]: v for v in pod["volumes"]}["tmp"]
        limit = defaults[component]["tmpSizeLimit"]
        assert tmp["emptyDir"] == {"sizeLimit": limit}
        mounts = {
            m["name"]: m["mountPath"]
            for m in containers(deployments[f"{FULL}-{component}"])[0]["volumeMounts"]
        }
        assert mounts["tmp"] == "/tmp"
        copied = PDF_PROCESSES * Settings(env="dev").max_upload_bytes
        if component == "ingest":
            # And the copies RenderPage keeps for the next page (services/ingest/local_copies.py).
            copied += Settings(env="dev").render_copies_bytes
        assert quantity_bytes(limit) > copied
    # What the workers do not copy files into keeps its plain /tmp.
    jobs = deployments[f"{FULL}-jobs"]["spec"]["template"]["spec"]
    assert {v["name"]: v for v in jobs["volumes"]}["tmp"]["emptyDir"] == {}


def test_the_tmp_bound_is_a_value() -> None:
    docs = render({"ingest": {"tmpSizeLimit": "12Gi"}, "extract": {"tmpSizeLimit": "1500Mi"}})
    deployments = by_kind(docs, "Deployment")
    for component, limit in (("ingest", "12Gi"), ("extract", "1500Mi")):
        pod = deployments[f"{FULL}-{component}"]["spec"]["template"]["spec"]
        assert {v["name"]: v for v in pod["volumes"]}["tmp"]["emptyDir"] == {"sizeLimit": limit}


def test_cronjobs_run_the_cleanup_commands(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    cronjobs = by_kind(docs, "CronJob")
    for task in ("abandoned", "ephemeral", "orphans"):
        [container] = containers(cronjobs[f"{FULL}-cleanup-{task}"])
        assert container["args"] == ["cleanup", task]


def test_operator_rbac_is_exactly_what_it_needs(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    name, docs = rendered
    roles = [d for d in docs if d["kind"] in ("Role", "ClusterRole")]
    granted = {
        (group, resource, frozenset(rule["verbs"]))
        for role in roles
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    needed = {
        (group, resource, frozenset(rule["verbs"]))
        for rule in RBAC_RULES
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert granted == needed
    kinds = {d["kind"] for d in roles}
    namespaced = VALUE_SETS[name].get("operator", {}).get("namespaced", True)
    assert kinds == ({"Role", "ClusterRole"} if namespaced else {"ClusterRole"})
    operator_pod = by_kind(docs, "Deployment")[f"{FULL}-operator"]["spec"]["template"]["spec"]
    assert operator_pod["serviceAccountName"] == f"{FULL}-operator"
    assert operator_pod["automountServiceAccountToken"] is True
    [operator] = containers(by_kind(docs, "Deployment")[f"{FULL}-operator"])
    assert operator["args"][0] == "operator"
    assert ("--namespace" in operator["args"]) is namespaced
    # The replicas meet in the chart's peering object, of the scope they watch.
    peering = operator["args"][operator["args"].index("--peering") + 1]
    kind = "KopfPeering" if namespaced else "ClusterKopfPeering"
    assert set(by_kind(docs, kind)) == {peering}


def test_secrets_are_never_defaults(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, docs = rendered
    secrets = by_kind(docs, "Secret")
    if VALUE_SETS[name].get("secrets", {}).get("existingSecret"):
        assert secrets == {}
        return
    import base64

    data = secrets[f"{FULL}-secrets"]["data"]
    for key in ("signing-secret", "worker-token"):
        value = base64.b64decode(data[key]).decode()
        assert len(value) >= 32
        assert "dev" not in value
    # Two installs never share generated secrets.
    again = by_kind(render(VALUE_SETS[name]), "Secret")[f"{FULL}-secrets"]["data"]
    assert again["signing-secret"] != data["signing-secret"]


def test_migrations_run_before_the_release(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, docs = rendered
    jobs = by_kind(docs, "Job")
    [jobs_container] = containers(by_kind(docs, "Deployment")[f"{FULL}-jobs"])
    if not VALUE_SETS[name].get("migrations", {}).get("enabled", True):
        assert jobs == {}
        assert env_of(jobs_container)["BYTEREVIEW_MIGRATE_ON_START"] == "true"
        return
    job = jobs[f"{FULL}-migrate"]
    assert containers(job)[0]["args"] == ["migrate"]
    # A hook Pod naming an account the release creates later would be refused by the API server.
    account = job["spec"]["template"]["spec"]["serviceAccountName"]
    assert account not in by_kind(docs, "ServiceAccount")
    hooks = job["metadata"]["annotations"]["helm.sh/hook"]
    assert "pre-upgrade" in hooks
    assert env_of(jobs_container)["BYTEREVIEW_MIGRATE_ON_START"] == "false"


@pytest.mark.parametrize(
    "bad",
    [
        {"storage": {"backend": "s3"}},
        {"gateway": {"replicas": "two"}},
        {"extract": {"concurrency": 0}},
        {"ingest": {"concurrency": 0}},
        {"unknownKey": True},
        {"ingress": {"enabled": True, "host": 5}},
        {"ingest": {"tmpSizeLimit": "lots"}},
        {"extract": {"tmpSizeLimit": None}},
    ],
)
def test_schema_rejects_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmError):
        render(bad)


def test_required_values_have_clear_errors() -> None:
    values = copy.deepcopy(EXTERNAL)
    values["secrets"] = {}
    with pytest.raises(helm.HelmError, match=r"secrets\.databaseUrl"):
        render(values)
    with pytest.raises(helm.HelmError, match=r"storage\.gcs\.bucket"):
        render({"storage": {"backend": "gcs"}})
    # Rendered, this installed fine and the WorkerPool was refused only by the running
    # operator (Ready False: InvalidSpec), leaving the pool at the Deployment's default.
    for pool in ("ingest", "extract"):
        with pytest.raises(helm.HelmError, match=rf"{pool}\.minReplicas \(5\) must not exceed"):
            render({pool: {"minReplicas": 5, "maxReplicas": 2}})


def test_every_value_is_documented() -> None:
    readme = (CHART / "README.md").read_text()
    schema = json.loads((CHART / "values.schema.json").read_text())

    def leaves(node: dict[str, Any], prefix: str) -> list[str]:
        props = node.get("properties")
        if not props or prefix.endswith(".resources"):  # requests/limits: documented as one
            return [prefix]
        out = []
        for key, child in props.items():
            out.extend(leaves(child, f"{prefix}.{key}" if prefix else key))
        return out

    # Subchart values pass through untouched; only ours are listed.
    passthrough = ("global", "nats.config", "postgresql.auth")
    ours = [p for p in leaves(schema, "") if not p.startswith(passthrough)]
    missing = [p for p in ours if f"`{p}`" not in readme]
    assert missing == []


def test_every_command_the_chart_runs_exists() -> None:
    commands: set[str] = set()
    for values in VALUE_SETS.values():
        for doc in render(values):
            if doc["kind"] in ("Deployment", "CronJob", "Job"):
                commands.update(c["args"][0] for c in containers(doc))
    assert commands == {
        "gateway",
        "jobs",
        "ingest",
        "extract",
        "operator",
        "migrate",
        "cleanup",
    }
    for command in sorted(commands):
        done = subprocess.run(
            [sys.executable, "-m", "launcher.cli", command, "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_hook_and_cron_commands_run_for_real(settings: Settings) -> None:
    """`migrate` and `cleanup` as the chart runs them: production mode, PostgreSQL."""
    import os
    import secrets

    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
    env.update(
        {
            "BYTEREVIEW_ENV": "production",
            "BYTEREVIEW_DATABASE_URL": settings.database_url,
            "BYTEREVIEW_NATS_URL": settings.nats_url,
            "BYTEREVIEW_STORAGE_DIR": str(settings.storage_dir),
            "BYTEREVIEW_DATA_DIR": str(settings.data_dir),
            "BYTEREVIEW_SIGNING_SECRET": secrets.token_urlsafe(32),
            "BYTEREVIEW_WORKER_TOKEN": secrets.token_urlsafe(32),
        }
    )
    for argv in (
        ["migrate"],
        ["cleanup", "abandoned"],
        ["cleanup", "ephemeral"],
        ["cleanup", "orphans"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "launcher.cli", *argv],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, (argv, done.stderr[-2000:])


def test_the_image_is_slim_and_unprivileged() -> None:
    dockerfile = (CHART.parents[2] / "Dockerfile").read_text()
    stages = dockerfile.split("\nFROM ")
    final = stages[-1]
    assert len(stages) >= 2  # a build stage and a run stage
    assert "build-essential" not in final
    assert "gcc" not in final
    assert "USER 10001" in final
    assert 'ENTRYPOINT ["bytereview"]' in final
    # Installs the project from its pyproject, as the README's commands do.
    assert "pip install --no-cache-dir ." in dockerfile
