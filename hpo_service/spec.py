"""StudySpec: the validated description of a study, loaded from YAML or JSON.

The spec is stored with the study because Optuna does not persist samplers or pruners: every
process (API, worker, CLI) rebuilds them from it (see :mod:`hpo_service.search`). Unknown keys
and bad values are rejected by pydantic; :func:`format_errors` turns its errors into messages
that start with the dotted path of the offending field.

A search-space entry is one of three shapes, chosen by the raw value's shape:
a scalar (fixed value), a list (categorical choices) or a mapping with ``low``/``high``
(a range; ``log`` and ``step`` optional).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

Kind = Literal["text_classification", "sequence_classification", "forecasting"]
Direction = Literal["minimize", "maximize"]
OptimizerName = Literal["sgd", "momentum", "adam", "adamw", "rmsprop"]
CellName = Literal["lstm", "gru"]

#: Datasets that need no upload. Files for sst2/sms_spam are read from ``HPO_DATA_DIR``.
BUILTIN_DATASETS: dict[str, Kind] = {
    "sunspots": "forecasting",
    "co2": "forecasting",
    "digits": "sequence_classification",
    "sst2": "text_classification",
    "sms_spam": "text_classification",
}
UPLOAD_PREFIX = "upload:"

_CLASSIFICATION_METRICS = {
    "accuracy": "maximize",
    "f1": "maximize",
    "f1_macro": "maximize",
    "precision": "maximize",
    "recall": "maximize",
    "precision_macro": "maximize",
    "recall_macro": "maximize",
}
_FORECAST_METRICS = {"rmse": "minimize", "mae": "minimize", "mape": "minimize"}
_COMMON_METRICS = {"loss": "minimize", "n_params": "minimize"}
#: Validation metrics the trainer reports per task kind, with their natural direction.
METRICS: dict[str, dict[str, str]] = {
    "text_classification": {**_CLASSIFICATION_METRICS, **_COMMON_METRICS},
    "sequence_classification": {**_CLASSIFICATION_METRICS, **_COMMON_METRICS},
    "forecasting": {**_FORECAST_METRICS, **_COMMON_METRICS},
}
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FloatRange(StrictModel):
    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("step cannot be combined with log")
        return self


class IntRange(StrictModel):
    low: int
    high: int
    log: bool = False
    step: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        if self.log and self.step != 1:
            raise ValueError("step cannot be combined with log")
        return self


def _shape(value: Any) -> str:
    if isinstance(value, dict | FloatRange | IntRange):
        return "range"
    if isinstance(value, list | tuple):
        return "choices"
    return "fixed"


def _param(fixed: Any, rng: type[BaseModel] | None) -> Any:
    """A search-space entry type: fixed value, non-empty list of choices, or a range."""
    members: list[Any] = [
        Annotated[fixed, Tag("fixed")],
        Annotated[list[fixed], Field(min_length=1), Tag("choices")],
    ]
    if rng is not None:
        members.append(Annotated[rng, Tag("range")])
    union = members[0]
    for member in members[1:]:
        union = union | member
    return Annotated[union, Discriminator(_shape)]


PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]
Probability = Annotated[float, Field(ge=0, lt=1)]


class SearchSpace(StrictModel):
    """Each entry fixed, a list of choices, or a {low, high, log?, step?} range."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    learning_rate: _param(PositiveFloat, FloatRange) = FloatRange(low=1e-4, high=1e-1, log=True)  # type: ignore[valid-type]
    batch_size: _param(PositiveInt, IntRange) = [32, 64, 128]  # type: ignore[valid-type]
    hidden_units: _param(PositiveInt, IntRange) = IntRange(low=16, high=128)  # type: ignore[valid-type]
    optimizer: _param(OptimizerName, None) = ["sgd", "momentum", "adam", "rmsprop"]  # type: ignore[valid-type]
    num_layers: _param(PositiveInt, IntRange) = 1  # type: ignore[valid-type]
    dropout: _param(Probability, FloatRange) = 0.0  # type: ignore[valid-type]
    embedding_dim: _param(PositiveInt, IntRange) = 64  # type: ignore[valid-type]
    weight_decay: _param(NonNegFloat, FloatRange) = 0.0  # type: ignore[valid-type]
    grad_clip: _param(NonNegFloat, FloatRange) = 1.0  # type: ignore[valid-type]
    cell: _param(CellName, None) = "lstm"  # type: ignore[valid-type]
    bidirectional: _param(bool, None) = False  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _ranges_within_bounds(self) -> SearchSpace:
        bounds = {
            "learning_rate": (0.0, None, False),
            "batch_size": (1, None, True),
            "hidden_units": (1, None, True),
            "num_layers": (1, None, True),
            "dropout": (0.0, 1.0, True),
            "embedding_dim": (1, None, True),
            "weight_decay": (0.0, None, True),
            "grad_clip": (0.0, None, True),
        }
        for name, (low, high, low_inclusive) in bounds.items():
            value = getattr(self, name)
            if not isinstance(value, FloatRange | IntRange):
                continue
            too_low = value.low < low if low_inclusive else value.low <= low
            if too_low:
                raise ValueError(
                    f"{name}: low ({value.low}) must be {'>=' if low_inclusive else '>'} {low}"
                )
            if high is not None and value.high >= high:
                raise ValueError(f"{name}: high ({value.high}) must be < {high}")
        return self

    def fixed_values(self) -> dict[str, Any]:
        """Entries that are not searched over."""
        return {
            name: value
            for name, value in self
            if not isinstance(value, list | FloatRange | IntRange)
        }


