"""The dashboard's static files and its asset route, without a browser (see test_browser.py)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hpo_service.web.routes import INDEX_HTML, PLOTLY_PATH, STATIC_DIR, mount_dashboard

JS_DIR = STATIC_DIR / "js"


def js_files() -> list[Path]:
    return sorted(JS_DIR.rglob("*.js"))


def test_static_files_present() -> None:
    html = INDEX_HTML.read_text(encoding="utf-8")
    assert '<script type="module" src="/static/js/app.js">' in html
    assert 'href="/static/style.css"' in html
    assert (STATIC_DIR / "style.css").is_file()
    names = {p.relative_to(JS_DIR).as_posix() for p in js_files()}
    assert {"app.js", "api.js", "plots.js", "util.js", "markdown.js", "notes.js"} <= names
    pages = {"studies", "create", "study", "compare", "workers", "trial", "datasets"}
    assert {f"pages/{p}.js" for p in pages} <= names


def test_relative_imports_resolve() -> None:
    """Every ES module import points at a file that exists (there is no bundler to catch it)."""
    pattern = re.compile(
        r"""^\s*(?:import|export)\b[^;]*?\bfrom\s+["'](\.[^"']+)["']""", re.M | re.S
    )
    for file in js_files():
        for target in pattern.findall(file.read_text(encoding="utf-8")):
            assert (file.parent / target).resolve().is_file(), f"{file.name} imports {target}"


def test_no_html_is_built_from_strings() -> None:
    """Notes, dataset names and API messages are user text: the dashboard builds DOM nodes and
    text nodes only, never markup from strings (the browser tests check a note with script)."""
    for file in js_files():
        code = "\n".join(
            line
            for line in file.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("//")
        )
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in code, f"{file.name} uses {sink}"


def test_works_offline_no_external_urls() -> None:
    """No CDN, font or analytics URL anywhere: the dashboard must work without a network."""
    for file in [INDEX_HTML, STATIC_DIR / "style.css", *js_files()]:
        text = file.read_text(encoding="utf-8")
        found = re.findall(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", text, re.I)
        assert not found, f"{file.name} refers to {found}"


def _js_list(source: str, name: str) -> list[str]:
    match = re.search(rf"export const {name} = \[(.*?)\];", source, re.S)
    assert match, name
    return re.findall(r'"([^"]+)"', match.group(1))


def test_plot_kinds_match_the_plots_module() -> None:
    from hpo_service.plots import COMPARE_KINDS, PLOT_KINDS

    source = (JS_DIR / "plots.js").read_text(encoding="utf-8")
    assert _js_list(source, "PLOT_KINDS") == list(PLOT_KINDS)
    assert _js_list(source, "COMPARE_KINDS") == list(COMPARE_KINDS)


def test_image_formats_match_the_export_module() -> None:
    from hpo_service.plots import IMAGE_FORMATS

    source = (JS_DIR / "plots.js").read_text(encoding="utf-8")
    assert _js_list(source, "IMAGE_FORMATS") == list(IMAGE_FORMATS)


def test_form_fields_name_spec_paths() -> None:
    """Each create-form field's data-path is a real spec field, so the API's messages land."""
    from pydantic import BaseModel

    from hpo_service.spec import StudySpec

    source = (JS_DIR / "pages" / "create.js").read_text(encoding="utf-8")
    paths = re.findall(r'(?:field|group)\("([a-z_.]+)"', source)
    assert "search_space.learning_rate" in paths
    for path in paths:
        if path.startswith("workers."):
            continue  # not part of the spec: how many worker processes to start
        model: type[BaseModel] = StudySpec
        for part in path.split("."):
            assert part in model.model_fields, f"{path}: no field {part!r} in {model.__name__}"
            annotation = model.model_fields[part].annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                model = annotation


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    mount_dashboard(app)
    return TestClient(app)


def test_plotly_served_gzipped_with_etag(client: TestClient) -> None:
    import plotly

    original = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    response = client.get(PLOTLY_PATH, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == original.read_bytes()  # httpx decodes the gzip
    assert int(response.headers["content-length"]) < original.stat().st_size / 2
    etag = response.headers["etag"]
    again = client.get(PLOTLY_PATH, headers={"If-None-Match": etag})
    assert again.status_code == 304
    plain = client.get(PLOTLY_PATH, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert gzip.compress(plain.content)  # bytes, not an error page
    assert len(plain.content) == original.stat().st_size


def test_index_and_modules_served(client: TestClient) -> None:
    index = client.get("/")
    assert index.status_code == 200
    assert "text/html" in index.headers["content-type"]
    module = client.get("/static/js/app.js")
    assert module.status_code == 200
    # Browsers refuse ES modules served with a non-JavaScript MIME type.
    assert "javascript" in module.headers["content-type"]
    assert client.get("/static/style.css").status_code == 200


def test_mount_dashboard_keeps_existing_routes() -> None:
    app = FastAPI()

    @app.get("/")
    def home() -> dict[str, str]:
        return {"mine": "yes"}

    mount_dashboard(app)
    count = len(app.router.routes)
    mount_dashboard(app)  # idempotent
    assert len(app.router.routes) == count
    client = TestClient(app)
    assert client.get("/").json() == {"mine": "yes"}
    assert client.get(PLOTLY_PATH).status_code == 200
    assert client.get("/static/style.css").status_code == 200


def test_api_app_serves_the_dashboard(tmp_path: Path) -> None:
    """The real app (``create_app``) serves the page, its modules and plotly.js."""
    from hpo_service.api.app import create_app
    from hpo_service.store.db import dispose_engines, migrate
    from tests.conftest import make_settings

    settings = make_settings(f"sqlite:///{tmp_path / 'hpo.db'}", tmp_path)
    migrate(settings)
    try:
        with TestClient(create_app(settings)) as client:
            assert "text/html" in client.get("/").headers["content-type"]
            assert "javascript" in client.get("/static/js/app.js").headers["content-type"]
            assert client.get(PLOTLY_PATH).status_code == 200, (
                "create_app must serve plotly.js for the dashboard: "
                "app.include_router(hpo_service.web.routes.router)"
            )
    finally:
        dispose_engines()
