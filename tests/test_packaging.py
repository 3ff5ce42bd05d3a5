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


def test_every_package_folder_is_listed_in_pyproject() -> None:
    """pyproject lists packages by hand (the migrations are mapped in from alembic/): a new
    package folder missing from that list would be left out of the wheel and the image."""
    import tomllib

    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(path.parent.relative_to(REPO).parts)
        for path in (REPO / "hpo_service").rglob("__init__.py")
        if "__pycache__" not in path.parts
    }
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages"
