"""Trial routes over real databases: pages, the polling cursor, details, CSV, best, predict
errors and plots. Trials are written through Optuna directly (no training) to stay fast."""

from __future__ import annotations

import csv
import importlib.util
import io
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from optuna.trial import TrialState

from hpo_service.api.app import create_app
from hpo_service.config import Settings
from hpo_service.store import trial_data
from hpo_service.store.db import get_engine, session_scope
from hpo_service.store.models import TrialRun, WorkerRecord
from hpo_service.store.optuna_tables import TRIALS
from hpo_service.store.trial_data import TrialData
from tests.conftest import REPO_ROOT, tiny_spec

SAMPLED = ("learning_rate", "batch_size")


@pytest.fixture
def api(migrated: Settings, tmp_path: Path) -> Iterator[TestClient]:
    cfg = migrated.model_copy(update={"data_dir": tmp_path / "data"})
    with TestClient(create_app(cfg)) as client:
        yield client


@pytest.fixture
def study(api: TestClient, migrated: Settings) -> optuna.Study:
    assert api.post("/api/studies?start=true", json=tiny_spec("t")).status_code == 201
    return optuna.load_study(study_name="t", storage=migrated.database_url)


def add(
    study: optuna.Study,
    value: float | None = 1.0,
    state: TrialState = TrialState.COMPLETE,
    attrs: dict[str, Any] | None = None,
    steps: tuple[float, ...] = (),
) -> optuna.Trial:
    """One trial with the spec's sampled params; ``state=RUNNING`` leaves it running."""
    trial = study.ask()
    trial.suggest_float("learning_rate", 0.001, 0.05, log=True)
    trial.suggest_categorical("batch_size", [32, 64])
    for step, intermediate in enumerate(steps):
        trial.report(intermediate, step)
    for key, attr in (attrs or {}).items():
        trial.set_user_attr(key, attr)
    if state != TrialState.RUNNING:
        study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
    return trial


def age(settings: Settings, hours: float = 1.0) -> None:
    """Move every trial's timestamps into the past, beyond the cursor's overlap window."""
    shift = timedelta(hours=hours)
    t = TRIALS
    with get_engine(settings).begin() as conn:
        rows = conn.execute(sa.select(t.c.trial_id, t.c.datetime_start, t.c.datetime_complete))
        for trial_id, start, complete in rows.all():
            conn.execute(
                sa.update(t)
                .where(t.c.trial_id == trial_id)
                .values(
                    datetime_start=start - shift if start else None,
                    datetime_complete=complete - shift if complete else None,
                )
            )


def numbers(page: dict[str, Any]) -> list[int]:
    return [item["number"] for item in page["items"]]


def test_pages_order_and_state_filter(api: TestClient, study: optuna.Study) -> None:
    for value in (5.0, 4.0, 3.0):
        add(study, value)
    add(study, state=TrialState.PRUNED)
    add(study, state=TrialState.FAIL)
    add(study, state=TrialState.RUNNING)
    page = api.get("/api/studies/t/trials?limit=2").json()
    assert numbers(page) == [0, 1] and page["total"] == 6 and page["has_more"]
    first = page["items"][0]
    assert first["state"] == "COMPLETE" and first["value"] == 5.0 and first["values"] == [5.0]
    assert set(first["params"]) == set(SAMPLED) and first["params"]["batch_size"] in (32, 64)
    assert first["duration_s"] is not None and first["completed_at"].endswith("Z")
    assert numbers(api.get("/api/studies/t/trials?offset=4").json()) == [4, 5]
    assert numbers(api.get("/api/studies/t/trials?order=desc&limit=3").json()) == [5, 4, 3]
    done = api.get("/api/studies/t/trials?state=complete,PRUNED").json()
    assert numbers(done) == [0, 1, 2, 3] and done["total"] == 4 and not done["has_more"]
    running = api.get("/api/studies/t/trials?state=RUNNING").json()["items"]
    assert running[0]["value"] is None and running[0]["completed_at"] is None
    bad = api.get("/api/studies/t/trials?state=DONE")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "state"