class TaskSpec(StrictModel):
    """What to learn and how to judge it. Column names apply to user CSV datasets."""

    dataset: str = Field(description="Built-in name, 'upload:<id>' or a path to a .csv file.")
    kind: Kind
    metric: str | list[str] = Field(default="loss", description="Validation metric(s) to optimise.")
    direction: Direction | list[Direction] | None = Field(
        default=None, description="Defaults to each metric's natural direction."
    )
    text_column: str = "text"
    label_column: str = "label"
    value_column: str = "value"
    time_column: str | None = None
    feature_columns: list[str] | None = None
    lookback: PositiveInt = 24
    horizon: PositiveInt = 1
    missing: Literal["interpolate", "drop"] = "interpolate"
    min_freq: PositiveInt = 2
    max_vocab: PositiveInt = 20000
    max_length: PositiveInt | None = None
    val_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.1
    test_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.2
    max_train_samples: PositiveInt | None = None
    seed: int = 0

    @property
    def metrics(self) -> list[str]:
        return [self.metric] if isinstance(self.metric, str) else list(self.metric)

    @property
    def directions(self) -> list[str]:
        if self.direction is None:
            return [METRICS[self.kind][m] for m in self.metrics]
        return [self.direction] if isinstance(self.direction, str) else list(self.direction)

    @model_validator(mode="after")
    def _dataset_and_metric(self) -> TaskSpec:
        ds = self.dataset
        if ds in BUILTIN_DATASETS:
            if BUILTIN_DATASETS[ds] != self.kind:
                raise ValueError(
                    f"dataset: {ds!r} is a {BUILTIN_DATASETS[ds]} dataset, not {self.kind}"
                )
        elif not (ds.startswith(UPLOAD_PREFIX) or ds.lower().endswith(".csv")):
            known = ", ".join(sorted(BUILTIN_DATASETS))
            raise ValueError(
                f"dataset: unknown dataset {ds!r}; use one of {known}, 'upload:<id>' or a .csv path"
            )
        allowed = METRICS[self.kind]
        for metric in self.metrics:
            if metric not in allowed:
                raise ValueError(
                    f"metric: {metric!r} is not reported for {self.kind}; "
                    f"choose from {', '.join(allowed)}"
                )
        if not self.metrics:
            raise ValueError("metric: at least one metric is needed")
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError("metric: each metric may appear once")
        if len(self.directions) != len(self.metrics):
            raise ValueError("direction: give one direction per metric")
        return self


class BudgetSpec(StrictModel):
    n_trials: Annotated[int, Field(ge=1, le=1_000_000)] = 20
    timeout_s: PositiveFloat | None = None
    max_epochs: Annotated[int, Field(ge=1, le=10_000)] = 10
    patience: PositiveInt | None = Field(default=None, description="Early-stopping patience.")
    count_failed: bool = Field(default=False, description="Whether FAIL trials use up budget.")
    max_retries: Annotated[int, Field(ge=0, le=10)] = 2


