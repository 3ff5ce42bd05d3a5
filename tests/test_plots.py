"""hpo_service.plots against real Optuna studies on a real database (SQLite file; PostgreSQL too
when HPO_TEST_POSTGRES_URL is set): every kind's traces hold the right points, errors carry
the right status, young studies give a note instead of an exception, and a few thousand
generated trials stay under the size cap with a "showing N of M" note."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import plotly.graph_objects as go
import pytest
import sqlalchemy as sa
from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

from hpo_service.plots import (
    COMPARE_KINDS,
    PLOT_KINDS,
    PlotError,
    compare_figure,
    figure_html,
    study_figure,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
OPTIMIZERS = ["sgd", "adam", "rmsprop"]
STEPS = 5
optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(trial: optuna.Trial) -> float:
    opt = trial.suggest_categorical("optimizer", OPTIMIZERS)
    lr = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
    bs = trial.suggest_categorical("batch_size", [16, 32, 64])
    hidden = trial.suggest_int("hidden_units", 16, 128)
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    if trial.number == 7:
        raise ValueError("diverged")  # a FAIL trial
    final = (math.log10(lr) + 2.5) ** 2 + OPTIMIZERS.index(opt) * 0.3 + bs / 640 + dropout
    final += 16 / hidden
    for step in range(STEPS):
        trial.report(final + (STEPS - step) * 0.2, step)
        if trial.number % 5 == 4 and step == 2:
            raise optuna.TrialPruned()
    return final


def multi_objective(trial: optuna.Trial) -> tuple[float, float]:
    x = trial.suggest_float("x", 0, 1)
    y = trial.suggest_float("y", 0, 1)
    trial.suggest_categorical("optimizer", OPTIMIZERS)
    return x + 0.1 * y, (1 - x) ** 2 + 0.1 * y


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("make_big_study",
                                                  REPO_ROOT / "bench" / "make_big_study.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Studies:
    """Small real studies in one database, with unique names (PostgreSQL is shared)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = sa.create_engine(url)
        self.tag = uuid.uuid4().hex[:8]
        storage = optuna.storages.RDBStorage(url)
        # Real databases, without waiting for an fsync on each of Optuna's many commits.
        sqlite = url.startswith("sqlite")
        fast = "PRAGMA synchronous=OFF" if sqlite else "SET synchronous_commit=off"
        sa.event.listen(storage.engine, "connect", lambda conn, _: conn.execute(fast))
        storage.engine.dispose()
        sampler = optuna.samplers.RandomSampler
        self.single = optuna.create_study(storage=storage, study_name=self.name("single"),
                                          sampler=sampler(seed=1))
        self.single.optimize(objective, n_trials=30, catch=(ValueError,))
        self.maxi = optuna.create_study(storage=storage, study_name=self.name("max"),
                                        direction="maximize", sampler=sampler(seed=2))
        self.maxi.set_metric_names(["accuracy"])
        self.maxi.optimize(objective, n_trials=10, catch=(ValueError,))
        self.multi = optuna.create_study(storage=storage, study_name=self.name("multi"),
                                         directions=["minimize", "minimize"],
                                         sampler=sampler(seed=3))
        self.multi.optimize(multi_objective, n_trials=20)
        self.empty = optuna.create_study(storage=storage, study_name=self.name("empty"))
        self.one = optuna.create_study(storage=storage, study_name=self.name("one"))
        self.one.optimize(objective, n_trials=1)
        self.big_name = self.name("big")
        big = optuna.create_study(storage=storage, study_name=self.big_name)
        _load_generator().insert_all(self.engine, big._study_id, 3000, 10, seed=5)
        storage.engine.dispose()

    def name(self, what: str) -> str:
        return f"plots-{what}-{self.tag}"

    def fig(self, study: optuna.Study | str, kind: str, **params: str) -> dict[str, Any]:
        name = study if isinstance(study, str) else study.study_name
        fig = study_figure(self.engine, name, kind, params or None)
        _check_valid(fig)
        return fig


