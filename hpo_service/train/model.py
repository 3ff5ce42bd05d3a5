"""The model: embedding (text) or input projection -> LSTM/GRU -> dropout -> linear head.

Text batches arrive with their true lengths and, when they hold any padding, are packed, so the
recurrent cell never steps over padding and the final hidden state is the one at each sequence's
real end.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


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
    ):
        super().__init__()
        self.kind = kind
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
        if lengths is not None and int(lengths.min()) < x.shape[1]:
            # Pack only when the batch holds padding: length-bucketed batches are mostly of one
            # length, and packing a batch without padding costs time and changes nothing.
            emb = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, hidden = self.rnn(emb)
        h_n = hidden[0] if isinstance(hidden, tuple) else hidden
        last = torch.cat(list(h_n[-self.directions :]), dim=-1)  # top layer, each direction
        out = self.head(self.dropout(last))
        if self.kind == "forecasting":
            out = out + x[:, -1, :1]
        return out


def build_model(state: dict[str, Any], params: dict[str, Any]) -> RecurrentModel:
    """From a PreparedData.state() and the config's hyperparameters."""
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
    )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
