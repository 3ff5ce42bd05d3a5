"""The wheel carries every subpackage, the migrations and the dashboard's files, so ``hpo
migrate`` and ``hpo serve`` work outside the checkout and in the container image."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_contents(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("hpo_service-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for init in (REPO / "hpo_service").rglob("__init__.py"):
        relative = init.relative_to(REPO).as_posix()
        assert relative in names, f"{relative} missing from the wheel"
    migrations = {p.name for p in (REPO / "alembic" / "versions").glob("*.py")}
    shipped = {Path(n).name for n in names if n.startswith("hpo_service/_alembic/versions/")}
    assert migrations and migrations <= shipped
    assert "hpo_service/_alembic/env.py" in names
    static = REPO / "hpo_service" / "web" / "static"
    for file in static.rglob("*") if static.is_dir() else []:
        if file.is_file():
            assert file.relative_to(REPO).as_posix() in names, f"{file} missing from the wheel"
