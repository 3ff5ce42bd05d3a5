"""Upload validation and storage (hpo_service.store.uploads) on real databases and a real folder."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hpo_service.config import Settings
from hpo_service.data import load_dataset
from hpo_service.spec import SpecError, parse_spec
from hpo_service.store import uploads as ds
from hpo_service.store.db import get_engine
from hpo_service.store.studies import create_study
from tests.conftest import make_settings, tiny_spec


@pytest.fixture
def cfg(migrated: Settings, tmp_path: Path) -> Settings:
    """Uploads go to a private folder, never into the shared datasets."""
    return migrated.model_copy(update={"data_dir": tmp_path / "data"})


@pytest.fixture
def offline(tmp_path: Path) -> Settings:
    """For checks that fail before the database is touched (it is never created)."""
    return make_settings(f"sqlite:///{tmp_path / 'never.db'}", tmp_path, data_dir=tmp_path / "data")


def series_csv(rows: int = 60, column: str = "spots") -> bytes:
    lines = [f"year,{column}"] + [f"{1700 + i},{(i * 7) % 50 + 0.5}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def text_csv(rows: int = 30, labels: tuple[str, ...] = ("ham", "spam")) -> bytes:
    lines = ["message,cls"] + [f"text number {i},{labels[i % len(labels)]}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def problem(cfg: Settings, content: bytes, kind: str = "forecasting", **mapping: object) -> str:
    with pytest.raises(ds.UploadError) as caught:
        ds.save_upload(cfg, name="x.csv", kind=kind, content=content, mapping=mapping)  # type: ignore[arg-type]
    assert caught.value.status == 422
    return str(caught.value)


def test_forecasting_upload_is_stored_under_a_generated_name_and_loads(cfg: Settings) -> None:
    info = ds.save_upload(
        cfg, name="../../etc/passwd", kind="forecasting", content=series_csv(),
        mapping={"value_column": "spots", "time_column": "year"},
    )  # fmt: skip
    stored = Path(cfg.data_dir or "") / "uploads" / f"{info.id}.csv"
    assert stored.read_bytes() == series_csv()
    assert info.rows == 60 and info.header == ["year", "spots"] and info.kind == "forecasting"
    assert info.mapping == {"value_column": "spots", "time_column": "year"}
    assert len(list(stored.parent.iterdir())) == 1  # the name never reached the file system
    raw = ds.apply_upload(get_engine(cfg), tiny_spec("up", task={"dataset": info.dataset}))
    spec = parse_spec(raw)
    assert spec.task.value_column == "spots" and spec.task.kind == "forecasting"
    data = load_dataset(spec.task, cfg.data_dir, cfg.cache_dir)  # the loader finds the upload
    assert len(data.train.x) > 0


@pytest.mark.parametrize(
    ("content", "kind", "mapping", "expected"),
    [
        (b"", "forecasting", {}, "file: the file is empty"),
        (b"a,b\n\x00\x01,2\n", "forecasting", {}, "file: contains NUL bytes"),
        (("value\n" + "é\n" * 40).encode(), "forecasting", {}, "value_column: column 'value'"),
        ("x\n1\n".encode("utf-16"), "forecasting", {}, "file: contains NUL bytes"),
        (("v\n" + "caf\xe9\n").encode("latin-1"), "forecasting", {}, "file: not UTF-8 text (byte"),
        (b'a,b\n"unclosed,1\n', "forecasting", {}, "file: not a readable CSV"),
        (series_csv(), "forecasting", {}, "value_column: column 'value' is not in the CSV"),
        (series_csv(10), "forecasting", {"value_column": "spots"}, "file: 10 usable row(s)"),
        (series_csv(), "forecasting", {"text_column": "t"}, "text_column: not used by forecasting"),
        (text_csv(), "text_classification", {"text_column": "message"}, "label_column: column"),
        (text_csv(labels=("ham",)), "text_classification",
         {"text_column": "message", "label_column": "cls"}, "label_column: need at least two"),
        (b"label,f1\na,x\n", "sequence_classification", {}, "feature_columns: column 'f1' has"),
    ],
)  # fmt: skip
def test_bad_uploads_name_the_field_and_keep_nothing(
    offline: Settings, content: bytes, kind: str, mapping: dict[str, object], expected: str
) -> None:
    assert problem(offline, content, kind, **mapping).startswith(expected)
    folder = Path(offline.data_dir or "") / "uploads"
    assert not folder.exists() or not list(folder.iterdir())
    assert not (Path(offline.data_dir or "").parent / "never.db").exists()


def test_size_limit_stops_reading_early() -> None:
    stream = io.BytesIO(b"x" * (3 << 20))
    with pytest.raises(ds.UploadError) as caught:
        ds.read_limited(stream, 1 << 20)
    assert caught.value.status == 413 and str(caught.value).startswith("file: larger than")
    assert stream.tell() <= (2 << 20)


def test_upload_needs_a_data_dir(offline: Settings) -> None:
    cfg = offline.model_copy(update={"data_dir": None})
    with pytest.raises(ds.UploadError) as caught:
        ds.save_upload(cfg, name="a", kind="forecasting", content=series_csv(), mapping={})
    assert caught.value.status == 400 and "HPO_DATA_DIR" in str(caught.value)


def test_list_get_delete_and_refuse_delete_while_a_study_uses_it(cfg: Settings) -> None:
    engine = get_engine(cfg)
    text = ds.save_upload(
        cfg, name="sms.csv", kind="text_classification", content=text_csv(),
        mapping={"text_column": "message", "label_column": "cls"},
    )  # fmt: skip
    series = ds.save_upload(
        cfg,
        name="s.csv",
        kind="forecasting",
        content=series_csv(),
        mapping={"value_column": "spots"},
    )
    items, total = ds.list_uploads(engine)
    assert total == 2 and {i.id for i in items} == {text.id, series.id}
    assert ds.get_upload(engine, text.id).mapping["label_column"] == "cls"
    create_study(
        cfg,
        parse_spec(ds.apply_upload(engine, tiny_spec("uses", task={"dataset": series.dataset}))),
    )
    with pytest.raises(ds.UploadError) as caught:
        ds.delete_upload(cfg, series.id)
    assert caught.value.status == 409 and "'uses'" in str(caught.value)
    ds.delete_upload(cfg, text.id)
    assert not (Path(cfg.data_dir or "") / "uploads" / f"{text.id}.csv").exists()
    with pytest.raises(ds.UploadError) as gone:
        ds.get_upload(engine, text.id)
    assert gone.value.status == 404


def test_spec_naming_a_missing_or_other_kind_upload_is_refused(cfg: Settings) -> None:
    engine = get_engine(cfg)
    with pytest.raises(SpecError) as missing:
        ds.apply_upload(engine, tiny_spec(task={"dataset": "upload:nope"}))
    assert missing.value.messages[0].startswith("task.dataset: no uploaded dataset")
    info = ds.save_upload(
        cfg,
        name="s.csv",
        kind="forecasting",
        content=series_csv(),
        mapping={"value_column": "spots"},
    )
    task = {"dataset": info.dataset, "kind": "text_classification"}
    with pytest.raises(SpecError) as other:
        ds.apply_upload(engine, tiny_spec(task=task))
    assert other.value.messages[0].startswith("task.kind: uploaded dataset")
    explicit = ds.apply_upload(
        engine, tiny_spec(task={"dataset": info.dataset, "value_column": "x"})
    )
    assert explicit["task"]["value_column"] == "x"  # the spec's own choice wins
