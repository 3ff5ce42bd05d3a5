"""Uploaded CSV datasets: validated once on upload, stored under a generated name.

An upload is checked here (size, columns and rows while it is read, then encoding, required
columns, minimum rows, labels) so that a study naming it fails at once with a message about the
file, not minutes later inside a worker. The file lands in ``<HPO_UPLOAD_DIR>/<id>.csv`` with a
server-generated id, never a client-supplied path, and a spec refers to it as ``task.dataset:
"upload:<id>"`` (the data loader resolves that). ``HPO_DATA_DIR`` is never written: it may be a
shared read-only folder. The column mapping given on upload is remembered and fills the spec's
column fields the spec leaves out.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, delete, func, select

from hpo_service.config import Settings
from hpo_service.messages import short_names
from hpo_service.spec import UPLOAD_ID, UPLOAD_PREFIX, Kind
from hpo_service.store.db import get_engine, session_scope
from hpo_service.store.models import DatasetRecord, StudyRecord
from hpo_service.store.upload_limits import (  # UploadError, read_limited: importable from here too
    UploadError,
    UploadLimits,
    check_shape,
    read_limited,
)

#: Fewest usable rows per kind: enough for train/validation/test splits and a forecast lookback.
MIN_ROWS: dict[str, int] = {
    "forecasting": 30,
    "text_classification": 20,
    "sequence_classification": 20,
}
#: The column-mapping fields each kind uses, with the spec's defaults.
MAPPING_DEFAULTS: dict[str, dict[str, Any]] = {
    "forecasting": {"value_column": "value", "time_column": None},
    "text_classification": {"text_column": "text", "label_column": "label"},
    "sequence_classification": {"label_column": "label", "feature_columns": None},
}


class DatasetInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    kind: str
    mapping: dict[str, Any]
    header: list[str]
    rows: int
    size_bytes: int
    created_at: datetime

    @property
    def dataset(self) -> str:
        """What a spec's ``task.dataset`` says to use this upload."""
        return f"{UPLOAD_PREFIX}{self.id}"

    @classmethod
    def from_record(cls, record: DatasetRecord) -> DatasetInfo:
        columns = record.columns or {}
        return cls(
            id=record.id,
            name=record.name,
            kind=record.kind,
            mapping=dict(columns.get("mapping", {})),
            header=list(columns.get("header", [])),
            rows=record.rows,
            size_bytes=record.size_bytes,
            created_at=record.created_at,
        )


def uploads_dir(settings: Settings) -> Path:
    """Where uploads are written: ``HPO_UPLOAD_DIR``, never the read-only data directory."""
    return Path(settings.upload_dir)


def normalise_mapping(kind: str, given: dict[str, Any]) -> dict[str, Any]:
    """The kind's mapping fields with defaults filled in; fields of other kinds are an error."""
    defaults = MAPPING_DEFAULTS[kind]
    for key, value in given.items():
        if value not in (None, "", []) and key not in defaults:
            raise UploadError(f"{key}: not used by {kind} datasets (use {', '.join(defaults)})")
    return {key: given.get(key) or default for key, default in defaults.items()}


def decode_csv(content: bytes) -> pd.DataFrame:
    """UTF-8 text (a BOM is allowed) parsed as CSV, or an error naming the file's problem."""
    if not content.strip():
        raise UploadError("file: the file is empty")
    if b"\x00" in content:
        raise UploadError("file: contains NUL bytes; upload a text CSV")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        bad = content[error.start]
        raise UploadError(
            f"file: not UTF-8 text (byte 0x{bad:02x} at offset {error.start}); save it as UTF-8"
        ) from None
    try:
        return pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        raise UploadError(f"file: not a readable CSV: {str(error).strip()[:300]}") from None


def _column(frame: pd.DataFrame, field: str, name: str) -> pd.Series:
    if name not in frame.columns:
        have = short_names(frame.columns)
        raise UploadError(f"{field}: column {name!r:.60} is not in the CSV (columns: {have})")
    return frame[name]


def _numeric(series: pd.Series, field: str) -> pd.Series:
    """Numbers, with empty cells as NaN; any other text is an error naming the first bad row."""
    numbers = pd.to_numeric(series, errors="coerce")
    bad = numbers.isna() & series.notna() & (series.astype(str).str.strip() != "")
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise UploadError(
            f"{field}: column {series.name!r} has {int(bad.sum())} non-numeric value(s), "
            f"first at data row {row + 1}: {str(series.iloc[row])[:50]!r}"
        )
    return numbers


def _enough(rows: int, kind: str) -> None:
    if rows < MIN_ROWS[kind]:
        raise UploadError(
            f"file: {rows} usable row(s); {kind} datasets need at least {MIN_ROWS[kind]}"
        )


def _two_classes(labels: pd.Series, field: str) -> None:
    classes = labels.dropna().astype(str).unique()
    if len(classes) < 2:
        raise UploadError(f"{field}: need at least two classes, found {list(classes)[:5]}")


