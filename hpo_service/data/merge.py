"""Training and validation together, for a refit of a chosen configuration.

Why: on small data the validation split is a large share of what there is to learn from; once a
configuration and its epoch count are chosen, training once more on train+validation gives the
model that serves predictions more data. The preprocessing state (vocabulary, scaler) stays the
one fitted on the training split, so the refit model reads inputs exactly as the chosen one did.
"""

from __future__ import annotations

import dataclasses

import torch

from hpo_service.data.prepared import PAD, PreparedData, Split

#: ``task.refit: auto`` refits when train + validation hold at most this many examples (texts,
#: sequences or forecast windows): there a refit costs seconds and the extra data matters most.
AUTO_REFIT_MAX_EXAMPLES = 5000


def wants_refit(refit: str | bool, data: PreparedData) -> bool:
    """Whether ``task.refit`` asks for a refit of this dataset."""
    if refit == "auto":
        return len(data.train) + len(data.val) <= AUTO_REFIT_MAX_EXAMPLES
    return bool(refit)


def _padded(x: torch.Tensor, width: int) -> torch.Tensor:
    if x.dim() != 2 or x.shape[1] == width:
        return x
    out = torch.full((x.shape[0], width), PAD, dtype=x.dtype)
    out[:, : x.shape[1]] = x
    return out


def concat_splits(first: Split, second: Split) -> Split:
    """Both splits' rows in one (token ids right-padded to the wider of the two)."""
    width = max(first.x.shape[1], second.x.shape[1]) if first.x.dim() == 2 else 0
    x = torch.cat([_padded(first.x, width), _padded(second.x, width)])
    pairs = [
        (getattr(first, n), getattr(second, n)) for n in ("lengths", "ids", "context", "target")
    ]
    extra = (torch.cat([a, b]) if a is not None and b is not None else None for a, b in pairs)
    return Split(x, torch.cat([first.y, second.y]), *extra)


def with_validation_in_train(data: PreparedData) -> PreparedData:
    """The same dataset whose training split also holds the validation rows."""
    return dataclasses.replace(
        data, train=concat_splits(data.train, data.val), cache_key=f"{data.cache_key}+val"
    )
