"""The image installs the project as a wheel (`pip install .` in the Dockerfile), not from the
source tree: every file the code ships must be in that wheel, data files included (the
confidence model's calibration and vocabulary were once left out, which only an editable
install hides)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "services/",
    "gateway/",
    "launcher/",
    "src/bytereview/",
    "operator/bytereview_operator/",
)


def in_wheel(path: str) -> str:
    """Where a tracked file lands in the wheel: pyproject's `packages.find` roots dropped."""
    for root in ("src/", "operator/"):
        if path.startswith(root):
            return path.removeprefix(root)
    return path


def test_the_wheel_holds_every_tracked_file_of_the_packages(tmp_path: Path) -> None:
    def files(*paths: str) -> list[str]:
        return subprocess.run(
            ["git", "ls-files", *paths], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()

    tracked = files(*PACKAGES)
    assert any(p.endswith(".json") for p in tracked)  # the data files this test is about
    # Built from a copy of what git holds, as a fresh clone's image build sees it.
    source = tmp_path / "source"
    for path in files():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, source / path)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            ".",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "--wheel-dir",
            str(tmp_path / "dist"),
        ],
        cwd=source,
        check=True,
    )
    (wheel,) = (tmp_path / "dist").glob("bytereview-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(p for p in tracked if in_wheel(p) not in shipped)
    assert missing == []