def validate_frame(frame: pd.DataFrame, kind: str, mapping: dict[str, Any]) -> int:
    """Check the columns a kind needs; returns the number of usable rows."""
    if kind == "forecasting":
        values = _numeric(_column(frame, "value_column", mapping["value_column"]), "value_column")
        if mapping["time_column"]:
            _column(frame, "time_column", mapping["time_column"])
        rows = int(values.notna().sum())
    elif kind == "text_classification":
        texts = _column(frame, "text_column", mapping["text_column"])
        labels = _column(frame, "label_column", mapping["label_column"])
        usable = texts.notna() & (texts.astype(str).str.strip() != "") & labels.notna()
        _two_classes(labels[usable], "label_column")
        rows = int(usable.sum())
    else:
        labels = _column(frame, "label_column", mapping["label_column"])
        names = mapping["feature_columns"] or [c for c in frame.columns if c != labels.name]
        if not names:
            raise UploadError("feature_columns: the CSV has no feature columns besides the label")
        features = [
            _numeric(_column(frame, "feature_columns", n), "feature_columns") for n in names
        ]
        usable = pd.concat(features, axis=1).notna().all(axis=1) & labels.notna()
        _two_classes(labels[usable], "label_column")
        rows = int(usable.sum())
    _enough(rows, kind)
    return rows


def save_upload(
    settings: Settings, *, name: str, kind: Kind, content: bytes, mapping: dict[str, Any]
) -> DatasetInfo:
    """Validate and store an upload; returns its record. Nothing is kept if validation fails."""
    limits = UploadLimits.from_settings(settings)
    content = read_limited(io.BytesIO(content), limits)
    resolved = normalise_mapping(kind, mapping)
    frame = decode_csv(content)
    check_shape(list(frame.columns), len(frame), limits)
    rows = validate_frame(frame, kind, resolved)
    dataset_id = secrets.token_hex(8)
    target = _write(uploads_dir(settings), dataset_id, content.removeprefix(b"\xef\xbb\xbf"))
    record = DatasetRecord(
        id=dataset_id,
        name=name[:255] or f"{dataset_id}.csv",
        kind=kind,
        columns={"mapping": resolved, "header": [str(c) for c in frame.columns]},
        rows=rows,
        size_bytes=len(content),
    )
    try:
        with session_scope(get_engine(settings)) as session:
            session.add(record)
    except Exception:
        target.unlink(missing_ok=True)
        raise
    return DatasetInfo.from_record(record)


def _write(folder: Path, dataset_id: str, content: bytes) -> Path:
    """Write under a temporary name, then rename: a reader never sees half a file."""
    target = folder / f"{dataset_id}.csv"
    partial = folder / f".{dataset_id}.partial"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(content)
        os.replace(partial, target)
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise UploadError(  # the reason, not the server's path
            f"the server cannot store uploads ({error.strerror}): HPO_UPLOAD_DIR", 503
        ) from None
    return target


def list_uploads(
    engine: Engine, offset: int = 0, limit: int = 100
) -> tuple[list[DatasetInfo], int]:
    """A page of uploads, newest first, and the total count."""
    query = select(DatasetRecord).order_by(DatasetRecord.created_at.desc(), DatasetRecord.id)
    with session_scope(engine) as session:
        total = session.scalar(select(func.count()).select_from(DatasetRecord)) or 0
        records = session.scalars(query.offset(offset).limit(limit))
        return [DatasetInfo.from_record(r) for r in records], total


def get_upload(engine: Engine, dataset_id: str) -> DatasetInfo:
    with session_scope(engine) as session:
        record = session.get(DatasetRecord, dataset_id)
        if record is None:
            raise UploadError(f"no uploaded dataset with id {dataset_id!r}", status=404)
        return DatasetInfo.from_record(record)


def studies_using(engine: Engine, dataset_id: str) -> list[str]:
    """Names of studies whose spec reads this upload (specs are few and small: read them all)."""
    wanted = f"{UPLOAD_PREFIX}{dataset_id}"
    with session_scope(engine) as session:
        rows = session.execute(select(StudyRecord.name, StudyRecord.spec)).all()
    return [name for name, spec in rows if (spec.get("task") or {}).get("dataset") == wanted]


def delete_upload(settings: Settings, dataset_id: str) -> None:
    """Remove an upload and its file; refused while a study still names it."""
    engine = get_engine(settings)
    get_upload(engine, dataset_id)
    users = studies_using(engine, dataset_id)
    if users:
        raise UploadError(
            f"dataset {dataset_id} is used by study {users[0]!r}; delete that study first", 409
        )
    with session_scope(engine) as session:
        session.execute(delete(DatasetRecord).where(DatasetRecord.id == dataset_id))
    if UPLOAD_ID.fullmatch(dataset_id):
        with contextlib.suppress(OSError):
            (uploads_dir(settings) / f"{dataset_id}.csv").unlink()
