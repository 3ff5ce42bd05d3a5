"""The API docs pages work offline: every script, stylesheet and icon comes from the app itself.

The HTML of ``/docs`` and ``/redoc`` is checked for any absolute URL, each asset it names is
fetched from the app (also with ``HPO_AUTH_READS`` on and no token), and Debian's Chromium renders
both pages with every request to anything but the server aborted, as on a machine without
internet access.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from hpo_service.api.app import create_app
from hpo_service.api.docs import ASSET_FILES, ASSETS_URL, assets_dir
from hpo_service.config import Settings
from hpo_service.store.db import dispose_engines, migrate
from tests.conftest import env_for, make_settings
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, free_port

PAGES = ("/docs", "/redoc")
#: src= / href= attributes and the quoted URLs of Swagger UI's start-up script.
REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")
LAUNCH = """
import sys, uvicorn
from hpo_service.api.app import create_app
uvicorn.run(create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@pytest.fixture
def app_settings(tmp_path: Path) -> Settings:
    settings = make_settings(f"sqlite:///{tmp_path / 'hpo.db'}", tmp_path)
    migrate(settings)
    return settings


def references(html: str) -> list[str]:
    return [a or b for a, b in REFERENCE.findall(html)]


def test_the_pages_name_no_outside_url_and_every_asset_is_served(app_settings: Settings) -> None:
    with TestClient(create_app(app_settings)) as client:
        for page in PAGES:
            response = client.get(page)
            assert response.status_code == 200, page
            html = response.text
            assert "http://" not in html and "https://" not in html, f"{page} names a CDN"
            found = references(html)
            assets = [url for url in found if url.startswith(ASSETS_URL + "/")]
            assert len(assets) >= 2, f"{page} references no bundled asset: {found}"
            for url in found:
                assert url.startswith("/"), f"{page} references {url}"
                fetched = client.get(url)
                assert fetched.status_code == 200, url
                assert len(fetched.content) > 100, url


def test_the_bundle_files_are_real_swagger_ui_and_redoc() -> None:
    folder = assets_dir()
    for name in ASSET_FILES:
        assert (folder / name).is_file(), name
    assert b"SwaggerUIBundle" in (folder / "swagger-ui-bundle.js").read_bytes()
    assert b"Redoc" in (folder / "redoc.standalone.js").read_bytes()[:2_000_000]


def test_redoc_is_served_without_its_outside_logo(app_settings: Settings) -> None:
    with TestClient(create_app(app_settings)) as client:
        served = client.get(f"{ASSETS_URL}/redoc.standalone.js")
        assert served.status_code == 200
        assert b"cdn.redoc.ly" in (assets_dir() / "redoc.standalone.js").read_bytes()
        assert b"cdn.redoc.ly" not in served.content
        again = client.get(served.request.url, headers={"If-None-Match": served.headers["etag"]})
        assert again.status_code == 304


def test_the_pages_and_assets_need_no_token_even_when_reads_do(app_settings: Settings) -> None:
    locked = app_settings.model_copy(update={"api_token": SecretStr("t0ken"), "auth_reads": True})
    with TestClient(create_app(locked)) as client:
        assert client.get("/api/studies").status_code == 401  # reads are locked ...
        for url in (*PAGES, "/openapi.json", *(f"{ASSETS_URL}/{n}" for n in ASSET_FILES)):
            assert client.get(url).status_code == 200, url  # ... the docs are not


@pytest.fixture
def server(app_settings: Settings, tmp_path: Path) -> Iterator[str]:
    dispose_engines()
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, str(port)],
            env=env_for(app_settings),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"server not up:\n{log.read_text()}"
            time.sleep(0.3)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)


@pytest.mark.browser
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} not found (apt-get install chromium)"
)
def test_the_pages_render_in_chromium_with_the_internet_blocked(server: str) -> None:
    from playwright.sync_api import Route, sync_playwright

    blocked: list[str] = []

    def only_the_server(route: Route) -> None:
        if route.request.url.startswith(server + "/"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.route("**/*", only_the_server)
            page.goto(server + "/docs")
            page.wait_for_selector(".opblock-summary-path")
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            assert len(paths) > 20
            assert any("/api/studies" in p for p in paths), paths[:5]
            page.goto(server + "/redoc")
            page.wait_for_selector("h1")  # ReDoc's title, drawn from the OpenAPI document
            assert "hpo-service" in page.locator("h1").first.inner_text()
            assert page.locator("[data-section-id^='tag/']").count() >= 5
        finally:
            browser.close()
    assert not blocked, f"the docs pages tried to reach outside the server: {blocked}"
