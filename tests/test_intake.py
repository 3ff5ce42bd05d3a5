"""One spec intake for every door (hpo_service.store.intake): an upload spec means the same thing
through the API and the CLI, and the CLI decodes files as warily as the API decodes bodies."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from hpo_service.api.app import create_app
from hpo_service.config import Settings
from hpo_service.data.sources import DataRoots
from hpo_service.spec import SpecError, SpecLimits
from hpo_service.store.db import get_engine
from hpo_service.store.intake import intake_file
from hpo_service.store.studies import get_study
from tests.conftest import REPO_ROOT, env_for, tiny_spec
from tests.test_datasets import series_csv

HPO = str(REPO_ROOT / ".venv" / "bin" / "hpo")


def hpo(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**env_for(settings), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([HPO, *args], env=env, capture_output=True, text=True, timeout=120)


def test_an_upload_spec_is_stored_alike_through_api_and_cli(
    migrated: Settings, tmp_path: Path
) -> None:
    with TestClient(create_app(migrated)) as api:
        made = api.post(
            "/api/datasets",
            files={"file": ("sun.csv", series_csv(), "text/csv")},
            data={"kind": "forecasting", "value_column": "spots", "time_column": "year"},
        )
        assert made.status_code == 201, made.text
        task = {"dataset": made.json()["dataset"], "kind": "forecasting", "lookback": 6}
        created = api.post("/api/studies", json=tiny_spec("via-api", task=task))
        assert created.status_code == 201, created.text
    file = tmp_path / "up.yaml"
    file.write_text(yaml.safe_dump(tiny_spec("via-cli", task=task)))
    result = hpo(migrated, "study", "create", str(file))
    assert result.returncode == 0, result.stderr
    engine = get_engine(migrated)
    via_api = get_study(engine, "via-api").spec.model_dump(exclude={"name"})
    via_cli = get_study(engine, "via-cli").spec.model_dump(exclude={"name"})
    assert via_cli == via_api
    assert via_cli["task"]["value_column"] == "spots"  # filled from the upload's mapping


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: &x [1]\nb: *x\n", "aliases"),
        ("name: x\ntask: {dataset: sunspots, kind: forecasting, lookback: .nan}\n", "finite"),
        ("name: [unclosed\n", "malformed YAML"),
        ("[" * 100 + "]" * 100, "nested too deeply"),
    ],
)
def test_the_cli_refuses_what_the_api_refuses(
    migrated: Settings, tmp_path: Path, text: str, problem: str
) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    with pytest.raises(SpecError, match=problem):
        intake_file(get_engine(migrated), file, SpecLimits(), roots=DataRoots())
    with TestClient(create_app(migrated)) as api:
        answer = api.post(
            "/api/studies", content=text, headers={"Content-Type": "application/yaml"}
        )
    assert answer.status_code in (400, 422) and problem in json.dumps(answer.json())
