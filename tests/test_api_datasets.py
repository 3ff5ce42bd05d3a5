"""Dataset upload routes over HTTP (multipart), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hpo_service.api.app import create_app
from hpo_service.config import Settings
from tests.conftest import tiny_spec
from tests.test_datasets import series_csv


@pytest.fixture
def cfg(migrated: Settings, tmp_path: Path) -> Settings:
    return migrated.model_copy(update={"upload_dir": tmp_path / "up", "max_upload_mb": 0.05})


@pytest.fixture
def api(cfg: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(cfg)) as client:
        yield client


def upload(api: TestClient, content: bytes, **fields: Any) -> Any:
    data = {"kind": "forecasting", **fields}
    return api.post("/api/datasets", files={"file": ("sun.csv", content, "text/csv")}, data=data)


def field_of(response: Any) -> str:
    return str(response.json()["errors"][0]["field"])


def test_upload_list_use_in_a_study_and_delete(api: TestClient, cfg: Settings) -> None:
    made = upload(api, series_csv(), value_column="spots", time_column="year", name="Sunspots")
    assert made.status_code == 201, made.text
    info = made.json()
    assert info["dataset"] == f"upload:{info['id']}" and info["name"] == "Sunspots"
    assert info["rows"] == 60 and info["header"] == ["year", "spots"]
    assert made.headers["location"] == f"/api/datasets/{info['id']}"
    assert (cfg.upload_dir / f"{info['id']}.csv").is_file()
    assert api.get("/api/datasets").json()["total"] == 1
    assert api.get(f"/api/datasets/{info['id']}").json()["mapping"]["value_column"] == "spots"
    spec = tiny_spec("on-upload", task={"dataset": info["dataset"], "lookback": 12})
    study = api.post("/api/studies", json=spec)
    assert study.status_code == 201, study.text
    assert study.json()["spec"]["task"]["value_column"] == "spots"
    assert study.json()["spec"]["task"]["kind"] == "forecasting"
    busy = api.delete(f"/api/datasets/{info['id']}")
    assert busy.status_code == 409 and "'on-upload'" in busy.json()["detail"]
    assert api.delete("/api/studies/on-upload").status_code == 204
    assert api.delete(f"/api/datasets/{info['id']}").status_code == 204
    assert api.get(f"/api/datasets/{info['id']}").status_code == 404
    missing = api.post("/api/studies", json=spec)
    assert missing.status_code == 422 and field_of(missing) == "task.dataset"


def test_upload_errors_name_the_field(api: TestClient) -> None:
    assert field_of(upload(api, series_csv())) == "value_column"
    assert field_of(upload(api, b"\xff\xfe\x00")) == "file"
    assert field_of(upload(api, series_csv(), kind="images")) == "kind"
    no_file = api.post("/api/datasets", data={"kind": "forecasting"})
    assert no_file.status_code == 422 and field_of(no_file) == "file"
    no_kind = api.post("/api/datasets", files={"file": ("a.csv", series_csv(), "text/csv")})
    assert no_kind.status_code == 422 and field_of(no_kind) == "kind"
    wrong_field = upload(api, series_csv(), value_column="spots", label_column="year")
    assert wrong_field.status_code == 422 and field_of(wrong_field) == "label_column"
    assert api.get("/api/datasets").json()["total"] == 0


def test_uploads_over_the_limit_are_413(api: TestClient) -> None:
    header = b"year,spots\n"
    row = b"1700,1.5\n"
    just_over = header + row * (int(0.05 * (1 << 20)) // len(row) + 10)  # inside the slack
    caught = upload(api, just_over, value_column="spots")
    assert caught.status_code == 413 and field_of(caught) == "file"
    far_over = header + row * 30_000  # Content-Length alone decides
    refused = upload(api, far_over, value_column="spots")
    assert refused.status_code == 413 and "0.05 MB" in refused.json()["detail"]
    assert api.get("/api/datasets").json()["total"] == 0


def test_uploads_work_without_a_data_dir(cfg: Settings) -> None:
    with TestClient(create_app(cfg.model_copy(update={"data_dir": None}))) as api:
        made = upload(api, series_csv(), value_column="spots")
        assert made.status_code == 201, made.text
        assert (cfg.upload_dir / f"{made.json()['id']}.csv").is_file()


def test_a_million_columns_or_too_many_rows_are_a_small_413(cfg: Settings) -> None:
    """The upload that once took 100 s and answered 17.8 MB: refused from its first bytes."""
    roomy = cfg.model_copy(update={"max_upload_mb": 50.0, "max_upload_rows": 1000})
    with TestClient(create_app(roomy)) as api:
        wide = b",".join(b"c%d" % i for i in range(1_000_000)) + b"\n" + b"1," * 999_999 + b"1\n"
        refused = upload(api, wide, value_column="c1")
        assert refused.status_code == 413 and field_of(refused) == "file"
        assert "more than 1000 columns" in refused.json()["detail"]
        assert len(refused.content) < 2000
        long = b"year,spots\n" + b"".join(b"%d,1.5\n" % i for i in range(5000))
        too_long = upload(api, long, value_column="spots")
        assert too_long.status_code == 413 and len(too_long.content) < 2000
        assert too_long.json()["detail"] == "file: more than 1000 data rows (HPO_MAX_UPLOAD_ROWS)"
        assert api.get("/api/datasets").json()["total"] == 0
    assert not roomy.upload_dir.exists() or not list(roomy.upload_dir.iterdir())


def test_a_missing_column_among_many_names_only_a_few(api: TestClient) -> None:
    names = [f"feature_{i}_" + "z" * 150 for i in range(250)]
    wide = (",".join(names) + "\n" + ",".join("1" for _ in names) + "\n").encode()
    refused = upload(api, wide, value_column="spots")
    assert refused.status_code == 422 and field_of(refused) == "value_column"
    assert len(refused.content) < 1500 and "and 245 more" in refused.json()["detail"]
