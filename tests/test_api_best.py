"""POST /api/studies/{name}/predict: the per-request input limit (HPO_MAX_PREDICT_INPUTS) is
checked first, answered 413 naming the field, before any study, model or torch is touched."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from hpo_service.api.app import create_app
from hpo_service.config import Settings


def test_too_many_inputs_is_413_naming_the_field(migrated: Settings, tmp_path: Path) -> None:
    cfg = migrated.model_copy(update={"max_predict_inputs": 10})
    with TestClient(create_app(cfg)) as client:
        over = client.post("/api/studies/any/predict", json={"inputs": ["a text"] * 11})
        assert over.status_code == 413, over.text
        body = over.json()
        assert body["errors"][0]["field"] == "inputs"
        assert "HPO_MAX_PREDICT_INPUTS" in body["detail"] and "11 inputs" in body["detail"]
        within = client.post("/api/studies/any/predict", json={"inputs": ["a text"] * 10})
        assert within.status_code == 404, within.text  # the limit passed: now the study counts


def test_best_and_predict_serve_the_ensemble(migrated: Settings) -> None:
    """With task.ensemble_trials the study view, /best and the verdict show the ensemble, and
    /predict answers with it unless a trial is named; a trial that does not exist is a 404."""
    from tests.test_scheduling_ensembles import BAD, GOOD, MID, ensemble_spec, run_trials

    stored = run_trials(migrated, ensemble_spec("api-ens"), [GOOD, BAD, MID])[-1]
    assert stored is not None
    series = [float(v % 11) for v in range(30)]
    with TestClient(create_app(migrated)) as client:
        best = client.get("/api/studies/api-ens/best").json()
        assert best["ensemble"]["members"] == stored.members
        assert best["ensemble"]["validation"]["rmse"] == stored.validation["rmse"]
        verdict = best["best_vs_baseline"]
        members = ", ".join(map(str, stored.members))
        assert f"the ensemble of trials {members} (serving predictions)" in verdict["text"]
        assert verdict["ensemble_value"] == (stored.test or {})["rmse"]
        shown = client.get("/api/studies/api-ens").json()
        assert shown["best"]["ensemble"]["members"] == stored.members
        answer = client.post("/api/studies/api-ens/predict", json={"inputs": series}).json()
        assert answer["trial"] is None and answer["ensemble"] == stored.members
        one = client.post("/api/studies/api-ens/predict", json={"inputs": series, "trial": 1})
        assert one.json()["trial"] == 1 and one.json()["ensemble"] is None
        assert one.json()["predictions"] != answer["predictions"]
        missing = client.post("/api/studies/api-ens/predict", json={"inputs": series, "trial": 9})
        assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "trial"
