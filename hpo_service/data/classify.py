"""Classification preprocessing: cleaning, leakage-free splits, text and sequences.

Duplicated texts are removed before splitting (SMS Spam has 403 exact duplicates), training texts
that contain a text of a fixed test set are dropped, texts are split by the sentence they belong
to (:mod:`.groups`) or by the user's ``group_column``, and a validation or test text that still
occurs inside a training text moves to training: no judged text was trained on, in part or whole.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from hpo_service.data.groups import ContainmentIndex, containment_groups
from hpo_service.data.prepared import DatasetError, PreparedData, Split
from hpo_service.data.splits import cap_train, decontaminate, three_way
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


def without_test_texts(frame: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """The pool minus every text that equals or contains a text of the fixed test set."""
    index = ContainmentIndex([tokenize(t) for t in frame["text"]])
    drop = {i for t in test["text"] for i in index.containers(tokenize(t))}
    return frame.drop(index=sorted(drop)).reset_index(drop=True)


def group_codes(frame: pd.DataFrame, task: TaskSpec) -> np.ndarray | None:
    """Integer group per row from ``task.group_column`` (a missing value is its own group)."""
    if task.group_column is None:
        return None
    values = frame["group"].astype(str).where(frame["group"].notna(), None)
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    missing = codes < 0
    codes[missing] = codes.max(initial=-1) + 1 + np.arange(int(missing.sum()))
    return np.asarray(codes)


def text_parts(
    frame: pd.DataFrame, tokens: list[list[str]], codes: np.ndarray, task: TaskSpec, fixed: bool
) -> dict[str, np.ndarray]:
    """Split the pool (the first ``len(frame)`` texts) by group; decontaminate; cap train."""
    groups = group_codes(frame, task)
    if groups is None:
        groups = containment_groups(tokens[: len(frame)])
    parts = three_way(codes[: len(frame)], task, has_test=fixed, groups=groups)
    return cap_train(decontaminate(parts, tokens), codes, task)


def prepare_text(frame: pd.DataFrame, test: pd.DataFrame | None, task: TaskSpec) -> PreparedData:
    """Frames with text/label(/group) columns -> token ids; ``test`` is a fixed test set."""
    frame = clean_texts(frame)
    if test is not None:
        test = clean_texts(test)
        frame = without_test_texts(frame, test)
    pool = frame if test is None else pd.concat([frame, test], ignore_index=True)
    codes, names = label_codes(pool["label"])
    tokens = [tokenize(t) for t in pool["text"]]
    parts = text_parts(frame, tokens, codes, task, fixed=test is not None)
    if test is not None:
        parts["test"] = np.arange(len(frame), len(pool))
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


def prepare_sequences(
    x: np.ndarray,
    labels: pd.Series,
    task: TaskSpec,
    groups: np.ndarray | None = None,
    n_test: int = 0,
) -> PreparedData:
    """Fixed-length sequences [N, T, F]; features standardised with training statistics. The
    last ``n_test`` rows are a fixed test set; ``groups`` (per pool row) keep rows together."""
    codes, names = label_codes(labels)
    n_pool = len(codes) - n_test
    parts = three_way(codes[:n_pool], task, has_test=n_test > 0, groups=groups)
    parts = cap_train(parts, codes, task)
    if n_test:
        parts["test"] = np.arange(n_pool, len(codes))
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


def read_sequence_csv(frame: pd.DataFrame, task: TaskSpec) -> tuple[np.ndarray, pd.DataFrame]:
    """A label column plus numeric columns, each row a univariate sequence [T, 1]; returns the
    sequences and the kept rows' label (and ``group``) columns."""
    skip = {task.label_column, task.group_column}
    columns = task.feature_columns or [c for c in frame.columns if c not in skip]
    values = frame[columns].apply(pd.to_numeric, errors="coerce")
    for column in columns:
        if values[column].isna().all():
            raise DatasetError(f"column {column!r} is not numeric")
    keep = values.notna().all(axis=1) & frame[task.label_column].notna()
    x = values[keep].to_numpy(dtype=np.float32)[:, :, None]
    rows = frame.loc[keep, [task.label_column]].rename(columns={task.label_column: "label"})
    if task.group_column is not None:
        rows["group"] = frame.loc[keep, task.group_column]
    return x, rows.reset_index(drop=True)
