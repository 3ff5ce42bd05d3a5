"""Notes on studies and trials over real databases: stored in ``hpo_notes``, written with the
token, returned as stored (the dashboard escapes them; test_browser checks it renders safely),
deleted with their study."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr

from hpo_service.api.app import create_app
from hpo_service.config import Settings
from hpo_service.store.db import get_engine
from tests.conftest import tiny_spec

TOKEN = "note-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SCRIPT = '<script>alert("x")</script> **bold** <img src=x onerror=alert(1)>'


@pytest.fixture
def api(migrated: Settings, tmp_path: Path) -> Iterator[TestClient]:
    cfg = migrated.model_copy(update={"data_dir": tmp_path / "data", "api_token": SecretStr(TOKEN)})
    with TestClient(create_app(cfg)) as client:
        yield client


def error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["detail"])


def notes_rows(settings: Settings) -> int:
    with get_engine(settings).connect() as conn:
        return int(conn.scalar(sa.text("SELECT COUNT(*) FROM hpo_notes")) or 0)


def test_study_and_trial_notes_round_trip_with_the_token(
    api: TestClient, migrated: Settings
) -> None:
    assert api.post("/api/studies", json=tiny_spec("n"), headers=AUTH).status_code == 201
    study = optuna.load_study(study_name="n", storage=migrated.database_url)
    trial = study.ask()
    study.tell(trial, 1.0)

    empty = api.get("/api/studies/n/notes").json()
    assert empty == {"study": "n", "trial": None, "text": "", "updated_at": None}
    assert "bearer token" in error(api.put("/api/studies/n/notes", json={"text": "x"}), 401)

    put = api.put("/api/studies/n/notes", json={"text": SCRIPT}, headers=AUTH)
    assert put.status_code == 200, put.text
    assert put.json()["text"] == SCRIPT and put.json()["updated_at"]
    again = api.put("/api/studies/n/notes", json={"text": "# second"}, headers=AUTH)
    assert again.json()["text"] == "# second"
    assert api.get("/api/studies/n/notes").json()["text"] == "# second"

    path = "/api/studies/n/trials/0/notes"
    assert api.put(path, json={"text": "trial *zero*"}, headers=AUTH).status_code == 200
    got = api.get(path).json()
    assert (got["trial"], got["text"]) == (0, "trial *zero*")
    assert notes_rows(migrated) == 2  # one row per subject, replaced in place

    assert api.delete("/api/studies/n", headers=AUTH).status_code == 204
    assert notes_rows(migrated) == 0


def test_note_errors_name_the_problem(api: TestClient) -> None:
    api.post("/api/studies", json=tiny_spec("m"), headers=AUTH)
    assert "no study named 'zz'" in error(api.get("/api/studies/zz/notes"), 404)
    assert "no study named 'zz'" in error(
        api.put("/api/studies/zz/notes", json={"text": "a"}, headers=AUTH), 404
    )
    assert "has no trial 3" in error(api.get("/api/studies/m/trials/3/notes"), 404)
    too_long = api.put("/api/studies/m/notes", json={"text": "a" * 20_001}, headers=AUTH)
    assert error(too_long, 422).startswith("text: ")
    assert error(api.put("/api/studies/m/notes", json={}, headers=AUTH), 422).startswith("text: ")
    wrong = api.put("/api/studies/m/notes", json={"text": 5}, headers=AUTH)
    assert error(wrong, 422).startswith("text: ")
