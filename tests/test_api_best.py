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
