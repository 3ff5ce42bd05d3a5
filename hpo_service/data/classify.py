"""Classification preprocessing: cleaning, leakage-free stratified splits, text and sequences.

Duplicated texts are removed before splitting (SMS Spam has 403 exact duplicates) and texts of a
fixed test set are removed from the training pool, so no example is both trained and judged on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from hpo_service.data.prepared import DatasetError, PreparedData, Split
from hpo_service.data.text import build_vocab, encode, tokenize
from hpo_service.spec import TaskSpec


def clean_texts(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns text/label: drop missing labels and texts without tokens, then duplicates.

    Duplicates are judged on the token sequence, so copies that differ only in case or spacing
    (SMS Spam has 12 beyond its 403 exact ones) cannot land on both sides of a split.
    """
    frame = frame[frame["label"].notna()]
    key = frame["text"].astype(str).map(lambda t: " ".join(tokenize(t)))
    frame = frame.assign(text=frame["text"].astype(str).str.strip(), _key=key)
    frame = frame[frame["_key"] != ""].drop_duplicates("_key", keep="first")
    return frame.drop(columns="_key").reset_index(drop=True)


def _stratify(labels: np.ndarray) -> np.ndarray | None:
    """Stratify when every class has at least two members (sklearn's requirement)."""
    _, counts = np.unique(labels, return_counts=True)
    return labels if counts.min() >= 2 else None


def split_indices(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of ``range(len(labels))`` into (rest, held out)."""
    index = np.arange(len(labels))
    rest, held = train_test_split(
        index, test_size=fraction, random_state=seed, stratify=_stratify(labels)
    )
    return np.sort(rest), np.sort(held)


def three_way(labels: np.ndarray, task: TaskSpec, has_test: bool) -> dict[str, np.ndarray]:
    """Index arrays for train/val(/test); fractions are of the whole pool."""
    rest, test = (np.arange(len(labels)), np.array([], dtype=int))
    if not has_test:
        rest, test = split_indices(labels, task.test_fraction, task.seed)
    val_share = task.val_fraction / (1.0 - (0.0 if has_test else task.test_fraction))
    train_pos, val_pos = split_indices(labels[rest], val_share, task.seed + 1)
    train = rest[train_pos]
    if task.max_train_samples is not None and len(train) > task.max_train_samples:
        keep, _ = train_test_split(
            train,
            train_size=task.max_train_samples,
            random_state=task.seed + 2,
            stratify=_stratify(labels[train]),
        )
        train = np.sort(keep)
    return {"train": train, "val": rest[val_pos], "test": test}


def _label_order(label: str) -> tuple[int, str]:
    """Numeric labels in numeric order ("2" < "10"), other labels alphabetically before them."""
    return (len(label), label) if label.isdigit() else (0, label)


def label_codes(labels: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Class indices in sorted label order (so 'spam' > 'ham' and 1 > 0 are the positive class)."""
    names = sorted(labels.astype(str).unique(), key=_label_order)
    if len(names) < 2:
        raise DatasetError(f"need at least two classes, found {names}")
    lookup = {name: i for i, name in enumerate(names)}
    return labels.astype(str).map(lookup).to_numpy(dtype=np.int64), names


def prepare_text(frame: pd.DataFrame, test: pd.DataFrame | None, task: TaskSpec) -> PreparedData:
    """Frames with text/label columns -> token ids; ``test`` is a fixed test set if given."""
    frame = clean_texts(frame)
    if test is not None:
        test = clean_texts(test)
        seen = {" ".join(tokenize(t)) for t in test["text"]}
        keep = [" ".join(tokenize(t)) not in seen for t in frame["text"]]
        frame = frame[keep].reset_index(drop=True)
    pool = frame if test is None else pd.concat([frame, test], ignore_index=True)
    codes, names = label_codes(pool["label"])
    n_pool = len(frame)
    parts = three_way(codes[:n_pool], task, has_test=test is not None)
    if test is not None:
        parts["test"] = np.arange(n_pool, len(pool))
    tokens = [tokenize(t) for t in pool["text"]]
    vocab = build_vocab((tokens[i] for i in parts["train"]), task.min_freq, task.max_vocab)
    stoi = {token: i for i, token in enumerate(vocab)}
    splits = {}
    for name, index in parts.items():
        x, lengths = encode([tokens[i] for i in index], stoi, task.max_length)
        splits[name] = Split(x, torch.tensor(codes[index]), lengths, torch.tensor(index))
    return PreparedData(
        kind="text_classification",
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        input_size=len(vocab),
        n_classes=len(names),
        label_names=names,
        vocab=vocab,
        max_length=task.max_length,
        dataset=task.dataset,
    )


def prepare_sequences(x: np.ndarray, labels: pd.Series, task: TaskSpec) -> PreparedData:
    """Fixed-length sequences [N, T, F]; features standardised with training statistics."""
    codes, names = label_codes(labels)
    parts = three_way(codes, task, has_test=False)
    train_x = x[parts["train"]]
    mean = train_x.mean(axis=(0, 1))
    std = train_x.std(axis=(0, 1))
    std[std == 0] = 1.0
    scaled = ((x - mean) / std).astype(np.float32)
    splits = {
        name: Split(torch.tensor(scaled[idx]), torch.tensor(codes[idx]), ids=torch.tensor(idx))
        for name, idx in parts.items()
    }
    return PreparedData(
        kind="sequence_classification",
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        input_size=x.shape[2],
        n_classes=len(names),
        label_names=names,
        scaler={"mean": mean.tolist(), "std": std.tolist()},
        dataset=task.dataset,
    )


def read_sequence_csv(frame: pd.DataFrame, task: TaskSpec) -> tuple[np.ndarray, pd.Series]:
    """A label column plus numeric columns, each row a univariate sequence [T, 1]."""
    columns = task.feature_columns or [c for c in frame.columns if c != task.label_column]
    values = frame[columns].apply(pd.to_numeric, errors="coerce")
    for column in columns:
        if values[column].isna().all():
            raise DatasetError(f"column {column!r} is not numeric")
    keep = values.notna().all(axis=1) & frame[task.label_column].notna()
    x = values[keep].to_numpy(dtype=np.float32)[:, :, None]
    return x, frame.loc[keep, task.label_column]
