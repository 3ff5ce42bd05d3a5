"""StudySpec: the validated description of a study (the models and their field-named errors).

The spec is stored with the study because Optuna does not persist samplers or pruners: every
process (API, worker, CLI) rebuilds them from it (see :mod:`.sampling`). Unknown keys
and bad values are rejected by pydantic; :func:`format_errors` turns its errors into messages
that start with the dotted path of the offending field.

Reading a spec from text, files or the database is :mod:`.parse`'s; the search-space entry types
are :mod:`.space`'s. Building the models directly (``TaskSpec(...)`` in Python) is trusted code and
checks no limits.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from hpo_service.spec.space import (
    DATA_PARAMETERS,
    FloatRange,
    IntRange,
    PositiveFloat,
    PositiveInt,
    SearchSpace,
    StrictModel,
)
from hpo_service.spec.suggest import did_you_mean, known_keys

Kind = Literal["text_classification", "sequence_classification", "forecasting"]
Direction = Literal["minimize", "maximize"]

UPLOAD_PREFIX = "upload:"
#: What the server generates as an upload id (``secrets.token_hex(8)``); nothing else is one.
UPLOAD_ID = re.compile(r"[0-9a-f]{16}")

#: Datasets that need no upload. Files for sst2/sms_spam are read from ``HPO_DATA_DIR``.
BUILTIN_DATASETS: dict[str, Kind] = {
    "sunspots": "forecasting",
    "co2": "forecasting",
    "digits": "sequence_classification",
    "sst2": "text_classification",
    "sms_spam": "text_classification",
}

#: Official splits of built-in datasets that ``task.test_dataset`` may name (files under
#: ``HPO_DATA_DIR``): ``sst2:dev`` is GLUE SST-2's labelled dev set, 872 sentences, the split
#: GLUE reports its SST-2 accuracy on (GLUE's own test split has no labels).
BUILTIN_TEST_SETS: dict[str, Kind] = {"sst2:dev": "text_classification"}

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
    target_transform: Literal["none", "log", "diff", "seasonal_diff"] = Field(
        default="none",
        description="Forecasting: model log(1+y), the difference y[t]-y[t-1] or y[t]-y[t-season]; "
        "metrics and predictions are inverted to original units.",
    )
    season: PositiveInt | None = Field(
        default=None,
        description="Forecasting: steps per season (12 for monthly data): the lag of "
        "seasonal_diff (12 when unset), and the season of the seasonal-naive and ETS baselines "
        "(detected from the training part when unset).",
    )
    missing: Literal["interpolate", "drop"] = "interpolate"
    min_freq: PositiveInt = 2
    max_vocab: PositiveInt = 20000
    max_length: PositiveInt | None = None
    group_column: str | None = Field(
        default=None,
        description="CSV column whose equal values stay on one side of every split.",
    )
    val_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.1
    test_fraction: Annotated[float, Field(ge=0, lt=0.5)] = Field(
        default=0.2, description="Internal test split; 0 for none (no test figure is reported)."
    )
    test_dataset: str | None = Field(
        default=None,
        description="A separate test set ('upload:<id>', a .csv path or a built-in split: "
        "sst2:dev) replacing the internal test split; for forecasting, the values that follow "
        "the series.",
    )
    max_train_samples: PositiveInt | None = None
    seed: int = 0
    cv_folds: Annotated[int, Field(ge=2, le=20)] | None = Field(
        default=None,
        description="Trial value = mean over this many folds of train+validation (k-fold for "
        "classification, rolling origin for forecasting); off by default; no pruning then.",
    )
    refit: Literal["auto"] | bool = Field(
        default="auto",
        description="Train the configuration of a trial that is the study's best when it "
        "completes again on train+validation for its best epoch count; that model serves "
        "predictions. auto: when train+validation hold at most 5,000 examples (never with "
        "ensemble_trials > 1: the ensemble serves).",
    )
    ensemble_trials: Annotated[int, Field(ge=1, le=10)] = Field(
        default=1,
        description="Serve the average of the N best COMPLETE trials' models (class "
        "probabilities or forecasts), rebuilt as trials complete; its validation and test "
        "figures are reported beside the best trial's. 1: the best trial alone.",
    )

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
            hint = did_you_mean(ds, BUILTIN_DATASETS).removeprefix("; ")
            raise ValueError(
                f"dataset: unknown dataset {ds!r}; {hint + ' ' if hint else ''}"
                f"use one of {known}, 'upload:<id>' or a .csv path"
            )
        _check_test_and_groups(self)
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


def _check_test_and_groups(task: TaskSpec) -> None:
    """``test_dataset`` is a user file (a built-in's own test split is used by default);
    ``group_column`` needs rows to group, so it is for classification CSVs."""
    if task.target_transform != "none" and task.kind != "forecasting":
        raise ValueError("target_transform: only forecasting targets are transformed")
    test = task.test_dataset
    if test is not None and test in BUILTIN_TEST_SETS:
        if BUILTIN_TEST_SETS[test] != task.kind:
            raise ValueError(f"test_dataset: {test!r} is a {BUILTIN_TEST_SETS[test]} test set")
    elif test is not None and not (test.startswith(UPLOAD_PREFIX) or test.lower().endswith(".csv")):
        hint = did_you_mean(test, BUILTIN_TEST_SETS).removeprefix("; ")
        raise ValueError(
            f"test_dataset: {test!r} is not a built-in split, 'upload:<id>' or a .csv path; "
            f"{hint + ' ' if hint else ''}built-in splits: {', '.join(BUILTIN_TEST_SETS)}"
        )
    if test is not None and task.dataset in ("sunspots", "co2", "digits"):
        raise ValueError(f"test_dataset: {task.dataset!r} has no columns to match a test file")
    if task.group_column is not None:
        if task.kind == "forecasting":
            raise ValueError("group_column: forecasting splits are chronological, not grouped")
        if task.dataset in BUILTIN_DATASETS:
            raise ValueError(
                f"group_column: only for CSV datasets ({task.dataset!r} is grouped by the service)"
            )


class BudgetSpec(StrictModel):
    n_trials: Annotated[int, Field(ge=1)] = 20
    timeout_s: PositiveFloat | None = None
    max_epochs: Annotated[int, Field(ge=1)] = 10
    patience: PositiveInt | None = Field(default=None, description="Early-stopping patience.")
    count_failed: bool = Field(default=False, description="Whether FAIL trials use up budget.")
    max_retries: Annotated[int, Field(ge=0)] = 2


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
        for name in DATA_PARAMETERS:
            if getattr(self.search_space, name) is not None and self.task.kind != "forecasting":
                raise ValueError(f"search_space: {name} is searched for forecasting only")
        _check_ensemble(self)
        if self.sampler.type == "grid":
            for name, value in self.search_space:
                if isinstance(value, FloatRange | IntRange) and value.when is not None:
                    raise ValueError(
                        f"sampler: grid cannot search a conditional range (search_space.{name}"
                        ".when); use tpe or random"
                    )
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


def _check_ensemble(spec: StudySpec) -> None:
    """The members of ``task.ensemble_trials`` are averaged on the same inputs, so they share
    the study's preprocessing (no searched data entry), and "the N best" needs one objective."""
    if spec.task.ensemble_trials == 1:
        return
    if spec.is_multi_objective:
        raise ValueError(
            "task.ensemble_trials: a multi-objective study has no N best trials (use 1)"
        )
    if spec.task.refit is True:
        raise ValueError(
            "task.refit: an ensemble study serves its ensemble, not a refit; use refit auto "
            "or false with ensemble_trials > 1"
        )
    fixed = spec.search_space.fixed_values()
    for name in DATA_PARAMETERS:
        if getattr(spec.search_space, name) is not None and name not in fixed:
            raise ValueError(
                f"task.ensemble_trials: members must share their inputs; search_space.{name} "
                "is searched (fix it, or use 1)"
            )


def split_params(task: TaskSpec, params: dict[str, Any]) -> tuple[TaskSpec, dict[str, Any]]:
    """A trial's task (its data entries, such as a searched ``lookback``, applied) and the
    trainer's parameters (the rest). Unset data entries (None) leave the task as it is."""
    data = {k: params[k] for k in DATA_PARAMETERS if params.get(k) is not None}
    rest = {k: v for k, v in params.items() if k not in DATA_PARAMETERS}
    return (TaskSpec.model_validate({**task.model_dump(), **data}) if data else task), rest


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
            loc = tuple(item["loc"])
            message = "unknown key" + did_you_mean(str(loc[-1]), known_keys(StudySpec, loc[:-1]))
        lines.append(f"{location}: {message}")
    return lines