class SamplerSpec(StrictModel):
    type: Literal["tpe", "random", "grid", "cmaes", "gp", "nsga2"] = "tpe"
    seed: int | None = None
    n_startup_trials: Annotated[int, Field(ge=0)] | None = None


class PrunerSpec(StrictModel):
    type: Literal["none", "median", "successive_halving", "hyperband"] = "median"
    n_startup_trials: Annotated[int, Field(ge=0)] = 3
    n_warmup_steps: Annotated[int, Field(ge=0)] = 1
    min_resource: PositiveInt = 1
    reduction_factor: Annotated[int, Field(ge=2)] = 3


def _shorthand(value: Any) -> Any:
    return {"type": value} if isinstance(value, str) else value


class StudySpec(StrictModel):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: str = ""
    task: TaskSpec
    search_space: Annotated[SearchSpace, Field(default_factory=SearchSpace)]
    budget: BudgetSpec = BudgetSpec()
    sampler: Annotated[SamplerSpec, Field(default_factory=SamplerSpec)]
    pruner: Annotated[PrunerSpec, Field(default_factory=PrunerSpec)]

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthands(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("sampler", "pruner"):
                if key in data:
                    data[key] = _shorthand(data[key])
        return data

    @model_validator(mode="after")
    def _sampler_fits(self) -> StudySpec:
        multi = len(self.task.metrics) > 1
        if multi and self.pruner.type != "none":
            raise ValueError(
                "pruner: pruning is not supported for multi-objective studies; use 'none'"
            )
        if multi and self.sampler.type in ("cmaes", "gp"):
            raise ValueError(
                f"sampler: {self.sampler.type} supports one objective; use nsga2 or tpe"
            )
        if self.sampler.type == "grid":
            for name, value in self.search_space:
                if isinstance(value, FloatRange) and value.step is None:
                    raise ValueError(
                        f"sampler: grid needs finite choices; search_space.{name} is a "
                        "continuous range (give a list or a step)"
                    )
        return self

    @property
    def directions(self) -> list[str]:
        return self.task.directions

    @property
    def is_multi_objective(self) -> bool:
        return len(self.task.metrics) > 1


class SpecError(ValueError):
    """A spec failed to parse or validate; ``messages`` name the fields."""

    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__("invalid study spec:\n  " + "\n  ".join(messages))


_TAGS = {"fixed", "choices", "range"}


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if str(p) not in _TAGS and not str(p).startswith("function-")]
    return re.sub(r"\.(\d+)", r"[\1]", ".".join(parts)) or "spec"


def format_errors(error: ValidationError) -> list[str]:
    """One line per problem, each starting with the dotted field path."""
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        location = _location(tuple(item["loc"]))
        # Model-level validators prefix their message with the field they blame.
        named = re.match(r"^([a-z_][\w.]*): (.*)$", message, re.S)
        if named:
            field, message = named.groups()
            location = field if location == "spec" else f"{location}.{field}"
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{location}: {message}")
    return lines


def parse_spec(data: Any) -> StudySpec:
    """Validate an already-decoded mapping, raising :class:`SpecError` with field names."""
    if not isinstance(data, dict):
        raise SpecError([f"spec: expected a mapping at the top level, got {type(data).__name__}"])
    try:
        return StudySpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(format_errors(error)) from None


def parse_spec_text(text: str, fmt: Literal["yaml", "json"] = "yaml") -> StudySpec:
    """Parse YAML (a superset of JSON) or strict JSON text into a spec."""
    try:
        data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise SpecError([f"spec: not valid {fmt.upper()}: {error}"]) from None
    return parse_spec(data)


def load_spec(path: str | Path) -> StudySpec:
    """Load a spec file; ``.json`` is parsed as JSON, anything else as YAML."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise SpecError([f"spec: cannot read {file}: {error.strerror}"]) from None
    return parse_spec_text(text, "json" if file.suffix.lower() == ".json" else "yaml")


def spec_to_dict(spec: StudySpec) -> dict[str, Any]:
    """The JSON-safe form stored in the database and returned by the API."""
    return spec.model_dump(mode="json")
