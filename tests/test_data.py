"""Dataset loading on the real files: shapes, leakage-free splits, cleaning, errors, caching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hpo_service.data import DatasetError, PreparedData, load_dataset
from hpo_service.data import cache as data_cache
from hpo_service.data.classify import clean_texts
from hpo_service.data.sources import DataRoots, read_tsv
from hpo_service.spec import TaskSpec


def text_task(dataset: str, **extra: object) -> TaskSpec:
    return TaskSpec(dataset=dataset, kind="text_classification", **extra)  # type: ignore[arg-type]


def assert_disjoint(data: PreparedData) -> None:
    ids = [set(s.ids.tolist()) for s in (data.train, data.val, data.test)]  # type: ignore[union-attr]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])


def texts(frame: pd.DataFrame, data: PreparedData, split_name: str) -> set[str]:
    """Normalised texts of a split, to compare splits by content and not only by row id."""
    ids = getattr(data, split_name).ids.tolist()
    return {" ".join(t.lower().split()) for t in frame["text"].iloc[ids]}


def test_sst2_carves_validation_from_train_and_tests_on_dev(data_dir: Path) -> None:
    data = load_dataset(text_task("sst2"), data_dir)
    assert data.label_names == ["0", "1"] and data.n_classes == 2 and data.n_outputs == 1
    assert len(data.test) == 872  # the whole dev set
    # 371 duplicates, and 33 phrases that contain a dev sentence, leave the pool
    n_unique = 67349 - 371 - 33
    assert len(data.train) + len(data.val) == n_unique
    # a tenth of the sentences' groups, less phrases found inside a training phrase
    assert 0.09 * n_unique < len(data.val) < 0.1 * n_unique
    assert_disjoint(data)
    for split in (data.train, data.val, data.test):
        assert split.x.dtype == torch.long and split.x.shape[0] == len(split)
        assert int(split.lengths.min()) >= 1  # type: ignore[union-attr]
        assert split.x.shape[1] == int(split.lengths.max())  # type: ignore[union-attr]
    # stratified by each sentence group's label: the positive share stays close
    assert float(data.train.y.float().mean()) == pytest.approx(
        float(data.val.y.float().mean()), abs=0.02
    )


def test_vocabulary_is_built_on_the_training_split_only(data_dir: Path) -> None:
    data = load_dataset(text_task("sst2", max_train_samples=2000, min_freq=1), data_dir)
    assert data.vocab is not None and data.vocab[:2] == ["<pad>", "<unk>"]
    assert data.input_size == len(data.vocab)
    train_ids = set(data.train.x.unique().tolist())
    assert train_ids >= set(range(2, len(data.vocab)))  # every word seen in training
    assert (data.test.x == 1).any()  # and dev has words that are unknown to it
    assert len(data.train) == 2000


def test_sms_spam_is_deduplicated_before_a_grouped_stratified_split(data_dir: Path) -> None:
    data = load_dataset(text_task("sms_spam"), data_dir)
    assert data.label_names == ["ham", "spam"]
    sizes = [len(data.train), len(data.val), len(data.test)]
    # 5,574 - 403 exact duplicates - 12 more that differ only in case or spacing
    assert sum(sizes) == 5159
    # whole groups (a message and the shorter ones inside it) are held out, so sizes are near
    assert sizes[2] == pytest.approx(0.2 * 5159, abs=5) and sizes[1] == pytest.approx(516, abs=5)
    assert_disjoint(data)
    # no message crosses splits, even ignoring case and spacing
    frame = clean_texts(sms_frame(data_dir))
    train, val, test = (texts(frame, data, name) for name in ("train", "val", "test"))
    assert len(train) == len(data.train) and not (train & test) and not (val & test)
    spam = [float(s.y.float().mean()) for s in (data.train, data.val, data.test)]
    assert max(spam) - min(spam) < 0.01


def test_max_length_truncates(data_dir: Path) -> None:
    data = load_dataset(text_task("sms_spam", max_length=12), data_dir)
    assert data.train.x.shape[1] == 12 and int(data.train.lengths.max()) == 12  # type: ignore[union-attr]


def test_digits_are_eight_steps_of_eight_features() -> None:
    data = load_dataset(TaskSpec(dataset="digits", kind="sequence_classification"), None)
    assert data.train.x.shape[1:] == (8, 8) and data.input_size == 8 and data.n_classes == 10
    assert len(data.train) + len(data.val) + len(data.test) == 1797
    assert_disjoint(data)
    assert abs(float(data.train.x.mean())) < 0.05  # standardised with train statistics


def test_missing_file_names_the_file_and_the_setting_but_not_the_server_path(
    tmp_path: Path,
) -> None:
    with pytest.raises(DatasetError) as error:
        load_dataset(text_task("sst2"), tmp_path)
    assert "sst2/train.tsv not found in the data directory" in str(error.value)
    assert str(tmp_path) not in str(error.value)
    assert "HPO_DATA_DIR" in str(error.value) and "--data-dir" in str(error.value)
    with pytest.raises(DatasetError, match="HPO_DATA_DIR"):
        load_dataset(text_task("sms_spam"), None)


def sms_frame(data_dir: Path) -> pd.DataFrame:
    return read_tsv(data_dir / "sms_spam" / "SMSSpamCollection", ["label", "text"])


def test_text_csv_with_named_columns_and_upload(data_dir: Path, tmp_path: Path) -> None:
    frame = sms_frame(data_dir).rename(columns={"text": "message", "label": "kind"})
    frame.iloc[:1500].to_csv(tmp_path / "sms.csv", index=False)
    task = text_task("sms.csv", text_column="message", label_column="kind")
    data = load_dataset(task, tmp_path)
    expected = len(
        clean_texts(frame.iloc[:1500].rename(columns={"message": "text", "kind": "label"}))
    )
    assert sum(len(s) for s in (data.train, data.val, data.test)) == expected
    with pytest.raises(DatasetError) as private:  # a data-directory file's header stays private
        load_dataset(text_task("sms.csv"), tmp_path)
    assert "no column 'text'" in str(private.value) and "message" not in str(private.value)
    roots = DataRoots(data_dir=data_dir, upload_dir=tmp_path / "uploads")
    (tmp_path / "uploads").mkdir()
    (tmp_path / "sms.csv").rename(tmp_path / "uploads" / "0123456789abcdef.csv")
    assert load_dataset(
        text_task("upload:0123456789abcdef", text_column="message", label_column="kind"), roots
    ).label_names == ["ham", "spam"]
    with pytest.raises(DatasetError) as missing:  # an upload's own header is shown
        load_dataset(text_task("upload:0123456789abcdef"), roots)
    assert "no column 'text' (columns: kind, message)" in str(missing.value)
    with pytest.raises(DatasetError, match="is not in the upload directory"):
        load_dataset(text_task("upload:fedcba9876543210"), roots)
    with pytest.raises(DatasetError, match="is not an upload id"):
        load_dataset(text_task("upload:nope"), roots)


def test_forecasting_csv_sorted_by_time_column(tmp_path: Path) -> None:
    import statsmodels.api as sm

    frame = sm.datasets.sunspots.load_pandas().data.sample(frac=1.0, random_state=0)
    frame.iloc[5, 1] = np.nan
    frame.to_csv(tmp_path / "spots.csv", index=False)
    task = TaskSpec(
        dataset="spots.csv", kind="forecasting", value_column="SUNACTIVITY", time_column="YEAR"
    )
    from_csv = load_dataset(task, tmp_path)
    builtin = load_dataset(TaskSpec(dataset="sunspots", kind="forecasting"), None)
    assert len(from_csv.train) == len(builtin.train)
    assert torch.isfinite(from_csv.train.x).all()
    with pytest.raises(DatasetError, match="'value'") as missing:
        load_dataset(TaskSpec(dataset="spots.csv", kind="forecasting"), tmp_path)
    assert "SUNACTIVITY" not in str(missing.value)  # a data-directory file's header stays private
    # An absolute path only with the local opt-in (hpo train on one's own machine).
    absolute = task.model_copy(update={"dataset": str(tmp_path / "spots.csv")})
    local = load_dataset(absolute, DataRoots(allow_local_paths=True))
    assert torch.equal(local.train.x, from_csv.train.x)
    with pytest.raises(DatasetError, match="is an absolute path"):
        load_dataset(absolute, tmp_path)


def test_sequence_csv_uses_label_and_numeric_columns(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    frame = pd.DataFrame(digits.data[:, :16], columns=[f"p{i}" for i in range(16)])
    frame["digit"] = digits.target
    frame.to_csv(tmp_path / "rows.csv", index=False)
    task = TaskSpec(dataset="rows.csv", kind="sequence_classification", label_column="digit")
    data = load_dataset(task, tmp_path)
    assert data.train.x.shape[1:] == (16, 1) and data.n_classes == 10
    assert data.label_names == [str(i) for i in range(10)]
    picked = TaskSpec(
        dataset="rows.csv",
        kind="sequence_classification",
        label_column="digit",
        feature_columns=["p1", "p2", "p3"],
    )
    assert load_dataset(picked, tmp_path).train.x.shape[1:] == (3, 1)


def test_second_load_comes_from_the_cache(data_dir: Path, tmp_path: Path) -> None:
    task = text_task("sms_spam", min_freq=3, seed=7)
    first = load_dataset(task, data_dir, tmp_path)
    assert first.cache_key and (tmp_path / f"{first.cache_key}.pt").is_file()
    assert load_dataset(task, data_dir, tmp_path) is first  # in-process LRU
    data_cache.clear_memory()
    before = dict(data_cache.stats)
    from_disk = load_dataset(task, data_dir, tmp_path)
    assert data_cache.stats["disk"] == before["disk"] + 1
    assert data_cache.stats["built"] == before["built"]
    assert from_disk is not first and torch.equal(from_disk.train.x, first.train.x)
    assert from_disk.vocab == first.vocab and from_disk.label_names == first.label_names
    other = load_dataset(text_task("sms_spam", min_freq=4, seed=7), data_dir, tmp_path)
    assert other.cache_key != first.cache_key
