"""Caps on what a study spec may ask for, checked when a spec comes in (API, CLI).

Validation alone accepted a 1.5-million-entry choice list (stored, then sent back by every
listing), hidden sizes that need tens of GB (accepted, then failing inside a worker) and any
``.csv`` path for ``task.dataset`` (absolute, ``..``, URLs). :func:`check_limits` refuses those
before anything is stored, one line per problem, each naming the field and the setting that
raises the limit.

The limits are a frozen :class:`SpecLimits` value handed to ``parse_spec`` (built from settings by
``Settings.spec_limits()``), never global state. Only intake checks them: a spec already stored
is re-read with ``load_stored_spec``, which must keep working when limits are lowered later.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from hpo_service.spec.model import UPLOAD_ID, UPLOAD_PREFIX, StudySpec
from hpo_service.spec.size import estimate
from hpo_service.spec.space import SearchSpace, highest

#: Upper bound of every numeric field, by dotted path. A search-space bound applies to a fixed
#: value, to every choice and to a range's ``high``. HPO_SPEC_CAPS overrides entries.
NUMERIC_CAPS: dict[str, float] = {
    "search_space.learning_rate": 10.0,
    "search_space.batch_size": 8192,
    "search_space.hidden_units": 4096,
    "search_space.num_layers": 8,
    "search_space.dropout": 0.99,
    "search_space.embedding_dim": 2048,
    "search_space.weight_decay": 10.0,
    "search_space.grad_clip": 1000.0,
    "search_space.lookback": 5000,
    "search_space.ensemble_size": 16,
    "task.lookback": 5000,
    "task.horizon": 1000,
    "task.season": 5000,
    "task.min_freq": 100_000,
    "task.max_vocab": 1_000_000,
    "task.max_length": 5000,
    "task.max_train_samples": 100_000_000,
    "task.seed": 2**32 - 1,
    "budget.n_trials": 1_000_000,
    "budget.timeout_s": 30 * 86_400,
    "budget.max_epochs": 10_000,
    "budget.patience": 10_000,
    "budget.max_retries": 10,
    "sampler.seed": 2**32 - 1,
    "sampler.n_startup_trials": 100_000,
    "pruner.n_startup_trials": 100_000,
    "pruner.n_warmup_steps": 10_000,
    "pruner.min_resource": 10_000,
    "pruner.reduction_factor": 100,
}
#: Most items of a list field (``task.metric`` may be one string or a list).
ITEM_CAPS: dict[str, int] = {"task.metric": 8, "task.feature_columns": 1024}
#: Most characters of a text field (for ``task.feature_columns``: of each column name).
CHAR_CAPS: dict[str, int] = {
    "description": 2000,
    "task.dataset": 1000,
    "task.text_column": 200,
    "task.label_column": 200,
    "task.value_column": 200,
    "task.time_column": 200,
    "task.group_column": 200,
    "task.test_dataset": 1000,
    "task.feature_columns": 200,
}
DEFAULT_MAX_CHOICES = 64
DEFAULT_MAX_GRID_SIZE = 10_000
DEFAULT_MAX_MODEL_MB = 2048.0

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WHERE = "give a path relative to HPO_DATA_DIR or upload the file (POST /api/datasets)"
_LOCAL = (
    "; put the file under HPO_DATA_DIR or upload it"
    " (`hpo train` alone reads local paths with HPO_ALLOW_LOCAL_PATHS=true)"
)


@dataclass(frozen=True)
class SpecLimits:
    """What intake accepts; the defaults are the tables above. ``allow_local_paths`` lets a
    local CLI user name absolute, ``~`` and ``..`` paths; the API never sets it."""

    cap_overrides: tuple[tuple[str, float], ...] = ()
    max_choices: int = DEFAULT_MAX_CHOICES
    max_grid_size: int = DEFAULT_MAX_GRID_SIZE
    max_model_mb: float = DEFAULT_MAX_MODEL_MB
    allow_local_paths: bool = False

    def __post_init__(self) -> None:
        unknown = [path for path, _ in self.cap_overrides if path not in NUMERIC_CAPS]
        if unknown:
            raise ValueError(f"unknown spec cap {unknown[0]!r}; known: {', '.join(NUMERIC_CAPS)}")

    def cap(self, path: str) -> float:
        """The upper bound of one numeric field, overridden or from the table."""
        return dict(self.cap_overrides).get(path, NUMERIC_CAPS[path])


def _num(value: float) -> str:
    """12 for an integral value, 0.5 or 1e-05 otherwise."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def _size(megabytes: float) -> str:
    return f"{megabytes / 1024:.3g} GB" if megabytes >= 1024 else f"{megabytes:.3g} MB"


def _field(spec: StudySpec, path: str) -> Any:
    value: Any = spec
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _over_cap(path: str, value: Any, cap: float) -> str | None:
    """The problem with one field's value (fixed, choices or range), or None."""
    suffix = f"is above the limit {_num(cap)} (HPO_SPEC_CAPS)"
    if isinstance(value, list | tuple):
        over = [v for v in value if v > cap]
        return f"{path}: choice {_num(max(over))} {suffix}" if over else None
    high = highest(value) if hasattr(value, "high") else None  # a conditional range: any branch
    if high is not None:
        return f"{path}: high ({_num(high)}) {suffix}" if high > cap else None
    return f"{path}: {_num(value)} {suffix}" if value is not None and value > cap else None


