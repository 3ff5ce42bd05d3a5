"""Study routes through the real app on SQLite and PostgreSQL: create (JSON and YAML), list,
show, lifecycle, queue a configuration, delete, and every error as JSON naming the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from fastapi.testclient import TestClient

from hpo_service.api.app import create_app
from hpo_service.config import Settings
from tests.conftest import tiny_spec


@pytest.fixture
def api(migrated: Settings, tmp_path: Path) -> Iterator[TestClient]:
    cfg = migrated.model_copy(update={"data_dir": tmp_path / "data"})
    with TestClient(create_app(cfg)) as client:
        yield client


def error(response: Any, status: int) -> str:
    """The status is right and the body is the API's JSON error; returns ``detail``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    return str(body["detail"])


def test_create_json_and_yaml_then_show_and_list(api: TestClient) -> None:
    created = api.post("/api/studies", json=tiny_spec("a"))
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/api/studies/a"
    body = created.json()
    assert body["state"] == "created" and body["n_trials"] == 4 and body["finished"] == 0
    assert body["spec"]["budget"]["max_epochs"] == 2 and body["progress"] == 0.0
    assert body["counts"] == {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0, "RUNNING": 0, "WAITING": 0}
    text = yaml.safe_dump(tiny_spec("b"))
    made = api.post(
        "/api/studies?start=true", content=text, headers={"Content-Type": "application/yaml"}
    )
    assert made.status_code == 201 and made.json()["state"] == "running"
    assert made.json()["elapsed_s"] is not None and made.json()["eta_s"] is None
    shown = api.get("/api/studies/b").json()
    assert shown["spec"] == made.json()["spec"] and shown["name"] == "b"
    page = api.get("/api/studies?limit=1").json()
    assert page["total"] == 2 and [s["name"] for s in page["items"]] == ["b"]
    assert [s["name"] for s in api.get("/api/studies?offset=1").json()["items"]] == ["a"]
    running = api.get("/api/studies?state=running").json()
    assert [s["name"] for s in running["items"]] == ["b"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "expected"),
    [
        ({**tiny_spec(), "budjet": {}}, "application/json", 422, "budjet: unknown key"),
        (tiny_spec(task={"dataset": "sunspots", "kind": "nope"}), "application/json", 422,
         "task.kind: "),
        (tiny_spec(budget={"n_trials": 0}), "application/json", 422, "budget.n_trials: "),
        (tiny_spec(name="bad name!"), "application/json", 422, "name: "),
        ('{"name": "x", ', "application/json", 400, "body: malformed JSON"),
        ("name: [unclosed", "application/yaml", 400, "body: malformed YAML"),
        ("a: &x [1, 2]\nb: [*x, *x]\n", "application/yaml", 400, "body: malformed YAML (aliases"),
        ("", "application/json", 400, "body: empty"),
        ("[1, 2]", "application/json", 422, "spec: expected a mapping"),
        ('{"name": "x", "budget": {"timeout_s": NaN}}', "application/json", 422,
         "budget.timeout_s: must be a finite number"),
        ("name: x", "text/plain", 415, "Content-Type: unsupported 'text/plain'"),
        (b"\xff\xfe{}", "application/json", 400, "body: not UTF-8"),
    ],
)  # fmt: skip
def test_bad_specs_are_json_errors_naming_the_field(
    api: TestClient, body: Any, content_type: str, status: int, expected: str
) -> None:
    content = body if isinstance(body, str | bytes) else json.dumps(body)
    response = api.post("/api/studies", content=content, headers={"Content-Type": content_type})
    assert error(response, status).startswith(expected)
    if status == 422 and expected.endswith(": "):
        assert response.json()["errors"][0]["field"] == expected.split(":")[0]
    assert api.get("/api/studies").json()["total"] == 0


def test_duplicate_name_is_409_and_unknown_study_is_404_everywhere(api: TestClient) -> None:
    assert api.post("/api/studies", json=tiny_spec("dup")).status_code == 201
    assert "already exists" in error(api.post("/api/studies", json=tiny_spec("dup")), 409)
    for method, path in [
        ("GET", "/api/studies/ghost"),
        ("POST", "/api/studies/ghost/pause"),
        ("DELETE", "/api/studies/ghost"),
        ("GET", "/api/studies/ghost/trials"),
        ("GET", "/api/studies/ghost/trials/0"),
        ("GET", "/api/studies/ghost/trials.csv"),
        ("GET", "/api/studies/ghost/best"),
        ("GET", "/api/studies/ghost/plots/history"),
        ("DELETE", "/api/studies/ghost/workers"),
    ]:
        assert "ghost" in error(api.request(method, path), 404), path
    assert "no trial 7" in error(api.get("/api/studies/dup/trials/7"), 404)
    assert error(api.get("/api/nothing/here"), 404).startswith("no such resource")
    not_allowed = api.put("/api/studies")
    assert error(not_allowed, 405).startswith("method PUT")
    assert not_allowed.headers["allow"] == "GET, POST"  # both routes of the path, not the first


