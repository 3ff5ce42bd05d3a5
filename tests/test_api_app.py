"""The application shell: no import-time side effects, probes, metrics, auth, CORS, body limit,
the dashboard mount, the OpenAPI document and the server-side reaper."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from hpo_service.api import auth
from hpo_service.api.app import create_app
from hpo_service.config import Settings, get_settings
from hpo_service.scheduling import claims
from hpo_service.store.db import get_engine, session_scope
from hpo_service.store.studies import get_study, trial_counts
from tests.conftest import make_settings, tiny_spec

TOKEN = "s3cret-token"


def client(settings: Settings, **overrides: object) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=overrides)))


@pytest.fixture
def api(migrated: Settings) -> Iterator[TestClient]:
    with client(migrated) as c:
        yield c


def test_importing_the_app_builds_nothing(tmp_path: Path) -> None:
    code = (
        "import hpo_service.api.app, hpo_service.store.db as d, hpo_service.config as c\n"
        "assert not d._engines and not d._storages, 'engine built at import'\n"
        "assert c.get_settings.cache_info().currsize == 0, 'settings read at import'\n"
        "import sys; assert 'torch' not in sys.modules, 'torch loaded before /predict'\n"
    )
    env = {"HPO_DATABASE_URL": f"sqlite:///{tmp_path / 'nowhere' / 'x.db'}", "PATH": "/usr/bin"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_api_names_the_trainers_weights_file() -> None:
    from hpo_service.api.views import WEIGHTS_FILE
    from hpo_service.train.artifacts import WEIGHTS

    assert WEIGHTS_FILE == WEIGHTS


def test_create_app_reads_the_environment_when_called(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HPO_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("HPO_API_TOKEN", TOKEN)
    get_settings.cache_clear()
    try:
        app = create_app()
        assert app.state.settings.database_url.endswith("env.db")
        assert app.state.settings.api_token.get_secret_value() == TOKEN
    finally:
        get_settings.cache_clear()


def test_health_and_readiness_on_an_unmigrated_then_migrated_database(settings: Settings) -> None:
    from hpo_service.store.db import migrate

    with client(settings) as c:
        assert c.get("/healthz").json() == {"status": "ok", "detail": None}
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
        assert "hpo migrate" in ready.json()["detail"]
        listed = c.get("/api/studies")  # the API answers 503 JSON, not a 500
        assert listed.status_code == 503 and listed.json()["detail"].startswith("database")
        migrate(settings)
        assert c.get("/readyz").json() == {"status": "ready", "detail": None}
        assert c.get("/api/studies").status_code == 200


def test_metrics_count_trials_workers_and_requests(api: TestClient, migrated: Settings) -> None:
    api.post("/api/studies", json=tiny_spec("m"))
    study = optuna.load_study(study_name="m", storage=migrated.database_url)
    trial = study.ask()
    study.tell(trial, 1.0)
    api.get("/api/studies/m")
    text = api.get("/metrics").text
    assert 'hpo_trials{state="COMPLETE",study="m"} 1.0' in text
    assert 'hpo_studies{state="created"} 1.0' in text
    assert "hpo_workers_live 0.0" in text and "hpo_database_up 1.0" in text
    assert (
        'hpo_http_request_duration_seconds_count{method="GET",route="/api/studies/{name}",'
        'status="200"} 1.0'
    ) in text


def test_auth_on_guards_mutations_with_a_constant_time_compare(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    with client(migrated, api_token=SecretStr(TOKEN)) as c:
        missing = c.post("/api/studies", json=tiny_spec("a"))
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert missing.json()["detail"].startswith("missing bearer token")
        wrong = c.post("/api/studies", json=tiny_spec("a"), headers={"Authorization": "Bearer x"})
        assert wrong.status_code == 401 and wrong.json()["detail"] == "invalid bearer token"
        basic = c.delete("/api/studies/a", headers={"Authorization": "Basic eDp5"})
        assert basic.status_code == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert c.post("/api/studies", json=tiny_spec("a"), headers=good).status_code == 201
        assert c.get("/api/studies/a").status_code == 200  # reads stay open by default
        assert c.get("/metrics").status_code == 200
        assert c.post("/api/studies/a/resume").status_code == 401
    assert (TOKEN.encode(), b"x") in compared


def test_auth_reads_guards_reads_but_not_probes(migrated: Settings) -> None:
    with client(migrated, api_token=SecretStr(TOKEN), auth_reads=True) as c:
        for path in ("/api/studies", "/api/workers", "/api/datasets", "/metrics"):
            assert c.get(path).status_code == 401, path
        assert (
            c.get("/api/studies", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        )
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        assert c.get("/openapi.json").status_code == 200


def test_auth_off_needs_no_header(api: TestClient) -> None:
    assert api.post("/api/studies", json=tiny_spec("open")).status_code == 201
    assert api.delete("/api/studies/open").status_code == 204


def test_cors_is_off_by_default_and_follows_the_allow_list(migrated: Settings) -> None:
    preflight = {"Origin": "http://dash.example", "Access-Control-Request-Method": "POST"}
    with client(migrated) as c:
        answer = c.options("/api/studies", headers=preflight)
        assert "access-control-allow-origin" not in answer.headers
    with client(migrated, cors_origins=["http://dash.example"]) as c:
        answer = c.options("/api/studies", headers=preflight)
        assert answer.headers["access-control-allow-origin"] == "http://dash.example"
        other = c.options("/api/studies", headers={**preflight, "Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_body_limit_answers_413_json(migrated: Settings) -> None:
    with client(migrated, max_body_mb=0.01) as c:
        big = b'{"name": "' + b"x" * 200_000 + b'"}'
        declared = c.post("/api/studies", content=big, headers={"Content-Type": "application/json"})
        assert declared.status_code == 413 and "0.01 MB" in declared.json()["detail"]
        assert "HPO_MAX_BODY_MB" in declared.json()["detail"]

        def chunks() -> Iterator[bytes]:
            yield b'{"name": "'
            for _ in range(50):
                yield b"x" * 4096
            yield b'"}'

        streamed = c.post(
            "/api/studies", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413 and "limit" in streamed.json()["detail"]
        assert c.get("/api/studies").json()["total"] == 0


def test_dashboard_and_plotly_are_served_offline(migrated: Settings) -> None:
    with client(migrated) as c:
        index = c.get("/")
        assert index.status_code == 200 and "<html" in index.text.lower()
        assert c.get("/static/js/app.js").status_code == 200
        assert c.get("/static/../config.py").status_code == 404
        plotly_js = c.get("/vendor/plotly.min.js")
        assert plotly_js.status_code == 200 and len(plotly_js.content) > 1_000_000


def test_openapi_documents_the_spec_body_and_the_cursor(api: TestClient) -> None:
    doc = api.get("/openapi.json").json()
    create = doc["paths"]["/api/studies"]["post"]["requestBody"]["content"]
    assert create["application/json"]["schema"] == {"$ref": "#/components/schemas/StudySpec"}
    assert "application/yaml" in create
    schemas = doc["components"]["schemas"]
    assert {"StudySpec", "TaskSpec", "SearchSpace", "StudyOut", "TrialPage", "ErrorOut"} <= set(
        schemas
    )
    params = {p["name"]: p for p in doc["paths"]["/api/studies/{name}/trials"]["get"]["parameters"]}
    assert "next_after" in params["after"]["description"]
    assert "merge by `number`" in params["after"]["description"]


def test_the_server_reaps_trials_whose_worker_vanished(migrated: Settings) -> None:
    fast = {"heartbeat_interval_s": 0.2, "stale_after_s": 0.5}
    with client(migrated, **fast) as c:
        c.post("/api/studies?start=true", json=tiny_spec("lost"))
        engine = get_engine(migrated)
        info = get_study(engine, "lost")
        study = optuna.load_study(study_name="lost", storage=migrated.database_url)
        with session_scope(engine) as session:
            run_id = claims.claim(session, info.id, "ghost-worker")
        assert run_id is not None
        trial = study.ask()
        trial.suggest_float("learning_rate", 0.001, 0.05, log=True)
        with session_scope(engine) as session:
            claims.attach(session, run_id, trial, 0)
        deadline = time.monotonic() + 20
        counts = trial_counts(engine, "lost")
        while time.monotonic() < deadline and counts["WAITING"] == 0:
            time.sleep(0.2)
            counts = trial_counts(engine, "lost")
        assert counts["FAIL"] == 1 and counts["WAITING"] == 1, counts


def test_make_settings_helper_is_usable_offline(tmp_path: Path) -> None:
    """Guards the fixture the app tests rely on: settings need no database to build an app."""
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'x.db'}", tmp_path))
    assert app.title == "hpo-service" and app.state.supervisor.pids() == []
