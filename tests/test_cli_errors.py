"""The CLI's one error path (hpo_service.cli.common): every command turns a bad setting into one
line on stderr and exit 2, never a traceback. Real ``hpo`` processes, one per command."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

HPO = str(REPO_ROOT / ".venv" / "bin" / "hpo")
SPEC = str(REPO_ROOT / "example-specs" / "sunspots.yaml")
COMMANDS = [
    ["migrate"],
    ["study", "list"],
    ["study", "show", "x"],
    ["study", "create", SPEC],
    ["study", "start", "x"],
    ["study", "extend", "x", "--trials", "3"],
    ["study", "delete", "x", "--yes"],
    ["run", SPEC],
    ["worker", "--exit-when-idle"],
    ["serve", "--port", "1"],
    ["train", SPEC, "--epochs", "1"],
    ["predict", "x", "--input", SPEC],
    ["plot", "x", "history", "-o", "x.html"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize(("variable", "value"), [("HPO_DEVICE", "bogus")])
def test_a_bad_setting_is_one_line_and_exit_2(
    command: list[str], variable: str, value: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPO_")}
    env.update({variable: value, "HPO_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    env["PYTHONPATH"] = str(REPO_ROOT)
    done = subprocess.run(
        [HPO, *command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert variable.removeprefix("HPO_").lower() in lines[0], lines[0]
