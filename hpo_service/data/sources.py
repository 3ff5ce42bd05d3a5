"""Finding and reading raw data: built-in datasets, files in the data directory and uploads.

Every file a spec names is confined to the service's data roots (:class:`DataRoots`): a relative
path inside the read-only data directory, or ``upload:<id>`` in the upload directory. Confinement
is checked here, in the readers, and not only when a spec is validated, so a spec stored before a
validation rule existed, or a direct call, cannot read elsewhere either. Errors quote the spec's
value and say how to fix it; they never print a resolved server path, because they reach API
clients (a trial's ``fail_reason``). Readers return plain pandas/numpy values; cleaning,
splitting and encoding happen elsewhere.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hpo_service.data.errors import DatasetError
from hpo_service.messages import short_names
from hpo_service.spec import UPLOAD_ID, UPLOAD_PREFIX, TaskSpec

if TYPE_CHECKING:
    from hpo_service.config import Settings

HINT = "set HPO_DATA_DIR (or pass --data-dir) to the folder that holds it"
FILE_DATASETS = {
    "sst2": ("sst2/train.tsv", "sst2/dev.tsv"),
    "sms_spam": ("sms_spam/SMSSpamCollection",),
}
#: The file of each built-in split ``task.test_dataset`` may name (``spec.BUILTIN_TEST_SETS``).
TEST_SET_FILES = {"sst2:dev": "sst2/dev.tsv"}
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_RELATIVE = (
    "name the file relative to the data directory (HPO_DATA_DIR); on your own machine "
    "`hpo train` reads any local file with HPO_ALLOW_LOCAL_PATHS=true"
)


@dataclass(frozen=True)
class DataRoots:
    """Where datasets may be read from: ``data_dir`` (read-only file datasets), ``upload_dir``
    (uploads, by id only) and, for a local ``hpo train`` only, any local path."""

    data_dir: Path | None = None
    upload_dir: Path | None = None
    allow_local_paths: bool = False

    @classmethod
    def from_settings(
        cls, settings: Settings, *, local_cli: bool = False, data_dir: Path | None = None
    ) -> DataRoots:
        """The roots of a process. ``allow_local_paths`` counts only for ``local_cli`` callers:
        a worker runs specs from a shared database that API clients write to. ``data_dir``
        (``hpo train --data-dir``) replaces the configured data directory."""
        return cls(
            data_dir=data_dir or settings.data_dir,
            upload_dir=settings.upload_dir,
            allow_local_paths=local_cli and settings.allow_local_paths,
        )

    @classmethod
    def coerce(cls, value: DataRoots | Path | str | None) -> DataRoots:
        """A bare data directory (or None) means strict roots with no upload directory."""
        if isinstance(value, DataRoots):
            return value
        return cls(data_dir=Path(value) if value is not None else None)


def _is_file(path: Path) -> bool:
    """``Path.is_file`` that answers False for any OS error (a name too long, no permission)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _require(path: Path, what: str) -> Path:
    if not _is_file(path):
        raise DatasetError(f"{what} not found in the data directory ({HINT})")
    return path


def data_file(data_dir: Path | None, relative: str) -> Path:
    """A built-in dataset's file under the data directory (a fixed name: never user input)."""
    if data_dir is None:
        raise DatasetError(f"dataset file {relative} needs a data directory: {HINT}")
    return _require(Path(data_dir) / relative, f"dataset file {relative}")


def _refuse(dataset: str, problem: str, field: str = "task.dataset") -> DatasetError:
    """The refusal quotes the spec's value (cut short), never the path it resolved to."""
    quoted = repr(dataset) if len(dataset) <= 120 else repr(dataset[:117] + "...")
    return DatasetError(f"{field}: {quoted} {problem}")


def _upload_file(dataset: str, roots: DataRoots, field: str = "task.dataset") -> Path:
    """``upload:<id>`` -> ``<upload_dir>/<id>.csv``, for a well-formed id only."""
    upload_id = dataset[len(UPLOAD_PREFIX) :]
    if not UPLOAD_ID.fullmatch(upload_id):
        raise _refuse(dataset, "is not an upload id (16 hex digits; see GET /api/datasets)", field)
    if roots.upload_dir is None:
        raise _refuse(dataset, "needs the upload directory: set HPO_UPLOAD_DIR", field)
    folder = Path(roots.upload_dir).resolve()
    path = (folder / f"{upload_id}.csv").resolve()
    if not path.is_relative_to(folder) or not _is_file(path):
        raise _refuse(dataset, "is not in the upload directory; upload the file again", field)
    return path


def _local_file(dataset: str, field: str = "task.dataset") -> Path:
    """``allow_local_paths``: any local file, ``~`` expanded, relative to the current directory."""
    try:
        path = Path(dataset).expanduser()
    except RuntimeError:  # ~user that does not exist
        raise _refuse(dataset, "names an unknown home directory", field) from None
    if not _is_file(path):
        raise _refuse(dataset, "not found (relative paths start at the current directory)", field)
    return path


def _confined_problem(dataset: str) -> str | None:
    """Why ``dataset`` cannot name a file inside the data directory, judged on the text alone."""
    if "\x00" in dataset:
        return "contains a NUL character"
    if _URL.match(dataset):
        return "is a URL; only files are read: upload it (POST /api/datasets) instead"
    if dataset.startswith("~"):
        return f"starts with '~'; {_RELATIVE}"
    if Path(dataset).is_absolute():
        return f"is an absolute path; {_RELATIVE}"
    if ".." in Path(dataset).parts:
        return f"contains '..'; {_RELATIVE}"
    if not dataset.lower().endswith(".csv"):
        return "is not a .csv file"
    return None


