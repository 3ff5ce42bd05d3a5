"""The HTTP layer's defences through the real app on SQLite and PostgreSQL: the token is checked
before any body is read, every body has a limit, errors name no server path or database
address, unloadable artifacts are a 409, 405s carry the full ``Allow`` header, and the OpenAPI
document declares the token exactly where the server enforces it. Timing and streaming checks
against a real ``hpo serve`` are in ``test_api_serve_security.py``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.types import Message, Receive, Scope, Send

from hpo_service.api.app import create_app
from hpo_service.config import Settings
from hpo_service.store import trial_data
from hpo_service.store.db import get_engine
from hpo_service.store.trial_data import TrialData
from hpo_service.train import fit, save_artifacts
from tests.conftest import make_settings, tiny_spec
from tests.test_datasets import series_csv
from tests.test_train_forecast import sunspots, tiny

TOKEN = "s3cret-token"
GOOD = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}
MIB = 1 << 20


class BodyReadCounter:
    """Wraps the app and counts the body bytes it pulls from the client."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.bytes_read = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counting() -> Message:
            message = await receive()
            self.bytes_read += len(message.get("body", b""))
            return message

        await self.app(scope, counting if scope["type"] == "http" else receive, send)


def secured(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(update={"api_token": SecretStr(TOKEN), **overrides})


def test_the_token_is_checked_before_any_body_is_read(migrated: Settings) -> None:
    # A body limit far above the body sent: only the token check can stop the read.
    counter = BodyReadCounter(create_app(secured(migrated, max_body_mb=100)))
    huge = b'{"inputs": [' + b"1," * (20 * MIB) + b"1]}"
    with TestClient(counter) as c:
        for path in ("/api/studies", "/api/studies/x/trials", "/api/studies/x/predict",
                     "/api/studies/x/workers"):  # fmt: skip
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
                for body in (huge, b'{"inputs": [1, ', b"\xff not json"):
                    answer = c.post(path, content=body, headers={**JSON, **headers})
                    assert answer.status_code == 401, (path, headers, answer.text)
                    assert answer.headers["www-authenticate"] == "Bearer"
                    assert answer.headers["connection"] == "close"
        assert counter.bytes_read == 0
        malformed = c.post(
            "/api/studies/x/predict", content=b'{"inputs": [1, ', headers={**JSON, **GOOD}
        )
        assert malformed.status_code == 400 and counter.bytes_read > 0  # the counter counts


def test_every_body_has_a_limit_and_uploads_have_their_own(migrated: Settings) -> None:
    cfg = secured(migrated, max_body_mb=0.05, max_upload_mb=0.2)
    big = b'{"params": {"x": "' + b"x" * 100_000 + b'"}}'

    def chunks() -> Iterator[bytes]:
        for _ in range(30):
            yield b"x" * 4096

    with TestClient(create_app(cfg)) as c:
        for path in ("/api/studies", "/api/studies/x/trials", "/api/studies/x/predict"):
            declared = c.post(path, content=big, headers={**JSON, **GOOD})
            assert declared.status_code == 413, path
            assert declared.json()["detail"] == (
                "request body is larger than the 0.05 MB limit (HPO_MAX_BODY_MB)"
            )
            assert c.post(path, content=big, headers=JSON).status_code == 401
            streamed = c.post(path, content=chunks(), headers={**JSON, **GOOD})
            assert streamed.status_code == 413 and "HPO_MAX_BODY_MB" in streamed.text
        csv = series_csv(rows=8000)  # about 100 kB: over the body limit, within the upload's
        assert 0.05 * MIB < len(csv) < 0.2 * MIB
        files = {"file": ("s.csv", csv, "text/csv")}
        form = {"kind": "forecasting", "value_column": "spots"}
        made = c.post("/api/datasets", files=files, data=form, headers=GOOD)
        assert made.status_code == 201, made.text
        over = {"file": ("s.csv", series_csv(rows=40000), "text/csv")}
        refused = c.post("/api/datasets", files=over, data=form, headers=GOOD)
        assert refused.status_code == 413 and "(HPO_MAX_UPLOAD_MB)" in refused.json()["detail"]
        assert c.get("/api/studies").json()["total"] == 0


def assert_leaks_nothing(answer: Any, *secrets: str) -> None:
    text = answer.text.lower()
    for secret in ("psycopg", "sqlite", "sqlalchemy", "traceback", *secrets):
        assert secret.lower() not in text, (secret, answer.text)


def test_database_errors_name_no_host_port_driver_or_path(
    settings: Settings, tmp_path: Path
) -> None:
    from hpo_service.store.db import migrate

    with TestClient(create_app(settings)) as c:  # not migrated yet
        ready = c.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "unavailable",
            "detail": "schema outdated: run hpo migrate",
        }
        listed = c.get("/api/studies")
        assert listed.status_code == 503 and listed.headers["retry-after"] == "5"
        assert listed.json()["detail"] == "database unavailable: schema outdated: run hpo migrate"
        for answer in (ready, listed):
            assert_leaks_nothing(answer, str(tmp_path), "127.0.0.1", "5432", "postgres")
        migrate(settings)
        assert c.get("/readyz").status_code == 200
    away = make_settings("postgresql://hpo:pw@127.0.0.1:9/hpo", tmp_path)  # nothing listens
    with TestClient(create_app(away)) as c:
        ready, listed = c.get("/readyz"), c.get("/api/studies/x")
        assert ready.json() == {"status": "unavailable", "detail": "database unavailable"}
        assert listed.status_code == 503 and listed.json()["detail"] == "database unavailable"
        for answer in (ready, listed):
            assert_leaks_nothing(answer, "127.0.0.1", ":9", "hpo:pw", "refused", "postgresql")