def test_after_cursor_returns_only_new_and_changed_trials(
    api: TestClient, study: optuna.Study, migrated: Settings
) -> None:
    for value in (3.0, 2.0, 1.0):
        add(study, value)
    age(migrated)
    cursor = api.get("/api/studies/t/trials").json()["next_after"]
    quiet = api.get(f"/api/studies/t/trials?after={cursor}").json()
    assert quiet["items"] == [] and quiet["total"] == 3 and not quiet["has_more"]
    running = add(study, state=TrialState.RUNNING)
    polled = api.get(f"/api/studies/t/trials?after={quiet['next_after']}").json()
    assert numbers(polled) == [3] and polled["items"][0]["state"] == "RUNNING"
    study.tell(running, 0.5)
    changed = api.get(f"/api/studies/t/trials?after={polled['next_after']}").json()
    assert numbers(changed) == [3] and changed["items"][0]["state"] == "COMPLETE"
    assert changed["items"][0]["value"] == 0.5
    study.enqueue_trial({"learning_rate": 0.01})
    queued = api.get(f"/api/studies/t/trials?after={changed['next_after']}").json()
    assert numbers(queued)[-1] == 4 and queued["items"][-1]["state"] == "WAITING"
    assert set(numbers(queued)) <= {3, 4}  # 3 again only because it changed within the overlap
    age(migrated)
    assert api.get(f"/api/studies/t/trials?after={queued['next_after']}").json()["items"] == []


def test_a_truncated_poll_resumes_without_gaps_or_repeats(
    api: TestClient, study: optuna.Study, migrated: Settings
) -> None:
    add(study)
    age(migrated)
    cursor = api.get("/api/studies/t/trials").json()["next_after"]
    for value in range(5):
        add(study, float(value))
    seen: list[int] = []
    pages = 0
    while True:
        page = api.get(f"/api/studies/t/trials?after={cursor}&limit=2").json()
        seen += numbers(page)
        cursor, pages = page["next_after"], pages + 1
        if not page["has_more"]:
            break
    assert seen == [1, 2, 3, 4, 5] and pages == 3
    age(migrated)
    assert api.get(f"/api/studies/t/trials?after={cursor}").json()["items"] == []


BAD_QUERIES = [
    ("after=yesterday", "after"),
    ("after=1.2.3", "after"),
    ("after=99999999999999999999.1", "after"),
    ("after=1.0&offset=5", "offset"),
    ("after=1.0&order=desc", "order"),
    ("order=sideways", "order"),
    ("limit=100000", "limit"),
]


def test_bad_trial_queries_name_the_parameter(api: TestClient, study: optuna.Study) -> None:
    for query, field in BAD_QUERIES:
        response = api.get(f"/api/studies/t/trials?{query}")
        assert response.status_code == 422, (query, response.text)
        assert response.json()["errors"][0]["field"] == field, query


def test_trial_detail_has_curves_metrics_worker_and_failure(
    api: TestClient, study: optuna.Study, migrated: Settings
) -> None:
    curves = {"train_loss": [1.0, 0.5], "val_loss": [1.2, float("nan")], "seconds": [0.1, 0.1]}
    attrs = {"best_epoch": 0, "stop_reason": "max_epochs", "n_params": 321, "note": "kept"}
    good = add(study, 9.5, attrs=attrs, steps=(12.0, 9.5))
    data = TrialData(
        curves=curves,
        metrics={"best": {"rmse": 9.5}, "test": {"rmse": 10.0}},
        extra={"tags": ["a", "b"]},  # a JSON attribute of an older database, moved by 0004
    )
    trial_data.save(get_engine(migrated), "t", good._trial_id, good.number, data)
    add(study, state=TrialState.FAIL, attrs={"fail_reason": "the loss diverged"})
    with session_scope(get_engine(migrated)) as session:
        session.add(WorkerRecord(id="w-1", host="box", pid=1, device="cpu"))
        session.add(TrialRun(study_id=1, worker_id="w-1", optuna_trial_id=good._trial_id,
                             trial_number=0, status="complete"))  # fmt: skip
    detail = api.get("/api/studies/t/trials/0").json()
    assert detail["curves"]["val_loss"] == [1.2, None]  # NaN travels as null
    assert detail["intermediate_values"] == [{"step": 0, "value": 12.0}, {"step": 1, "value": 9.5}]
    assert detail["metrics"] == {"best": {"rmse": 9.5}, "final": {}, "test": {"rmse": 10.0}}
    assert (detail["best_epoch"], detail["stop_reason"], detail["n_params"]) == (
        0,
        "max_epochs",
        321,
    )
    assert detail["worker"] == {"id": "w-1", "host": "box", "device": "cpu"}
    assert detail["user_attrs"] == {"note": "kept", "tags": ["a", "b"]}
    assert detail["has_model"] is False
    failed = api.get("/api/studies/t/trials/1").json()
    assert failed["state"] == "FAIL" and failed["fail_reason"] == "the loss diverged"
    assert failed["value"] is None and failed["worker"] is None


