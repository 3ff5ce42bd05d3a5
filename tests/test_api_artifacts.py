"""A trial's saved files over the API: listed, served one by one and as a zip, only from the
trial's own folder under HPO_ARTIFACT_DIR, with the read-token rules of every other route."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from hpo_service.api.app import create_app
from hpo_service.config import Settings
from tests.conftest import tiny_spec

TOKEN = "artifact-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def cfg(migrated: Settings, tmp_path: Path) -> Settings:
    return migrated.model_copy(
        update={"api_token": SecretStr(TOKEN), "auth_reads": True, "data_dir": tmp_path / "d"}
    )


@pytest.fixture
def api(cfg: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(cfg), headers=AUTH) as client:
        yield client


def error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["detail"])


def test_list_download_and_zip_a_trials_files(api: TestClient, cfg: Settings) -> None:
    assert api.post("/api/studies", json=tiny_spec("a")).status_code == 201
    study = optuna.load_study(study_name="a", storage=cfg.database_url)
    for value in (1.0, 2.0):
        study.tell(study.ask(), value)
    folder = Path(cfg.artifact_dir) / "a" / "trial-00000"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden_units": 8}')
    (folder / "weights.pt").write_bytes(b"\x00" * 300)
    (folder / "sub").mkdir()  # not a file: never served
    secret = Path(cfg.artifact_dir).parent / "secret.txt"
    secret.write_text("outside")
    os.symlink(secret, folder / "escape.txt")  # leads outside the artifact dir

    listing = api.get("/api/studies/a/trials/0/artifacts").json()
    assert [(f["name"], f["size_bytes"]) for f in listing["files"]] == [
        ("config.json", 19),
        ("weights.pt", 300),
    ]
    assert listing["zip_url"] == "/api/studies/a/trials/0/artifacts.zip"
    one = api.get(listing["files"][0]["url"])
    assert one.status_code == 200 and one.content == b'{"hidden_units": 8}'
    assert 'filename="config.json"' in one.headers["content-disposition"]

    archive = api.get(listing["zip_url"])
    assert archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as z:
        assert sorted(z.namelist()) == ["trial-00000/config.json", "trial-00000/weights.pt"]
        assert z.read("trial-00000/weights.pt") == b"\x00" * 300

    for bad in ("escape.txt", "sub", "..%2F..%2Fsecret.txt", "%2E%2E"):
        response = api.get(f"/api/studies/a/trials/0/artifacts/{bad}")
        assert response.status_code == 404, (bad, response.text)
        assert "outside" not in response.text

    # Trial 1 finished without saved files; trial 7 does not exist.
    assert api.get("/api/studies/a/trials/1/artifacts").json() == {
        "study": "a",
        "trial": 1,
        "files": [],
        "zip_url": None,
    }
    assert "has no saved files" in error(api.get("/api/studies/a/trials/1/artifacts.zip"), 404)
    assert "has no trial 7" in error(api.get("/api/studies/a/trials/7/artifacts"), 404)
    assert "no study named 'b'" in error(api.get("/api/studies/b/trials/0/artifacts"), 404)

    with TestClient(create_app(cfg)) as anonymous:  # HPO_AUTH_READS: downloads need the token
        assert error(anonymous.get(listing["files"][0]["url"]), 401)
        assert error(anonymous.get(listing["zip_url"]), 401)
