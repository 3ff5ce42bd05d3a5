"""``hpo train`` and ``hpo predict`` through typer's CliRunner on a local app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import typer
import yaml
from typer.testing import CliRunner

from hpo_service.cli import predict
from hpo_service.cli.train import CliError, register, resolve_params
from hpo_service.config import get_settings
from hpo_service.spec import SearchSpace, load_spec, parse_spec
from hpo_service.store import trial_data
from hpo_service.store.db import get_engine, get_storage, migrate
from hpo_service.store.studies import create_study
from hpo_service.store.trial_data import TrialData
from tests.conftest import tiny_spec

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    """A fresh app with our commands; settings point at a temporary DB and cache."""
    monkeypatch.setenv("HPO_DATABASE_URL", f"sqlite:///{tmp_path / 'hpo.db'}")
    monkeypatch.setenv("HPO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HPO_DEVICE", "cpu")
    monkeypatch.delenv("HPO_DATA_DIR", raising=False)
    get_settings.cache_clear()
    app = typer.Typer()
    register(app)
    predict.register(app)
    yield app
    get_settings.cache_clear()


def write_spec(path: Path, dataset: str, kind: str, metric: str, **space: object) -> Path:
    spec = {
        "name": "cli-test",
        "task": {"dataset": dataset, "kind": kind, "metric": metric},
        "search_space": {"batch_size": 32, "hidden_units": 16, "embedding_dim": 16, **space},
        "budget": {"n_trials": 1, "max_epochs": 2},
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def test_unset_entries_take_first_choice_or_range_midpoint() -> None:
    params = resolve_params(SearchSpace(), ["hidden_units=40", "bidirectional=true"])
    assert params["learning_rate"] == 0.00316228  # geometric: log range 1e-4..1e-1, 6 digits
    assert params["batch_size"] == 32 and params["optimizer"] == "sgd"
    assert params["hidden_units"] == 40 and params["bidirectional"] is True
    stepped = SearchSpace.model_validate({"hidden_units": {"low": 32, "high": 128, "step": 16}})
    assert resolve_params(stepped, [])["hidden_units"] == 80
    assert isinstance(resolve_params(SearchSpace(), ["learning_rate=1"])["learning_rate"], float)
    for bad, message in [
        ("nope=1", "unknown key"),
        ("batch_size=abc", "batch_size"),
        ("dropout=1.5", "dropout"),
        ("optimizer=lbfgs", "optimizer"),
        ("learning_rate", "KEY=VALUE"),
    ]:
        with pytest.raises(CliError, match=message):
            resolve_params(SearchSpace(), [bad])


def test_example_specs_are_valid() -> None:
    names = {p.stem for p in (REPO / "example-specs").glob("*.yaml")}
    assert {"sst2", "sms_spam", "digits", "co2"} <= names
    for path in (REPO / "example-specs").glob("*.yaml"):
        spec = load_spec(path)
        assert spec.budget.n_trials >= 1


def test_train_json_on_sunspots(cli: typer.Typer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "s.yaml", "sunspots", "forecasting", "rmse")
    args = [
        "train",
        str(spec),
        "--param",
        "optimizer=adam",
        "-p",
        "learning_rate=0.01",
        "--epochs",
        "3",
        "--save",
        str(tmp_path / "art"),
        "--json",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)  # exactly one JSON object
    assert payload["params"]["optimizer"] == "adam" and len(payload["epochs"]) == 3
    assert set(payload["test_metrics"]) == {"rmse", "mae", "mape", "loss"}
    # 309 yearly values: a fifth (62) for test, a tenth (31) for validation, one window each
    assert (payload["val_n"], payload["test_n"]) == (31, 62)
    assert payload["artifact_dir"] == str(tmp_path / "art")
    assert "epoch 3/3" in result.stderr


def test_train_without_a_test_split_says_so(cli: typer.Typer, tmp_path: Path) -> None:
    spec = yaml.safe_load(
        write_spec(tmp_path / "s.yaml", "sunspots", "forecasting", "rmse").read_text()
    )
    spec["task"]["test_fraction"] = 0
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    args = ["train", str(tmp_path / "s.yaml"), "--epochs", "1"]
    table = CliRunner().invoke(cli, args)
    assert table.exit_code == 0, table.output
    # validation is the last tenth of the series (31 windows); training keeps the rest
    assert "validation on 31 examples; no test split (task.test_fraction 0)" in table.stdout
    payload = json.loads(CliRunner().invoke(cli, [*args, "--json"]).stdout)
    assert payload["test_metrics"] == {} and payload["test_n"] == 0


def test_train_text_spec_with_data_dir(cli: typer.Typer, tmp_path: Path, data_dir: Path) -> None:
    spec = write_spec(tmp_path / "s.yaml", "sms_spam", "text_classification", "f1")
    args = [
        "train",
        str(spec),
        "-p",
        "optimizer=adam",
        "-p",
        "learning_rate=0.005",
        "--epochs",
        "1",
        "--data-dir",
        str(data_dir),
        "--json",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["test_metrics"]["accuracy"] > 0.85
    table = CliRunner().invoke(cli, args[:-1])
    assert table.exit_code == 0 and "f1_macro" in table.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-p", "colour=red"], "unknown key"),
        (["--data-dir", "/nonexistent"], "HPO_DATA_DIR"),
        ([], "HPO_DATA_DIR"),
    ],
)
def test_train_errors_exit_2_without_traceback(
    cli: typer.Typer, tmp_path: Path, extra: list[str], message: str
) -> None:
    spec = write_spec(tmp_path / "s.yaml", "sms_spam", "text_classification", "f1")
    result = CliRunner().invoke(cli, ["train", str(spec), *extra])
    assert result.exit_code == 2 and message in result.stderr
    assert "Traceback" not in result.output


def test_train_rejects_a_bad_spec(cli: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntask: {dataset: sunspots, kind: forecasting, metric: accuracy}\n")
    result = CliRunner().invoke(cli, ["train", str(bad)])
    assert result.exit_code == 2 and "task.metric" in result.stderr


def test_predict_uses_the_best_trials_artifacts(cli: typer.Typer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "s.yaml", "sunspots", "forecasting", "rmse")
    art = tmp_path / "trial-0"
    trained = CliRunner().invoke(cli, ["train", str(spec), "--epochs", "2", "--save", str(art)])
    assert trained.exit_code == 0, trained.output
    cfg = get_settings()
    migrate(cfg)
    create_study(cfg, parse_spec(tiny_spec("spots")))
    study = optuna.load_study(study_name="spots", storage=get_storage(cfg))
    for value, folder in ((5.0, str(art)), (9.0, "/gone")):
        study.add_trial(optuna.trial.create_trial(value=value))
        added = study.trials[-1]
        data = TrialData(artifact_dir=folder)  # where the objective keeps it
        trial_data.save(get_engine(cfg), "spots", added._trial_id, added.number, data)
    series = tmp_path / "series.csv"
    series.write_text(
        "year,value\n" + "".join(f"{1950 + i},{v}\n" for i, v in enumerate(range(30)))
    )
    result = CliRunner().invoke(cli, ["predict", "spots", "--input", str(series), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["trial"] == 0 and len(payload["predictions"]) == 1
    assert CliRunner().invoke(cli, ["predict", "spots", "-i", str(series)]).exit_code == 0
    missing = CliRunner().invoke(cli, ["predict", "nope", "--input", str(series)])
    assert missing.exit_code == 2 and "'nope'" in missing.stderr
    assert "Traceback" not in missing.stderr
    gone = CliRunner().invoke(cli, ["predict", "spots", "--trial", "1", "-i", str(series)])
    assert gone.exit_code == 2 and "artifact file missing" in gone.stderr
    short = tmp_path / "short.txt"
    short.write_text("1\n2\n")
    too_short = CliRunner().invoke(cli, ["predict", "spots", "--input", str(short)])
    assert too_short.exit_code == 2 and "at least 24" in too_short.stderr


def test_a_conditional_range_defaults_to_its_branch_midpoint() -> None:
    space = SearchSpace(
        optimizer=["sgd", "adam"],
        learning_rate={
            "low": 1e-4,
            "high": 1e-2,
            "log": True,
            "when": {"optimizer": {"sgd": {"low": 0.01, "high": 1.0}}},
        },
    )
    assert resolve_params(space, [])["learning_rate"] == pytest.approx(0.1)  # sgd: first choice
    adam = resolve_params(space, ["optimizer=adam"])
    assert adam["learning_rate"] == pytest.approx(1e-3) and next(iter(adam)) == "learning_rate"
