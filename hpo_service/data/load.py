"""``load_dataset``: from a task spec to cached, preprocessed tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
    test = sources.separate_test_file(task, roots)
    fingerprinted = files + ([test] if test is not None else [])
    parts = {
        "task": task.model_dump(mode="json", exclude=_NOT_PREPROCESSING),
        "files": sources.fingerprint(fingerprinted) if files else sources.package_versions(),
    }
    return cached(cache_key(parts), cache_dir, lambda: _build(task, files, test))


def _build(task: TaskSpec, files: list[Path], test: Path | None) -> PreparedData:
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
        fixed = _test_texts(task, test) if test is not None else dev.rename(columns=rename)
        return classify.prepare_text(train.rename(columns=rename), fixed, task)
    if name == "sms_spam":
        fixed = _test_texts(task, test) if test is not None else None
        return classify.prepare_text(sources.read_tsv(files[0], ["label", "text"]), fixed, task)
    if task.kind == "forecasting":
        values = _series(task, files[0], task.dataset)
        after = _series(task, test, task.test_dataset) if test is not None else None
        return series.prepare_series(values, task, after)
    if task.kind == "text_classification":
        frame = _read(task, files[0], "text", task.dataset)
        return classify.prepare_text(frame, _test_texts(task, test) if test else None, task)
    return _build_sequences(task, files[0], test)


def _test_texts(task: TaskSpec, path: Path) -> pd.DataFrame:
    """The separate test set of a text task: a built-in split (``sst2:dev``) or a user CSV."""
    if task.test_dataset in sources.TEST_SET_FILES:
        return sources.read_test_set(path)
    return _read(task, path, "text")


def _read(task: TaskSpec, path: Path, kind: str, dataset: str | None = None) -> pd.DataFrame:
    """A classification CSV with its columns renamed to text/label(/group); ``dataset`` None
    means the separate test set (which needs no group column)."""
    named = dataset if dataset is not None else str(task.test_dataset)
    group = [task.group_column] if task.group_column and dataset is not None else []
    columns = [task.text_column] if kind == "text" else list(task.feature_columns or [])
    frame = sources.read_csv(
        path,
        [*columns, task.label_column, *group],
        dataset=named,
        upload=named.startswith(UPLOAD_PREFIX),
        field="task.dataset" if dataset is not None else "task.test_dataset",
    )
    if kind != "text":
        return frame
    rename = {task.text_column: "text", task.label_column: "label"}
    if group:
        rename[group[0]] = "group"
    return frame.rename(columns=rename)[list(rename.values())]


def _series(task: TaskSpec, path: Path, dataset: str | None) -> np.ndarray:
    """The value column of a forecasting CSV (the main series or its continuation)."""
    named = str(dataset)
    columns = [task.value_column] + ([task.time_column] if task.time_column else [])
    field = "task.dataset" if named == task.dataset else "task.test_dataset"
    frame = sources.read_csv(
        path, columns, dataset=named, upload=named.startswith(UPLOAD_PREFIX), field=field
    )
    return series.read_series_csv(frame, task)


def _build_sequences(task: TaskSpec, path: Path, test: Path | None) -> PreparedData:
    """Sequence rows of the dataset (and of a separate test set, appended last)."""
    x, rows = classify.read_sequence_csv(_read(task, path, "seq", task.dataset), task)
    groups = classify.group_codes(rows, task)
    n_test = 0
    if test is not None:
        x_test, rows_test = classify.read_sequence_csv(_read(task, test, "seq"), task)
        x, n_test = np.concatenate([x, x_test]), len(rows_test)
        rows = pd.concat([rows, rows_test[["label"]]], ignore_index=True)
    return classify.prepare_sequences(x, rows["label"], task, groups, n_test)
