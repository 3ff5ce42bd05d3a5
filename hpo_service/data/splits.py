"""Train/validation/test index splits for classification: stratified, or by group.

Fractions are of the whole pool. ``task.test_fraction`` 0 (or a fixed test set) means no internal
test split. When rows have groups (a user's ``task.group_column``, or the sentence a text phrase
belongs to, see :mod:`.groups`) whole groups are split, so related rows never straddle a boundary;
otherwise the split is stratified by label. Every split is deterministic in ``task.seed``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from hpo_service.data.groups import contained_mask, group_split
from hpo_service.spec import TaskSpec

EMPTY = np.array([], dtype=int)


def _stratify(labels: np.ndarray) -> np.ndarray | None:
    """Stratify when every class has at least two members (sklearn's requirement)."""
    _, counts = np.unique(labels, return_counts=True)
    return labels if counts.min() >= 2 else None


def split_indices(
    labels: np.ndarray, fraction: float, seed: int, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(len(labels))`` into (rest, held out): by whole groups when
    ``groups`` is given, else stratified by label."""
    if groups is not None:
        return group_split(groups, fraction, seed, labels)
    index = np.arange(len(labels))
    rest, held = train_test_split(
        index, test_size=fraction, random_state=seed, stratify=_stratify(labels)
    )
    return np.sort(rest), np.sort(held)


def three_way(
    labels: np.ndarray, task: TaskSpec, has_test: bool, groups: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Index arrays for train/val/test (test empty when a fixed test set is used or
    ``test_fraction`` is 0)."""
    rest, test = np.arange(len(labels)), EMPTY
    internal_test = 0.0 if has_test else task.test_fraction
    if internal_test > 0:
        rest, test = split_indices(labels, internal_test, task.seed, groups)
    val_share = task.val_fraction / (1.0 - internal_test)
    sub_groups = None if groups is None else groups[rest]
    train_pos, val_pos = split_indices(labels[rest], val_share, task.seed + 1, sub_groups)
    return {"train": rest[train_pos], "val": rest[val_pos], "test": test}


def decontaminate(
    parts: dict[str, np.ndarray], tokens: Sequence[Sequence[str]]
) -> dict[str, np.ndarray]:
    """Move validation and internal test texts that occur inside a training text (a phrase
    shared by sentences of both sides) into training, so no judged text was trained on."""
    train = parts["train"]
    out = dict(parts)
    for name in ("val", "test"):
        held = parts[name]
        if not len(held):
            continue
        inside = contained_mask([tokens[i] for i in held], [tokens[i] for i in train])
        out[name] = held[~inside]
        out["train"] = np.sort(np.concatenate([out["train"], held[inside]]))
    return out


def cap_train(
    parts: dict[str, np.ndarray], labels: np.ndarray, task: TaskSpec
) -> dict[str, np.ndarray]:
    """At most ``task.max_train_samples`` training rows, a seeded stratified sample."""
    train = parts["train"]
    if task.max_train_samples is None or len(train) <= task.max_train_samples:
        return parts
    keep, _ = train_test_split(
        train,
        train_size=task.max_train_samples,
        random_state=task.seed + 2,
        stratify=_stratify(labels[train]),
    )
    return {**parts, "train": np.sort(keep)}
