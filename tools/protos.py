"""Generate Python code from protos/ and lint the protos with buf, offline.

    python tools/protos.py generate   # rewrite src/bytereview/<service>/v1/
    python tools/protos.py check      # exit 1 if the generated code is stale
    python tools/protos.py lint       # buf lint, googleapis taken from the installed wheel

googleapis' protos (google/api, google/rpc) come from the googleapis-common-protos
wheel and the well-known types from grpcio-tools, so nothing is downloaded.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_ROOT = ROOT / "src"
SERVICES = ("jobs", "ingest", "extract")
INIT_TEXT = '"""Generated from protos/; regenerate with `make proto`."""\n'


def _include_dirs() -> list[Path]:
    import google.api  # googleapis-common-protos
    import grpc_tools

    googleapis = Path(next(iter(google.api.__path__))).parent.parent
    well_known = Path(next(iter(grpc_tools.__path__))) / "_proto"
    return [googleapis, well_known]


def _proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def _generate_into(out: Path) -> None:
    from grpc_tools import protoc

    # protoc finds the mypy plugins on PATH; they sit beside this interpreter.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        *(f"-I{d}" for d in _include_dirs()),
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *(str(p.relative_to(PROTO_ROOT)) for p in _proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for service in SERVICES:
        for pkg in (out / "bytereview" / service, out / "bytereview" / service / "v1"):
            (pkg / "__init__.py").write_text(INIT_TEXT)


def _generated_dirs(root: Path) -> list[Path]:
    return [root / "bytereview" / service / "v1" for service in SERVICES]


def generate() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _generate_into(Path(tmp))
        for service in SERVICES:
            target = OUT_ROOT / "bytereview" / service
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(Path(tmp) / "bytereview" / service, target)
    print("generated:", ", ".join(f"bytereview.{s}.v1" for s in SERVICES))


def stale_files() -> list[str]:
    """Files that differ between the tree and a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        _generate_into(Path(tmp))
        stale: list[str] = []
        for fresh_dir, have_dir in zip(
            _generated_dirs(Path(tmp)), _generated_dirs(OUT_ROOT), strict=True
        ):
            fresh = {p.name for p in fresh_dir.iterdir() if p.is_file()}
            have = (
                {p.name for p in have_dir.iterdir() if p.is_file()} if have_dir.is_dir() else set()
            )
            for name in sorted(fresh | have):
                a, b = fresh_dir / name, have_dir / name
                if not (a.exists() and b.exists() and filecmp.cmp(a, b, shallow=False)):
                    stale.append(str(b.relative_to(ROOT)))
        return stale


def lint() -> int:
    """Run `buf lint` on protos/ in a throwaway workspace that also holds googleapis."""
    buf = shutil.which("buf", path=str(Path(sys.executable).parent)) or shutil.which("buf")
    if buf is None:
        raise SystemExit("buf not found: install the dev extras (pip install -e '.[dev]')")
    googleapis = _include_dirs()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(PROTO_ROOT, work / "protos")
        third = work / "third_party"
        for sub in ("api", "rpc", "type"):
            src = googleapis / "google" / sub
            if src.is_dir():
                shutil.copytree(src, third / "google" / sub, ignore=shutil.ignore_patterns("*.py*"))
        config = (PROTO_ROOT / "buf.yaml").read_text()
        # Our module keeps its lint rules; the third-party one is lint-exempt.
        config = config.replace(
            "modules:\n  - path: .\n",
            "modules:\n  - path: protos\n  - path: third_party\n    lint:\n      use: [MINIMAL]\n"
            "      ignore: [third_party]\n",
        )
        (work / "buf.yaml").write_text(config)
        (work / "protos" / "buf.yaml").unlink()
        proc = subprocess.run([buf, "lint", "protos"], cwd=work, check=False)
        return proc.returncode


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "generate"
    if command == "generate":
        generate()
        return 0
    if command == "check":
        stale = stale_files()
        for path in stale:
            print(f"stale generated file: {path}")
        if stale:
            print("run `make proto` and commit the result")
        return 1 if stale else 0
    if command == "lint":
        return lint()
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
