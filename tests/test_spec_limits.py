"""Caps on incoming specs: every numeric cap, list and string lengths, grid size, the model-size
estimate (checked against torch), settings that raise the limits, stored specs that outlive
lowered limits, and the forms of ``task.dataset`` through the API and the ``hpo`` command."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import typer
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from hpo_service.api.app import create_app
from hpo_service.cli import predict
from hpo_service.cli.train import register
from hpo_service.config import Settings, get_settings
from hpo_service.scheduling.claims import claim
from hpo_service.spec import SpecError, SpecLimits, parse_spec, spec_to_dict
from hpo_service.spec.limits import NUMERIC_CAPS, grid_size
from hpo_service.spec.sampling import grid_space
from hpo_service.spec.size import estimate, model_parameters, recurrent_parameters
from hpo_service.store.db import get_engine, session_scope
from hpo_service.store.studies import create_study, get_study, list_studies
from hpo_service.train.model import RecurrentModel, build_model, count_parameters
from tests.conftest import env_for, make_settings, tiny_spec


def problems(data: dict[str, Any], limits: SpecLimits | None = None) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(data, limits)
    return caught.value.messages


def with_field(path: str, value: Any, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """``tiny_spec`` (or ``spec``) with one dotted field set."""
    spec = json.loads(json.dumps(spec or tiny_spec()))
    section, _, key = path.rpartition(".")
    target = spec.setdefault(section, {}) if section else spec
    if isinstance(target, str):  # the sampler/pruner shorthand
        target = spec[section] = {"type": target}
    target[key] = value
    return spec


def above(path: str) -> float:
    cap = NUMERIC_CAPS[path]
    return 0.995 if path.endswith("dropout") else cap * 2 if cap < 100 else int(cap) + 1


@pytest.mark.parametrize("path", sorted(NUMERIC_CAPS))
def test_every_numeric_cap_is_refused_naming_the_field(path: str) -> None:
    found = problems(with_field(path, above(path)))
    assert any(m.startswith(f"{path}: ") and "HPO_SPEC_CAPS" in m for m in found), found


def test_caps_apply_to_choices_and_range_bounds_and_not_below() -> None:
    choices = problems(with_field("search_space.batch_size", [32, 9000]))
    assert choices == [
        "search_space.batch_size: choice 9000 is above the limit 8192 (HPO_SPEC_CAPS)"
    ]
    ranged = problems(with_field("search_space.hidden_units", {"low": 8, "high": 5000}))
    assert ranged == [
        "search_space.hidden_units: high (5000) is above the limit 4096 (HPO_SPEC_CAPS)"
    ]
    at_caps = with_field("search_space.batch_size", 8192, with_field("budget.timeout_s", 2_592_000))
    assert parse_spec(at_caps).search_space.batch_size == 8192
    assert parse_spec(with_field("task.lookback", 5000)).task.lookback == 5000


def test_lengths_of_lists_and_strings() -> None:
    metrics = ["accuracy", "f1", "f1_macro", "precision", "recall", "precision_macro"]
    metrics += ["recall_macro", "loss", "n_params"]
    task = {"dataset": "digits", "kind": "sequence_classification", "metric": metrics}
    many = problems(tiny_spec(task=task, sampler="nsga2"))
    assert many == ["task.metric: 9 items; limit 8"]
    assert problems(with_field("description", "x" * 2001)) == [
        "description: 2001 characters; limit 2000"
    ]
    columns = {"dataset": "rows.csv", "kind": "sequence_classification"}
    wide = problems(tiny_spec(task={**columns, "feature_columns": [f"c{i}" for i in range(1025)]}))
    assert wide == ["task.feature_columns: 1025 items; limit 1024"]
    long_name = problems(tiny_spec(task={**columns, "label_column": "y" * 201}))
    assert long_name == ["task.label_column: 201 characters; limit 200"]


def test_choice_lists_are_capped_even_the_huge_one_that_was_stored() -> None:
    found = problems(with_field("search_space.batch_size", list(range(1, 1_500_001))))
    assert "search_space.batch_size: 1500000 choices; limit 64 (HPO_MAX_CHOICES)" in found
    assert parse_spec(with_field("search_space.batch_size", list(range(1, 65))))


def test_grid_size_is_capped_and_counts_what_the_sampler_enumerates() -> None:
    space = {
        "learning_rate": {"low": 0.001, "high": 0.01, "step": 0.001},
        "batch_size": [16, 32, 64],
        "hidden_units": {"low": 8, "high": 64, "step": 8},
        "optimizer": ["adam", "sgd"],
    }
    spec = parse_spec(tiny_spec(search_space=space, sampler="grid"))
    assert grid_size(spec.search_space) == len(
        list(itertools.product(*grid_space(spec.search_space).values()))
    )
    big = {**space, "hidden_units": {"low": 1, "high": 4096}, "batch_size": list(range(1, 65))}
    found = problems(tiny_spec(search_space=big, sampler="grid"))
    assert len(found) == 1 and found[0].startswith("search_space: a grid of 5242880 points")
    assert "limit 10000 (HPO_MAX_GRID_SIZE)" in found[0]
    assert parse_spec(tiny_spec(search_space=big, sampler="tpe"))  # only a grid enumerates


@pytest.mark.parametrize(
    "config",  # kind, input size, outputs, hidden, layers, embedding, cell, bidirectional
    [
        ("text_classification", 500, 1, 32, 1, 16, "lstm", False),
        ("text_classification", 300, 3, 24, 3, 8, "gru", True),
        ("forecasting", 1, 4, 16, 2, 12, "lstm", True),
        ("sequence_classification", 8, 10, 20, 2, 32, "gru", False),
    ],
)
def test_parameter_formula_matches_torch(config: tuple[Any, ...]) -> None:
    kind, input_size, n_outputs, hidden, layers, emb, cell, bidirectional = config
    model = RecurrentModel(
        kind, input_size, n_outputs, hidden, layers, 0.0, emb, cell, bidirectional
    )
    assert model_parameters(*config) == count_parameters(model)
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    torch_rnn = rnn(emb, hidden, num_layers=layers, bidirectional=bidirectional)
    assert recurrent_parameters(cell, emb, hidden, layers, bidirectional) == count_parameters(
        torch_rnn
    )


def test_estimate_takes_each_entrys_maximum() -> None:
    space = {
        "hidden_units": {"low": 8, "high": 48, "step": 8},
        "num_layers": [1, 3],
        "embedding_dim": [8, 24],
        "cell": ["gru", "lstm"],
        "bidirectional": [False, True],
    }
    task = {"dataset": "sunspots", "kind": "forecasting", "lookback": 12, "horizon": 3}
    spec = parse_spec(tiny_spec(task=task, search_space=space))
    found = estimate(spec.task, spec.search_space)
    model = RecurrentModel("forecasting", 1, 3, 48, 3, 0.0, 24, "lstm", True)
    assert found.n_parameters == count_parameters(model)
    assert found.params == {
        "hidden_units": 48,
        "num_layers": 3,
        "embedding_dim": 24,
        "batch_size": 128,  # the default choices [32, 64, 128]
        "cell": "lstm",
        "bidirectional": True,
        "ensemble_size": 1,
    }


def test_an_ensemble_counts_every_members_parameters_and_memory() -> None:
    task = {"dataset": "sunspots", "kind": "forecasting", "lookback": 12, "horizon": 3}
    space = {"hidden_units": 16, "embedding_dim": 8}
    single = parse_spec(tiny_spec(task=task, search_space=space))
    one = estimate(single.task, single.search_space)
    spec = parse_spec(tiny_spec(task=task, search_space={**space, "ensemble_size": [1, 3]}))
    three = estimate(spec.task, spec.search_space)
    state = {"kind": "forecasting", "input_size": 1, "n_outputs": 3}
    params = {**three.params, "dropout": 0.0, "pooling": "last"}
    assert (
        three.n_parameters == count_parameters(build_model(state, params)) == 3 * one.n_parameters
    )
    assert three.megabytes == pytest.approx(3 * one.megabytes)


def test_a_model_too_big_is_refused_with_the_estimate_and_the_limit() -> None:
    huge = with_field("search_space.hidden_units", 4096)
    huge["search_space"]["num_layers"] = [1, 8]
    found = problems(huge)
    assert len(found) == 1 and found[0].startswith("search_space: largest configuration needs ~")
    assert "hidden_units=4096, num_layers=8" in found[0]
    assert found[0].endswith("limit 2 GB (HPO_MAX_MODEL_MB)")
    text = {"dataset": "sst2", "kind": "text_classification", "max_vocab": 1_000_000}
    vocab = problems(tiny_spec(task=text, search_space={"embedding_dim": 2048}))
    assert "embedding_dim=2048" in vocab[0] and "GB" in vocab[0]


def test_settings_raise_every_limit(tmp_path: Path) -> None:
    big = with_field("search_space.hidden_units", [4096, 8192])
    big["search_space"].update(num_layers=8, batch_size=list(range(1, 101)))
    assert len(problems(big)) == 2  # hidden_units above its cap, 100 choices
    cfg = make_settings(
        "sqlite://",
        tmp_path,
        spec_caps={"search_space.hidden_units": 8192},
        max_choices=128,
        max_model_mb=200_000,
    )
    assert parse_spec(big, cfg.spec_limits()).search_space.num_layers == 8
    space = {
        "learning_rate": 0.01,
        "optimizer": "adam",
        "batch_size": [16, 32, 64],
        "hidden_units": {"low": 1, "high": 4096},
    }
    grid = tiny_spec(search_space=space, sampler="grid")
    assert "HPO_MAX_GRID_SIZE" in problems(grid)[0]
    roomy = make_settings("sqlite://", tmp_path, max_grid_size=3 * 4096).spec_limits()
    assert parse_spec(grid, roomy).sampler.type == "grid"


def test_settings_refuse_unknown_caps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPO_SPEC_CAPS", '{"search_space.hidden_units": 16384}')
    from_env = make_settings("sqlite://", tmp_path).spec_limits()
    assert from_env.cap("search_space.hidden_units") == 16384
    assert from_env.cap("search_space.batch_size") == NUMERIC_CAPS["search_space.batch_size"]
    with pytest.raises(ValueError, match="spec_caps"):
        make_settings("sqlite://", tmp_path, spec_caps={"search_space.hiden_units": 5})
    with pytest.raises(ValueError, match="unknown spec cap"):
        SpecLimits(cap_overrides=(("budget.nope", 1.0),))


def test_stored_specs_outlive_lowered_limits(migrated: Settings) -> None:
    space = {"hidden_units": 256, "batch_size": [16, 32, 64, 128], "optimizer": "adam"}
    local = {"dataset": "/srv/data/spots.csv", "kind": "forecasting"}
    spec = parse_spec(
        tiny_spec("kept", search_space=space, task=local), SpecLimits(allow_local_paths=True)
    )
    create_study(migrated, spec, start=True)
    lowered = migrated.model_copy(
        update={
            "max_choices": 2,
            "max_model_mb": 0.01,
            "spec_caps": {"search_space.hidden_units": 8},
        }
    )
    refused = problems(spec_to_dict(spec), lowered.spec_limits())
    assert [line.split(":")[0] for line in refused] == [
        "search_space.hidden_units",
        "search_space.batch_size",
        "task.dataset",
    ]
    engine = get_engine(lowered)
    assert get_study(engine, "kept").spec == spec
    assert [info.name for info in list_studies(engine)[0]] == ["kept"]
    with session_scope(engine) as session:
        assert claim(session, get_study(engine, "kept").id, "w1") is not None
    with TestClient(create_app(lowered)) as api:
        assert api.get("/api/studies/kept").json()["spec"]["search_space"]["hidden_units"] == 256


@pytest.fixture
def api(migrated: Settings, tmp_path: Path) -> Iterator[TestClient]:
    """The API even with local paths allowed in its settings: it never passes them on."""
    data = tmp_path / "data"
    (data / "data").mkdir(parents=True)
    for name in ("x.csv", "t.csv"):  # present: creation checks the dataset is there
        (data / "data" / name).write_text("value\n" + "\n".join(str(i) for i in range(60)))
    cfg = migrated.model_copy(update={"data_dir": data, "allow_local_paths": True})
    with TestClient(create_app(cfg)) as client:
        yield client


def test_api_refuses_caps_and_dataset_paths_naming_the_field(
    api: TestClient, tmp_path: Path
) -> None:
    for dataset in (str(tmp_path / "x.csv"), "../x.csv", "~/x.csv", "file:///x.csv"):
        response = api.post(
            "/api/studies", json=tiny_spec(task={"dataset": dataset, "kind": "forecasting"})
        )
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["task.dataset"]
    # 1.5M choices no longer reach validation: the body limit (HPO_MAX_BODY_MB) refuses them.
    flood = api.post(
        "/api/studies", json=with_field("search_space.batch_size", list(range(1, 1_500_001)))
    )
    assert flood.status_code == 413 and "HPO_MAX_BODY_MB" in flood.json()["detail"]
    many = api.post("/api/studies", json=with_field("search_space.batch_size", list(range(1, 201))))
    assert (
        many.status_code == 422 and many.json()["errors"][0]["field"] == "search_space.batch_size"
    )
    huge = api.post("/api/studies", json=with_field("search_space.hidden_units", 100_000))
    assert huge.status_code == 422 and "above the limit 4096" in huge.json()["detail"]
    assert api.get("/api/studies").json()["total"] == 0
    made = api.post(
        "/api/studies", json=tiny_spec(task={"dataset": "data/x.csv", "kind": "forecasting"})
    )
    assert made.status_code == 201, made.text


def test_api_refuses_test_dataset_paths_naming_that_field(api: TestClient) -> None:
    for test_dataset in ("../t.csv", "/etc/t.csv", "upload:zz", "t.txt"):
        task = {"dataset": "data/x.csv", "kind": "forecasting", "test_dataset": test_dataset}
        response = api.post("/api/studies", json=tiny_spec(task=task))
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["task.test_dataset"]
    task = {"dataset": "data/x.csv", "kind": "forecasting", "test_dataset": "data/t.csv"}
    assert api.post("/api/studies", json=tiny_spec(task=task)).status_code == 201


def hpo_create(settings: Settings, tmp_path: Path, spec: dict[str, Any], **env: str) -> Any:
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return subprocess.run(
        [sys.executable, "-m", "hpo_service", "study", "create", str(path)],
        env={**env_for(settings), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_study_create_refuses_local_paths_even_opted_in(
    sqlite_url: str, tmp_path: Path
) -> None:
    from hpo_service.store.db import migrate

    cfg = make_settings(sqlite_url, tmp_path)
    migrate(cfg)
    local = tiny_spec("local", task={"dataset": str(tmp_path / "x.csv"), "kind": "forecasting"})
    refused = hpo_create(cfg, tmp_path, local)
    assert refused.returncode == 2 and "task.dataset: " in refused.stderr
    assert "HPO_ALLOW_LOCAL_PATHS" in refused.stderr and "Traceback" not in refused.stderr
    # Workers read only the data roots: a study may not name a local file, opt-in or not.
    opted = hpo_create(cfg, tmp_path, local, HPO_ALLOW_LOCAL_PATHS="true")
    assert opted.returncode == 2 and "task.dataset: " in opted.stderr
    url = tiny_spec("url", task={"dataset": "file:///x.csv", "kind": "forecasting"})
    still = hpo_create(cfg, tmp_path, url, HPO_ALLOW_LOCAL_PATHS="true")
    assert still.returncode == 2 and "task.dataset: " in still.stderr
    wide = hpo_create(
        cfg, tmp_path, with_field("search_space.hidden_units", 100_000, tiny_spec("w"))
    )
    assert wide.returncode == 2 and "search_space.hidden_units: " in wide.stderr


def test_train_params_are_held_to_the_caps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPO_DATABASE_URL", f"sqlite:///{tmp_path / 'hpo.db'}")
    get_settings.cache_clear()
    app = typer.Typer()
    register(app)
    predict.register(app)
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec()))
    wide = CliRunner().invoke(app, ["train", str(spec), "--param", "hidden_units=100000"])
    assert wide.exit_code == 2 and "--param hidden_units: 100000 is above" in wide.stderr
    deep = ["train", str(spec), "--param", "hidden_units=4096", "--param", "num_layers=8"]
    big = CliRunner().invoke(app, deep)
    assert big.exit_code == 2 and "HPO_MAX_MODEL_MB" in big.stderr
    get_settings.cache_clear()
