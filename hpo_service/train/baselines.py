"""Baselines: the simple models every study is measured against, on the trials' own splits.

A tuned LSTM that loses to "tomorrow equals today" or to TF-IDF + logistic regression is not a
result; the user must be told. So for every study the service computes, once, on the same
prepared splits and with the same metric functions the trainer uses:

- forecasting: naive last value, seasonal naive (period from the spec, else detected) and ETS
  (:mod:`hpo_service.train.forecast_baselines`);
- classification: the majority class, and a strong cheap scikit-learn model: TF-IDF (word
  unigrams and bigrams of the same token ids the LSTM reads) + logistic regression for text; a
  logistic regression and a k-nearest-neighbour model on the flattened sequences.

A scikit-learn model's one setting (``C``, ``k``) is chosen on the validation split by the
study's first metric, the way trials are chosen; the test figure is then reported untouched.
Pure computation: no database, no Optuna (the worker stores the result, see
``store/baselines.py``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from hpo_service.data.prepared import PAD, PreparedData, Split
from hpo_service.train import forecast_baselines as fb
from hpo_service.train.metrics import classification_metrics

#: Settings tried per scikit-learn model, best on validation kept.
LOGREG_C = (0.1, 1.0, 10.0)
KNN_K = (1, 3, 5, 9)


class BaselineResult(BaseModel):
    """One baseline: every metric the trainer reports, on validation and on test."""

    model_config = ConfigDict(frozen=True)

    name: str  # naive | seasonal_naive | ets | majority | tfidf_logreg | logreg | knn
    label: str  # for people, e.g. "seasonal naive (period 11)"
    val: dict[str, float]
    test: dict[str, float]
    detail: str = ""  # a chosen setting, a detected period, or why a fallback was used


def compute_baselines(
    data: PreparedData, metric: str, direction: str, period: int | None = None
) -> list[BaselineResult]:
    """Every baseline of ``data``'s task kind. ``metric``/``direction`` pick a scikit-learn
    model's setting on validation; ``period`` is the season length of a forecasting task (None:
    detect it from the training part)."""
    if data.kind == "forecasting":
        return _forecasting(data, period)
    y_train = data.train.y.numpy()
    found = [_majority(data, y_train)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs convergence notes on tiny or separable data
        if data.is_text:
            found.append(_tfidf_logreg(data, metric, direction))
        else:
            found.append(_fitted(data, "logreg", _logreg_models(), metric, direction))
            found.append(_fitted(data, "knn", _knn_models(len(data.train)), metric, direction))
    return found


def _forecasting(data: PreparedData, period: int | None) -> list[BaselineResult]:
    forecasts, _ = fb.forecast_baselines(data, period)
    return [
        BaselineResult(
            name=f.name,
            label=f.label,
            val=fb.score(f.per_split["val"], data.val, data),
            test=fb.score(f.per_split["test"], data.test, data),
            detail=f.detail,
        )
        for f in forecasts
    ]


def _scores(pred: np.ndarray, split: Split, n_classes: int) -> dict[str, float]:
    if len(split) == 0:
        return {}
    return classification_metrics(torch.as_tensor(pred, dtype=torch.long), split.y, n_classes)


def _majority(data: PreparedData, y_train: np.ndarray) -> BaselineResult:
    top = int(np.bincount(y_train, minlength=data.n_classes).argmax())
    name = data.label_names[top] if top < len(data.label_names) else str(top)
    return BaselineResult(
        name="majority",
        label=f"majority class ({name})",
        val=_scores(np.full(len(data.val), top), data.val, data.n_classes),
        test=_scores(np.full(len(data.test), top), data.test, data.n_classes),
    )


def _logreg_models() -> list[tuple[str, Any]]:
    from sklearn.linear_model import LogisticRegression

    return [(f"C={c:g}", LogisticRegression(C=c, max_iter=2000)) for c in LOGREG_C]


def _knn_models(n_train: int) -> list[tuple[str, Any]]:
    from sklearn.neighbors import KNeighborsClassifier

    return [(f"k={k}", KNeighborsClassifier(n_neighbors=k)) for k in KNN_K if k <= n_train]


def _flat(split: Split) -> np.ndarray:
    return split.x.reshape(len(split), -1).double().numpy()


def _fitted(
    data: PreparedData,
    name: str,
    models: list[tuple[str, Any]],
    metric: str,
    direction: str,
    features: dict[str, Any] | None = None,
) -> BaselineResult:
    """The candidate with the best validation ``metric``, scored on validation and test."""
    x = features or {s: _flat(getattr(data, s)) for s in ("train", "val", "test")}
    y_train = data.train.y.numpy()
    best: tuple[float, str, dict[str, float], Any] | None = None
    for setting, model in models:
        model.fit(x["train"], y_train)
        val = _scores(model.predict(x["val"]), data.val, data.n_classes)
        key = val.get(metric, val.get("accuracy", 0.0))
        key = -key if direction == "minimize" else key
        if best is None or key > best[0]:
            best = (key, setting, val, model)
    assert best is not None
    _, setting, val, model = best
    test = _scores(model.predict(x["test"]), data.test, data.n_classes) if len(data.test) else {}
    labels = {
        "logreg": "logistic regression",
        "knn": "k-nearest neighbours",
        "tfidf_logreg": "TF-IDF + logistic regression",
    }
    return BaselineResult(name=name, label=labels[name], val=val, test=test, detail=setting)


def _id_docs(split: Split) -> list[str]:
    """Each text as its token ids joined by spaces (padding dropped), for a vectorizer."""
    assert split.lengths is not None
    rows = split.x.tolist()
    return [
        " ".join(str(t) for t in row[:n] if t != PAD)
        for row, n in zip(rows, split.lengths.tolist(), strict=True)
    ]


def _tfidf_logreg(data: PreparedData, metric: str, direction: str) -> BaselineResult:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(
        token_pattern=r"\S+", ngram_range=(1, 2), min_df=1, sublinear_tf=True
    )
    docs = {s: _id_docs(getattr(data, s)) for s in ("train", "val", "test")}
    features = {"train": vectorizer.fit_transform(docs["train"])}
    features.update({s: vectorizer.transform(docs[s]) for s in ("val", "test")})
    return _fitted(data, "tfidf_logreg", _logreg_models(), metric, direction, features)
