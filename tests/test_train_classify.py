"""Classification training on real data: SMS Spam (text) and digits (sequences)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from hpo_service.data import PreparedData, load_dataset
from hpo_service.data.classify import clean_texts
from hpo_service.data.sources import read_tsv
from hpo_service.spec import TaskSpec
from hpo_service.train import TrainConfig, fit, load_predictor, save_artifacts
from hpo_service.train.artifacts import BATCH_CHARS, _text_batches
from hpo_service.train.metrics import classification_metrics


@pytest.fixture(scope="module")
def sms(data_dir: Path) -> PreparedData:
    return load_dataset(TaskSpec(dataset="sms_spam", kind="text_classification"), data_dir)


@pytest.fixture(scope="module")
def digits() -> PreparedData:
    return load_dataset(TaskSpec(dataset="digits", kind="sequence_classification"), None)


def config(**overrides: object) -> TrainConfig:
    base: dict[str, object] = dict(
        learning_rate=0.005,
        batch_size=32,
        hidden_units=32,
        optimizer="adam",
        max_epochs=2,
        embedding_dim=32,
        metric="accuracy",
        direction="maximize",
        num_threads=1,
    )
    return TrainConfig(**{**base, **overrides})  # type: ignore[arg-type]


def test_metrics_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    for n_classes in (2, 4):
        target = rng.integers(0, n_classes, 300)
        pred = np.where(rng.random(300) < 0.6, target, rng.integers(0, n_classes, 300))
        got = classification_metrics(torch.tensor(pred), torch.tensor(target), n_classes)
        average = "binary" if n_classes == 2 else "macro"
        assert got["accuracy"] == pytest.approx(skm.accuracy_score(target, pred))
        assert got["f1"] == pytest.approx(skm.f1_score(target, pred, average=average))
        assert got["precision"] == pytest.approx(skm.precision_score(target, pred, average=average))
        assert got["recall_macro"] == pytest.approx(skm.recall_score(target, pred, average="macro"))
        assert got["f1_macro"] == pytest.approx(skm.f1_score(target, pred, average="macro"))


def test_two_epochs_on_sms_spam_learn(sms: PreparedData) -> None:
    result = fit(config(), sms)
    assert result.stop_reason == "max_epochs" and len(result.epochs) == 2
    best = result.best
    assert best is not None
    expected = {
        "accuracy",
        "f1",
        "f1_macro",
        "precision",
        "recall",
        "precision_macro",
        "recall_macro",
        "loss",
    }
    assert set(best.metrics) == expected and set(result.test_metrics) == expected
    assert best.metrics["accuracy"] > 0.93  # always "ham" scores 0.87
    assert best.metrics["f1"] > 0.6  # spam is the positive class
    assert best.seconds > 0 and best.train_loss > 0


def test_two_epochs_on_digits_learn(digits: PreparedData) -> None:
    result = fit(config(learning_rate=0.01), digits)
    assert result.best is not None and result.best.metrics["accuracy"] > 0.5  # chance is 0.1
    assert result.test_metrics["f1_macro"] > 0.4


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_stacked_bidirectional_cells_with_dropout(digits: PreparedData, cell: str) -> None:
    result = fit(
        config(
            cell=cell,
            bidirectional=True,
            num_layers=2,
            dropout=0.3,
            max_epochs=1,
            optimizer="rmsprop",
            learning_rate=0.003,
        ),
        digits,
    )
    assert result.stop_reason == "max_epochs" and result.n_params > 0


def test_fixed_seed_repeats_text_training_exactly(sms: PreparedData) -> None:
    first = fit(config(max_epochs=1, optimizer="momentum", learning_rate=0.05), sms)
    second = fit(config(max_epochs=1, optimizer="momentum", learning_rate=0.05), sms)
    assert first.epochs[0].metrics == second.epochs[0].metrics
    assert first.epochs[0].train_loss == second.epochs[0].train_loss
    third = fit(config(max_epochs=1, optimizer="momentum", learning_rate=0.05, seed=1), sms)
    assert third.epochs[0].train_loss != first.epochs[0].train_loss


@pytest.mark.parametrize("pooling", ["last", "max"])
def test_text_predictor_round_trips(
    sms: PreparedData, data_dir: Path, tmp_path: Path, pooling: str
) -> None:
    cfg = config(pooling=pooling, bidirectional=pooling == "max")
    result = fit(cfg, sms)
    predictor = load_predictor(save_artifacts(result, sms, cfg, tmp_path / "sms"))
    frame = clean_texts(read_tsv(data_dir / "sms_spam" / "SMSSpamCollection", ["label", "text"]))
    test = frame.iloc[sms.test.ids.tolist()]  # type: ignore[union-attr]
    predicted = predictor.predict(test["text"].tolist())
    accuracy = np.mean(
        [p["label"] == label for p, label in zip(predicted, test["label"], strict=True)]
    )
    assert accuracy == pytest.approx(result.test_metrics["accuracy"])
    assert set(predicted[0]["probabilities"]) == {"ham", "spam"}
    assert sum(predicted[0]["probabilities"].values()) == pytest.approx(1.0)
    assert predictor.predict([]) == []
    # Batches (sorted by length inside) give the same answers, in input order.
    texts = test["text"].tolist()[:300]
    whole = predictor.predict(texts, batch_size=len(texts))
    small = predictor.predict(texts, batch_size=7)
    assert [p["label"] for p in small] == [p["label"] for p in whole]
    for a, b in zip(small, whole, strict=True):
        assert a["probabilities"]["spam"] == pytest.approx(b["probabilities"]["spam"], abs=1e-5)


def test_an_artifact_saved_before_pooling_loads_as_last(
    digits: PreparedData, tmp_path: Path
) -> None:
    cfg = config(max_epochs=1)
    folder = save_artifacts(fit(cfg, digits), digits, cfg, tmp_path / "old")
    inputs = digits.test.x[:5].tolist()
    before = load_predictor(folder).predict(inputs)
    summary = json.loads((folder / "config.json").read_text())
    del summary["train_config"]["pooling"]
    (folder / "config.json").write_text(json.dumps(summary))
    predictor = load_predictor(folder)
    assert predictor.model.pooling == "last"
    assert predictor.predict(inputs) == before


def test_text_batches_are_bounded_by_count_and_characters() -> None:
    texts = ["x" * n for n in (5, 200_000, 10, 100_000, 300_000, 1, 7)]
    batches = _text_batches(texts, batch_size=3)
    assert sorted(i for batch in batches for i in batch) == list(range(len(texts)))
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or sum(len(texts[i]) for i in batch) <= BATCH_CHARS
    assert [len(texts[i]) for i in batches[0]] == [1, 5, 7]  # shortest first
    assert _text_batches([], 3) == []


def test_sequence_predictor_round_trips(digits: PreparedData, tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    cfg = config(learning_rate=0.01)
    result = fit(cfg, digits)
    predictor = load_predictor(save_artifacts(result, digits, cfg, tmp_path / "digits"))
    raw = load_digits()
    index = digits.test.ids.tolist()  # type: ignore[union-attr]
    nested = raw.data[index].reshape(-1, 8, 8).tolist()
    labels = predictor.predict(nested)
    accuracy = np.mean([lab == str(t) for lab, t in zip(labels, raw.target[index], strict=True)])
    assert accuracy == pytest.approx(result.test_metrics["accuracy"])
    assert predictor.predict(raw.data[index[:3]].tolist()) == labels[:3]  # flat rows work too
    assert predictor.predict(nested, batch_size=5) == labels
    with pytest.raises(ValueError, match="8 steps of 8 features"):
        predictor.predict([[1.0, 2.0]])
