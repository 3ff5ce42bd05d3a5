"""Validation metrics, computed with torch from predictions gathered over a whole split."""

from __future__ import annotations

import math

import torch


def classification_metrics(
    pred: torch.Tensor, target: torch.Tensor, n_classes: int
) -> dict[str, float]:
    """Accuracy, macro and positive-class precision/recall/F1 from a confusion matrix.

    "Positive class" is class 1 for binary tasks (SST-2 positive, SMS spam); for more than two
    classes there is none, so ``f1``/``precision``/``recall`` equal their macro averages.
    A class that is never predicted (or absent) contributes 0, as in scikit-learn's zero_division=0.
    """
    confusion = torch.bincount(target * n_classes + pred, minlength=n_classes**2)
    confusion = confusion.reshape(n_classes, n_classes).double()
    tp = confusion.diag()
    predicted, actual = confusion.sum(0), confusion.sum(1)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), 0.0)
    recall = torch.where(actual > 0, tp / actual.clamp(min=1), 0.0)
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), 0.0)
    out = {
        "accuracy": float(tp.sum() / confusion.sum().clamp(min=1)),
        "f1_macro": float(f1.mean()),
        "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()),
    }
    pos = 1 if n_classes == 2 else None
    out["f1"] = float(f1[pos]) if pos is not None else out["f1_macro"]
    out["precision"] = float(precision[pos]) if pos is not None else out["precision_macro"]
    out["recall"] = float(recall[pos]) if pos is not None else out["recall_macro"]
    return out


def forecast_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """RMSE, MAE and MAPE (percent) in original units over every forecast step.

    MAPE skips targets equal to zero (sunspot counts reach 0), where it is undefined.
    """
    err = pred.double() - target.double()
    nonzero = target.abs() > 1e-12
    mape = (err[nonzero].abs() / target[nonzero].abs()).mean() * 100 if nonzero.any() else math.nan
    return {
        "rmse": float(err.pow(2).mean().sqrt()),
        "mae": float(err.abs().mean()),
        "mape": float(mape),
    }
