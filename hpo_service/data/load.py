"""``load_dataset``: from a task spec to cached, preprocessed tensors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hpo_service.data import classify, series, sources
from hpo_service.data.cache import cache_key, cached
from hpo_service.data.prepared import PreparedData
from hpo_service.data.sources import DataRoots
from hpo_service.spec import UPLOAD_PREFIX, TaskSpec

#: TaskSpec fields that do not change preprocessing (kept out of the cache key).
_NOT_PREPROCESSING = {"metric", "direction"}


def load_dataset(
    task: TaskSpec, roots: DataRoots | Path | None, cache_dir: Path | None = None
) -> PreparedData:
    """Preprocessed train/val/test tensors for ``task``, from the cache when possible.

    ``roots`` says where files may be read (a bare path is a data directory with strict rules,
    see :class:`DataRoots`). Raises :class:`~hpo_service.data.DatasetError` for a dataset outside
    the roots or missing (naming ``task.dataset``, never a server path), an unreadable CSV or a
    missing column.
    """
    files = sources.source_files(task, roots)
    parts = {
        "task": task.model_dump(mode="json", exclude=_NOT_PREPROCESSING),
        "files": sources.fingerprint(files) if files else sources.package_versions(),
    }
    return cached(cache_key(parts), cache_dir, lambda: _build(task, files))


def _build(task: TaskSpec, files: list[Path]) -> PreparedData:
    """Read and preprocess without any caching."""
    name = task.dataset
    if name in ("sunspots", "co2"):
        return series.prepare_series(sources.builtin_series(name), task)
    if name == "digits":
        x, y = sources.builtin_digits()
        return classify.prepare_sequences(x, pd.Series(y), task)
    if name == "sst2":
        train, dev = (sources.read_tsv(f) for f in files)
        rename = {"sentence": "text"}
        return classify.prepare_text(train.rename(columns=rename), dev.rename(columns=rename), task)
    if name == "sms_spam":
        return classify.prepare_text(sources.read_tsv(files[0], ["label", "text"]), None, task)
    return _build_csv(task, files[0])


def _build_csv(task: TaskSpec, path: Path) -> PreparedData:
    def read(columns: list[str]) -> pd.DataFrame:
        upload = task.dataset.startswith(UPLOAD_PREFIX)
        return sources.read_csv(path, columns, dataset=task.dataset, upload=upload)

    if task.kind == "forecasting":
        frame = read([task.value_column] + ([task.time_column] if task.time_column else []))
        return series.prepare_series(series.read_series_csv(frame, task), task)
    if task.kind == "text_classification":
        frame = read([task.text_column, task.label_column])
        frame = frame.rename(columns={task.text_column: "text", task.label_column: "label"})
        return classify.prepare_text(frame[["text", "label"]], None, task)
    frame = read([task.label_column, *(task.feature_columns or [])])
    x, labels = classify.read_sequence_csv(frame, task)
    return classify.prepare_sequences(x, labels, task)
