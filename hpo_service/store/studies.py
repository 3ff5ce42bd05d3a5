"""Studies: creation, lookup, lifecycle and summaries.

A study is two records in one database: the service's ``hpo_studies`` row (validated spec, state,
timestamps) and Optuna's study of the same name. State moves
created -> running <-> paused -> completed | failed | stopped (see ``StudyState``); workers only
claim trials of running studies.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from hpo_service.config import Settings
from hpo_service.spec import StudySpec, load_stored_spec, spec_to_dict
from hpo_service.spec.sampling import build_pruner, build_sampler, grid_space
from hpo_service.store import optuna_tables
from hpo_service.store.best import best_trial_ids
from hpo_service.store.clock import utcnow
from hpo_service.store.db import get_engine, get_storage, rows_changed, session_scope
from hpo_service.store.ensembles import read_ensemble
from hpo_service.store.models import StudyRecord, StudyState, TrialDataRecord

#: Ended states a budget extension reopens (stop is final).
REOPENABLE = (StudyState.COMPLETED.value, StudyState.FAILED.value)

_TRANSITIONS: dict[str, tuple[set[str], str]] = {
    "start": ({"created", "paused"}, "running"),
    "resume": ({"created", "paused"}, "running"),
    "pause": ({"running"}, "paused"),
    "stop": ({"created", "running", "paused"}, "stopped"),
    "complete": ({"running"}, "completed"),
}


class StudyError(Exception):
    """Base for study errors; ``status`` is the HTTP status the API answers with."""

    status = 400


class StudyNotFound(StudyError):
    status = 404


class StudyExists(StudyError):
    status = 409


class InvalidTransition(StudyError):
    status = 409


class BudgetError(StudyError):
    """A budget change the study's state or its used trials do not allow."""

    status = 409


class StudyInfo(BaseModel):
    """A frozen view of the service's study record."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    spec: StudySpec
    state: str
    n_trials: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_record(cls, record: StudyRecord) -> StudyInfo:
        return cls(
            id=record.id,
            name=record.name,
            spec=load_stored_spec(record.spec),
            state=record.state,
            n_trials=record.n_trials,
            created_at=record.created_at,
            updated_at=record.updated_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
        )


def effective_n_trials(spec: StudySpec) -> int:
    """The budget, capped at the grid's size for grid search (more would only repeat points)."""
    if spec.sampler.type != "grid":
        return spec.budget.n_trials
    return min(
        spec.budget.n_trials, math.prod(len(v) for v in grid_space(spec.search_space).values())
    )


def create_study(settings: Settings, spec: StudySpec, *, start: bool = False) -> StudyInfo:
    """Create the service record and the Optuna study; the name must be new to both."""
    engine = get_engine(settings)
    now = utcnow()
    record = StudyRecord(
        name=spec.name,
        spec=spec_to_dict(spec),
        state="running" if start else "created",
        n_trials=effective_n_trials(spec),
        started_at=now if start else None,
    )
    try:
        with session_scope(engine) as session:
            session.add(record)
    except IntegrityError:
        raise StudyExists(f"a study named {spec.name!r} already exists") from None
    try:
        study = optuna.create_study(
            storage=get_storage(settings),
            study_name=spec.name,
            directions=spec.directions,  # type: ignore[arg-type]
        )
        # Named for Optuna's own tools (optuna-dashboard, trials_dataframe, its plots), which
        # otherwise say "Objective 0"; studies from before 0004_trial_data got them there.
        with warnings.catch_warnings():  # experimental since Optuna 3.2, stable in use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(spec.task.metrics)
        study.set_user_attr("hpo_spec", spec_to_dict(spec))
    except optuna.exceptions.DuplicatedStudyError:
        with session_scope(engine) as session:
            session.execute(delete(StudyRecord).where(StudyRecord.id == record.id))
        raise StudyExists(f"an Optuna study named {spec.name!r} already exists") from None
    return StudyInfo.from_record(record)


def get_study(engine: Engine, name: str) -> StudyInfo:
    with session_scope(engine) as session:
        record = session.scalar(select(StudyRecord).where(StudyRecord.name == name))
        if record is None:
            raise StudyNotFound(f"no study named {name!r}")
        return StudyInfo.from_record(record)


