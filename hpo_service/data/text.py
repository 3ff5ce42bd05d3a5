"""Text preprocessing: tokenizer, vocabulary (fitted on the training split only) and encoding.

The tokenizer is deliberately simple and deterministic (lowercase, words with inner apostrophes,
punctuation as tokens): SST-2 is already PTB-tokenized and SMS texts are short, and a predictor
must reproduce it exactly from the saved vocabulary alone.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

from hpo_service.data.prepared import PAD, SPECIALS, UNK

_TOKEN = re.compile(r"[\w']+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def build_vocab(token_lists: Iterable[list[str]], min_freq: int, max_vocab: int) -> list[str]:
    """Index -> token: specials, then tokens by falling count (ties alphabetical) for stability."""
    counts = Counter(token for tokens in token_lists for token in tokens)
    ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
    return SPECIALS + ranked[: max(0, max_vocab - len(SPECIALS))]


def encode(
    token_lists: Sequence[list[str]], stoi: dict[str, int], max_length: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids [N, longest] and true lengths [N] (at least 1, so packing never fails)."""
    ids = [[stoi.get(t, UNK) for t in tokens[:max_length]] or [UNK] for tokens in token_lists]
    lengths = torch.tensor([len(row) for row in ids], dtype=torch.long)
    padded = torch.full((len(ids), int(lengths.max()) if ids else 1), PAD, dtype=torch.long)
    for i, row in enumerate(ids):
        padded[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return padded, lengths
