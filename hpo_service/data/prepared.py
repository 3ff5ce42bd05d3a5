"""The preprocessed form of a dataset that the trainer consumes.

Everything the trainer or a predictor needs is here: tensors per split plus the preprocessing state
(vocabulary, scaler, label names) fitted on the training split only. It is plain data so it can be
cached on disk with ``torch.save`` and reloaded with ``weights_only=True`` (no pickled code).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from hpo_service.data.errors import DatasetError

#: Index of the padding and unknown tokens in every vocabulary.
PAD, UNK = 0, 1
SPECIALS = ["<pad>", "<unk>"]

__all__ = ["PAD", "SPECIALS", "UNK", "DatasetError", "PreparedData", "Split"]


@dataclass(frozen=True, eq=False)
class Split:
    """One split. ``x`` is padded token ids [N, L] (text) or floats [N, T, F];
    ``y`` is class indices [N] or scaled targets [N, horizon]; ``lengths`` is set for text;
    ``ids`` identify the source rows (or the first target time step) so overlap can be checked.
    Forecasting with a target transform also keeps, per window, the original values a forecast
    is inverted from (``context``, [N, lag]) and the original-unit targets (``target``)."""

    x: torch.Tensor
    y: torch.Tensor
    lengths: torch.Tensor | None = None
    ids: torch.Tensor | None = None
    context: torch.Tensor | None = None
    target: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to_dict(self) -> dict[str, torch.Tensor]:
        out = {"x": self.x, "y": self.y}
        if self.lengths is not None:
            out["lengths"] = self.lengths
        for name in ("ids", "context", "target"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, torch.Tensor]) -> Split:
        extra = (data.get(name) for name in ("lengths", "ids", "context", "target"))
        return cls(data["x"], data["y"], *extra)

    def rows(self, keep: slice | torch.Tensor) -> Split:
        """Some rows of every tensor the split holds."""
        tensors = (self.x, self.y, self.lengths, self.ids, self.context, self.target)
        return Split(*(None if t is None else t[keep] for t in tensors))  # type: ignore[arg-type]


@dataclass(frozen=True, eq=False)
class PreparedData:
    """Tensors per split and the preprocessing state. Shared between trials: never mutate."""

    kind: str  # text_classification | sequence_classification | forecasting
    train: Split
    val: Split
    test: Split
    input_size: int  # vocabulary size (text) or features per time step
    n_classes: int = 0  # 0 for forecasting
    label_names: list[str] = field(default_factory=list)
    vocab: list[str] | None = None  # index -> token, PAD and UNK first
    scaler: dict[str, list[float]] | None = None  # {"mean": [...], "std": [...]} per feature
    lookback: int = 0
    horizon: int = 0
    target_transform: str = "none"  # forecasting: none | log | diff | seasonal_diff
    season: int = 12
    max_length: int | None = None
    dataset: str = ""
    cache_key: str = ""

    @property
    def is_text(self) -> bool:
        return self.kind == "text_classification"

    @property
    def n_outputs(self) -> int:
        """Width of the model's head: 1 logit for binary (BCE), one per class, or horizon."""
        if self.kind == "forecasting":
            return self.horizon
        return 1 if self.n_classes == 2 else self.n_classes

    def state(self) -> dict[str, Any]:
        """JSON-safe preprocessing state: what a predictor needs besides the weights."""
        return {
            "kind": self.kind,
            "input_size": self.input_size,
            "n_classes": self.n_classes,
            "n_outputs": self.n_outputs,
            "label_names": self.label_names,
            "vocab": self.vocab,
            "scaler": self.scaler,
            "lookback": self.lookback,
            "horizon": self.horizon,
            "target_transform": self.target_transform,
            "season": self.season,
            "max_length": self.max_length,
            "dataset": self.dataset,
            "seq_shape": list(self.train.x.shape[1:]) if not self.is_text else None,
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, for the on-disk cache."""
        state = self.state()
        for derived in ("n_outputs", "seq_shape"):
            state.pop(derived)
        state["cache_key"] = self.cache_key
        state.update({name: getattr(self, name).to_dict() for name in ("train", "val", "test")})
        return state

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreparedData:
        train, val, test = (Split.from_dict(data.pop(name)) for name in ("train", "val", "test"))
        return cls(train=train, val=val, test=test, **data)
