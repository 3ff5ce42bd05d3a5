"""Is a task's dataset there? The cheap check run when a study is created or started.

A study whose dataset is missing used to be accepted, and each of its trials then failed with a
traceback. Every door (``POST /api/studies``, ``hpo study create``, ``hpo run``, starting workers)
now asks :func:`check_available` first: the files exist inside the data roots (the same
:mod:`.sources` rules the loader follows, so nothing outside them is touched) and a CSV's header
row has the columns the spec names. Only the header is read, never the data, so the check costs
milliseconds whatever the file's size. It cannot promise a load succeeds (a value that does not
parse is found by the trainer), only that the common mistakes are refused at once.

Messages start with the spec field, quote the spec's value (never a resolved server path) and say
how to fix it. A data-directory CSV's other columns stay private; an upload's are listed, as in
:func:`.sources.read_csv`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hpo_service.data.errors import DatasetError
from hpo_service.data.sources import FILE_DATASETS, DataRoots, resolve_csv, separate_test_file
from hpo_service.messages import short_names
from hpo_service.spec import UPLOAD_PREFIX, TaskSpec

#: Datasets that ship inside installed packages (statsmodels, scikit-learn): always there.
BUNDLED = ("sunspots", "co2", "digits")


def check_available(task: TaskSpec, roots: DataRoots) -> None:
    """Raise :class:`DatasetError` naming the field when ``task``'s data (or its separate test
    set, ``task.test_dataset``) cannot be found."""
    if task.dataset in FILE_DATASETS:
        _check_builtin_files(task.dataset, roots.data_dir)
    elif task.dataset not in BUNDLED:
        _check_columns(task, resolve_csv(task.dataset, roots))
    if task.test_dataset is not None:
        # The built-in split's file, or the user file confined like task.dataset (its columns
        # are checked by the loader, whose message names task.test_dataset too).
        separate_test_file(task, roots)


def _check_builtin_files(name: str, data_dir: Path | None) -> None:
    files = FILE_DATASETS[name]
    fix = (
        f"set HPO_DATA_DIR to the folder that holds {files[0].split('/')[0]}/ "
        f"(or use a bundled dataset: {', '.join(BUNDLED)})"
    )
    if data_dir is None:
        raise DatasetError(
            f"task.dataset: {name!r} is read from HPO_DATA_DIR, which is unset; {fix}"
        )
    for relative in files:
        try:
            present = (Path(data_dir) / relative).is_file()
        except OSError:
            present = False
        if not present:
            raise DatasetError(
                f"task.dataset: {name!r} needs {relative} in the data directory; {fix}"
            )


def needed_columns(task: TaskSpec) -> list[tuple[str, str]]:
    """(spec field, column name) pairs a CSV of this task's kind must have; the loader reads
    the same columns (:func:`hpo_service.data.load._build_csv`)."""
    if task.kind == "forecasting":
        pairs = [("value_column", task.value_column)]
        return pairs + ([("time_column", task.time_column)] if task.time_column else [])
    if task.kind == "text_classification":
        return [("text_column", task.text_column), ("label_column", task.label_column)]
    features = [("feature_columns", name) for name in task.feature_columns or []]
    return [("label_column", task.label_column), *features]


def _header(path: Path, dataset: str) -> list[str]:
    """The CSV's column names, parsed as the loader parses them (quoting, BOM), rows unread."""
    try:
        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except (pd.errors.ParserError, pd.errors.EmptyDataError):
        raise DatasetError(f"task.dataset: {dataset!r} has no readable CSV header row") from None
    except UnicodeDecodeError as error:
        raise DatasetError(
            f"task.dataset: {dataset!r} is not UTF-8 text (offset {error.start})"
        ) from None
    except OSError as error:
        raise DatasetError(f"task.dataset: {dataset!r} cannot be read ({error.strerror})") from None


def _check_columns(task: TaskSpec, path: Path) -> None:
    header = _header(path, task.dataset)
    for field, column in needed_columns(task):
        if column not in header:
            upload = task.dataset.startswith(UPLOAD_PREFIX)
            have = f" (its columns: {short_names(header)})" if upload else ""
            raise DatasetError(
                f"task.{field}: {column!r} is not a column of {task.dataset!r}{have}; "
                f"name one of the file's columns in task.{field}"
            )
