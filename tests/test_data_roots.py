"""Datasets stay inside the service's data roots, end to end, on real files and real databases.

A SECRET file lies outside the roots, with a distinctive column name and values. Every way of
naming it (absolute path, ``..``, ``~``, a symbolic link inside the data directory, URLs,
malformed upload ids) is refused by the readers themselves: not only at spec validation, since a
stored spec or a direct call must not escape either. An audit hook in a separate process proves
the file is never opened, and the API's answers and the stored trials never show its columns,
its values or a resolved server path. Only ``hpo train`` with ``HPO_ALLOW_LOCAL_PATHS`` reads
local files, and a worker never does, whatever its settings say.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import typer
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from hpo_service.api.app import create_app
from hpo_service.config import Settings, get_settings
from hpo_service.data import DatasetError, load_dataset
from hpo_service.data.sources import DataRoots
from hpo_service.spec import TaskSpec, parse_spec
from hpo_service.store.studies import create_study
from tests.conftest import REPO_ROOT, env_for, make_settings, tiny_spec

SECRET_COLUMN = "TOPSECRET_COLUMN_q7"
SECRET_VALUE = "31337.4242"
MARKERS = (SECRET_COLUMN, SECRET_VALUE, "TOPSECRET")


def series_lines(column: str, value: str | None = None, rows: int = 80) -> str:
    body = "".join(f"{1900 + i},{value or (i * 7) % 50 + 0.5}\n" for i in range(rows))
    return f"year,{column}\n{body}"


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DataRoots:
    """``data/`` holds ok.csv, a symlink to the secret and a symlinked folder leading out."""
    secret = tmp_path / "secret.csv"
    secret.write_text(series_lines(SECRET_COLUMN, SECRET_VALUE))
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "ok.csv").write_text(series_lines("value"))
    (data / "link.csv").symlink_to(secret)
    (data / "outside").symlink_to(tmp_path, target_is_directory=True)
    monkeypatch.setenv("HOME", str(tmp_path))  # so that ~/secret.csv is the real secret
    return DataRoots(data_dir=data, upload_dir=tmp_path / "up")


def escapes(secret: Path) -> dict[str, str]:
    """Every way tried of naming the secret from a spec, with the refusal each one gets."""
    return {
        str(secret): "is an absolute path",
        "../secret.csv": "contains '..'",
        "sub/../../secret.csv": "contains '..'",
        "link.csv": "leads outside the data directory",
        "outside/secret.csv": "leads outside the data directory",
        "~/secret.csv": "starts with '~'",
        f"file://{secret}": "is a URL",
        "http://127.0.0.1:9/secret.csv": "is a URL",
        "../secret.csv\x00.csv": "contains a NUL character",
        "upload:../secret": "is not an upload id",
        "upload:abc/def": "is not an upload id",
        f"upload:{secret}": "is not an upload id",
        "upload:../../secret.csv": "is not an upload id",
    }


def task_for(dataset: str) -> TaskSpec:
    """A valid task, then the dataset swapped in without validation: as a stored spec would be."""
    task = TaskSpec(dataset="ok.csv", kind="forecasting", lookback=12)
    return task.model_copy(update={"dataset": dataset})


def test_every_escape_is_refused_with_the_specs_value_and_no_server_path(
    roots: DataRoots, tmp_path: Path
) -> None:
    assert len(load_dataset(task_for("ok.csv"), roots).train) > 0  # the roots do work
    for dataset, reason in escapes(tmp_path / "secret.csv").items():
        with pytest.raises(DatasetError) as refused:
            load_dataset(task_for(dataset), roots)
        message = str(refused.value)
        assert message.startswith(f"task.dataset: {dataset!r} {reason}"), message
        beyond = message.replace(repr(dataset), "")
        assert str(tmp_path) not in beyond and not any(m in message for m in MARKERS), message
    # The refusals are about where the file is, not whether it exists: the opt-in reads it.
    local = DataRoots(allow_local_paths=True)
    control = task_for("~/secret.csv").model_copy(update={"value_column": SECRET_COLUMN})
    assert len(load_dataset(control, local).train) > 0


def test_missing_and_unreadable_files_say_so_without_the_path(roots: DataRoots) -> None:
    for dataset, expected in [
        ("nope.csv", "not found in the data directory (HPO_DATA_DIR)"),
        ("sub", "is not a .csv file"),
        ("upload:0123456789abcdef", "is not in the upload directory"),
    ]:
        with pytest.raises(DatasetError) as refused:
            load_dataset(task_for(dataset), roots)
        assert expected in str(refused.value) and str(roots.data_dir) not in str(refused.value)
    with pytest.raises(DatasetError, match="none is set: set HPO_DATA_DIR"):
        load_dataset(task_for("ok.csv"), DataRoots())


def test_workers_ignore_the_local_opt_in(tmp_path: Path) -> None:
    settings = make_settings("sqlite://", tmp_path, allow_local_paths=True)
    assert DataRoots.from_settings(settings).allow_local_paths is False
    assert DataRoots.from_settings(settings, local_cli=True).allow_local_paths is True


#: Runs in a fresh interpreter: records every open() of the secret (through any symlink), runs
#: a function of this module, then opens the secret on purpose to prove the hook sees opens.
AUDITED = """
import json, os, sys
secret = os.path.realpath(sys.argv[1])
opened = []
def hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        if os.path.realpath(os.fsdecode(args[0])) == secret:
            opened.append(os.fsdecode(args[0]))
