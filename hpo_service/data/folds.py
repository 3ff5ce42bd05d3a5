"""Cross-validation folds over train+validation: k-fold for classification, rolling origin for
forecasting (``task.cv_folds``).

Why: on small data one validation split of a dozen rows ranks configurations by noise (7 of 8
trials tied at accuracy 1.0 on 14 rows); the mean over k folds uses every row for validation
once. Folds are cut from the prepared tensors, so preprocessing is done once per study:
- classification: rows are dealt to k folds by whole groups (texts by the sentence they sit in,
  recomputed from their token ids; see :mod:`.groups`), stratified by label, seeded; a fold's
  validation texts found inside its training texts move to training, as in the main split;
- forecasting: origin i trains on every window before its block and validates on the block that
  follows; the k blocks tile the last k/(k+1) of the windows, so the earliest origin still has
  training data, and no window's target is later than its fold's validation.
The test split is never part of a fold.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from hpo_service.data.groups import containment_groups, group_split
from hpo_service.data.merge import concat_splits
from hpo_service.data.prepared import PreparedData, Split
from hpo_service.data.splits import decontaminate


def _token_lists(split: Split) -> list[list[str]]:
    assert split.lengths is not None
    return [
        [str(t) for t in row[:n].tolist()] for row, n in zip(split.x, split.lengths, strict=True)
    ]


def _fold_of_rows(pool: Split, k: int, seed: int, text: bool) -> np.ndarray:
    """Fold number per row: whole groups, label-stratified, about 1/k of the rows each."""
    labels = pool.y.numpy()
    groups = containment_groups(_token_lists(pool)) if text else np.arange(len(pool))
    fold = np.full(len(pool), -1)
    rest = np.arange(len(pool))
    for i in range(k - 1):
        keep, held = group_split(groups[rest], 1.0 / (k - i), seed + i, labels[rest])
        fold[rest[held]] = i
        rest = rest[keep]
    fold[rest] = k - 1
    return fold


def _classification_folds(data: PreparedData, k: int, seed: int) -> list[PreparedData]:
    pool = concat_splits(data.train, data.val)
    fold = _fold_of_rows(pool, k, seed, data.is_text)
    tokens = _token_lists(pool) if data.is_text else None
    out = []
    for i in range(k):
        parts = {"train": np.flatnonzero(fold != i), "val": np.flatnonzero(fold == i)}
        if tokens is not None:
            parts = decontaminate({**parts, "test": np.array([], dtype=int)}, tokens)
        train, val = (pool.rows(torch.as_tensor(parts[n])) for n in ("train", "val"))
        out.append(
            dataclasses.replace(data, train=train, val=val, cache_key=f"{data.cache_key}/cv{i}")
        )
    return out


def _rolling_folds(data: PreparedData, k: int) -> list[PreparedData]:
    pool = concat_splits(data.train, data.val)
    n, horizon = len(pool), data.horizon
    block = n // (k + 1)
    out = []
    for i in range(k):
        start = n - (k - i) * block
        end = start + block if i < k - 1 else n
        # windows whose targets reach into the block leave training (targets span `horizon`)
        train = pool.rows(slice(0, max(1, start - horizon + 1)))
        val = pool.rows(slice(start, end))
        out.append(
            dataclasses.replace(data, train=train, val=val, cache_key=f"{data.cache_key}/cv{i}")
        )
    return out


def cv_folds(data: PreparedData, k: int, seed: int = 0) -> list[PreparedData]:
    """``k`` datasets that share ``data``'s preprocessing and test split, one per fold."""
    if data.kind == "forecasting":
        return _rolling_folds(data, k)
    return _classification_folds(data, k, seed)
