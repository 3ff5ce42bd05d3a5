"""Mini-batches: length-bucketed for text, shuffled rows otherwise.

Sorting by length (random order within equal lengths, then shuffled batch order) makes every text
batch nearly uniform in length, so packed sequences waste no steps on padding: SST-2 averages
under 10 tokens, five times fewer steps than padding everything to 50.
"""

from __future__ import annotations

import torch

from hpo_service.data import Split


def batch_indices(
    split: Split, batch_size: int, generator: torch.Generator | None
) -> list[torch.Tensor]:
    """Row indices per batch; shuffled when a generator is given (training), ordered otherwise."""
    n = len(split)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    if split.lengths is not None:
        order = order[torch.argsort(split.lengths[order], stable=True)]
    chunks = list(order.split(batch_size))
    if generator is not None:
        chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=generator).tolist()]
    return chunks


def take(
    split: Split, index: torch.Tensor, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Inputs trimmed to the batch's longest text, lengths (CPU, for packing) and targets."""
    x = split.x[index]
    lengths = None
    if split.lengths is not None:
        lengths = split.lengths[index]
        x = x[:, : int(lengths.max())]
    return x.to(device, non_blocking=True), lengths, split.y[index].to(device, non_blocking=True)
