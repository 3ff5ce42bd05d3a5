"""Frozen values that cross the trainer's boundary.

The trainer is plain PyTorch and knows nothing of Optuna, the database or the spec: the objective
(:mod:`hpo_service.scheduling.objective`) resolves a spec plus a trial's suggestions into a
:class:`TrainConfig`, and reads :class:`EpochResult` / :class:`TrainResult` back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

StopReason = Literal["max_epochs", "early_stopping", "pruned", "diverged", "interrupted"]


@dataclass(frozen=True)
class TrainConfig:
    """One fully resolved configuration: every hyperparameter has a concrete value."""

    learning_rate: float
    batch_size: int
    hidden_units: int
    optimizer: str  # sgd | momentum | adam | adamw | rmsprop
    num_layers: int = 1
    dropout: float = 0.0
    embedding_dim: int = 64
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # 0 disables clipping
    cell: str = "lstm"  # lstm | gru
    bidirectional: bool = False
    pooling: str = "last"  # last | max | mean, over the recurrent outputs (train.model)
    #: Validate, test and save an exponential moving average of the weights (decay per batch;
    #: 0 disables): see :mod:`hpo_service.train.loop`.
    ema_decay: float = 0.0
    #: Models trained side by side from different initialisations, averaged (train.model).
    ensemble_size: int = 1
    max_epochs: int = 10
    patience: int | None = None
    seed: int = 0
    device: str = "cpu"  # cpu | cuda | cuda:N | auto
    num_threads: int | None = None  # torch intra-op threads; None leaves torch's default
    metric: str = "loss"  # validation metric that picks the best epoch and drives patience
    direction: str = "minimize"  # minimize | maximize, for ``metric``
    amp: bool = True  # mixed precision; only ever used on CUDA
    #: Keep the last epoch's weights, not the best: a refit has no held-out data to choose by.
    keep_last: bool = False

    @classmethod
    def from_params(cls, params: dict[str, Any], **extra: Any) -> TrainConfig:
        """Build from a trial's parameters plus run settings. A key that is not a field is an
        error, never dropped: a search-space entry the trainer ignored would be sampled, stored
        and compared as if it mattered."""
        values = {**params, **extra}
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"the trainer has no hyperparameter {', '.join(unknown)}")
        return cls(**values)


@dataclass(frozen=True)
class EpochResult:
    """What one epoch produced; ``metrics`` are validation metrics keyed as in spec.METRICS."""

    epoch: int  # 1-based
    train_loss: float
    val_loss: float
    metrics: dict[str, float]
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    epochs: list[EpochResult]
    best_epoch: int  # 1-based index into epochs; 0 when no epoch finished
    stop_reason: StopReason
    test_metrics: dict[str, float] = field(default_factory=dict)
    n_params: int = 0
    reason_detail: str = ""  # e.g. "loss became nan at epoch 2, batch 17"
    #: Examples (texts, sequences or forecast windows) trained on, and that the validation and
    #: test figures rest on;
    #: test_n is 0 when there is no test split (task.test_fraction 0) or it was not evaluated.
    train_n: int = 0
    val_n: int = 0
    test_n: int = 0
    #: The best epoch's weights (CPU tensors) for save_artifacts; not part of equality or repr.
    best_state: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def best(self) -> EpochResult | None:
        return self.epochs[self.best_epoch - 1] if self.best_epoch else None

    @property
    def final(self) -> EpochResult | None:
        return self.epochs[-1] if self.epochs else None
