"""The search space of a study spec: each entry a fixed value, a list of choices or a range.

Kept apart from :mod:`hpo_service.spec` (which re-exports ``FloatRange``, ``IntRange`` and
``SearchSpace``, the names callers use) so that each module stays readable. An entry's shape is
chosen by the raw value's shape: a scalar (fixed value), a list (categorical choices) or a
mapping with ``low``/``high`` (a range; ``log`` and ``step`` optional).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

OptimizerName = Literal["sgd", "momentum", "adam", "adamw", "rmsprop"]
CellName = Literal["lstm", "gru"]
#: What the head sees: the final hidden state, or the max / mean of the outputs over time.
PoolingName = Literal["last", "max", "mean"]
TransformName = Literal["none", "log", "diff", "seasonal_diff"]


class StrictModel(BaseModel):
    """Unknown keys are refused (typos must not pass silently); specs are immutable values."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _inherit(data: Any) -> Any:
    """A ``when`` branch takes ``log`` and ``step`` from its entry unless it sets them."""
    if isinstance(data, dict) and isinstance(data.get("when"), dict):
        shared = {k: data[k] for k in ("log", "step") if k in data}
        when = {}
        for key, branches in data["when"].items():
            if isinstance(branches, dict):
                branches = {
                    c: {**shared, **b} if isinstance(b, dict) else b for c, b in branches.items()
                }
            when[key] = branches
        data = {**data, "when": when}
    return data


class _Conditional(StrictModel):
    """A range whose bounds may depend on a choice: ``when: {optimizer: {sgd: {low, high}}}``
    (one controlling entry; each listed choice gets its own range, the others this one)."""

    @model_validator(mode="before")
    @classmethod
    def _inherit_log_and_step(cls, data: Any) -> Any:
        return _inherit(data)


class FloatRange(_Conditional):
    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)
    when: dict[str, dict[str, FloatRange]] | None = Field(
        default=None,
        description="Ranges per choice of another entry, e.g. {optimizer: {sgd: "
        "{low: 0.01, high: 0.5}}}; choices not listed use this range.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("step cannot be combined with log")
        return self


class IntRange(_Conditional):
    low: int
    high: int
    log: bool = False
    step: int = Field(default=1, ge=1)
    when: dict[str, dict[str, IntRange]] | None = None

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
    pooling: _param(PoolingName, None) = "last"  # type: ignore[valid-type]
    ema_decay: _param(Probability, FloatRange) = 0.0  # type: ignore[valid-type]
    ensemble_size: _param(PositiveInt, IntRange) = 1  # type: ignore[valid-type]
    # Forecasting data entries: unset (None) means task.lookback / task.target_transform.
    lookback: _param(PositiveInt, IntRange) | None = None  # type: ignore[valid-type]
    target_transform: _param(TransformName, None) | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _ranges_within_bounds(self) -> SearchSpace:
        for name, value in self:
            if not isinstance(value, FloatRange | IntRange):
                continue
            _check_bounds(name, name, value)
            if value.when is not None:
                check_condition(self, name, value.when)
                ((key, branches),) = value.when.items()
                for choice, branch in branches.items():
                    _check_bounds(name, f"{name}.when.{key}.{choice}", branch)
        return self

    def fixed_values(self) -> dict[str, Any]:
        """Entries that are not searched over."""
        return {
            name: value
            for name, value in self
            if value is not None and not isinstance(value, list | FloatRange | IntRange)
        }


_BOUNDS: dict[str, tuple[float, float | None, bool]] = {
    "learning_rate": (0.0, None, False),
    "batch_size": (1, None, True),
    "hidden_units": (1, None, True),
    "num_layers": (1, None, True),
    "dropout": (0.0, 1.0, True),
    "embedding_dim": (1, None, True),
    "weight_decay": (0.0, None, True),
    "grad_clip": (0.0, None, True),
    "ema_decay": (0.0, 1.0, True),
    "ensemble_size": (1, None, True),
    "lookback": (1, None, True),
}


def _check_bounds(name: str, where: str, value: FloatRange | IntRange) -> None:
    """A range of entry ``name`` (``where``: the entry or one of its branches) within the
    values the trainer accepts."""
    if name not in _BOUNDS:
        return
    low, high, low_inclusive = _BOUNDS[name]
    too_low = value.low < low if low_inclusive else value.low <= low
    if too_low:
        raise ValueError(
            f"{where}: low ({value.low}) must be {'>=' if low_inclusive else '>'} {low}"
        )
    if high is not None and value.high >= high:
        raise ValueError(f"{where}: high ({value.high}) must be < {high}")


def branches(entry: Any) -> dict[str, Any]:
    """A range's ranges per choice ({} for an unconditional entry)."""
    when = getattr(entry, "when", None)
    return dict(next(iter(when.values()))) if when else {}


def condition_key(entry: Any) -> str | None:
    """The entry a conditional range depends on (None for any other entry)."""
    when = getattr(entry, "when", None)
    return next(iter(when)) if when else None


def highest(entry: Any) -> Any:
    """The largest value a range allows in any branch (limits and the size estimate use it)."""
    return max([entry.high, *(b.high for b in branches(entry).values())])


def check_condition(space: SearchSpace, name: str, when: dict[str, Any]) -> None:
    """``when`` names one other entry, a list of text choices, and only choices it offers."""
    if len(when) != 1:
        raise ValueError(f"{name}.when: name exactly one entry, got {len(when)}")
    ((key, branches),) = when.items()
    control = getattr(space, key, None) if key in SearchSpace.model_fields else None
    if key == name or control is None or not isinstance(control, list):
        lists = [n for n, v in space if isinstance(v, list) and n != name]
        raise ValueError(
            f"{name}.when.{key}: the range can depend only on an entry with a list of choices "
            f"({', '.join(lists) or 'none in this space'})"
        )
    if not all(isinstance(c, str) for c in control):
        raise ValueError(f"{name}.when.{key}: only entries whose choices are words qualify")
    for choice, branch in branches.items():
        if choice not in control:
            raise ValueError(f"{name}.when.{key}.{choice}: not one of the choices {control}")
        if branch.when is not None:
            raise ValueError(f"{name}.when.{key}.{choice}: a branch cannot have its own when")


#: Search-space entries that change the data, not the trainer: a trial's value replaces the task
#: field of the same name before the dataset is loaded (see ``spec.split_params``).
DATA_PARAMETERS: tuple[str, ...] = ("lookback", "target_transform")
#: The hyperparameters, in one list shared by the spec and the trainer: every other search-space
#: entry is a ``train.TrainConfig`` field, and ``TrainConfig.from_params`` refuses any other key.
HYPERPARAMETERS: tuple[str, ...] = tuple(
    name for name in SearchSpace.model_fields if name not in DATA_PARAMETERS
)
