"""A real Kubernetes control plane for tests and benches: ../shared/k8s/setup.sh.

etcd + kube-apiserver + kube-controller-manager on localhost, with helm and kubectl. No
kubelet: Deployments get ReplicaSets and Pods, the Pods stay Pending, and a test plays the
kubelet where it must (a hook Job's Pod). Building takes minutes once and is cached under
K8S_HOME; `python -m tests.deploy.k8s ensure` builds what is missing (the test command runs
it). Nothing here is skipped: no setup script is an error saying where it is expected.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "bytereview"
SETUP = Path(os.environ.get("BYTEREVIEW_K8S_SETUP", ROOT.parent / "shared" / "k8s" / "setup.sh"))
HOME = Path(
    os.environ.get("K8S_HOME")
    or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bytereview-k8s"
)
BIN = HOME / "bin"
RUN = HOME / "run"
# What the stages leave behind; any one missing means building again.
BUILT = (
    HOME / "root" / "usr" / "bin" / "etcd",
    BIN / "kube-apiserver",
    BIN / "kube-controller-manager",
    BIN / "helm",
    BIN / "kubectl",
    HOME / "pki" / "ca.crt",
    HOME / "pki" / "sa.key",
)
T = TypeVar("T")
API = "https://127.0.0.1:" + os.environ.get("API_PORT", "16443")


def setup_script() -> Path:
    if not SETUP.is_file():
        raise FileNotFoundError(
            f"no control-plane setup script at {SETUP}: the tests expect ../shared/k8s/setup.sh "
            "beside the repository (or BYTEREVIEW_K8S_SETUP pointing at it)"
        )
    return SETUP


def _stage(*stages: str) -> int:
    return subprocess.run(["bash", str(setup_script()), *stages], check=False).returncode


def ensure_built() -> None:
    """Build (once, minutes) whatever the control plane is missing."""
    if all(p.exists() for p in BUILT):
        return
    print(f"== building the Kubernetes control plane under {HOME} (once; ~5 min)", flush=True)
    # `deps` and `tools` can exit non-zero after their work is done (`etcd --version | head
    # -1`, `kubectl version --client | head -1` under pipefail: SIGPIPE when head closes
    # first, as on a fresh clone here), so they are judged by what they left (below).
    _stage("deps")
    if not ((BIN / "helm").exists() and (BIN / "kubectl").exists()):
        _stage("tools")
    for stage in ("source", "build", "certs"):
        if stage == "source" and (BIN / "kube-apiserver").exists():
            continue
        if stage == "build" and (BIN / "kube-controller-manager").exists():
            continue
        if _stage(stage) != 0:
            raise RuntimeError(f"setup.sh {stage} failed")
    missing = [str(p) for p in BUILT if not p.exists()]
    if missing:
        raise RuntimeError(f"setup.sh left these missing: {missing}")


def running() -> bool:
    out = subprocess.run(
        ["bash", str(setup_script()), "status"], capture_output=True, text=True, check=False
    ).stdout
    return "kube-apiserver running" in out and "kube-controller-manager running" in out


@dataclass
class Cluster:
    """kubectl and helm as the admin (or as a given kubeconfig), in a scratch helm home."""

    helm_home: Path
    kubeconfig: Path = RUN / "admin.kubeconfig"

    def env(self, kubeconfig: Path | None = None) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": str(kubeconfig or self.kubeconfig),
            "HELM_CACHE_HOME": str(self.helm_home / "cache"),
            "HELM_CONFIG_HOME": str(self.helm_home / "config"),
            "HELM_DATA_HOME": str(self.helm_home / "data"),
        }

    def run(
        self, tool: str, *args: str, check: bool = True, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(BIN / tool), *args],
            env=self.env(kubeconfig),
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)}: {done.stderr.strip()}")
        return done

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", *args, check=check)

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("helm", *args, check=check)

    def helm_async(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(BIN / "helm"), *args],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def get(self, *args: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.kubectl("get", "-o", "json", *args).stdout)
        return out

    def items(self, *args: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get(*args)["items"]
        return items

    def items_if_served(self, kind: str, *args: str) -> list[dict[str, Any]]:
        """Like items(), but [] when the API server does not serve `kind` (no CRD yet)."""
        done = self.kubectl("get", "-o", "json", kind, *args, check=False)
        if done.returncode != 0 and "doesn't have a resource type" in done.stderr:
            return []
        if done.returncode != 0:
            raise AssertionError(f"kubectl get {kind}: {done.stderr.strip()}")
        items: list[dict[str, Any]] = json.loads(done.stdout)["items"]
        return items

    def token_kubeconfig(self, namespace: str, account: str, path: Path) -> Path:
        """A kubeconfig holding only a token minted for `account` (TokenRequest), no cert."""
        token = self.kubectl(
            "create", "token", account, "-n", namespace, "--duration", "2h"
        ).stdout.strip()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {"server": API, "certificate-authority": str(HOME / "pki/ca.crt")},
                }
            ],
            "users": [{"name": account, "user": {"token": token}}],
            "contexts": [
                {
                    "name": "local",
                    "context": {"cluster": "local", "user": account, "namespace": namespace},
                }
            ],
            "current-context": "local",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path


@contextlib.contextmanager
def control_plane(helm_home: Path) -> Iterator[Cluster]:
    """The control plane, started if it is not running (and stopped again if we started it)."""
    ensure_built()
    HOME.mkdir(parents=True, exist_ok=True)
    # One user at a time across processes (the suite's test processes, a second run on the
    # same machine): the control plane listens on fixed ports, and whoever started it stops
    # it when done, which would pull it from under another user.
    with (HOME / "in-use.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = not running()
        if started and _stage("start") != 0:
            raise RuntimeError("setup.sh start failed")
        try:
            yield Cluster(helm_home)
        finally:
            if started:
                _stage("stop")


def chart_copy(dest: Path) -> Path:
    """The chart without its optional subcharts (they cannot be fetched here; both are off)."""
    copy_dir = dest / "bytereview"
    shutil.copytree(CHART, copy_dir)
    meta = yaml.safe_load((copy_dir / "Chart.yaml").read_text())
    del meta["dependencies"]
    (copy_dir / "Chart.yaml").write_text(yaml.safe_dump(meta))
    return copy_dir


# NATS and PostgreSQL by URL: the chart's own subcharts are off (and not fetched here).
EXTERNAL_VALUES: dict[str, Any] = {
    "nats": {"enabled": False},
    "postgresql": {"enabled": False},
    "externalNats": {"url": "nats://nats.messaging:4222"},
    "secrets": {"databaseUrl": "postgresql+asyncpg://br:pw@db.data:5432/br"},
}


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = 60, every: float = 0.25
) -> T:
    """Poll `probe` until it returns something truthy; its last value on timeout is in the error."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def play_kubelet(cluster: Cluster, namespace: str, pod: str) -> None:
    """What the kubelet would report for a container that ran and exited 0."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status = {
        "status": {
            "phase": "Succeeded",
            "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}],
            "containerStatuses": [
                {
                    "name": "migrate",
                    "image": "bytereview",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "startedAt": now,
                            "finishedAt": now,
                        }
                    },
                }
            ],
        }
    }
    cluster.kubectl(
        "patch", "pod", pod, "-n", namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps(status),
    )  # fmt: skip


@dataclass
class OperatorProcess:
    """`bytereview operator` as a pod would run it, with the credentials of a kubeconfig."""

    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_operator(
    kubeconfig: Path, namespace: str, peering: str, nats_url: str, log: Path
) -> OperatorProcess:
    from launcher.up import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTEREVIEW_")}
    env.update(KUBECONFIG=str(kubeconfig), BYTEREVIEW_NATS_URL=nats_url)
    argv = [sys.executable, "-m", "launcher.cli", "operator", "--namespace", namespace]
    argv += ["--peering", peering, "--health-port", str(free_port())]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    return OperatorProcess(process, log)


def values_file(path: Path, values: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(values))
    return str(path)


def main(argv: list[str]) -> int:
    if argv == ["ensure"]:
        ensure_built()
        return 0
    print("usage: python -m tests.deploy.k8s ensure", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
