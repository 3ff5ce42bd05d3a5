"""PED-ANOVA hyperparameter importances on plain arrays.

A port of :class:`optuna.importance.PedAnovaImportanceEvaluator` (default settings:
``target_quantile=0.1``, ``region_quantile=1.0``, local evaluation, 50-step grids, Scott-rule
Parzen estimators with prior weight 1) that works on the numpy columns read straight from the
database instead of ``FrozenTrial`` objects. On single-objective studies it gives the same
numbers as ``get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())``.
For multi-objective studies it ranks by the chosen objective (Optuna's default would use
non-domination ranks). Trials where a parameter is not set form an "inactive" regime that adds
nothing, like Optuna's conditional handling.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from hpo_service.plots.data import Param

N_STEPS = 50
PRIOR_WEIGHT = 1.0
TARGET_QUANTILE = 0.1
MIN_TRIALS_IN_REGIME = 2


def _grid_counts(param: Param, values: np.ndarray) -> np.ndarray:
    if param.categorical:
        return np.bincount(values.astype(np.int64), minlength=len(param.choices))
    n_steps = N_STEPS
    if param.kind == "int" and param.log:
        n_steps = min(int(np.ceil(np.log(param.high - param.low + 1) / np.log(2))) + 1, n_steps)
    elif param.step is not None:
        n_steps = min(round((param.high - param.low) / param.step) + 1, n_steps)
    low, high = param.low, param.high
    if param.log:
        low, high, values = math.log(low), math.log(high), np.log(values)
    step_size = (high - low) / (n_steps - 1)
    idx = np.clip(np.ceil((values - low) / step_size - 0.5).astype(np.int64), 0, n_steps - 1)
    return np.bincount(idx, minlength=n_steps)


def _categorical_pdf(counts: np.ndarray) -> np.ndarray:
    obs = np.flatnonzero(counts)
    n_choices = counts.size
    weights = np.append(counts[obs].astype(np.float64), PRIOR_WEIGHT)
    weights /= weights.sum()
    n_kernels = obs.size + 1
    kernels = np.full((n_kernels, n_choices), PRIOR_WEIGHT / n_kernels)
    kernels[np.arange(obs.size), obs] += 1
    kernels /= kernels.sum(axis=1, keepdims=True)
    return weights @ kernels


def _numerical_pdf(counts: np.ndarray) -> np.ndarray:
    """Scott-rule discrete truncated-normal mixture on grid points 0..G-1, plus a wide prior."""
    obs = np.flatnonzero(counts).astype(np.float64)
    w = counts[counts > 0].astype(np.float64)
    grid_high = counts.size - 1
    w_cum = np.cumsum(w)
    w_sum = w_cum[-1]
    mean = (obs @ w) / w_sum
    sigma = np.sqrt(((obs - mean) ** 2 @ w) / max(1, w_sum - 1))
    q1 = np.searchsorted(w_cum, w_sum // 4, side="left")
    q3 = np.searchsorted(w_cum, w_sum * 3 // 4, side="right")
    iqr = obs[min(obs.size - 1, q3)] - obs[q1]
    sigma = 1.059 * min(iqr / 1.34, sigma) * w_sum**-0.2
    mus = np.append(obs, grid_high / 2.0)
    sigmas = np.append(np.full(obs.size, max(sigma, 0.5 / 1.64)), grid_high + 1.0)
    weights = np.append(w, PRIOR_WEIGHT)
    weights /= weights.sum()
    x = np.arange(counts.size, dtype=np.float64)[:, None]
    mass = ndtr((x + 0.5 - mus) / sigmas) - ndtr((x - 0.5 - mus) / sigmas)
    norm = ndtr((grid_high + 0.5 - mus) / sigmas) - ndtr((-0.5 - mus) / sigmas)
    return (mass / norm) @ weights


def _pearson_divergence(param: Param, top: np.ndarray, region: np.ndarray) -> float:
    pdf = _categorical_pdf if param.categorical else _numerical_pdf
    pdf_top = pdf(_grid_counts(param, top)) + 1e-12
    pdf_local = pdf(_grid_counts(param, region)) + 1e-12
    return float(pdf_local @ ((pdf_top / pdf_local - 1) ** 2))


def ped_anova(loss: np.ndarray, params: dict[str, Param]) -> dict[str, float]:
    """Normalised importances (sum 1, or all 0), sorted descending; ``loss``: lower is better."""
    n = loss.size
    result = dict.fromkeys(params, 0.0)
    if n <= 1:
        return result
    cutoff_index = math.ceil(TARGET_QUANTILE * n) - 1
    cutoff = float(np.partition(loss, cutoff_index)[cutoff_index])
    is_top = loss <= cutoff
    n_top = int(is_top.sum())
    quantile = n_top / n
    for name, param in params.items():
        active = ~np.isnan(param.values)
        top_active = active & is_top
        if param.single or active.sum() < MIN_TRIALS_IN_REGIME or not top_active.any():
            continue
        alpha = top_active.sum() / n_top
        beta = active.sum() / n
        div = _pearson_divergence(param, param.values[top_active], param.values[active])
        result[name] = float(alpha**2 / beta * div * quantile**2)
    total = sum(result.values())
    if total > 0:
        result = {k: v / total for k, v in result.items()}
    return dict(sorted(result.items(), key=lambda kv: kv[1], reverse=True))