def _numeric(spec: StudySpec, limits: SpecLimits) -> list[str]:
    found = (_over_cap(path, _field(spec, path), limits.cap(path)) for path in NUMERIC_CAPS)
    return [problem for problem in found if problem]


def _lengths(spec: StudySpec) -> list[str]:
    problems = []
    for path, most in ITEM_CAPS.items():
        value = _field(spec, path)
        if isinstance(value, list) and len(value) > most:
            problems.append(f"{path}: {len(value)} items; limit {most}")
    for path, most in CHAR_CAPS.items():
        value = _field(spec, path)
        texts = value if isinstance(value, list) else [value] if isinstance(value, str) else []
        longest = max((len(text) for text in texts), default=0)
        if longest > most:
            problems.append(f"{path}: {longest} characters; limit {most}")
    return problems


def _choices(space: SearchSpace, limits: SpecLimits) -> list[str]:
    return [
        f"search_space.{name}: {len(entry)} choices; limit {limits.max_choices} (HPO_MAX_CHOICES)"
        for name, entry in space
        if isinstance(entry, list) and len(entry) > limits.max_choices
    ]


def _grid_points(entry: Any) -> float:
    """Points an entry contributes to a grid (1 for a fixed value; a float, never overflowing)."""
    if isinstance(entry, list | tuple):
        return float(len(entry))
    step = getattr(entry, "step", None)
    if step is None:
        return 1.0 if not hasattr(entry, "high") else math.inf
    return math.floor((entry.high - entry.low) / step + 1e-9) + 1.0


def grid_size(space: SearchSpace) -> float:
    """How many points a grid search over ``space`` visits."""
    return math.prod(_grid_points(entry) for _, entry in space)


def _grid(spec: StudySpec, limits: SpecLimits) -> list[str]:
    if spec.sampler.type != "grid":
        return []
    points = grid_size(spec.search_space)
    if points <= limits.max_grid_size:
        return []
    return [
        f"search_space: a grid of {_num(points)} points; limit {limits.max_grid_size} "
        "(HPO_MAX_GRID_SIZE): give fewer choices or coarser steps"
    ]


def _model_size(spec: StudySpec, limits: SpecLimits) -> list[str]:
    found = estimate(spec.task, spec.search_space)
    if found.megabytes <= limits.max_model_mb:
        return []
    return [
        f"search_space: largest configuration needs ~{_size(found.megabytes)} "
        f"({found.describe()}); limit {_size(limits.max_model_mb)} (HPO_MAX_MODEL_MB)"
    ]


def _path_refusal(path: str, allow_local_paths: bool) -> str | None:
    """Why a ``.csv`` path is refused, with what to do instead; None when it is accepted."""
    if _CONTROL.search(path):
        return f"control characters (NUL, newline...) are not allowed; {_WHERE}"
    if "\\" in path:
        return f"backslashes are not allowed (separate folders with /); {_WHERE}"
    if _SCHEME.match(path):
        return f"URLs and drive letters (file:, http:, C:...) are not read; {_WHERE}"
    local = _outside_data_dir(path)
    return f"{local}; {_WHERE}{_LOCAL}" if local and not allow_local_paths else None


def _outside_data_dir(path: str) -> str | None:
    """Forms that name a file anywhere on the machine: fine for a local user who opted in."""
    if path.startswith("/"):
        return "absolute paths are not allowed"
    if path.startswith("~"):
        return "'~' (a home folder) is not allowed"
    if ".." in path.split("/"):
        return "'..' components are not allowed"
    return None


def dataset_problem(
    dataset: str, allow_local_paths: bool = False, field: str = "task.dataset"
) -> str | None:
    """The problem with ``task.dataset``'s (or ``task.test_dataset``'s) form, or None.
    Validation already refused anything that is not a built-in name, ``upload:...`` or a
    ``.csv`` path."""
    shown = repr(dataset if len(dataset) <= 80 else dataset[:77] + "...")
    if dataset.startswith(UPLOAD_PREFIX):
        if UPLOAD_ID.fullmatch(dataset[len(UPLOAD_PREFIX) :]):
            return None
        return f"{field}: {shown} is not 'upload:<hex id>' as POST /api/datasets returns it"
    if not dataset.lower().endswith(".csv"):
        return None
    reason = _path_refusal(dataset, allow_local_paths)
    return f"{field}: {shown}: {reason}" if reason else None


def check_limits(spec: StudySpec, limits: SpecLimits) -> list[str]:
    """Every way ``spec`` exceeds ``limits``, one line each starting with the field's path.
    The size estimate runs only on a spec within every other cap (its figure would be noise)."""
    problems = [*_numeric(spec, limits), *_lengths(spec), *_choices(spec.search_space, limits)]
    dataset = dataset_problem(spec.task.dataset, limits.allow_local_paths)
    problems += [dataset] if dataset else []
    if spec.task.test_dataset is not None:
        test = dataset_problem(
            spec.task.test_dataset, limits.allow_local_paths, "task.test_dataset"
        )
        problems += [test] if test else []
    problems += _grid(spec, limits)
    return problems or _model_size(spec, limits)