def _check_valid(fig: dict[str, Any]) -> None:
    """JSON-safe (no NaN, no numpy) and accepted by plotly's own validators."""
    text = json.dumps(fig, allow_nan=False)
    assert len(text) < 2_000_000
    go.Figure(fig)


def _backends() -> list[Any]:
    pg = os.environ.get("HPO_TEST_POSTGRES_URL")
    return ["sqlite", pytest.param(pg or "", marks=[pytest.mark.postgres, pytest.mark.skipif(
        not pg, reason="HPO_TEST_POSTGRES_URL not set")], id="postgres")]


@pytest.fixture(scope="module", params=_backends())
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Studies]:
    url = request.param
    if url == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('plots') / 'plots.db'}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        studies = Studies(url)
    yield studies
    studies.engine.dispose()


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


def _notes(fig: dict[str, Any]) -> str:
    return " | ".join(a["text"] for a in fig["layout"].get("annotations", []))


def _traces(fig: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    return [t for t in fig["data"] if all(t.get(k) == v for k, v in match.items())]


@pytest.mark.parametrize("which", ["single", "maxi"])
def test_history_best_so_far(db: Studies, which: str) -> None:
    study = getattr(db, which)
    fig = db.fig(study, "history")
    points, best = fig["data"]
    assert points["x"] == [t.number for t in _complete(study)]
    ys = best["y"]
    steps = np.diff(ys)
    assert (steps <= 0).all() if which == "single" else (steps >= 0).all()
    assert ys[-1] == pytest.approx(study.best_value, rel=1e-5)
    assert best["x"][-1] == _complete(study)[-1].number


def test_intermediate_values(db: Studies) -> None:
    fig = db.fig(db.single, "intermediate_values")
    with_values = [t for t in db.single.trials if t.intermediate_values and t.state.is_finished()
                   and t.state != optuna.trial.TrialState.FAIL]
    curves = [t for t in fig["data"] if t["name"].endswith(" trials")]
    n_curves = sum(1 + sum(v is None for v in t["y"]) for t in curves)
    assert n_curves == len(with_values)
    medians = [t for t in fig["data"] if t.get("showlegend") is not False]
    assert len(_traces(fig, fill="toself")) == len(medians)
    present = {t.params["optimizer"] for t in with_values}
    assert sorted(t["name"] for t in medians) == sorted(present)
    sgd = [t for t in with_values if t.params["optimizer"] == "sgd"]
    median = next(t for t in medians if t["name"] == "sgd")
    assert median["y"][0] == pytest.approx(np.median([t.intermediate_values[0] for t in sgd]),
                                           rel=1e-4)


def test_parallel_coordinate_and_slice(db: Studies) -> None:
    n = len(_complete(db.single))
    (pc,) = db.fig(db.single, "parallel_coordinate")["data"]
    labels = [d["label"] for d in pc["dimensions"]]
    assert labels[0] == "objective" and len(labels) == 6
    assert "learning_rate (log)" in labels
    assert "tickvals" not in pc["dimensions"][labels.index("hidden_units")]  # 16..128: plotly's
    assert all(len(d["values"]) == n for d in pc["dimensions"])
    sl = db.fig(db.single, "slice")
    assert sorted(t["name"] for t in sl["data"]) == sorted(db.single.best_params)
    assert all(len(t["x"]) == n for t in sl["data"])
    opt = next(t for t in sl["data"] if t["name"] == "optimizer")
    assert set(opt["x"]) <= set(OPTIMIZERS)


def test_param_importances_match_optuna_ped_anova(db: Studies) -> None:
    fig = db.fig(db.single, "param_importances")
    (bar,) = fig["data"]
    ours = dict(zip(bar["y"], bar["x"], strict=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = get_param_importances(db.single, evaluator=PedAnovaImportanceEvaluator())
    assert set(ours) == set(ref)
    for name, value in ref.items():
        assert ours[name] == pytest.approx(value, rel=1e-3, abs=1e-4), name
    assert bar["y"][-1] == next(iter(ref))  # most important drawn on top


def test_contour(db: Studies) -> None:
    fig = db.fig(db.single, "contour", x="learning_rate", y="hidden_units")
    surface, dots = fig["data"]
    assert surface["type"] == "contour"
    assert fig["layout"]["xaxis"]["type"] == "log"
    assert sum(map(sum, surface["customdata"])) == len(_complete(db.single))
    assert len(dots["x"]) == len(_complete(db.single))
    cat = db.fig(db.single, "contour", x="optimizer", y="batch_size")
    assert cat["data"][0]["type"] == "heatmap"
    default = db.fig(db.single, "contour")
    titles = [default["layout"][axis]["title"]["text"] for axis in ("xaxis", "yaxis")]
    assert titles[0] != titles[1]
    for bad in ({"x": "nope", "y": "dropout"}, {"x": "dropout", "y": "dropout"}):
        with pytest.raises(PlotError) as err:
            study_figure(db.engine, db.single.study_name, "contour", bad)
        assert err.value.status == 422


def test_edf_and_timeline(db: Studies) -> None:
    values = sorted(t.value for t in _complete(db.single))
    (line,) = db.fig(db.single, "edf")["data"]
    assert line["x"] == pytest.approx(values, rel=1e-5)
    assert line["y"][-1] == 1.0
    fig = db.fig(db.single, "timeline")
    counts = {t["name"].split()[0]: (len(t["x"]) + 1) // 3 for t in fig["data"]}
    states = [t.state.name for t in db.single.trials]
    assert counts == {s: states.count(s) for s in set(states)}
    assert {"COMPLETE", "PRUNED", "FAIL"} <= set(counts)
    assert fig["layout"]["xaxis"]["type"] == "date"


def test_optimizer_comparison(db: Studies) -> None:
    fig = db.fig(db.single, "optimizer_comparison")
    boxes = _traces(fig, type="box")
    complete = _complete(db.single)
    present = {t.params["optimizer"] for t in complete}
    assert sorted(b["name"] for b in boxes) == sorted(present)
    for box in boxes:
        mine = [t.value for t in complete if t.params["optimizer"] == box["name"]]
        assert box["median"][0] == pytest.approx(np.median(mine), rel=1e-5)
        assert box["meta"]["count"] == len(mine)


def test_lr_batch_heatmap(db: Studies) -> None:
    fig = db.fig(db.single, "lr_batch_heatmap")
    heat = fig["data"][0]
    assert heat["type"] == "heatmap"
    assert heat["y"] == ["16", "32", "64"]
    assert fig["layout"]["xaxis"]["type"] == "log"
    assert sum(map(sum, heat["customdata"])) == len(_complete(db.single))
    with pytest.raises(PlotError) as err:
        study_figure(db.engine, db.multi.study_name, "lr_batch_heatmap")
    assert err.value.status == 422 and "learning_rate" in str(err.value)


def test_pareto_front(db: Studies) -> None:
    fig = db.fig(db.multi, "pareto_front")
    front = next(t for t in fig["data"] if t["name"] == "Pareto front")
    assert sorted(front["customdata"]) == sorted(t.number for t in db.multi.best_trials)
    other = next(t for t in fig["data"] if t["name"] == "other trials")
    assert len(front["x"]) + len(other["x"]) == len(db.multi.trials)
    swapped = db.fig(db.multi, "pareto_front", x="1", y="0")
    assert swapped["layout"]["xaxis"]["title"]["text"] == "objective 1 (lower is better)"
    history = db.fig(db.multi, "history", objective="1")
    assert history["data"][1]["y"][-1] == pytest.approx(
        min(t.values[1] for t in db.multi.trials), rel=1e-5)


@pytest.mark.parametrize(("study", "kind", "params", "status"), [
    ("single", "nope", None, 422),
    ("missing", "history", None, 404),
    ("single", "pareto_front", None, 422),
    ("single", "history", {"objective": "1"}, 422),
    ("single", "history", {"objective": "x"}, 422),
    ("single", "history", {"bogus": "1"}, 422),
    ("multi", "pareto_front", {"x": "5"}, 422),
    ("multi", "pareto_front", {"x": "0", "y": "0"}, 422),
    ("multi", "optimizer_comparison", {"objective": "2"}, 422),
])
def test_errors(db: Studies, study: str, kind: str, params: Any, status: int) -> None:
    name = getattr(db, study).study_name if study != "missing" else "no-such-study"
    with pytest.raises(PlotError) as err:
        study_figure(db.engine, name, kind, params)
    assert err.value.status == status
    assert isinstance(err.value, ValueError) and str(err.value)


# pareto_front on these single-objective studies is a 422, tested in test_errors.
@pytest.mark.parametrize("kind", [k for k in PLOT_KINDS if k != "pareto_front"])
def test_young_studies_give_a_note(db: Studies, kind: str) -> None:
    fig = db.fig(db.empty, kind)
    assert fig["data"] == []
    assert "no completed trials yet" in _notes(fig) or "no intermediate values" in _notes(fig)
    db.fig(db.one, kind)  # one complete trial: a valid figure, never an exception


def test_compare(db: Studies) -> None:
    names = [db.single.study_name, db.one.study_name, db.empty.study_name]
    fig = compare_figure(db.engine, names, "history")
    _check_valid(fig)
    assert {t["name"] for t in fig["data"]} == set(names[:2])
    assert {t.get("xaxis", "x") for t in fig["data"]} == {"x", "x2"}
    single = [t for t in fig["data"] if t["name"] == names[0]]
    assert all(t["y"][-1] == pytest.approx(db.single.best_value, rel=1e-5) for t in single)
    assert fig["layout"]["yaxis"]["title"]["text"] == "best so far: objective (lower is better)"
    edf = compare_figure(db.engine, names, "edf")
    _check_valid(edf)
    assert len(edf["data"]) == 2
    assert set(COMPARE_KINDS) == {"history", "edf"}
    for bad, status in (([names[0], "no-such-study"], 404), ([], 422)):
        with pytest.raises(PlotError) as err:
            compare_figure(db.engine, bad, "history")
        assert err.value.status == status
    with pytest.raises(PlotError) as err:
        compare_figure(db.engine, names, "contour")
    assert err.value.status == 422


def test_downsampled_big_study(db: Studies) -> None:
    total = int(db.engine.connect().execute(sa.text(
        "SELECT count(*) FROM trials t JOIN studies s ON s.study_id = t.study_id "
        "WHERE s.study_name = :n AND t.state = 'COMPLETE'"), {"n": db.big_name}).scalar_one())
    for kind in PLOT_KINDS:
        if kind == "pareto_front":
            continue
        fig = study_figure(db.engine, db.big_name, kind)
        assert len(json.dumps(fig, allow_nan=False, separators=(",", ":"))) < 2_000_000, kind
    pc = study_figure(db.engine, db.big_name, "parallel_coordinate")
    assert f"showing 1,000 of {total:,} trials" in _notes(pc)
    assert len(pc["data"][0]["dimensions"][0]["values"]) == 1000
    assert pc["layout"]["meta"]["shown"] == 1000 and pc["layout"]["meta"]["total"] == total
    layers = next(d for d in pc["data"][0]["dimensions"] if d["label"] == "num_layers")
    assert layers["tickvals"] == [1, 2, 3]  # an integer 1..3: no 1.5 or 2.5 ticks
    curves = study_figure(db.engine, db.big_name, "intermediate_values")
    assert "showing 200 of" in _notes(curves)
    sl = study_figure(db.engine, db.big_name, "slice")
    assert f"showing 1,500 of {total:,}" in _notes(sl)


def test_figure_html_is_standalone(db: Studies) -> None:
    fig = db.fig(db.single, "history")
    fig["layout"]["title"]["text"] = "</script><script>alert(1)</script>"
    page = figure_html(fig, "a <b>title</b>")
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>a &lt;b&gt;title&lt;/b&gt;</title>" in page
    assert "alert(1)</script>" not in page
    assert "<script src" not in page and "src=\"http" not in page
    assert "Plotly.newPlot" in page and len(page) > 1_000_000  # plotly.js inlined


def test_figure_cache_follows_new_trials(db: Studies) -> None:
    study = optuna.create_study(storage=db.url, study_name=db.name("cache"),
                                sampler=optuna.samplers.RandomSampler(seed=4))
    study.optimize(objective, n_trials=3)
    first = db.fig(study, "history")
    again = db.fig(study, "history")
    assert again == first and again is not first  # a copy: safe for callers to modify
    again["data"].clear()
    assert db.fig(study, "history") == first
    study.optimize(objective, n_trials=2)
    assert db.fig(study, "history")["data"][0]["x"] == [t.number for t in _complete(study)]
    assert len(_complete(study)) == 4  # trial 4 is pruned


def _elapsed_seconds(study: str, url: str) -> float:
    """The span compare's wall-time axis covers: first start to last completion, in seconds."""
    trials = optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)
    first = min(t.datetime_start for t in trials if t.datetime_start)
    last = max(t.datetime_complete for t in trials if t.state.name == "COMPLETE")
    return float((last - first).total_seconds())


@pytest.mark.parametrize(("which", "unit"), [("single", "s"), ("big", "h")])
def test_compare_wall_time_unit_follows_the_data(db: Studies, which: str, unit: str) -> None:
    name = db.big_name if which == "big" else db.single.study_name
    fig = compare_figure(db.engine, [name], "history")
    layout = fig["layout"]
    assert layout["xaxis2"]["title"]["text"] == f"wall time since first trial ({unit})"
    assert layout["meta"]["time_unit"] == unit
    timed = next(t for t in fig["data"] if t.get("xaxis") == "x2")
    divisor = {"s": 1, "h": 3600}[unit]
    span = _elapsed_seconds(name, db.url) / divisor
    assert max(timed["x"]) == pytest.approx(span, rel=0.02, abs=0.05)
    assert max(timed["x"]) < 120
    if unit == "h":
        assert max(timed["x"]) >= 1  # the big study spans hours: shown as hours, not seconds


def test_compare_refuses_different_metrics_or_directions(db: Studies) -> None:
    names = [db.single.study_name, db.maxi.study_name]
    for kind in COMPARE_KINDS:
        with pytest.raises(PlotError) as err:
            compare_figure(db.engine, names, kind)
        assert err.value.status == 422
        message = str(err.value)
        assert message.startswith("studies: cannot compare")
        assert f"{names[0]}: objective (lower is better)" in message
        assert f"{names[1]}: accuracy (higher is better)" in message


def _is_whole_number_axis(axis: dict[str, Any]) -> bool:
    dtick = axis.get("dtick")
    return axis.get("tickformat") == "d" and isinstance(dtick, int) and dtick >= 1


def test_trial_axes_have_whole_number_ticks(db: Studies) -> None:
    """A 10-trial study: plotly's automatic ticks would put 0.5 steps on a trial axis."""
    history = db.fig(db.maxi, "history")["layout"]["xaxis"]
    timeline = db.fig(db.maxi, "timeline")["layout"]["yaxis"]
    curves = db.fig(db.maxi, "intermediate_values")["layout"]["xaxis"]
    compare = compare_figure(db.engine, [db.single.study_name], "history")["layout"]["xaxis"]
    colorbar = db.fig(db.maxi, "slice")["data"][0]["marker"]["colorbar"]
    for axis in (history, timeline, curves, compare, colorbar):
        assert _is_whole_number_axis(axis), axis
    assert history["title"]["text"] == "trial number"
    assert curves["title"]["text"] == "epoch (reported step)"
    big = db.fig(db.big_name, "history")["layout"]["xaxis"]
    assert big["dtick"] in (200, 500)  # about 8 ticks over 3,000 trials, not 3,000


def test_metric_names_and_direction_on_axes_and_titles(db: Studies) -> None:
    fig = db.fig(db.maxi, "history")
    assert fig["layout"]["yaxis"]["title"]["text"] == "accuracy (higher is better)"
    assert "accuracy (higher is better)" in fig["layout"]["title"]["text"]
    assert "maximize" not in json.dumps(fig)
    assert db.fig(db.maxi, "edf")["layout"]["xaxis"]["title"]["text"] == (
        "accuracy (higher is better)")
    (pc,) = db.fig(db.maxi, "parallel_coordinate")["data"]
    assert pc["dimensions"][0]["label"] == "accuracy"
    curves = db.fig(db.maxi, "intermediate_values")["layout"]["yaxis"]["title"]["text"]
    assert curves == "validation accuracy (higher is better)"
    unnamed = db.fig(db.single, "history")["layout"]["yaxis"]["title"]["text"]
    assert unnamed == "objective (lower is better)"


def test_rank(db: Studies) -> None:
    complete = _complete(db.single)
    fig = db.fig(db.single, "rank")
    assert len(fig["data"]) == 6  # pairs of the 4 most important of 5 parameters
    colorbar = fig["layout"]["coloraxis"]["colorbar"]
    best, worst = min(t.value for t in complete), max(t.value for t in complete)
    assert colorbar["ticktext"][0] == f"best ({best:.4g})"
    assert colorbar["ticktext"][-1] == f"worst ({worst:.4g})"
    one = db.fig(db.single, "rank", x="learning_rate", y="optimizer")
    (panel,) = one["data"]
    assert one["layout"]["xaxis"]["type"] == "log"
    assert one["layout"]["yaxis"]["type"] == "category"
    assert len(panel["x"]) == len(complete)
    by_number = {t.number: t for t in complete}
    ranked = sorted(complete, key=lambda t: t.value)
    for (number, _), frac in zip(panel["customdata"], panel["marker"]["color"], strict=True):
        position = ranked.index(by_number[number])
        assert frac == pytest.approx(position / (len(complete) - 1), abs=1e-3)
        assert panel["x"][[n for n, _ in panel["customdata"]].index(number)] == pytest.approx(
            by_number[number].params["learning_rate"], rel=1e-4)
    scale = fig["layout"]["coloraxis"]["colorscale"]
    assert isinstance(scale, list) and scale[0] == [0.0, "#313695"]  # plotly.js names no RdYlBu
    ints = db.fig(db.single, "rank", x="hidden_units", y="dropout")["layout"]["xaxis"]
    assert _is_whole_number_axis(ints) and ints["title"]["text"] == "hidden_units"
    maxi = db.fig(db.maxi, "rank", x="learning_rate", y="dropout")
    best_max = max(t.value for t in _complete(db.maxi))
    assert maxi["layout"]["coloraxis"]["colorbar"]["ticktext"][0] == f"best ({best_max:.4g})"
    for bad in ({"x": "nope"}, {"x": "dropout", "y": "dropout"}):
        with pytest.raises(PlotError) as err:
            study_figure(db.engine, db.single.study_name, "rank", bad)
        assert err.value.status == 422
    big = study_figure(db.engine, db.big_name, "rank")
    assert "showing 1,500 of" in _notes(big)
    assert all(len(t["x"]) <= 1500 for t in big["data"])


def test_history_draws_a_bounded_sample_and_the_line_over_every_trial(
    db: Studies, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hpo_service.plots import cache, kinds_objective

    monkeypatch.setattr(kinds_objective, "MAX_HISTORY_POINTS", 1000)
    monkeypatch.setattr(kinds_objective, "MAX_HISTORY_TOP", 50)
    cache.clear()
    full = optuna.load_study(study_name=db.big_name, storage=db.url)
    complete = _complete(full)
    assert len(complete) > 1000
    points, line = db.fig(db.big_name, "history")["data"][:2]
    assert len(points["x"]) == 1000
    assert set(points["x"]) <= {t.number for t in complete}
    best_50 = sorted(complete, key=lambda t: t.value)[:50]
    assert {t.number for t in best_50} <= set(points["x"])
    assert line["y"][-1] == pytest.approx(full.best_value, rel=1e-5)
    notes = db.fig(db.big_name, "history")["layout"]["meta"]["notes"]
    assert any(f"1,000 of {len(complete):,} trials" in note for note in notes)
    cache.clear()
