"""The best trial and the Pareto front: one rule for the API, the CLI, summaries and plots.

Single objective: the COMPLETE trial with the best finite value; among equal values the one
with the lowest validation loss at its best epoch (the ``best`` metric set's ``loss`` in
``hpo_trial_data``), then
the first (lowest trial id). On small validation sets many trials tie (7 of 8 at accuracy 1.0 on
14 rows), and the first of them was often the worst; the loss still tells them apart. The answer
changes only when a better trial arrives, or an equal one with a lower loss. Several
objectives: there is no single best, there is the Pareto front, the COMPLETE trials no other
trial dominates. Trials with identical values are all on the front (neither dominates the
other): they are different trials a user may want to compare. Whatever must serve predictions
from "the best" model of a multi-objective study asks the caller to pick a trial from the front
instead of guessing (:class:`NeedsChoice`).
"""

from __future__ import annotations

import math

import numpy as np
import sqlalchemy as sa

from hpo_service.store import optuna_tables as ot
from hpo_service.store.models import TrialDataRecord


class NeedsChoice(ValueError):
    """A multi-objective study has no single best trial: name one from the Pareto front."""


def pareto_mask(loss: np.ndarray) -> np.ndarray:
    """Rows of ``loss`` (n, k; lower is better in every column) that no other row dominates.

    The lexicographically smallest remaining row is never dominated by a remaining row, so it
    is on the front; rows it dominates leave, its exact duplicates join it on the front."""
    cand = np.lexsort(loss.T[::-1])
    mask = np.zeros(loss.shape[0], dtype=bool)
    while cand.size:
        best = loss[cand[0]]
        same = np.all(loss[cand] == best, axis=1)
        mask[cand[same]] = True
        cand = cand[~same & np.any(loss[cand] < best, axis=1)]
    return mask


def losses(values: np.ndarray, directions: list[str]) -> np.ndarray:
    """Objective values turned into losses: maximised objectives change sign."""
    signs = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    return values * signs


def pareto_trial_ids(conn: sa.Connection, study_id: int, directions: list[str]) -> list[int]:
    """Trial ids on the Pareto front of a study's COMPLETE trials with all values finite."""
    table: dict[int, list[float]] = {}
    for trial_id, objective, value in ot.complete_finite_values(conn, study_id):
        table.setdefault(trial_id, [np.nan] * len(directions))[objective] = value
    ids = sorted(t for t, v in table.items() if not np.isnan(v).any())
    if not ids:
        return []
    mask = pareto_mask(losses(np.array([table[t] for t in ids]), directions))
    return [t for t, on in zip(ids, mask, strict=True) if on]


def best_trial_ids(conn: sa.Connection, study_id: int, directions: list[str]) -> list[int]:
    """The best trial (one id) or, for several objectives, the Pareto front; [] before any
    COMPLETE trial."""
    if len(directions) > 1:
        return pareto_trial_ids(conn, study_id, directions)
    tied = ot.tied_best(conn, study_id, 0, minimize=directions[0] == "minimize")
    if len(tied) <= 1:
        return tied
    losses = _best_epoch_losses(conn, tied)
    return [min(tied, key=lambda trial_id: (losses.get(trial_id, math.inf), trial_id))]


def ranked_trial_ids(conn: sa.Connection, study_id: int, direction: str, n: int) -> list[int]:
    """The ``n`` best COMPLETE trials of a single-objective study, best first, by the same rule
    as :func:`best_trial_ids` (value, then validation loss, then trial id): its first id is the
    best trial. The members of ``task.ensemble_trials``."""
    sign = 1.0 if direction == "minimize" else -1.0
    values = sorted(
        (sign * value, trial_id)
        for trial_id, objective, value in ot.complete_finite_values(conn, study_id)
        if objective == 0
    )
    if len(values) > n:  # the n-th value's ties may still move ahead on their loss
        values = [(v, t) for v, t in values if v <= values[n - 1][0]]
    tie_losses = _best_epoch_losses(conn, [t for _, t in values])
    ranked = sorted(values, key=lambda vt: (vt[0], tie_losses.get(vt[1], math.inf), vt[1]))
    return [trial_id for _, trial_id in ranked[:n]]


def _best_epoch_losses(conn: sa.Connection, trial_ids: list[int]) -> dict[int, float]:
    """The best epoch's validation loss per trial, from the ``metrics`` column of
    ``hpo_trial_data`` (written by ``store.trial_data``; read here directly because
    ``trial_data`` imports ``studies``, which imports this module)."""
    t = TrialDataRecord.__table__.c
    query = sa.select(t.trial_id, t.metrics).where(t.trial_id.in_(trial_ids))
    return {
        int(trial_id): _val_loss((metrics or {}).get("best"))
        for trial_id, metrics in conn.execute(query)
    }


def _val_loss(metrics: object) -> float:
    """The stored validation loss, +inf when missing or not a finite number."""
    loss = metrics.get("loss") if isinstance(metrics, dict) else None
    ok = isinstance(loss, int | float) and not isinstance(loss, bool) and math.isfinite(loss)
    return float(loss) if ok else math.inf  # type: ignore[arg-type]


def serving_trial_id(conn: sa.Connection, study_id: int, directions: list[str]) -> int | None:
    """The trial whose model serves predictions when none is named: the single objective's best
    (None before any COMPLETE trial); a multi-objective study raises :class:`NeedsChoice`."""
    if len(directions) > 1:
        raise NeedsChoice("a multi-objective study has no single best trial: pick one from /best")
    ids = best_trial_ids(conn, study_id, directions)
    return ids[0] if ids else None
