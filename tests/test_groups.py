"""Groups of related texts and whole-group splits (hpo_service.data.groups)."""

from __future__ import annotations

import numpy as np

from hpo_service.data.groups import contained_mask, containment_groups, group_split
from hpo_service.data.text import tokenize

SENTENCES = [
    "it 's a charming and often affecting journey .",
    "a charming and often affecting journey",
    "charming",
    "the plot is thin and the acting stiff .",
    "the acting stiff",
    "heart",
]


def test_each_phrase_joins_the_longest_sentence_that_contains_it() -> None:
    groups = containment_groups([tokenize(t) for t in SENTENCES])
    assert groups.tolist() == [0, 0, 0, 3, 3, 5]


def test_containment_is_word_bounded() -> None:
    mask = contained_mask(
        [tokenize("art"), tokenize("the acting"), tokenize("acting stiff ."), tokenize("zebra")],
        [tokenize(t) for t in SENTENCES],
    )
    assert mask.tolist() == [False, True, True, False]


def test_group_split_keeps_groups_whole_is_seeded_and_near_the_fraction() -> None:
    groups = np.repeat(np.arange(200), 5)  # 1,000 rows in groups of five
    labels = (groups % 4 == 0).astype(int)  # 25% positive, constant within a group
    rest, held = group_split(groups, 0.2, seed=7, labels=labels)
    assert not set(groups[rest]) & set(groups[held])
    assert len(held) == 200 and sorted([*rest, *held]) == list(range(1000))
    assert labels[held].mean() == labels.mean()  # each label gives up its own share
    again = group_split(groups, 0.2, seed=7, labels=labels)
    assert np.array_equal(again[1], held)
    assert not np.array_equal(group_split(groups, 0.2, seed=8, labels=labels)[1], held)