def test_query_validation_names_the_parameter(api: TestClient) -> None:
    assert error(api.get("/api/studies?limit=0"), 422).startswith("limit: ")
    assert error(api.get("/api/studies?state=sleeping"), 422).startswith("state: unknown study")
    assert error(api.get("/api/studies?offset=-1"), 422).startswith("offset: ")


def test_lifecycle_transitions_and_conflicts(api: TestClient) -> None:
    api.post("/api/studies", json=tiny_spec("life"))
    assert "while it is created" in error(api.post("/api/studies/life/pause"), 409)
    assert api.post("/api/studies/life/resume").json()["state"] == "running"
    assert api.post("/api/studies/life/pause").json()["state"] == "paused"
    assert api.post("/api/studies/life/resume").json()["state"] == "running"
    stopped = api.post("/api/studies/life/stop").json()
    assert stopped["state"] == "stopped" and stopped["finished_at"] is not None
    assert stopped["eta_s"] == 0.0
    assert "while it is stopped" in error(api.post("/api/studies/life/resume"), 409)
    assert "stopped" in error(api.post("/api/studies/life/workers", json={}), 409)


def test_queue_a_configuration_checks_it_against_the_space(api: TestClient) -> None:
    api.post("/api/studies", json=tiny_spec("q"))
    queued = api.post(
        "/api/studies/q/trials", json={"params": {"learning_rate": 0.01, "batch_size": 64}}
    )
    assert queued.status_code == 201, queued.text
    assert queued.json() == {
        "study": "q",
        "params": {"learning_rate": 0.01, "batch_size": 64},
        "waiting": 1,
    }
    waiting = api.get("/api/studies/q/trials?state=WAITING").json()["items"]
    assert len(waiting) == 1 and waiting[0]["state"] == "WAITING"
    bad = api.post(
        "/api/studies/q/trials",
        json={"params": {"learning_rate": 5, "batch_size": 48, "colour": 1}},
    )
    detail = error(bad, 422)
    fields = [e["field"] for e in bad.json()["errors"]]
    assert fields == ["params.learning_rate", "params.batch_size", "params.colour"], detail
    assert "outside the range" in detail and "not one of the choices" in detail
    assert error(api.post("/api/studies/q/trials", json={"params": {}}), 422).startswith("params:")
    assert error(api.post("/api/studies/q/trials", json={}), 422).startswith("params: ")
    assert error(
        api.post(
            "/api/studies/q/trials", content=b"{", headers={"Content-Type": "application/json"}
        ),
        400,
    ).startswith("body: malformed JSON")
    api.post("/api/studies/q/stop")
    assert "stopped" in error(
        api.post("/api/studies/q/trials", json={"params": {"batch_size": 32}}), 409
    )


def test_progress_elapsed_and_eta_follow_finished_trials(
    api: TestClient, migrated: Settings
) -> None:
    api.post("/api/studies?start=true", json=tiny_spec("eta", n_trials=4))
    study = optuna.load_study(study_name="eta", storage=migrated.database_url)
    for value in (3.0, 2.0):
        trial = study.ask()
        trial.suggest_float("learning_rate", 0.001, 0.05, log=True)
        study.tell(trial, value)
    shown = api.get("/api/studies/eta").json()
    assert shown["finished"] == 2 and shown["progress"] == 0.5
    assert shown["best"]["value"] == 2.0 and shown["best"]["number"] == 1
    assert shown["eta_s"] is not None and shown["eta_s"] >= 0
    assert shown["eta_s"] == pytest.approx(shown["elapsed_s"], abs=1.0)  # 2 done in t, 2 left


def test_delete_removes_study_trials_and_artifacts(api: TestClient, migrated: Settings) -> None:
    api.post("/api/studies", json=tiny_spec("gone"))
    folder = Path(migrated.artifact_dir) / "gone" / "trial-00000"
    folder.mkdir(parents=True)
    (folder / "weights.pt").write_bytes(b"x")
    deleted = api.delete("/api/studies/gone")
    assert deleted.status_code == 204 and deleted.content == b""
    assert not folder.parent.exists()
    error(api.get("/api/studies/gone"), 404)
    assert api.post("/api/studies", json=tiny_spec("gone")).status_code == 201  # name is free


def test_delete_refuses_while_trials_run_unless_forced(api: TestClient, migrated: Settings) -> None:
    api.post("/api/studies?start=true", json=tiny_spec("busy"))
    optuna.load_study(study_name="busy", storage=migrated.database_url).ask()  # a RUNNING trial
    assert "1 running trial" in error(api.delete("/api/studies/busy"), 409)
    assert api.delete("/api/studies/busy?force=true").status_code == 204
