"""``hpo run`` and ``hpo worker`` as a user runs them (real processes, a real SQLite file, real
files in a data directory): a new empty database is set up by ``hpo run`` itself, a missing
dataset is one line and exit 2 before anything is stored, a study whose every trial fails exits
1 with one line per kind of failure and no traceback (tracebacks with ``--verbose``), and ends
``failed``, not ``completed``."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import optuna
import pytest
import yaml
from sqlalchemy import create_engine, inspect

from hpo_service.cli.common import fmt_value
from hpo_service.cli.studies import held_out_lines
from hpo_service.config import Settings
from hpo_service.store.db import get_engine, get_storage
from hpo_service.store.studies import get_study, summarize
from tests.conftest import REPO_ROOT, env_for, make_settings, tiny_spec

HPO = str(REPO_ROOT / ".venv" / "bin" / "hpo")


@pytest.fixture
def fresh(tmp_path: Path) -> Settings:
    """Settings on an SQLite file that does not exist yet, with a data directory of CSVs."""
    data = tmp_path / "data"
    data.mkdir()
    rows = "".join(f"{1900 + i},{(i * 7) % 50 + 0.5}\n" for i in range(80))
    (data / "good.csv").write_text("year,value\n" + rows)
    (data / "text.csv").write_text("year,value\n" + "1900,n/a\n" * 80)  # header fine, no numbers
    url = f"sqlite:///{tmp_path / 'new.db'}"
    return make_settings(url, tmp_path, data_dir=data, cache_dir=tmp_path / "cache")


def hpo(settings: Settings, cwd: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    environment = {**env_for(settings), "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run(
        [HPO, *args], env=environment, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def spec_file(tmp_path: Path, name: str, **task: Any) -> Path:
    spec = tiny_spec(name, n_trials=2, budget={"n_trials": 2, "max_epochs": 1})
    spec["task"] = {**spec["task"], **task}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_run_sets_up_an_empty_database_and_finds_a_best_trial(
    fresh: Settings, tmp_path: Path
) -> None:
    done = hpo(fresh, tmp_path, "run", str(spec_file(tmp_path, "first", dataset="good.csv")))
    assert done.returncode == 0, done.stderr
    assert "study first is completed" in done.stdout and "best: trial" in done.stdout
    tables = inspect(create_engine(fresh.database_url)).get_table_names()
    assert "hpo_studies" in tables and "trials" in tables  # both owners' tables
    # the test figure with the number of examples it rests on, in run's summary and in show
    best = summarize(fresh, get_study(get_engine(fresh), "first"))["best"]
    study = optuna.load_study(study_name="first", storage=get_storage(fresh))
    test_n = next(t for t in study.trials if t.number == best["number"]).user_attrs["test_n"]
    line = f"test rmse {fmt_value(best['test_metrics']['rmse'])} ({test_n} examples)"
    assert test_n > 0 and best["test_n"] == test_n and line in done.stdout
    shown = hpo(fresh, tmp_path, "study", "show", "first")
    assert line in shown.stdout, shown.stdout


def test_no_test_split_says_so_and_a_refit_figure_is_shown_beside_the_search_runs() -> None:
    assert held_out_lines("rmse", {"test_n": 0, "test_metrics": None}) == [
        "no test split (test_fraction 0): no test figure"
    ]
    best = {"test_n": 872, "test_metrics": {"accuracy": 0.861}}
    both = held_out_lines("accuracy", {**best, "refit_test_metrics": {"accuracy": 0.87}})
    assert both[0] == "test accuracy 0.861 (872 examples)"
    assert both[1].startswith("refit test accuracy 0.87 (872 examples), retrained on")
    assert held_out_lines("rmse", {"number": 1, "test_metrics": {"rmse": 2.5}}) == ["test rmse 2.5"]


def test_a_missing_dataset_stops_run_before_anything_is_stored(
    fresh: Settings, tmp_path: Path
) -> None:
    refused = hpo(fresh, tmp_path, "run", str(spec_file(tmp_path, "gone", dataset="gone.csv")))
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert lines[-1].startswith("  task.dataset: 'gone.csv' not found in the data directory")
    assert "Traceback" not in refused.stderr and str(tmp_path / "data") not in refused.stderr
    listed = hpo(fresh, tmp_path, "study", "list", "--json")
    assert listed.returncode == 0 and yaml.safe_load(listed.stdout) == []


def test_every_trial_failing_exits_1_with_one_line_per_kind(
    fresh: Settings, tmp_path: Path
) -> None:
    failed = hpo(fresh, tmp_path, "run", str(spec_file(tmp_path, "bad", dataset="text.csv")))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Traceback" not in failed.stdout + failed.stderr
    assert "2 trials failed: DatasetError: column 'value' has no numeric values" in failed.stderr
    assert "study bad is failed" in failed.stdout
    assert get_study(get_engine(fresh), "bad").state == "failed"
    verbose = hpo(
        fresh, tmp_path, "run", "--verbose", str(spec_file(tmp_path, "bad2", dataset="text.csv"))
    )
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr  # the workers' log, with each trial's traceback


def test_worker_on_a_study_whose_file_went_away_is_one_line(
    fresh: Settings, tmp_path: Path
) -> None:
    created = hpo(
        fresh, tmp_path, "study", "create", str(spec_file(tmp_path, "moved", dataset="good.csv"))
    )
    assert created.returncode == 2 and "hpo migrate" in created.stderr  # create does not set up
    assert hpo(fresh, tmp_path, "migrate").returncode == 0
    path = spec_file(tmp_path, "moved", dataset="good.csv")
    assert hpo(fresh, tmp_path, "study", "create", str(path)).returncode == 0
    (Path(str(fresh.data_dir)) / "good.csv").unlink()
    for args in (["worker", "--study", "moved", "--exit-when-idle"], ["study", "start", "moved"]):
        refused = hpo(fresh, tmp_path, *args)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.startswith("error: task.dataset: 'good.csv' not found")
        assert len(refused.stderr.strip().splitlines()) == 1


def test_extend_list_and_show(fresh: Settings, tmp_path: Path) -> None:
    ran = hpo(fresh, tmp_path, "run", str(spec_file(tmp_path, "ext", dataset="good.csv")))
    assert ran.returncode == 0, ran.stderr
    extended = hpo(fresh, tmp_path, "study", "extend", "ext", "--trials", "5")
    assert extended.returncode == 0, extended.stderr
    assert "study ext has a budget of 5 trials (running)" in extended.stdout
    info = get_study(get_engine(fresh), "ext")
    assert info.n_trials == 5 and info.state == "running"
    below = hpo(fresh, tmp_path, "study", "extend", "ext", "--trials", "1")
    assert below.returncode == 2 and below.stderr.startswith("error: n_trials: 1 is below the 2")
    unknown = hpo(fresh, tmp_path, "study", "extend", "nope", "--trials", "3")
    assert unknown.returncode == 2 and "no study named 'nope'" in unknown.stderr
    assert hpo(fresh, tmp_path, "study", "stop", "ext").returncode == 0
    again = hpo(fresh, tmp_path, "run", str(spec_file(tmp_path, "ext", dataset="good.csv")))
    assert "its budget stays 5 trials; to change it: hpo study extend ext --trials 2" in (
        again.stderr
    )
    assert again.returncode == 0, again.stderr  # a stopped study: nothing runs, its best stays
    listed = hpo(fresh, tmp_path, "study", "list").stdout
    shown = hpo(fresh, tmp_path, "study", "show", "ext").stdout
    best = shown.split(" = ", 1)[1].split()[0]  # "best: trial N  rmse = 11.5111"
    assert best in listed and len(best.replace(".", "").lstrip("0")) <= 6  # one formatter


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_worker_and_serve_set_up_an_empty_database_too(fresh: Settings, tmp_path: Path) -> None:
    idle = hpo(fresh, tmp_path, "worker", "--exit-when-idle")
    assert idle.returncode == 0, idle.stderr  # tables created, nothing to run, exits
    assert "hpo_studies" in inspect(create_engine(fresh.database_url)).get_table_names()
    other = make_settings(f"sqlite:///{tmp_path / 'served.db'}", tmp_path)
    port = free_port()
    env = {**env_for(other), "PYTHONPATH": str(REPO_ROOT)}
    server = subprocess.Popen(
        [HPO, "serve", "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        else:
            raise AssertionError("hpo serve did not become ready on an empty database")
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "hpo_studies" in inspect(create_engine(other.database_url)).get_table_names()
