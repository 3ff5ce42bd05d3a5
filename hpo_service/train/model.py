"""The model: embedding (text) or input projection -> LSTM/GRU -> pooling -> dropout -> head.

Text batches arrive with their true lengths and, when they hold any padding, are packed, so the
recurrent cell never steps over padding and the final hidden state is the one at each sequence's
real end. ``pooling`` chooses what the head sees: that final state (``last``), or the top layer's
outputs over all real steps reduced by ``max`` or ``mean`` (padded steps masked out). Max pooling
over time lets a text classifier react to one telling word anywhere in the message, which the
last state of a long message tends to forget.

``ensemble_size`` k > 1 builds :class:`EnsembleModel`: k such models from different random
initialisations, trained side by side on the same batches (each on its own loss) and averaged
when evaluated: probabilities for classification, forecasts for forecasting. Why: a BiLSTM's
accuracy on SST-2's dev set moves by a point or more with nothing but the seed; the average of
three is steadier and better than any one of them (``bench/bench_sst2_ceiling.py``). It costs k
times the training time and parameters, which the spec's size estimate counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

POOLINGS = ("last", "max", "mean")


class RecurrentModel(nn.Module):
    """One recurrent encoder with a task head.

    For forecasting the head predicts the change from the last observed (scaled) value, so an
    untrained model starts at the naive last-value forecast instead of at the series mean.
    """

    def __init__(
        self,
        kind: str,
        input_size: int,
        n_outputs: int,
        hidden_units: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        embedding_dim: int = 64,
        cell: str = "lstm",
        bidirectional: bool = False,
        pooling: str = "last",
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        self.kind = kind
        self.pooling = pooling
        self.inputs: nn.Module = (
            nn.Embedding(input_size, embedding_dim, padding_idx=0)
            if kind == "text_classification"
            else nn.Linear(input_size, embedding_dim)
        )
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn(
            embedding_dim,
            hidden_units,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        self.directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_units * self.directions, n_outputs)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, n_outputs] (classification) or scaled forecasts [B, horizon]."""
        emb = self.inputs(x)
        # Pack only when the batch holds padding: length-bucketed batches are mostly of one
        # length, and packing a batch without padding costs time and changes nothing.
        padded = lengths if lengths is not None and int(lengths.min()) < x.shape[1] else None
        steps: torch.Tensor | PackedSequence = emb
        if padded is not None:
            steps = pack_padded_sequence(emb, padded.cpu(), batch_first=True, enforce_sorted=False)
        outputs, hidden = self.rnn(steps)
        if self.pooling == "last":
            h_n = hidden[0] if isinstance(hidden, tuple) else hidden
            features = torch.cat(list(h_n[-self.directions :]), dim=-1)  # top layer, each way
        else:
            features = self._pool(outputs, padded)
        out = self.head(self.dropout(features))
        if self.kind == "forecasting":
            out = out + x[:, -1, :1]
        return out

    def _pool(
        self, outputs: torch.Tensor | PackedSequence, lengths: torch.Tensor | None
    ) -> torch.Tensor:
        """Max or mean over time of the top layer's outputs [B, T, H*dirs]; with ``lengths``
        (a packed batch) the padded steps are -inf for max and left out of the mean."""
        if isinstance(outputs, PackedSequence):
            outputs, _ = pad_packed_sequence(outputs, batch_first=True)
        if lengths is None:
            return outputs.amax(dim=1) if self.pooling == "max" else outputs.mean(dim=1)
        lengths = lengths.to(outputs.device)
        steps = torch.arange(outputs.shape[1], device=outputs.device)
        real = (steps[None, :] < lengths[:, None]).unsqueeze(-1)  # [B, T, 1]
        if self.pooling == "max":
            return outputs.masked_fill(~real, float("-inf")).amax(dim=1)
        total = outputs.masked_fill(~real, 0.0).sum(dim=1)
        return total / lengths.clamp(min=1).unsqueeze(-1).to(outputs.dtype)


class EnsembleModel(nn.Module):
    """k :class:`RecurrentModel` members. Training mode returns each member's output stacked
    [k, B, n_outputs] (the loop averages their losses, so no member leans on another); evaluation
    mode returns one combined output of a single model's shape: the members' mean forecast, or
    the logits of their mean class probabilities (so a loss or an argmax reads it unchanged)."""

    def __init__(self, members: Sequence[RecurrentModel | EnsembleModel]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.kind: str = members[0].kind
        self.pooling: str = members[0].pooling

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        outputs = torch.stack([member(x, lengths) for member in self.members])
        return outputs if self.training else combine(self.kind, outputs)


def combine(kind: str, outputs: torch.Tensor) -> torch.Tensor:
    """Members' outputs [k, B, n] as one output [B, n]; see :class:`EnsembleModel`."""
    if kind == "forecasting":
        return outputs.mean(dim=0)
    if outputs.shape[-1] == 1:  # two classes: one logit each, the mean probability's logit
        p = torch.sigmoid(outputs.float()).mean(dim=0).clamp(1e-7, 1 - 1e-7)
        return torch.log(p) - torch.log1p(-p)
    return torch.softmax(outputs.float(), dim=-1).mean(dim=0).clamp_min(1e-12).log()


def build_model(state: dict[str, Any], params: dict[str, Any]) -> RecurrentModel | EnsembleModel:
    """From a PreparedData.state() and the config's hyperparameters (an ensemble when
    ``ensemble_size`` > 1; artifacts saved before it existed have no such key). A study's
    ensemble of trials (``hpo_service.train.ensemble``) lists each member's hyperparameters
    under ``members``."""
    if "members" in params:
        return EnsembleModel([build_model(state, member) for member in params["members"]])
    size = int(params.get("ensemble_size", 1))
    if size > 1:
        return EnsembleModel([_member(state, params) for _ in range(size)])
    return _member(state, params)


def _member(state: dict[str, Any], params: dict[str, Any]) -> RecurrentModel:
    return RecurrentModel(
        kind=state["kind"],
        input_size=state["input_size"],
        n_outputs=state["n_outputs"],
        hidden_units=params["hidden_units"],
        num_layers=params["num_layers"],
        dropout=params["dropout"],
        embedding_dim=params["embedding_dim"],
        cell=params["cell"],
        bidirectional=params["bidirectional"],
        pooling=params.get("pooling", "last"),  # artifacts saved before pooling existed
    )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