def test_unexpected_errors_are_a_generic_500(migrated: Settings) -> None:
    app = create_app(migrated)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("/srv/secret/path leaked")

    with TestClient(app, raise_server_exceptions=False) as c:
        answer = c.get("/boom")
    assert answer.status_code == 500 and answer.json()["detail"].startswith("internal server error")
    assert_leaks_nothing(answer, "/srv/secret", "RuntimeError")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real trained model's artifacts, and copies broken in each way a folder can break."""
    root = tmp_path_factory.mktemp("artifacts")
    data, config = sunspots(), tiny(hidden_units=4, max_epochs=1)
    good = save_artifacts(fit(config, data), data, config, root / "good")
    weights = (good / "weights.pt").read_bytes()
    state = torch.load(good / "weights.pt", weights_only=True)
    breakages: dict[str, Any] = {
        "garbage": lambda d: (d / "weights.pt").write_bytes(b"not a zip, not a pickle"),
        "truncated": lambda d: (d / "weights.pt").write_bytes(weights[: len(weights) // 2]),
        "shapes": lambda d: torch.save({**state, "head.weight": torch.zeros(3)}, d / "weights.pt"),
        "unsafe": lambda d: torch.save({"x": Path("/etc")}, d / "weights.pt"),
        "no-preprocessing": lambda d: (d / "preprocessing.json").unlink(),
        "bad-json": lambda d: (d / "config.json").write_text("{"),
        "bad-state": lambda d: (d / "preprocessing.json").write_text('{"kind": "forecasting"}'),
    }  # fmt: skip
    folders = {"good": good}
    for name, breaks in breakages.items():
        folders[name] = Path(shutil.copytree(good, root / name))
        breaks(folders[name])
    return folders


def test_unloadable_artifacts_are_409_naming_the_file(
    migrated: Settings, artifacts: dict[str, Path]
) -> None:
    names = list(artifacts)
    with TestClient(create_app(migrated)) as c:
        assert c.post("/api/studies", json=tiny_spec("art")).status_code == 201
        study = optuna.load_study(study_name="art", storage=migrated.database_url)
        for name in names:
            study.add_trial(optuna.trial.create_trial(value=1.0))
            added = study.trials[-1]
            data = TrialData(artifact_dir=str(artifacts[name]))
            trial_data.save(get_engine(migrated), "art", added._trial_id, added.number, data)
        series = {"inputs": [float(v) for v in range(30)]}
        good = c.post("/api/studies/art/predict", json={**series, "trial": 0})
        assert good.status_code == 200, good.text
        expected = {"garbage": "weights.pt", "truncated": "weights.pt", "shapes": "weights.pt",
                    "unsafe": "weights.pt", "no-preprocessing": "preprocessing.json",
                    "bad-json": "config.json", "bad-state": "preprocessing.json"}  # fmt: skip
        for number, name in enumerate(names[1:], start=1):
            answer = c.post("/api/studies/art/predict", json={**series, "trial": number})
            assert answer.status_code == 409, (name, answer.text)
            assert answer.json()["errors"][0]["field"] == "trial"
            assert expected[name] in answer.json()["detail"], (name, answer.text)
            assert_leaks_nothing(answer, str(artifacts[name].parent))


def path_example(path: str) -> str:
    for param, value in (("{name}", "x"), ("{number}", "0"), ("{kind}", "history"),
                         ("{dataset_id}", "d")):  # fmt: skip
        path = path.replace(param, value)
    return path


def test_every_405_lists_every_method_of_the_path(migrated: Settings) -> None:
    with TestClient(create_app(migrated)) as c:
        doc = c.get("/openapi.json").json()
        for path, operations in doc["paths"].items():
            answer = c.request("TRACE", path_example(path))  # no route takes TRACE
            assert answer.status_code == 405, path
            documented = {method.upper() for method in operations}
            allowed = set(answer.headers["allow"].split(", "))
            assert allowed - {"HEAD"} == documented, (path, allowed)
            assert answer.json()["detail"].startswith("method TRACE is not allowed")
        assert c.put("/api/studies").headers["allow"] == "GET, POST"
        assert c.post("/static/js/app.js").headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    ("token", "auth_reads"), [(None, False), (TOKEN, False), (TOKEN, True)]
)  # fmt: skip
def test_openapi_security_is_exactly_what_the_server_enforces(
    migrated: Settings, token: str | None, auth_reads: bool
) -> None:
    cfg = migrated.model_copy(
        update={"api_token": SecretStr(token) if token else None, "auth_reads": auth_reads}
    )
    with TestClient(create_app(cfg)) as c:
        doc = c.get("/openapi.json").json()
        schemes = doc.get("components", {}).get("securitySchemes", {})
        assert (schemes == {}) == (token is None)
        for path, operations in doc["paths"].items():
            for method, operation in operations.items():
                declared = "security" in operation
                expected = token is not None and (method != "get" or auth_reads)
                expected = expected and path not in ("/healthz", "/readyz")
                assert declared == expected, (method, path)
                assert ("401" in operation["responses"]) == declared, (method, path)
                answer = c.request(method, path_example(path))
                assert (answer.status_code == 401) == declared, (method, path, answer.text)
