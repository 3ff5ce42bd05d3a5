"""The ``hpo`` command end to end, as a user runs it: real processes, real databases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from hpo_service.config import Settings
from tests.conftest import env_for, tiny_spec


def hpo(
    settings: Settings, cwd: Path, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hpo_service", *args],
        env=env_for(settings),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_spec(tmp_path: Path, spec: dict[str, Any]) -> Path:
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_run_study_end_to_end(migrated: Settings, tmp_path: Path) -> None:
    spec = tiny_spec(
        "e2e", n_trials=4, pruner={"type": "median", "n_startup_trials": 1, "n_warmup_steps": 0}
    )
    result = hpo(migrated, tmp_path, "run", str(write_spec(tmp_path, spec)), "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "best: trial" in result.stdout and "e2e is completed" in result.stdout
    shown = hpo(migrated, tmp_path, "study", "show", "e2e", "--json")
    summary = json.loads(shown.stdout)
    assert summary["state"] == "completed" and summary["direction"] == "minimize"
    counts = summary["counts"]
    assert counts["COMPLETE"] + counts["PRUNED"] == 4 and counts["RUNNING"] == 0
    assert summary["best"]["value"] > 0 and "learning_rate" in summary["best"]["params"]
    listed = json.loads(hpo(migrated, tmp_path, "study", "list", "--json").stdout)
    assert [s["name"] for s in listed] == ["e2e"]


def test_create_then_control_a_study(migrated: Settings, tmp_path: Path) -> None:
    path = write_spec(tmp_path, tiny_spec("ctl"))
    assert hpo(migrated, tmp_path, "study", "create", str(path)).returncode == 0
    again = hpo(migrated, tmp_path, "study", "create", str(path))
    assert again.returncode == 2 and "already exists" in again.stderr
    for action, state in (("start", "running"), ("pause", "paused"), ("stop", "stopped")):
        done = hpo(migrated, tmp_path, "study", action, "ctl")
        assert done.returncode == 0 and state in done.stdout
    assert hpo(migrated, tmp_path, "study", "delete", "ctl", "--yes").returncode == 0
    missing = hpo(migrated, tmp_path, "study", "show", "ctl")
    assert missing.returncode == 2 and "no study named 'ctl'" in missing.stderr


def test_bad_spec_is_refused_with_field_names(migrated: Settings, tmp_path: Path) -> None:
    spec = tiny_spec(
        "bad",
        search_space={"learning_rate": {"low": 1, "high": 0.1}, "optimizer": ["adam", "nadam"]},
    )
    result = hpo(migrated, tmp_path, "study", "create", str(write_spec(tmp_path, spec)))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "search_space.learning_rate" in result.stderr
    assert "search_space.optimizer[1]" in result.stderr


def test_run_show_and_predict_use_the_ensemble(migrated: Settings, tmp_path: Path) -> None:
    """task.ensemble_trials 2: ``hpo run``'s summary and ``hpo study show`` name the ensemble,
    and ``hpo predict`` answers with it unless ``--trial`` names one."""
    task = {**tiny_spec()["task"], "ensemble_trials": 2}
    spec = tiny_spec("cli-ens", n_trials=3, task=task)
    ran = hpo(migrated, tmp_path, "run", str(write_spec(tmp_path, spec)))
    assert ran.returncode == 0, ran.stderr
    assert "ensemble of trials" in ran.stdout and "it serves predictions" in ran.stdout
    shown = json.loads(hpo(migrated, tmp_path, "study", "show", "cli-ens", "--json").stdout)
    members = shown["best"]["ensemble"]["members"]
    assert len(members) == 2 and members[0] == shown["best"]["number"]
    series = tmp_path / "series.txt"
    series.write_text("".join(f"{v % 11}\n" for v in range(30)))
    answer = json.loads(
        hpo(migrated, tmp_path, "predict", "cli-ens", "-i", str(series), "--json").stdout
    )
    assert answer["ensemble"] == members and answer["trial"] is None
    assert answer["artifact_dir"].endswith("ensemble-" + "-".join(map(str, members)))
    one = hpo(migrated, tmp_path, "predict", "cli-ens", "-i", str(series), "--trial", "0", "--json")
    assert json.loads(one.stdout)["trial"] == 0
    table = hpo(migrated, tmp_path, "predict", "cli-ens", "-i", str(series))
    words = " ".join(table.stdout.split())  # the title wraps in a narrow table
    assert f"ensemble of trials {members[0]}, {members[1]}" in words
