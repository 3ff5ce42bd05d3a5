"""How leaky a validation split is: the share of validation texts found (word-bounded) inside a
training text, for a plain row-level stratified split against the service's grouped split.

Run by hand (not a test; about a minute):

    python bench/bench_splits.py --data-dir ../shared/datasets

SST-2's training file holds every phrase of a sentence as its own row, so a row-level split
judges most validation phrases on text the model trained on; the grouped split judges none.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from hpo_service.data import load_dataset
from hpo_service.data.classify import clean_texts, without_test_texts
from hpo_service.data.sources import read_tsv
from hpo_service.data.splits import split_indices
from hpo_service.data.text import tokenize
from hpo_service.spec import TaskSpec


def _norm(text: str) -> str:
    return " " + " ".join(tokenize(text)) + " "


def inside_share(judged: list[str], trained: list[str]) -> float:
    """Share of ``judged`` equal to or inside one of ``trained`` (brute force, one string)."""
    haystack = "\n".join(_norm(t) for t in trained)
    return sum(_norm(t) in haystack for t in judged) / max(len(judged), 1)


def pool_of(name: str, data_dir: Path) -> pd.DataFrame:
    """The deduplicated rows the splits are cut from, in the service's order."""
    if name == "sms_spam":
        return clean_texts(read_tsv(data_dir / "sms_spam/SMSSpamCollection", ["label", "text"]))
    train = read_tsv(data_dir / "sst2/train.tsv").rename(columns={"sentence": "text"})
    dev = clean_texts(read_tsv(data_dir / "sst2/dev.tsv").rename(columns={"sentence": "text"}))
    return without_test_texts(clean_texts(train), dev)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/datasets"))
    args = parser.parse_args()
    for name in ("sst2", "sms_spam"):
        pool = pool_of(name, args.data_dir)
        texts = pool["text"]
        rest, val = split_indices(pool["label"].astype(str).to_numpy(), 0.1, 1)
        row_level = inside_share(texts.iloc[val].tolist(), texts.iloc[rest].tolist())
        data = load_dataset(TaskSpec(dataset=name, kind="text_classification"), args.data_dir)
        grouped = inside_share(
            texts.iloc[data.val.ids.tolist()].tolist(),  # type: ignore[union-attr]
            texts.iloc[data.train.ids.tolist()].tolist(),  # type: ignore[union-attr]
        )
        print(
            f"{name}: validation texts inside a training text: row-level {row_level:.1%}, "
            f"grouped {grouped:.1%} ({len(data.val)} validation, {len(data.train)} training)"
        )


if __name__ == "__main__":
    main()