def test_csv_export_has_one_line_per_trial(api: TestClient, study: optuna.Study) -> None:
    add(study, 2.5)
    add(study, state=TrialState.PRUNED)
    response = api.get("/api/studies/t/trials.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert 'filename="t-trials.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["number"] for r in rows] == ["0", "1"] and rows[0]["rmse"] == "2.5"
    assert rows[1]["state"] == "PRUNED" and rows[1]["rmse"] == ""
    assert {"param_learning_rate", "param_batch_size", "duration_s"} <= set(rows[0])
    only = api.get("/api/studies/t/trials.csv?state=PRUNED").text.strip().splitlines()
    assert len(only) == 2


def test_best_and_predict_errors(api: TestClient, study: optuna.Study) -> None:
    assert "no completed trial" in api.get("/api/studies/t/best").json()["detail"]
    assert api.post("/api/studies/t/predict", json={"inputs": [1.0]}).status_code == 404
    for value in (3.0, 1.5, 2.0):
        add(study, value)
    best = api.get("/api/studies/t/best").json()
    assert [t["number"] for t in best["trials"]] == [1] and best["trials"][0]["value"] == 1.5
    assert best["metrics"] == ["rmse"] and best["directions"] == ["minimize"]
    no_model = api.post("/api/studies/t/predict", json={"inputs": [1.0]})
    assert no_model.status_code == 409 and no_model.json()["errors"][0]["field"] == "trial"
    assert api.post("/api/studies/t/predict", json={"inputs": [1], "trial": 9}).status_code == 404
    empty = api.post("/api/studies/t/predict", json={"inputs": []})
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "inputs"


def test_multi_objective_best_is_the_pareto_front(api: TestClient, migrated: Settings) -> None:
    task = {"dataset": "sunspots", "kind": "forecasting", "metric": ["rmse", "n_params"]}
    assert api.post("/api/studies", json=tiny_spec("mo", task=task)).status_code == 201
    mo = optuna.load_study(study_name="mo", storage=migrated.database_url)
    for values in ([1.0, 500.0], [2.0, 100.0], [3.0, 600.0], [1.5, 100.0]):
        trial = mo.ask()
        trial.suggest_float("learning_rate", 0.001, 0.05, log=True)
        mo.tell(trial, values)
    best = api.get("/api/studies/mo/best").json()
    assert [t["number"] for t in best["trials"]] == [0, 3]
    needs = api.post("/api/studies/mo/predict", json={"inputs": [1.0]})
    assert needs.status_code == 422 and needs.json()["errors"][0]["field"] == "trial"


def test_plots_as_json_html_and_comparison(api: TestClient, study: optuna.Study) -> None:
    for value in (3.0, 2.0, 1.0):
        add(study, value)
    figure = api.get("/api/studies/t/plots/history").json()
    assert figure["data"] and "layout" in figure
    page = api.get("/api/studies/t/plots/history?format=html")
    assert page.headers["content-type"].startswith("text/html") and "<html" in page.text[:500]
    api.post("/api/studies", json=tiny_spec("u"))
    both = api.get("/api/compare/plots/history?studies=t,u").json()
    assert "data" in both
    unknown = api.get("/api/studies/t/plots/sunburst")
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "kind"
    assert "'history'" in unknown.json()["detail"]
    assert api.get("/api/compare/plots/history?studies=t,ghost").status_code == 404
    assert api.get("/api/compare/plots/history?studies=,").status_code == 422
    bad = api.get("/api/studies/t/plots/history?format=gif")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "format"


