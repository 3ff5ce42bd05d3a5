"""Baselines in the API, over real databases and a real worker: the study detail and /best
carry the list and the verdict; before the first trial they say why they are missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hpo_service.api.app import create_app
from hpo_service.config import Settings
from hpo_service.scheduling.worker import Worker, WorkerOptions
from hpo_service.spec import parse_spec
from hpo_service.store.baselines import save_baselines
from hpo_service.store.db import get_engine
from hpo_service.store.studies import create_study
from tests.conftest import tiny_spec


@pytest.fixture
def api(migrated: Settings, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(migrated.model_copy(update={"data_dir": tmp_path}))) as client:
        yield client


def test_detail_and_best_show_baselines_and_verdict(migrated: Settings, api: TestClient) -> None:
    create_study(migrated, parse_spec(tiny_spec("fc", n_trials=2)), start=True)
    before = api.get("/api/studies/fc").json()
    assert before["baselines"] is None and before["best_vs_baseline"] is None
    assert before["baselines_note"].startswith("not computed yet")
    Worker(migrated, WorkerOptions(study="fc", exit_when_idle=True)).serve()

    detail = api.get("/api/studies/fc").json()
    names = [b["name"] for b in detail["baselines"]]
    assert names == ["naive", "seasonal_naive", "ets"]
    assert all(b["val"] > 0 and b["test"] > 0 for b in detail["baselines"])
    verdict = detail["best_vs_baseline"]
    best_val = min(detail["baselines"], key=lambda b: b["val"])
    assert verdict["baseline"] == best_val["label"] and verdict["split"] == "test"
    assert verdict["baseline_value"] == pytest.approx(best_val["test"])
    assert verdict["trial_value"] == pytest.approx(detail["best"]["test_metrics"]["rmse"])
    assert verdict["beats"] == (verdict["trial_value"] < verdict["baseline_value"])
    start = "beats the best baseline by" if verdict["beats"] else "does not beat the best baseline"
    assert verdict["text"].startswith(start)

    # sunspots is small, so the best trial was refit (task.refit auto): its figure on the same
    # test split is reported beside the verdict, which compares the search run's
    refit = detail["best"]["refit_test_metrics"]["rmse"]
    assert verdict["refit_value"] == pytest.approx(refit) and refit != verdict["trial_value"]
    assert f"its refit on train+validation (serving predictions): {refit:.4g} on test" in (
        verdict["text"]
    )
    assert detail["best"]["test_n"] > 0

    best = api.get("/api/studies/fc/best").json()
    assert best["best_vs_baseline"] == verdict
    top = best["trials"][0]
    assert top["metrics"]["test"]["rmse"] == pytest.approx(verdict["trial_value"])
    assert top["refit"]["test_metrics"]["rmse"] == pytest.approx(refit)
    assert [b["name"] for b in best["baselines"]] == names
    figure = api.get("/api/studies/fc/plots/history").json()
    lines = [t for t in figure["data"] if t["name"].startswith("baseline: ")]
    assert [t["name"] for t in lines] == [f"baseline: {b['label']}" for b in detail["baselines"]]
    assert lines[2]["y"] == [pytest.approx(detail["baselines"][2]["val"])] * 2  # validation
    listed = api.get("/api/studies").json()["items"][0]
    assert listed["baselines"] is None  # lists skip the per-study query


def test_a_study_that_loses_says_so(migrated: Settings, api: TestClient) -> None:
    create_study(migrated, parse_spec(tiny_spec("lose", n_trials=1)), start=True)
    rows = [{"name": "oracle", "label": "oracle", "val": {"rmse": 0.5}, "test": {"rmse": 0.5}}]
    save_baselines(get_engine(migrated), "lose", rows)  # stored first: the worker keeps it
    Worker(migrated, WorkerOptions(study="lose", exit_when_idle=True)).serve()
    verdict = api.get("/api/studies/lose").json()["best_vs_baseline"]
    assert verdict["beats"] is False
    assert verdict["text"].startswith("does not beat the best baseline (")
    assert "% worse); rmse on test" in verdict["text"]


def test_a_failed_computation_is_reported(migrated: Settings, api: TestClient) -> None:
    create_study(migrated, parse_spec(tiny_spec("err")))
    save_baselines(get_engine(migrated), "err", [], "ValueError: series too short")
    body = api.get("/api/studies/err").json()
    assert body["baselines"] is None
    assert body["baselines_note"] == "baselines failed: ValueError: series too short"
