"""Groups of related rows, and splits that keep each group on one side.

Why: SST-2's training file holds the phrases of each sentence as separate rows ("a charming
journey" and "it 's a charming and often affecting journey ."). A row-level split puts parts of
one sentence on both sides, so validation measures memory, not generalisation (about 89% of
validation phrases used to appear word for word inside a training phrase). Here each text joins
the group of the longest text that contains it (its *root*), groups are split whole, and a
validation text that still occurs inside some training text (a short phrase shared by several
sentences) moves to training. Containment is judged on token sequences with word boundaries:
``"charming journey"`` is inside ``"a charming journey ."``, ``"art"`` is not inside ``"heart"``.

A user's ``task.group_column`` gives the groups directly (all rows of one patient, one speaker).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np


def _padded(tokens: Sequence[str]) -> str:
    return " " + " ".join(tokens) + " "


class ContainmentIndex:
    """Which of some token sequences contain a given one: candidates come from an inverted index
    on each sequence's tokens (the query's rarest token), then a substring test confirms."""

    def __init__(self, texts: Sequence[Sequence[str]]):
        self.padded: list[str] = []
        self.lengths: list[int] = []
        self._postings: dict[str, list[int]] = defaultdict(list)
        for tokens in texts:
            self.add(tokens)

    def add(self, tokens: Sequence[str]) -> None:
        for token in set(tokens):
            self._postings[token].append(len(self.padded))
        self.padded.append(_padded(tokens))
        self.lengths.append(len(self.padded[-1]))

    def candidates(self, tokens: Sequence[str]) -> list[int]:
        lists = [self._postings.get(t, []) for t in set(tokens)]
        return min(lists, key=len) if lists else []

    def container(self, tokens: Sequence[str]) -> int:
        """Index of the longest sequence containing ``tokens`` (the first among equals), or -1."""
        needle, best, best_len = _padded(tokens), -1, -1
        for i in self.candidates(tokens):
            if self.lengths[i] > best_len and needle in self.padded[i]:
                best, best_len = i, self.lengths[i]
        return best

    def containers(self, tokens: Sequence[str]) -> list[int]:
        """Every indexed sequence that contains ``tokens``."""
        needle = _padded(tokens)
        return [i for i in self.candidates(tokens) if needle in self.padded[i]]

    def contains_any(self, tokens: Sequence[str]) -> bool:
        needle = _padded(tokens)
        return any(needle in self.padded[i] for i in self.candidates(tokens))


def containment_groups(token_lists: Sequence[Sequence[str]]) -> np.ndarray:
    """Group id per text: the index of its root, the longest text that contains it (itself when
    no longer text does). Texts of one sentence then share the sentence's id. Longest first, so
    each sentence is a root before any of its phrases is looked up."""
    index = ContainmentIndex([])
    roots: list[int] = []
    group = np.arange(len(token_lists))
    for i in sorted(range(len(token_lists)), key=lambda i: -len(token_lists[i])):
        found = index.container(token_lists[i])
        if found >= 0:
            group[i] = roots[found]
        else:
            roots.append(i)
            index.add(token_lists[i])
    return group


def group_split(
    groups: np.ndarray, fraction: float, seed: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (rest, held out): whole groups, shuffled by ``seed``, are held out until about
    ``fraction`` of the rows are (like scikit-learn's GroupShuffleSplit, but by row count).
    With ``labels``, each group counts under its first row's label and every label gives up its
    own share, so class proportions stay close on both sides."""
    unique, first, inverse, counts = np.unique(
        groups, return_index=True, return_inverse=True, return_counts=True
    )
    strata = labels[first] if labels is not None else np.zeros(len(unique), dtype=int)
    order = np.random.default_rng(seed).permutation(len(unique))
    held_groups = np.zeros(len(unique), dtype=bool)
    for stratum in np.unique(strata):
        members = order[strata[order] == stratum]
        target, taken = fraction * counts[members].sum(), 0
        for g in members:
            if taken >= target:
                break
            held_groups[g] = True
            taken += int(counts[g])
    held = held_groups[np.asarray(inverse).ravel()]
    return np.flatnonzero(~held), np.flatnonzero(held)


def contained_mask(queries: Sequence[Sequence[str]], texts: Sequence[Sequence[str]]) -> np.ndarray:
    """For each query, whether it occurs (word-bounded) inside one of ``texts``."""
    index = ContainmentIndex(texts)
    return np.array([index.contains_any(q) for q in queries], dtype=bool)