def list_studies(
    engine: Engine, state: str | None = None, offset: int = 0, limit: int = 100
) -> tuple[list[StudyInfo], int]:
    """A page of studies, newest first, and the total matching count."""
    query = select(StudyRecord)
    count = select(func.count()).select_from(StudyRecord)
    if state is not None:
        query = query.where(StudyRecord.state == state)
        count = count.where(StudyRecord.state == state)
    query = query.order_by(StudyRecord.id.desc()).offset(offset).limit(limit)
    with session_scope(engine) as session:
        total = session.scalar(count) or 0
        return [StudyInfo.from_record(r) for r in session.scalars(query)], total


def transition(engine: Engine, name: str, action: str) -> StudyInfo:
    """Apply a lifecycle action; the UPDATE's WHERE on the old state makes it race-safe."""
    sources, target = _TRANSITIONS[action]
    # The change counter moves with the state, so ETags and caches see the new state.
    values: dict[str, Any] = {
        "state": target,
        "updated_at": utcnow(),
        "change_seq": StudyRecord.change_seq + 1,
    }
    if target == "running":
        values["started_at"] = func.coalesce(StudyRecord.started_at, utcnow())
    if target in ("completed", "stopped"):
        values["finished_at"] = utcnow()
    with session_scope(engine) as session:
        done = session.execute(
            update(StudyRecord)
            .where(StudyRecord.name == name, StudyRecord.state.in_(sources))
            .values(**values)
        )
    if rows_changed(done) == 0:
        current = get_study(engine, name)
        if action == "complete" and current.state == "completed":
            return current
        raise InvalidTransition(f"cannot {action} study {name!r} while it is {current.state}")
    return get_study(engine, name)


def extend_budget(engine: Engine, name: str, n_trials: int) -> StudyInfo:
    """Set a study's trial budget to ``n_trials``: the one rule behind ``PATCH /api/studies``
    and the CLI. A budget may not go below the trials already used (the study's
    ``budget_used`` counter, which the claims maintain); a completed or failed study given more
    budget runs again, unless its time limit has passed; a stopped one stays stopped (stop is
    final), and a grid cannot grow past its number of points.

    The first statement touches the study's row, which takes the same lock a claim takes, so
    the used count cannot change between the check and the update."""
    with session_scope(engine) as session:
        touched = session.execute(
            update(StudyRecord)
            .where(StudyRecord.name == name)
            .values(updated_at=utcnow(), change_seq=StudyRecord.change_seq + 1)
        )
        if rows_changed(touched) == 0:
            raise StudyNotFound(f"no study named {name!r}")
        record = session.scalar(select(StudyRecord).where(StudyRecord.name == name))
        assert record is not None
        spec = load_stored_spec(record.spec)
        used = record.budget_used  # the claims' own counter (store/counters.py)
        _check_budget(record, spec, n_trials, used)
        record.n_trials = n_trials
        record.spec = {**record.spec, "budget": {**record.spec["budget"], "n_trials": n_trials}}
        if record.state in REOPENABLE and n_trials > used:
            record.state, record.finished_at = "running", None
    return get_study(engine, name)


def _check_budget(record: StudyRecord, spec: StudySpec, n_trials: int, used: int) -> None:
    if record.state == "stopped":
        raise BudgetError(f"study {record.name!r} is stopped for good; create a new study")
    timeout, started = spec.budget.timeout_s, record.started_at
    late = bool(timeout and started and (utcnow() - started).total_seconds() > timeout)
    if record.state in REOPENABLE and late:
        raise BudgetError(
            f"study {record.name!r} used up its time limit (budget.timeout_s = {timeout:g}); "
            "more trials would never start"
        )
    if n_trials < used:
        raise BudgetError(
            f"n_trials: {n_trials} is below the {used} trial(s) already used by {record.name!r}"
        )
    if spec.sampler.type == "grid":
        points = math.prod(len(v) for v in grid_space(spec.search_space).values())
        if n_trials > points:
            raise BudgetError(f"n_trials: the grid of {record.name!r} has only {points} points")


