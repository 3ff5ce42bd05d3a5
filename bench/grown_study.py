"""Existing trials for the worker benchmark, bulk-inserted into Optuna's tables (as
make_big_study.py does: ``add_trial`` one by one would take minutes at 50,000) with the service's
runs and counters to match. Parameters follow the benchmark spec's search space, so the sampler
sees the same distributions as the trials it adds."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)
from optuna.storages._rdb import models as om
from optuna.trial import TrialState
from sqlalchemy import insert, select, text, update

from hpo_service.config import Settings
from hpo_service.spec import StudySpec
from hpo_service.spec.sampling import suggest_params
from hpo_service.store.clock import utcnow
from hpo_service.store.db import get_engine, session_scope
from hpo_service.store.models import StudyRecord, TrialRun


def _distributions(spec: StudySpec) -> dict[str, BaseDistribution]:
    """The Optuna distributions the spec's search space suggests (read off one in-memory trial)."""
    trial = optuna.create_study().ask()
    suggest_params(trial, spec.search_space)
    return dict(trial.distributions)


def _random_internal(dist: BaseDistribution, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random values of ``dist`` in Optuna's internal (float) representation."""
    if isinstance(dist, CategoricalDistribution):
        return rng.integers(0, len(dist.choices), n).astype(float)
    assert isinstance(dist, FloatDistribution | IntDistribution)
    if dist.log:
        return np.exp(rng.uniform(np.log(dist.low), np.log(dist.high), n))
    if dist.step:
        steps = round((dist.high - dist.low) / dist.step)
        return dist.low + dist.step * rng.integers(0, steps + 1, n).astype(float)
    return rng.uniform(dist.low, dist.high, n)


def prefill(settings: Settings, spec: StudySpec, existing: int) -> None:
    """``existing`` finished trials in Optuna's tables (bulk INSERTs, as make_big_study.py does:
    ``add_trial`` one by one would take minutes at 50,000) and as complete runs in the service's
    table, with the study's counters to match."""
    rng = np.random.default_rng(0)
    engine = get_engine(settings)
    dists = _distributions(spec)
    params = {name: _random_internal(d, rng, existing) for name, d in dists.items()}
    begin = datetime(2025, 1, 1)
    with engine.begin() as conn:
        study_id = conn.scalar(
            select(om.StudyModel.study_id).where(om.StudyModel.study_name == spec.name)
        )
        rows = [
            {"number": i, "study_id": study_id, "state": TrialState.COMPLETE}
            | {"datetime_start": begin + timedelta(seconds=i)}
            | {"datetime_complete": begin + timedelta(seconds=i + 0.5)}
            for i in range(existing)
        ]
        conn.execute(insert(om.TrialModel.__table__), rows)
        ids = dict(
            conn.execute(
                select(om.TrialModel.number, om.TrialModel.trial_id).where(
                    om.TrialModel.study_id == study_id
                )
            ).all()
        )
        finite = om.TrialValueModel.TrialValueType.FINITE
        value_rows = [
            {"trial_id": ids[i], "objective": 0, "value": float(rng.random())}
            | {"value_type": finite}
            for i in range(existing)
        ]
        conn.execute(insert(om.TrialValueModel.__table__), value_rows)
        param_rows = [
            {"trial_id": ids[i], "param_name": name, "param_value": float(values[i])}
            | {"distribution_json": distribution_to_json(dists[name])}
            for name, values in params.items()
            for i in range(existing)
        ]
        conn.execute(insert(om.TrialParamModel.__table__), param_rows)
    _prefill_runs(settings, spec, existing)


def _prefill_runs(settings: Settings, spec: StudySpec, existing: int) -> None:
    with session_scope(get_engine(settings)) as session:
        study_id = session.scalar(select(StudyRecord.id).where(StudyRecord.name == spec.name))
        if study_id is None:  # a plain Optuna study: no service record
            return
        now = utcnow()
        rows = [
            {"study_id": study_id, "status": "complete", "retries": 0, "started_at": now}
            | {"heartbeat_at": now, "worker_id": "prefill", "trial_number": number}
            for number in range(existing)
        ]
        session.execute(insert(TrialRun), rows)
        session.execute(
            update(StudyRecord)
            .where(StudyRecord.id == study_id)
            .values(budget_used=existing, runs_claimed=existing, change_seq=existing)
        )
    if get_engine(settings).dialect.name == "postgresql":  # fresh statistics, as autovacuum would
        with get_engine(settings).connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
