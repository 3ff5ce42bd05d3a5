"""Upload validation and storage (hpo_service.store.uploads) on real databases and a real folder."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hpo_service.config import Settings
from hpo_service.data import load_dataset
from hpo_service.data.sources import DataRoots
from hpo_service.spec import SpecError, parse_spec
from hpo_service.store import uploads as ds
from hpo_service.store.db import get_engine
from hpo_service.store.intake import apply_upload
from hpo_service.store.studies import create_study
from hpo_service.store.upload_limits import CsvShape, UploadLimits
from tests.conftest import make_settings, tiny_spec


@pytest.fixture
def cfg(migrated: Settings, tmp_path: Path) -> Settings:
    """Uploads go to a private folder; the data directory is read-only and never written."""
    return migrated.model_copy(update={"upload_dir": tmp_path / "up"})


@pytest.fixture
def offline(tmp_path: Path) -> Settings:
    """For checks that fail before the database is touched (it is never created)."""
    return make_settings(f"sqlite:///{tmp_path / 'never.db'}", tmp_path, upload_dir=tmp_path / "up")


LIMITS = UploadLimits(max_bytes=1 << 20, max_columns=10, max_rows=100)


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
    stored = cfg.upload_dir / f"{info.id}.csv"
    assert stored.read_bytes() == series_csv()
    assert info.rows == 60 and info.header == ["year", "spots"] and info.kind == "forecasting"
    assert info.mapping == {"value_column": "spots", "time_column": "year"}
    assert len(list(stored.parent.iterdir())) == 1  # the name never reached the file system
    raw = apply_upload(get_engine(cfg), tiny_spec("up", task={"dataset": info.dataset}))
    spec = parse_spec(raw)
    assert spec.task.value_column == "spots" and spec.task.kind == "forecasting"
    data = load_dataset(spec.task, DataRoots.from_settings(cfg), cfg.cache_dir)  # finds it
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
    folder = offline.upload_dir
    assert not folder.exists() or not list(folder.iterdir())
    assert not (folder.parent / "never.db").exists()


def test_size_limit_stops_reading_early() -> None:
    stream = io.BytesIO(b"x" * (3 << 20))
    with pytest.raises(ds.UploadError) as caught:
        ds.read_limited(stream, LIMITS)
    assert caught.value.status == 413 and str(caught.value).startswith("file: larger than")
    assert stream.tell() <= (2 << 20)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b",".join(b"c%d" % i for i in range(100_000)) + b"\n1\n", "more than 10 columns"),
        (b"a,b\n" + b"1,2\n" * 100_000, "more than 100 data rows"),
    ],
)
def test_column_and_row_bounds_stop_reading_early(content: bytes, expected: str) -> None:
    stream = io.BytesIO(content)
    with pytest.raises(ds.UploadError) as caught:
        ds.read_limited(stream, LIMITS)
    assert caught.value.status == 413 and expected in str(caught.value)
    assert str(caught.value).startswith("file: ") and len(str(caught.value)) < 100
    assert stream.tell() <= 64 * 1024  # stopped in the first chunk, long before the end


def test_csv_shape_follows_quotes_across_chunk_boundaries() -> None:
    text = b'name,"note, with comma",x\n"multi\nline ""quoted"", text",2,3\nplain,5,6\n'
    for size in (1, 2, 3, 7, len(text)):
        shape = CsvShape()
        for start in range(0, len(text), size):
            shape.feed(text[start : start + size])
        assert (shape.columns, shape.rows, shape.in_quotes) == (3, 2, False), size
    exact = b"a,b\n" + b"1,2\n" * 100
    assert ds.read_limited(io.BytesIO(exact), LIMITS) == exact  # at the bound is allowed


def test_bounds_are_checked_again_on_the_parsed_csv(offline: Settings) -> None:
    """Lone carriage returns end lines for pandas but not for the byte count: the parsed
    frame is held to the same bound."""
    cfg = offline.model_copy(update={"max_upload_rows": 40})
    content = b"year,spots\r" + b"".join(b"%d,1.5\r" % (1700 + i) for i in range(60))
    with pytest.raises(ds.UploadError) as caught:
        ds.save_upload(cfg, name="a", kind="forecasting", content=content, mapping={})
    assert caught.value.status == 413 and "more than 40 data rows" in str(caught.value)


def test_long_and_many_column_names_keep_messages_small(offline: Settings) -> None:
    names = [f"column_{i}_" + "x" * 150 for i in range(900)]
    wide = (",".join(names) + "\n" + ",".join("1" for _ in names) + "\n").encode()
    message = problem(offline, wide, value_column="nope")
    assert message.startswith("value_column: column 'nope' is not in the CSV (columns: column_0_")
    assert "and 895 more" in message and len(message) < 400
    long = ("y" * 300 + ",v\n" + "1,2\n" * 40).encode()
    message = problem(offline, long, value_column="v")
    assert message.startswith("file: 1 column name(s) longer than 200") and len(message) < 150


def test_uploads_never_write_the_data_directory(cfg: Settings, tmp_path: Path) -> None:
    data_dir = tmp_path / "readonly"
    (data_dir / "sst2").mkdir(parents=True)
    data_dir.chmod(0o555)  # a shared read-only folder
    try:
        for data in (data_dir, None):  # with or without a data directory
            here = cfg.model_copy(update={"data_dir": data})
            info = ds.save_upload(
                here, name="a", kind="forecasting", content=series_csv(),
                mapping={"value_column": "spots"},
            )  # fmt: skip
            assert (cfg.upload_dir / f"{info.id}.csv").read_bytes() == series_csv()
        assert [p.name for p in data_dir.iterdir()] == ["sst2"]
    finally:
        data_dir.chmod(0o755)


def test_an_unwritable_upload_directory_is_a_503_without_the_path(
    offline: Settings, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    cfg = offline.model_copy(update={"upload_dir": blocker / "uploads"})
    with pytest.raises(ds.UploadError) as caught:
        ds.save_upload(
            cfg, name="a", kind="forecasting", content=series_csv(),
            mapping={"value_column": "spots"},
        )  # fmt: skip
    assert caught.value.status == 503 and "HPO_UPLOAD_DIR" in str(caught.value)
    assert str(tmp_path) not in str(caught.value)


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
        parse_spec(apply_upload(engine, tiny_spec("uses", task={"dataset": series.dataset}))),
    )
    with pytest.raises(ds.UploadError) as caught:
        ds.delete_upload(cfg, series.id)
    assert caught.value.status == 409 and "'uses'" in str(caught.value)
    ds.delete_upload(cfg, text.id)
    assert not (cfg.upload_dir / f"{text.id}.csv").exists()
    with pytest.raises(ds.UploadError) as gone:
        ds.get_upload(engine, text.id)
    assert gone.value.status == 404


def test_spec_naming_a_missing_or_other_kind_upload_is_refused(cfg: Settings) -> None:
    engine = get_engine(cfg)
    with pytest.raises(SpecError) as missing:
        apply_upload(engine, tiny_spec(task={"dataset": "upload:nope"}))
    assert missing.value.messages[0].startswith("task.dataset: 'upload:nope' is not an upload id")
    for bad in ("upload:../x", "upload:abc/def", "upload:0123456789ABCDEF"):
        with pytest.raises(SpecError) as malformed:
            apply_upload(engine, tiny_spec(task={"dataset": bad}))
        assert "is not an upload id" in malformed.value.messages[0]
    with pytest.raises(SpecError) as unknown:
        apply_upload(engine, tiny_spec(task={"dataset": "upload:0123456789abcdef"}))
    assert unknown.value.messages[0].startswith("task.dataset: no uploaded dataset")
    info = ds.save_upload(
        cfg,
        name="s.csv",
        kind="forecasting",
        content=series_csv(),
        mapping={"value_column": "spots"},
    )
    task = {"dataset": info.dataset, "kind": "text_classification"}
    with pytest.raises(SpecError) as other:
        apply_upload(engine, tiny_spec(task=task))
    assert other.value.messages[0].startswith("task.kind: uploaded dataset")
    explicit = apply_upload(
        engine, tiny_spec(task={"dataset": info.dataset, "value_column": "x"})
    )
    assert explicit["task"]["value_column"] == "x"  # the spec's own choice wins
