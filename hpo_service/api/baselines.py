"""A study's stored baselines and the verdict, shaped for the study detail and /best.

Only for one study at a time (one indexed query): study lists leave the fields empty, so a page
of studies costs no extra query per study. The rule is :func:`hpo_service.store.baselines.verdict`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from hpo_service.api.schemas import BaselineFields, BaselineOut, VerdictOut
from hpo_service.store.baselines import get_baselines, verdict
from hpo_service.store.studies import StudyInfo

PENDING = "not computed yet: the worker that trains the study's first trial computes them"


def _value(values: Any, metric: str) -> float | None:
    value = (values or {}).get(metric)
    return float(value) if isinstance(value, int | float) else None


def baseline_fields(
    engine: Engine,
    info: StudyInfo,
    best_value: float | None,
    best_test: dict[str, Any] | None,
    refit_test: dict[str, Any] | None = None,
    ensemble: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``baselines``, ``baselines_note`` and ``best_vs_baseline`` for ``info``'s best trial
    (``best_value`` its objective value, ``best_test`` its search run's test metrics,
    ``refit_test`` its refit's and ``ensemble`` the study's ensemble, both reported beside the
    verdict: see :mod:`hpo_service.store.baselines`)."""
    stored = get_baselines(engine, info.name)
    if stored is None:
        return BaselineFields(baselines_note=PENDING).model_dump()
    if stored.error and not stored.results:
        return BaselineFields(baselines_note=f"baselines failed: {stored.error}").model_dump()
    metric, direction = info.spec.task.metrics[0], info.spec.directions[0]
    rows = [
        BaselineOut(
            name=r["name"],
            label=r.get("label", r["name"]),
            val=_value(r.get("val"), metric),
            test=_value(r.get("test"), metric),
            detail=r.get("detail", ""),
        )
        for r in stored.results
    ]
    found = None
    if not info.spec.is_multi_objective:
        found = verdict(
            stored.results, metric, direction, best_value, best_test, refit_test, ensemble
        )
    return BaselineFields(
        baselines=rows,
        best_vs_baseline=VerdictOut(**found.model_dump()) if found else None,
    ).model_dump()


def summary_fields(engine: Engine, info: StudyInfo, best: dict[str, Any] | None) -> dict[str, Any]:
    """:func:`baseline_fields` for the best trial as ``store.studies.best_trial`` summarizes it
    (the study view, ``hpo study show``, ``hpo run``'s summary and the quality bench)."""
    best = best or {}
    return baseline_fields(
        engine,
        info,
        best.get("value"),
        best.get("test_metrics"),
        best.get("refit_test_metrics"),
        best.get("ensemble"),
    )

