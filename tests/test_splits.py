"""Leak-free splits on the real datasets, group columns, and the test split the user controls
(hpo_service.data.splits and its callers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hpo_service.data import DatasetError, PreparedData, load_dataset
from hpo_service.data.classify import clean_texts, without_test_texts
from hpo_service.data.sources import DataRoots, read_tsv
from hpo_service.data.text import tokenize
from hpo_service.spec import TaskSpec


def _norm(text: str) -> str:
    return " " + " ".join(tokenize(text)) + " "


def leaked(judged: list[str], trained: list[str]) -> list[str]:
    """Judged texts equal to or (word-bounded) inside a training text, by brute force over one
    big string: independent of the index the service uses."""
    haystack = "\n".join(_norm(t) for t in trained)
    return [t for t in judged if _norm(t) in haystack]


def split_texts(pool: pd.DataFrame, data: PreparedData, name: str) -> list[str]:
    ids = getattr(data, name).ids.tolist()
    return pool["text"].iloc[ids].tolist()


def test_sst2_validation_and_dev_share_no_text_with_training(data_dir: Path) -> None:
    data = load_dataset(TaskSpec(dataset="sst2", kind="text_classification"), data_dir)
    train = read_tsv(data_dir / "sst2/train.tsv").rename(columns={"sentence": "text"})
    dev = clean_texts(read_tsv(data_dir / "sst2/dev.tsv").rename(columns={"sentence": "text"}))
    pool = pd.concat([without_test_texts(clean_texts(train), dev), dev], ignore_index=True)
    trained = split_texts(pool, data, "train")
    val = split_texts(pool, data, "val")
    assert len(val) > 0.09 * (len(val) + len(trained))  # still about a tenth
    assert leaked(val, trained) == []
    assert leaked(split_texts(pool, data, "test"), trained) == []
    # a row-level split would leak: most phrases sit inside another training phrase
    assert len(leaked(trained[:2000], trained[2000:])) > 1000


def test_sms_spam_validation_and_test_share_no_text_with_training(data_dir: Path) -> None:
    data = load_dataset(TaskSpec(dataset="sms_spam", kind="text_classification"), data_dir)
    pool = clean_texts(read_tsv(data_dir / "sms_spam/SMSSpamCollection", ["label", "text"]))
    assert len(pool) == 5159  # 5,574 less 415 duplicates (case and spacing ignored)
    trained = split_texts(pool, data, "train")
    for name in ("val", "test"):
        assert leaked(split_texts(pool, data, name), trained) == []
    shares = [float(s.y.float().mean()) for s in (data.train, data.val, data.test)]
    assert max(shares) - min(shares) < 0.01  # stratified by the group's label


def _sequence_csv(path: Path, rows: int = 120) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, 4)), columns=["a", "b", "c", "d"])
    frame["label"] = np.arange(rows) % 2
    frame["patient"] = np.arange(rows) // 6  # 20 patients, 6 rows each
    frame.to_csv(path, index=False)


def test_group_column_keeps_each_group_on_one_side(tmp_path: Path) -> None:
    _sequence_csv(tmp_path / "seq.csv")
    task = TaskSpec(
        dataset="seq.csv", kind="sequence_classification", group_column="patient", seed=3
    )
    data = load_dataset(task, tmp_path)
    assert data.input_size == 1 and data.train.x.shape[1] == 4  # the group is not a feature
    sides = [set((s.ids // 6).tolist()) for s in (data.train, data.val, data.test)]  # type: ignore[operator]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    assert sum(len(s) for s in (data.train, data.val, data.test)) == 120


def test_group_column_is_refused_where_it_cannot_apply() -> None:
    with pytest.raises(ValueError, match="group_column: forecasting"):
        TaskSpec(dataset="x.csv", kind="forecasting", group_column="g")
    with pytest.raises(ValueError, match="group_column: only for CSV"):
        TaskSpec(dataset="sms_spam", kind="text_classification", group_column="g")


def test_test_fraction_zero_leaves_no_test_split(tmp_path: Path) -> None:
    _sequence_csv(tmp_path / "seq.csv")
    data = load_dataset(
        TaskSpec(dataset="seq.csv", kind="sequence_classification", test_fraction=0), tmp_path
    )
    assert len(data.test) == 0 and len(data.train) + len(data.val) == 120
    series = load_dataset(TaskSpec(dataset="sunspots", kind="forecasting", test_fraction=0), None)
    assert len(series.test) == 0
    assert int(series.val.ids[-1]) == 308  # type: ignore[index]  # validation runs to the end


def test_separate_test_dataset_replaces_the_internal_split(data_dir: Path, tmp_path: Path) -> None:
    frame = clean_texts(read_tsv(data_dir / "sms_spam/SMSSpamCollection", ["label", "text"]))
    frame.iloc[:4000].to_csv(tmp_path / "main.csv", index=False)
    frame.iloc[4000:].to_csv(tmp_path / "held.csv", index=False)
    task = TaskSpec(dataset="main.csv", kind="text_classification", test_dataset="held.csv")
    data = load_dataset(task, tmp_path)
    assert len(data.test) == len(frame) - 4000
    assert len(data.train) + len(data.val) <= 4000  # nothing of the pool was held out as test
    assert not set(data.test.ids.tolist()) & set(data.train.ids.tolist())  # type: ignore[union-attr]


def test_forecasting_test_dataset_is_the_continuation(tmp_path: Path) -> None:
    values = np.sin(np.arange(300) / 5.0) * 10 + 50
    pd.DataFrame({"value": values[:240]}).to_csv(tmp_path / "head.csv", index=False)
    pd.DataFrame({"value": values[240:]}).to_csv(tmp_path / "tail.csv", index=False)
    task = TaskSpec(dataset="head.csv", kind="forecasting", lookback=12, test_dataset="tail.csv")
    data = load_dataset(task, tmp_path)
    assert len(data.test) == 60  # one window per continuation value
    assert int(data.test.ids[0]) == 240 and int(data.val.ids[-1]) == 239  # type: ignore[index]


def test_a_missing_test_dataset_names_its_field(tmp_path: Path) -> None:
    _sequence_csv(tmp_path / "seq.csv")
    task = TaskSpec(dataset="seq.csv", kind="sequence_classification", test_dataset="missing.csv")
    with pytest.raises(DatasetError, match=r"^task\.test_dataset: 'missing.csv' not found"):
        load_dataset(task, DataRoots(data_dir=tmp_path))
    with pytest.raises(ValueError, match="test_dataset: 'sunspots'"):
        TaskSpec(dataset="sunspots", kind="forecasting", test_dataset="x.csv")


def test_sst2_dev_named_as_the_test_set_is_glues_dev_split(data_dir: Path) -> None:
    """``test_dataset: sst2:dev`` names what an SST-2 study tests on by default: the 872 GLUE
    dev sentences, none of them (nor any training text containing one) trained on."""
    named = TaskSpec(dataset="sst2", kind="text_classification", test_dataset="sst2:dev")
    data = load_dataset(named, data_dir)
    default = load_dataset(TaskSpec(dataset="sst2", kind="text_classification"), data_dir)
    assert len(data.test) == len(default.test) == 872
    assert torch.equal(data.test.y, default.test.y) and int(data.test.y.sum()) == 444
    assert len(data.train) == len(default.train) and len(data.val) == len(default.val)


def test_sst2_dev_beside_another_text_dataset_keeps_training_free_of_it(
    data_dir: Path, tmp_path: Path
) -> None:
    """A sentiment CSV tested on GLUE's dev split: training texts that hold a dev sentence are
    dropped (33 of SST-2's own training rows do). The reverse, a short training phrase inside
    a dev sentence (SST-2 trains on phrases), stays: that is GLUE's protocol."""
    train = clean_texts(read_tsv(data_dir / "sst2/train.tsv").rename(columns={"sentence": "text"}))
    dev = clean_texts(read_tsv(data_dir / "sst2/dev.tsv").rename(columns={"sentence": "text"}))
    assert len(train) - len(without_test_texts(train, dev)) == 33
    train.iloc[:20000].to_csv(tmp_path / "mine.csv", index=False)
    (tmp_path / "sst2").symlink_to(data_dir.resolve() / "sst2")  # one data directory for both
    task = TaskSpec(dataset="mine.csv", kind="text_classification", test_dataset="sst2:dev")
    data = load_dataset(task, DataRoots(data_dir=tmp_path))
    assert len(data.test) == 872
    pool = without_test_texts(train.iloc[:20000].reset_index(drop=True), dev)
    trained = [pool["text"].iloc[i] for i in data.train.ids.tolist()]  # type: ignore[union-attr]
    assert leaked(dev["text"].tolist(), trained) == []