def delete_study(settings: Settings, name: str) -> None:
    """Remove the Optuna study, the service record (runs cascade) and the study's artifacts."""
    engine = get_engine(settings)
    info = get_study(engine, name)
    storage = get_storage(settings)
    with contextlib.suppress(KeyError):
        storage.delete_study(storage.get_study_id_from_name(name))
    with session_scope(engine) as session:
        session.execute(delete(StudyRecord).where(StudyRecord.id == info.id))
    shutil.rmtree(artifact_root(settings, name), ignore_errors=True)


def artifact_root(settings: Settings, study_name: str) -> Path:
    return Path(settings.artifact_dir) / study_name


def load_optuna_study(storage: optuna.storages.BaseStorage, info: StudyInfo) -> optuna.Study:
    """The Optuna study with the sampler and pruner rebuilt from the stored spec."""
    return optuna.load_study(
        study_name=info.name,
        storage=storage,
        sampler=build_sampler(info.spec),
        pruner=build_pruner(info.spec),
    )


def trial_counts(engine: Engine, name: str) -> dict[str, int]:
    """Trials by Optuna state name, from one grouped query (no trial objects are built)."""
    with engine.connect() as conn:
        return optuna_tables.counts_by_state(conn, name)


def best_trial(settings: Settings, info: StudyInfo) -> dict[str, Any] | None:
    """The best COMPLETE trial of a single-objective study (:mod:`.best`'s rule); None if none
    or multi-objective (whose best is the front, in the API's /best)."""
    if info.spec.is_multi_objective:
        return None
    with get_engine(settings).connect() as conn:
        sid = optuna_tables.study_id(conn, info.name)
        ids = [] if sid is None else best_trial_ids(conn, sid, info.spec.directions)
        # The metrics column of store/trial_data's table (that module imports this one).
        if not ids:
            return None
        row = TrialDataRecord
        found = conn.execute(select(row.metrics, row.extra).where(row.trial_id == ids[0])).first()
        ensemble = read_ensemble(conn, info.id)
    metrics, extra = (found.metrics or {}, found.extra or {}) if found else ({}, {})
    refit = extra.get("refit")
    refit = refit if isinstance(refit, dict) else {}
    trial = get_storage(settings).get_trial(ids[0])
    test_n = trial.user_attrs.get("test_n")
    return {"number": trial.number, "value": trial.value, "params": trial.params,
            "test_metrics": metrics.get("test") or None,
            # How many examples the test figure rests on (None: stored before counts were).
            "test_n": test_n if isinstance(test_n, int) else None,
            # The refit on train+validation, when the trial has one (its model serves).
            "refit_test_metrics": refit.get("test_metrics") or None,
            # The ensemble of the N best trials (task.ensemble_trials; it serves then).
            "ensemble": ensemble.summary() if ensemble else None}  # fmt: skip


def requeued_failures(engine: Engine, name: str) -> int:
    """FAIL trials whose parameters were queued again: attempts that use up no budget."""
    with engine.connect() as conn:
        return optuna_tables.count_with_user_attr(conn, name, "FAIL", "hpo_requeued", True)


def summarize(settings: Settings, info: StudyInfo) -> dict[str, Any]:
    """The JSON view shared by ``hpo study show --json`` and the API."""
    counts = trial_counts(get_engine(settings), info.name)
    finished = counts["COMPLETE"] + counts["PRUNED"]
    if info.spec.budget.count_failed:
        finished += counts["FAIL"] - requeued_failures(get_engine(settings), info.name)
    return {
        "name": info.name,
        "state": info.state,
        "direction": info.spec.directions[0],
        "directions": info.spec.directions,
        "metrics": info.spec.task.metrics,
        "n_trials": info.n_trials,
        "finished": finished,
        "counts": counts,
        "best": best_trial(settings, info),
        "created_at": info.created_at.isoformat(),
        "started_at": info.started_at.isoformat() if info.started_at else None,
        "finished_at": info.finished_at.isoformat() if info.finished_at else None,
        "spec": spec_to_dict(info.spec),
    }
