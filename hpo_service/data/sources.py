"""Finding and reading raw data: built-in datasets, files in the data directory and user CSVs.

Readers return plain pandas/numpy values; cleaning, splitting and encoding happen elsewhere. Errors
name the exact path looked at, because "file not found" is the most common first-run problem.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from hpo_service.data.prepared import DatasetError
from hpo_service.spec import UPLOAD_PREFIX, TaskSpec

HINT = "set HPO_DATA_DIR (or pass --data-dir) to the folder that holds it"
FILE_DATASETS = {
    "sst2": ("sst2/train.tsv", "sst2/dev.tsv"),
    "sms_spam": ("sms_spam/SMSSpamCollection",),
}


def _require(path: Path) -> Path:
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path} ({HINT})")
    return path


def data_file(data_dir: Path | None, relative: str) -> Path:
    """A file under the data directory, or a DatasetError saying where it was looked for."""
    if data_dir is None:
        raise DatasetError(f"dataset file {relative} needs a data directory: {HINT}")
    return _require(Path(data_dir) / relative)


def resolve_csv(dataset: str, data_dir: Path | None) -> Path:
    """``upload:<id>`` -> ``<data_dir>/uploads/<id>.csv``; relative paths: data_dir, then CWD."""
    if dataset.startswith(UPLOAD_PREFIX):
        return data_file(data_dir, f"uploads/{dataset[len(UPLOAD_PREFIX) :]}.csv")
    path = Path(dataset).expanduser()
    if path.is_absolute():
        return _require(path)
    candidates = ([Path(data_dir) / path] if data_dir is not None else []) + [Path.cwd() / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = " or ".join(str(c) for c in candidates)
    raise DatasetError(f"dataset file not found: looked for {looked} ({HINT})")


def source_files(task: TaskSpec, data_dir: Path | None) -> list[Path]:
    """The files a dataset is read from (empty for package-bundled datasets)."""
    if task.dataset in FILE_DATASETS:
        return [data_file(data_dir, rel) for rel in FILE_DATASETS[task.dataset]]
    if task.dataset in ("sunspots", "co2", "digits"):
        return []
    return [resolve_csv(task.dataset, data_dir)]


def fingerprint(files: list[Path]) -> list[str]:
    """Content hashes, so an edited or replaced file never reuses a stale cache entry."""
    return [hashlib.sha256(f.read_bytes()).hexdigest()[:16] for f in files]


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


def read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    """A user CSV; every column in ``columns`` must exist, and a missing one is named."""
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read CSV {path}: {error}") from None
    for column in columns:
        if column not in frame.columns:
            have = ", ".join(map(str, frame.columns))
            raise DatasetError(f"CSV {path} has no column {column!r} (columns: {have})")
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