@pytest.mark.parametrize(("fmt", "media", "magic"), [
    ("png", "image/png", b"\x89PNG\r\n\x1a\n"),
    ("svg", "image/svg+xml", b"<svg"),
    ("pdf", "application/pdf", b"%PDF-"),
])
def test_plot_as_an_image(
    api: TestClient, study: optuna.Study, fmt: str, media: str, magic: bytes
) -> None:
    for value in (3.0, 2.0, 1.0):
        add(study, value)
    image = api.get(f"/api/studies/t/plots/history?format={fmt}")
    assert image.status_code == 200, image.text
    assert image.headers["content-type"].startswith(media)
    assert image.headers["content-disposition"] == f'attachment; filename="t-history.{fmt}"'
    assert image.content.startswith(magic) and len(image.content) > 2_000


def test_compare_as_an_image_and_refused_comparison(api: TestClient, study: optuna.Study) -> None:
    add(study, 1.0)
    api.post("/api/studies", json=tiny_spec("u"))
    svg = api.get("/api/compare/plots/edf?studies=t,u&format=svg")
    assert svg.status_code == 200 and svg.content.startswith(b"<svg")
    assert 'filename="compare-edf-t-u.svg"' in svg.headers["content-disposition"]
    task = {"dataset": "digits", "kind": "sequence_classification", "metric": "accuracy"}
    assert api.post("/api/studies", json=tiny_spec("acc", task=task)).status_code == 201
    refused = api.get("/api/compare/plots/history?studies=t,acc&format=png")
    assert refused.status_code == 422
    body = refused.json()
    assert body["errors"][0]["field"] == "studies"
    assert "t: RMSE (lower is better)" in body["detail"]
    assert "acc: accuracy (higher is better)" in body["detail"]


def test_image_without_a_browser_is_a_503_that_says_why(
    api: TestClient, study: optuna.Study, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    add(study, 1.0)
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-chromium-here"))
    answer = api.get("/api/studies/t/plots/history?format=pdf")
    assert answer.status_code == 503
    assert "image export needs Chrome or Chromium" in answer.json()["detail"]
    assert api.get("/api/studies/t/plots/history").status_code == 200  # JSON needs no browser


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("big", REPO_ROOT / "bench" / "make_big_study.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def best_of(runs: int, call: Any) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return min(times), result


@pytest.mark.slow
def test_ten_thousand_trials_page_and_poll_fast(api: TestClient, migrated: Settings) -> None:
    storage = optuna.storages.RDBStorage(migrated.database_url, skip_table_creation=True)
    big = optuna.create_study(storage=storage, study_name="big")
    _generator().insert_all(storage.engine, big._study_id, 10_000, 5, 0)
    storage.engine.dispose()
    url = "/api/studies/big/trials"
    took, deep = best_of(3, lambda: api.get(f"{url}?offset=9900&limit=100").json())
    assert numbers(deep) == list(range(9900, 10000)) and deep["total"] == 10_000
    assert took < 0.5, f"a deep page took {took:.2f}s"
    took, tail = best_of(3, lambda: api.get(f"{url}?order=desc&limit=1000").json())
    assert len(tail["items"]) == 1000 and took < 1.5, f"1000 trials took {took:.2f}s"
    took, polled = best_of(3, lambda: api.get(f"{url}?after={deep['next_after']}").json())
    assert polled["items"] == [] and took < 0.5, f"an empty poll took {took:.2f}s"
    took, detail = best_of(3, lambda: api.get(f"{url}/5000").json())
    assert detail["number"] == 5000 and took < 0.3, f"one trial took {took:.2f}s"