def _data_dir_file(dataset: str, data_dir: Path | None, field: str = "task.dataset") -> Path:
    """A relative path that, symlinks followed, stays inside the data directory."""
    problem = _confined_problem(dataset)
    if problem is not None:
        raise _refuse(dataset, problem, field)
    if data_dir is None:
        raise _refuse(dataset, f"is read from the data directory, and none is set: {HINT}", field)
    root = Path(data_dir).resolve()
    path = (root / dataset).resolve()
    if not path.is_relative_to(root):
        raise _refuse(
            dataset, "leads outside the data directory (a symbolic link?); not read", field
        )
    if not _is_file(path):
        raise _refuse(
            dataset, "not found in the data directory (HPO_DATA_DIR); put it there", field
        )
    return path


def resolve_csv(dataset: str, roots: DataRoots, field: str = "task.dataset") -> Path:
    """The file a user CSV dataset names, confined to ``roots``; a DatasetError (naming
    ``field``) otherwise."""
    if dataset.startswith(UPLOAD_PREFIX):
        return _upload_file(dataset, roots, field)
    if roots.allow_local_paths and "\x00" not in dataset and not _URL.match(dataset):
        return _local_file(dataset, field)
    return _data_dir_file(dataset, roots.data_dir, field)


def source_files(task: TaskSpec, roots: DataRoots | Path | None) -> list[Path]:
    """The files a dataset is read from (empty for package-bundled datasets)."""
    roots = DataRoots.coerce(roots)
    if task.dataset in FILE_DATASETS:
        return [data_file(roots.data_dir, rel) for rel in FILE_DATASETS[task.dataset]]
    if task.dataset in ("sunspots", "co2", "digits"):
        return []
    return [resolve_csv(task.dataset, roots)]


def separate_test_file(task: TaskSpec, roots: DataRoots | Path | None) -> Path | None:
    """The separate test set's file (``task.test_dataset``), confined like ``task.dataset``."""
    if task.test_dataset is None:
        return None
    roots = DataRoots.coerce(roots)
    if task.test_dataset in TEST_SET_FILES:
        return held_out_set_file(task.test_dataset, roots.data_dir)
    return resolve_csv(task.test_dataset, roots, "task.test_dataset")


def held_out_set_file(name: str, data_dir: Path | None) -> Path:
    """A built-in split's file (``sst2:dev``) under the data directory; the error names
    ``task.test_dataset`` and the file it needs, never a server path."""
    relative = TEST_SET_FILES[name]
    field = "task.test_dataset"
    if data_dir is None:
        raise _refuse(name, f"is read from the data directory, and none is set: {HINT}", field)
    if not _is_file(Path(data_dir) / relative):
        raise _refuse(name, f"needs {relative} in the data directory ({HINT})", field)
    return Path(data_dir) / relative


def read_test_set(path: Path) -> pd.DataFrame:
    """A built-in split as text/label columns (SST-2's ``sentence\tlabel`` TSV)."""
    return read_tsv(path).rename(columns={"sentence": "text"})[["text", "label"]]


def fingerprint(files: list[Path]) -> list[str]:
    """Content hashes, so an edited or replaced file never reuses a stale cache entry."""
    try:
        return [hashlib.sha256(f.read_bytes()).hexdigest()[:16] for f in files]
    except OSError as error:
        raise DatasetError(f"a dataset file cannot be read ({error.strerror})") from None


def read_tsv(path: Path, names: list[str] | None = None) -> pd.DataFrame:
    """Tab-separated text with quotes kept literally (SST-2 and SMS texts contain quote marks)."""
    header = None if names else "infer"
    return pd.read_csv(
        path,
        sep="\t",
        header=header,
        names=names,
        quoting=csv.QUOTE_NONE,
        dtype=str,
        keep_default_na=False,
        encoding="utf-8",
    )


def read_csv(
    path: Path,
    columns: list[str],
    *,
    dataset: str,
    upload: bool = False,
    field: str = "task.dataset",
) -> pd.DataFrame:
    """A user CSV; every column in ``columns`` must exist, and a missing one is named.

    Only an upload's own columns are listed in the error (its client saw that header already);
    a data-directory file's header stays private, since the message reaches API clients.
    """
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise _refuse(
            dataset, f"is not a readable CSV: {str(error).strip()[:200]}", field
        ) from None
    except UnicodeDecodeError as error:
        raise _refuse(dataset, f"is not UTF-8 text (offset {error.start})", field) from None
    except OSError as error:
        raise _refuse(dataset, f"cannot be read ({error.strerror})", field) from None
    for column in columns:
        if column not in frame.columns:
            have = f" (columns: {short_names(frame.columns)})" if upload else ""
            problem = f"has no column {column!r}{have}; fix the spec's column fields"
            raise _refuse(dataset, problem, field)
    return frame


def builtin_series(name: str) -> np.ndarray:
    """Values of a statsmodels series in time order (co2 keeps its NaNs for the cleaning step)."""
    import statsmodels.api as sm

    if name == "sunspots":
        frame = sm.datasets.sunspots.load_pandas().data.sort_values("YEAR")
        return frame["SUNACTIVITY"].to_numpy(dtype=np.float64)
    frame = sm.datasets.co2.load_pandas().data.sort_index()
    return frame["co2"].to_numpy(dtype=np.float64)


def builtin_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits read row by row: 8 steps of 8 features each."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data.reshape(-1, 8, 8).astype(np.float32), digits.target.astype(np.int64)


def package_versions() -> list[str]:
    """Bundled datasets change only with their package version."""
    import sklearn
    import statsmodels

    return [statsmodels.__version__, sklearn.__version__]
