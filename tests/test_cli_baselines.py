"""Baselines on the command line: ``hpo run``'s final summary and ``hpo study show`` (text and
--json) print the same baselines and verdict as the API, as real processes on real databases."""

from __future__ import annotations

import json
from pathlib import Path

from hpo_service.config import Settings
from hpo_service.spec import parse_spec
from hpo_service.store.baselines import save_baselines
from hpo_service.store.db import get_engine
from hpo_service.store.studies import create_study
from tests.conftest import tiny_spec
from tests.test_cli import hpo, write_spec


def test_run_and_show_print_baselines_and_verdict(migrated: Settings, tmp_path: Path) -> None:
    path = write_spec(tmp_path, tiny_spec("clibl", n_trials=2))
    ran = hpo(migrated, tmp_path, "run", str(path))
    assert ran.returncode == 0, ran.stderr
    assert "baselines (rmse, validation / test):" in ran.stdout
    assert "seasonal naive (period 11)" in ran.stdout and "ETS (damped trend" in ran.stdout
    assert "the best baseline" in ran.stdout  # "beats ..." or "does not beat ..."

    shown = json.loads(hpo(migrated, tmp_path, "study", "show", "clibl", "--json").stdout)
    assert [b["name"] for b in shown["baselines"]] == ["naive", "seasonal_naive", "ets"]
    verdict = shown["best_vs_baseline"]
    assert verdict["trial_value"] == shown["best"]["test_metrics"]["rmse"]
    text = hpo(migrated, tmp_path, "study", "show", "clibl").stdout
    assert verdict["text"] in " ".join(text.split())  # the same sentence, maybe wrapped


def test_show_says_when_baselines_are_missing_or_lost(migrated: Settings, tmp_path: Path) -> None:
    create_study(migrated, parse_spec(tiny_spec("pending")))
    out = hpo(migrated, tmp_path, "study", "show", "pending").stdout
    assert "baselines: not computed yet" in out
    create_study(migrated, parse_spec(tiny_spec("lost", n_trials=1)), start=True)
    rows = [{"name": "oracle", "label": "oracle", "val": {"rmse": 0.1}, "test": {"rmse": 0.1}}]
    save_baselines(get_engine(migrated), "lost", rows)
    assert hpo(migrated, tmp_path, "worker", "--study", "lost", "--exit-when-idle").returncode == 0
    out = " ".join(hpo(migrated, tmp_path, "study", "show", "lost").stdout.split())
    assert "does not beat the best baseline (" in out and "(oracle)" in out
