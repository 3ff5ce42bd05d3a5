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
TransformName = Literal["none", "log", "diff", "seasonal_diff"]


class StrictModel(BaseModel):
    """Unknown keys are refused (typos must not pass silently); specs are immutable values."""

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
    # Forecasting data entries: unset (None) means task.lookback / task.target_transform.
    lookback: _param(PositiveInt, IntRange) | None = None  # type: ignore[valid-type]
    target_transform: _param(TransformName, None) | None = None  # type: ignore[valid-type]

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
            "lookback": (1, None, True),
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
            if value is not None and not isinstance(value, list | FloatRange | IntRange)
        }


#: Search-space entries that change the data, not the trainer: a trial's value replaces the task
#: field of the same name before the dataset is loaded (see ``spec.split_params``).
DATA_PARAMETERS: tuple[str, ...] = ("lookback", "target_transform")
#: The hyperparameters, in one list shared by the spec and the trainer: every other search-space
#: entry is a ``train.TrainConfig`` field, and ``TrainConfig.from_params`` refuses any other key.
HYPERPARAMETERS: tuple[str, ...] = tuple(
    name for name in SearchSpace.model_fields if name not in DATA_PARAMETERS
)
