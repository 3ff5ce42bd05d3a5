"""How big the largest model of a spec gets: parameters and training memory, before any trial.

A spec whose largest configuration cannot fit would only fail later, inside a worker, after the
study was stored and trials were claimed; :mod:`.limits` refuses it up front with
this estimate. The parameter count follows :class:`hpo_service.train.model.RecurrentModel`
exactly (a test checks it against torch); the memory figure is a deliberate, documented
approximation. This module does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpo_service.spec.model import TaskSpec
from hpo_service.spec.space import SearchSpace, highest

#: Weights are float32.
BYTES_PER_VALUE = 4
#: Copies of every parameter alive during training: the weights, their gradients and the two
#: moment buffers of Adam/AdamW/RMSprop-with-momentum (the largest optimizer state offered).
STATE_COPIES = 4
#: Gate blocks per recurrent layer: LSTM input/forget/cell/output, GRU reset/update/new.
GATES = {"lstm": 4, "gru": 3}
#: Values kept per time step, layer and direction for the backward pass, in units of
#: ``hidden_units``: the gates plus the cell and hidden state.
EXTRA_STEP_VALUES = 2
#: Sequence length assumed where the spec does not bound it (text without ``max_length``, a
#: sequence CSV without ``feature_columns``).
ASSUMED_LENGTH = 512
#: Classes assumed for a classification head (the head is a small part of any model).
ASSUMED_CLASSES = 10
MB = 1 << 20


def recurrent_parameters(
    cell: str, input_size: int, hidden: int, layers: int, bidirectional: bool
) -> int:
    """Parameters of ``torch.nn.LSTM``/``GRU``: per layer and direction, the input-hidden and
    hidden-hidden weights of every gate plus their two bias vectors."""
    gates, directions = GATES[cell], 2 if bidirectional else 1
    total = 0
    for layer in range(layers):
        width = input_size if layer == 0 else hidden * directions
        total += directions * gates * hidden * (width + hidden + 2)
    return total


def model_parameters(
    kind: str,
    input_size: int,
    n_outputs: int,
    hidden: int,
    layers: int,
    embedding_dim: int,
    cell: str,
    bidirectional: bool,
) -> int:
    """Parameters of ``RecurrentModel``: embedding (text, no bias) or input projection, the
    recurrent layers, and the linear head over the top layer's directions."""
    directions = 2 if bidirectional else 1
    inputs = input_size * embedding_dim
    if kind != "text_classification":
        inputs += embedding_dim  # nn.Linear's bias
    rnn = recurrent_parameters(cell, embedding_dim, hidden, layers, bidirectional)
    return inputs + rnn + (hidden * directions + 1) * n_outputs


@dataclass(frozen=True)
class Estimate:
    """The largest configuration of a spec and what training it needs."""

    params: dict[str, Any]
    n_parameters: int
    megabytes: float

    def describe(self) -> str:
        shown = ", ".join(f"{k}={str(v).lower()}" for k, v in self.params.items())
        return f"{shown}; {self.n_parameters:.3g} parameters"


def _largest(entry: Any) -> Any:
    """The largest value an entry can take: a list's maximum, a range's ``high`` (in any of its
    ``when`` branches), the value."""
    if isinstance(entry, list | tuple):
        return max(entry)
    return highest(entry) if hasattr(entry, "high") else entry


def largest_params(space: SearchSpace) -> dict[str, Any]:
    """Each size-relevant entry at its maximum (an LSTM outweighs a GRU, two directions one)."""
    params: dict[str, Any] = {
        name: int(_largest(getattr(space, name)))
        for name in ("hidden_units", "num_layers", "embedding_dim", "batch_size")
    }
    cells = space.cell if isinstance(space.cell, list) else [space.cell]
    params["cell"] = "lstm" if "lstm" in cells else "gru"
    params["bidirectional"] = bool(_largest(space.bidirectional))
    params["ensemble_size"] = int(_largest(space.ensemble_size))
    return params


def task_shape(task: TaskSpec) -> tuple[int, int, int]:
    """(input size, outputs, sequence length) of a task; see the assumptions above."""
    if task.kind == "forecasting":
        return 1, task.horizon, task.lookback
    if task.kind == "text_classification":
        return task.max_vocab, ASSUMED_CLASSES, task.max_length or ASSUMED_LENGTH
    if task.dataset == "digits":
        return 8, 10, 8
    return 1, ASSUMED_CLASSES, len(task.feature_columns or []) or ASSUMED_LENGTH


def training_bytes(n_parameters: int, params: dict[str, Any], length: int) -> float:
    """Parameter state (``STATE_COPIES`` copies) plus activations kept for the backward pass:
    batch x length x (embedding + layers x directions x hidden x (gates + 2)) values."""
    directions = 2 if params["bidirectional"] else 1
    per_step = params["embedding_dim"] + params["num_layers"] * directions * params[
        "hidden_units"
    ] * (GATES[params["cell"]] + EXTRA_STEP_VALUES)
    activations = float(params["batch_size"]) * length * per_step
    return (float(n_parameters) * STATE_COPIES + activations) * BYTES_PER_VALUE


def estimate(task: TaskSpec, space: SearchSpace) -> Estimate:
    """Parameters and training memory of the spec's largest configuration (an ensemble of k
    members: k models' parameters, state and activations, all alive in one training step)."""
    params = largest_params(space)
    input_size, n_outputs, length = task_shape(task)
    if task.kind == "forecasting" and space.lookback is not None:
        length = int(_largest(space.lookback))  # a searched lookback at its longest
    member = model_parameters(
        task.kind,
        input_size,
        n_outputs,
        params["hidden_units"],
        params["num_layers"],
        params["embedding_dim"],
        params["cell"],
        params["bidirectional"],
    )
    members = params["ensemble_size"]
    megabytes = training_bytes(member, params, length) * members / MB
    return Estimate(params=params, n_parameters=member * members, megabytes=megabytes)
