"""ETags, 304s and the response cache (api/conditional.py) on real databases: a changed study
gets a new ETag and fresh content, an unchanged one a 304 or the stored bytes; plain Optuna
studies and uncovered routes pass through."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient

from hpo_service.api import conditional
from hpo_service.api.app import create_app
from hpo_service.api.conditional import ResponseCache, make_etag, matches
from hpo_service.config import Settings
from hpo_service.spec import parse_spec
from hpo_service.store.db import get_engine
from hpo_service.store.studies import create_study, extend_budget
from tests.conftest import tiny_spec


@pytest.fixture
def api(migrated: Settings, tmp_path: Path) -> Iterator[TestClient]:
    cfg = migrated.model_copy(update={"data_dir": tmp_path / "data"})
    with TestClient(create_app(cfg)) as client:
        yield client


def make(settings: Settings, name: str) -> None:
    create_study(settings, parse_spec(tiny_spec(name, n_trials=5)), start=False)


def revalidate(client: TestClient, path: str) -> tuple[int, str]:
    first = client.get(path)
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    again = client.get(path, headers={"If-None-Match": etag})
    return again.status_code, etag


def test_unchanged_study_answers_304_and_changes_give_new_etags(
    migrated: Settings, api: TestClient
) -> None:
    make(migrated, "cond")
    for path in ("/api/studies/cond", "/api/studies/cond/trials?limit=5", "/api/studies"):
        status, etag = revalidate(api, path)
        assert status == 304
        assert api.get(path, headers={"If-None-Match": etag}).content == b""
    _, before = revalidate(api, "/api/studies/cond")
    patched = api.patch("/api/studies/cond", json={"n_trials": 7})
    assert patched.status_code == 200, patched.text
    fresh = api.get("/api/studies/cond", headers={"If-None-Match": before})
    assert fresh.status_code == 200 and fresh.json()["n_trials"] == 7
    assert fresh.headers["etag"] != before


def test_cached_trials_page_follows_a_queued_trial(api: TestClient, migrated: Settings) -> None:
    make(migrated, "queue")
    path = "/api/studies/queue/trials?limit=10"
    assert api.get(path).json()["total"] == 0
    assert api.get(path).json()["total"] == 0  # from the cache
    queued = api.post(
        "/api/studies/queue/trials", json={"params": {"learning_rate": 0.01, "optimizer": "adam"}}
    )
    assert queued.status_code == 201, queued.text
    page = api.get(path).json()
    assert page["total"] == 1 and page["items"][0]["state"] == "WAITING"


def test_study_list_etag_follows_creation_and_state(api: TestClient, migrated: Settings) -> None:
    make(migrated, "one")
    _, etag = revalidate(api, "/api/studies")
    make(migrated, "two")  # made outside the server: seen once the list's mark is MARK_TTL_S old
    time.sleep(conditional.MARK_TTL_S)
    listed = api.get("/api/studies", headers={"If-None-Match": etag})
    assert listed.status_code == 200 and listed.json()["total"] == 2
    etag = listed.headers["etag"]
    assert api.post("/api/studies/one/stop").status_code == 200
    again = api.get("/api/studies", headers={"If-None-Match": etag})
    assert again.status_code == 200
    assert {s["name"]: s["state"] for s in again.json()["items"]}["one"] == "stopped"


def test_plain_optuna_studies_and_trial_details_carry_no_etag(
    api: TestClient, migrated: Settings
) -> None:
    storage = optuna.storages.RDBStorage(migrated.database_url)
    plain = optuna.create_study(study_name="plain", storage=storage)
    plain.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    figure = api.get("/api/studies/plain/plots/history")
    assert figure.status_code == 200 and "etag" not in figure.headers
    make(migrated, "detail")
    api.post(
        "/api/studies/detail/trials", json={"params": {"learning_rate": 0.01, "optimizer": "adam"}}
    )
    assert "etag" not in api.get("/api/studies/detail/trials/0").headers
    missing = api.get("/api/studies/nope")
    assert missing.status_code == 404 and "etag" not in missing.headers


def test_without_the_cache_etags_still_work(migrated: Settings, tmp_path: Path) -> None:
    cfg = migrated.model_copy(update={"api_cache_mb": 0.0})
    make(cfg, "nocache")
    with TestClient(create_app(cfg)) as client:
        assert "etag" not in client.get("/api/studies/nocache/best").headers  # a 404
        status, _ = revalidate(client, "/api/studies/nocache")
        assert status == 304


def test_live_studies_change_etag_every_second() -> None:
    running = [(1, "2026-01-01", 5, "running")]
    done = [(1, "2026-01-01", 5, "completed")]
    assert make_etag("/p", "", running, 10.1) == make_etag("/p", "", running, 10.9)
    assert make_etag("/p", "", running, 10.9) != make_etag("/p", "", running, 11.0)
    assert make_etag("/p", "", done, 10.0) == make_etag("/p", "", done, 5000.0)
    assert make_etag("/p", "", done, 1.0) != make_etag("/p", "a=1", done, 1.0)
    assert make_etag("/p", "", done, 1.0) != make_etag("/p", "", [(1, "2026-01-01", 6, "x")], 1.0)


def test_if_none_match_parsing() -> None:
    tag = 'W/"abc"'
    assert matches('"abc"', tag) and matches('W/"x", W/"abc"', tag) and matches("*", tag)
    assert not matches(None, tag) and not matches('"abd"', tag)


def test_cache_is_bounded_and_keeps_recent_entries() -> None:
    cache = ResponseCache(8 * 1300)
    for i in range(10):
        cache.put(("p", str(i), "e"), (200, [], b"x" * 1000))
    assert len(cache) < 10 and cache.get(("p", "9", "e")) is not None
    assert cache.get(("p", "0", "e")) is None
    cache.put(("big", "", "e"), (200, [], b"x" * 5000))  # over an eighth: never stored
    assert cache.get(("big", "", "e")) is None


def test_concurrent_requests_for_one_answer_compute_it_once(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients asking the same thing while it is being computed wait for that computation."""
    import asyncio

    import httpx

    from hpo_service.api.routes import plots

    make(migrated, "herd")
    calls: list[str] = []
    real = plots.study_figure

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append("built")
        return real(*args, **kwargs)

    monkeypatch.setattr(plots, "study_figure", counted)
    app = create_app(migrated)

    async def ask_together() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            path = "/api/studies/herd/plots/history"
            return list(await asyncio.gather(*(client.get(path) for _ in range(8))))

    answers = asyncio.run(ask_together())
    assert [a.status_code for a in answers] == [200] * 8
    assert len({a.content for a in answers}) == 1
    assert calls == ["built"]


def test_a_mark_serves_for_its_ttl_and_a_write_through_the_server_is_seen_at_once(
    api: TestClient, migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(migrated, "marks")
    monkeypatch.setattr(conditional, "MARK_TTL_S", 3600.0)
    first = api.get("/api/studies/marks")
    assert first.json()["n_trials"] == 5
    extend_budget(get_engine(migrated), "marks", 6)  # a change the server did not make
    stale = api.get("/api/studies/marks")
    assert stale.json()["n_trials"] == 5 and stale.headers["etag"] == first.headers["etag"]
    assert api.patch("/api/studies/marks", json={"n_trials": 8}).status_code == 200
    assert api.get("/api/studies/marks").json()["n_trials"] == 8
    monkeypatch.setattr(conditional, "MARK_TTL_S", 0.0)
    extend_budget(get_engine(migrated), "marks", 9)
    assert api.get("/api/studies/marks").json()["n_trials"] == 9