sys.addaudithook(hook)
from tests import test_data_roots as here
result = getattr(here, sys.argv[2])(*sys.argv[3:])
before = list(opened)
open(secret).close()
print(json.dumps({"result": result, "opened": before, "control": len(opened) - len(before)}))
"""


def load_all(data_dir: str, values: str) -> list[str]:
    """In the audited process: 'refused' or 'read' for each dataset value."""
    roots = DataRoots(data_dir=Path(data_dir), upload_dir=Path(data_dir) / "up")
    results = []
    for dataset in json.loads(values):
        try:
            load_dataset(task_for(dataset), roots)
            results.append("read")
        except DatasetError:
            results.append("refused")
    return results


def run_workers(names: str) -> list[int]:
    """In the audited process: one worker per study, settings from the environment."""
    from hpo_service.scheduling.worker import Worker, WorkerOptions

    options = [WorkerOptions(study=n, exit_when_idle=True, max_trials=1) for n in json.loads(names)]
    return [Worker(Settings(), o).serve() for o in options]


def audited(function: str, secret: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", AUDITED, str(secret), function, *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["control"] == 1  # the hook does see an open of the secret
    return answer


def test_the_secret_is_never_opened(roots: DataRoots, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    values = list(escapes(secret))
    answer = audited("load_all", secret, str(roots.data_dir), json.dumps(values))
    assert answer["result"] == ["refused"] * len(values)
    assert answer["opened"] == []


def stored_spec(name: str, dataset: str) -> dict[str, Any]:
    task = {"dataset": dataset, "kind": "forecasting", "metric": "rmse", "lookback": 12}
    budget = {"n_trials": 1, "max_epochs": 1, "count_failed": True}
    return tiny_spec(name, task=task, budget=budget)


def all_answers(api: TestClient, name: str) -> str:
    paths = ["", "/trials", "/trials/0", "/trials.csv", "/best"]
    return "\n".join(api.get(f"/api/studies/{name}{p}").text for p in paths)


def test_a_worker_fails_the_trial_without_reading_or_showing_the_secret(
    migrated: Settings, roots: DataRoots, tmp_path: Path
) -> None:
    """Through the real API and a real worker process, with the local opt-in set on both: it
    must not matter. A spec naming the secret by path may be refused at intake (422) or
    accepted; either way nothing of the file shows."""
    cfg = migrated.model_copy(
        update={
            "data_dir": roots.data_dir,
            "upload_dir": roots.upload_dir,
            "allow_local_paths": True,
        }
    )
    secret = tmp_path / "secret.csv"
    created = []
    with TestClient(create_app(cfg)) as api:
        for name, dataset in [("via-link", "link.csv"), ("via-path", str(secret))]:
            answer = api.post("/api/studies?start=true", json=stored_spec(name, dataset))
            assert answer.status_code in (201, 422) and not any(m in answer.text for m in MARKERS)
            created += [name] if answer.status_code == 201 else []
        for bad in ("upload:../secret", "upload:abc/def"):
            answer = api.post("/api/studies", json=stored_spec("bad-upload", bad))
            assert answer.status_code == 422 and "is not an upload id" in answer.text
        # The intake's availability check refuses the link at once, without opening it...
        refused = api.post("/api/studies", json=stored_spec("via-link", "link.csv"))
        assert refused.status_code == 422 and "leads outside the data directory" in refused.text
        assert str(roots.data_dir) not in refused.text
        # ...and a spec stored before that check existed is still refused by the worker.
        create_study(cfg, parse_spec(stored_spec("via-link", "link.csv")), start=True)
        created.append("via-link")
        env = {**env_for(cfg), "HPO_ALLOW_LOCAL_PATHS": "true", "PYTHONPATH": str(REPO_ROOT)}
        env["HPO_DATA_DIR"] = str(roots.data_dir)
        worked = audited("run_workers", secret, json.dumps(created), env=env)
        assert worked["opened"] == []
        for name in created:
            trial = optuna.load_study(study_name=name, storage=cfg.database_url).trials[0]
            assert trial.state == optuna.trial.TrialState.FAIL
            reason = trial.user_attrs["fail_reason"]
            assert reason.startswith("DatasetError: task.dataset: "), reason
            stored = json.dumps([trial.user_attrs, trial.system_attrs], default=str)
            assert api.get(f"/api/studies/{name}/trials/0").json()["fail_reason"] == reason
            shown = all_answers(api, name)
            assert not any(m in stored + shown for m in MARKERS)
            assert str(roots.data_dir) not in stored + shown
    assert "leads outside the data directory" in json.dumps(
        optuna.load_study(study_name="via-link", storage=cfg.database_url).trials[0].user_attrs
    )


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    """``hpo train`` in a working directory of its own, with no data directory."""
    from hpo_service.cli import predict
    from hpo_service.cli.train import register

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HPO_DATABASE_URL", f"sqlite:///{tmp_path / 'hpo.db'}")
    monkeypatch.setenv("HPO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HPO_DEVICE", "cpu")
    monkeypatch.delenv("HPO_DATA_DIR", raising=False)
    monkeypatch.delenv("HPO_ALLOW_LOCAL_PATHS", raising=False)
    get_settings.cache_clear()
    app = typer.Typer()
    register(app)
    predict.register(app)
    yield app
    get_settings.cache_clear()


def test_hpo_train_reads_a_local_csv_only_with_the_opt_in(
    cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp" / "x.csv").write_text(series_lines("value", rows=120))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(stored_spec("local", "tmp/x.csv")))
    refused = CliRunner().invoke(cli, ["train", str(spec), "--epochs", "1"])
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert "task.dataset: 'tmp/x.csv'" in refused.stderr
    monkeypatch.setenv("HPO_ALLOW_LOCAL_PATHS", "true")
    get_settings.cache_clear()
    trained = CliRunner().invoke(cli, ["train", str(spec), "--epochs", "1", "--json"])
    assert trained.exit_code == 0, trained.output
    payload = json.loads(trained.stdout)
    assert payload["dataset"] == "tmp/x.csv" and "rmse" in payload["test_metrics"]
