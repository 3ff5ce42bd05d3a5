"""Best trial(s) and predictions from the best trial's saved model.

The best trial is found with one ordered SQL query (single objective) or from the COMPLETE
trials' values (the Pareto front, multi-objective), never by loading every trial. Predictors are
cached per artifact folder, so repeated predictions skip rebuilding the model.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from fastapi import APIRouter

from hpo_service.api import trial_queries as q
from hpo_service.api.baselines import baseline_fields
from hpo_service.api.deps import EngineDep, SettingsDep, StudyName
from hpo_service.api.errors import ApiError
from hpo_service.api.schemas import BestOut, EnsembleOut, PredictIn, PredictOut
from hpo_service.api.views import WEIGHTS_FILE, trial_detail
from hpo_service.config import Settings
from hpo_service.store.best import NeedsChoice, best_trial_ids
from hpo_service.store.ensembles import read_ensemble
from hpo_service.store.serving import NoServedModel, Served, served_model
from hpo_service.store.studies import StudyInfo, get_study

if TYPE_CHECKING:
    from hpo_service.train import Predictor

router = APIRouter(prefix="/api/studies/{name}", tags=["best model"])


def best_rows(conn: sa.Connection, info: StudyInfo) -> list[q.TrialRow]:
    ids = best_trial_ids(conn, q.study_id(conn, info.name), info.spec.directions)
    rows = q.by_ids(conn, ids)
    if not rows:
        raise ApiError(404, f"study {info.name!r} has no completed trial yet", "name")
    return rows


@router.get("/best", response_model=BestOut, summary="The best trial (or the Pareto front)")
def best(name: StudyName, engine: EngineDep) -> BestOut:
    info = get_study(engine, name)
    with engine.connect() as conn:
        trials = [trial_detail(conn, row) for row in best_rows(conn, info)]
        ensemble = read_ensemble(conn, info.id)
    top = trials[0]
    refit_test = (top.refit or {}).get("test_metrics")
    summary = ensemble.summary() if ensemble else None
    fields = baseline_fields(engine, info, top.value, top.metrics.get("test"), refit_test, summary)
    return BestOut(
        study=name,
        metrics=info.spec.task.metrics,
        directions=info.spec.directions,
        trials=trials,
        ensemble=EnsembleOut(**summary) if summary else None,
        **fields,
    )


@functools.lru_cache(maxsize=8)
def _cached_predictor(folder: str, _mtime: float) -> Predictor:
    from hpo_service.train import load_predictor  # torch: loaded on the first prediction only

    return load_predictor(Path(folder))


def predictor_for(artifact_dir: Any, what: str) -> Predictor:
    """The predictor of ``what`` ("trial 3", "the ensemble of trials 3, 7"); any artifact it
    cannot be built from is a 409 naming the file (never its path), not a 500: the study's
    state is at fault, not the request."""
    from hpo_service.train.artifacts import ArtifactError  # torch, as above

    weights = Path(artifact_dir) / WEIGHTS_FILE if isinstance(artifact_dir, str) else None
    if weights is None or not weights.is_file():
        raise ApiError(409, f"{what} has no saved model (only finished trials keep one)", "trial")
    try:
        return _cached_predictor(str(weights.parent), weights.stat().st_mtime)
    except (ArtifactError, OSError) as error:
        reason = str(error) if isinstance(error, ArtifactError) else "its files cannot be read"
        raise ApiError(409, f"the model of {what} cannot be loaded: {reason}", "trial") from None


def _served(conn: sa.Connection, settings: Settings, info: StudyInfo, trial: int | None) -> Served:
    try:
        return served_model(conn, settings, info, trial)
    except NeedsChoice:
        raise ApiError(
            422, "required for a multi-objective study (pick one from /best)", "trial"
        ) from None
    except NoServedModel as error:
        raise ApiError(404, str(error), error.field) from None


@router.post(
    "/predict", response_model=PredictOut, summary="Predict with the ensemble or the best trial"
)
def predict(
    name: StudyName, body: PredictIn, engine: EngineDep, settings: SettingsDep
) -> PredictOut:
    """Inputs go through the model in batches of HPO_PREDICT_BATCH_SIZE, so memory follows one
    batch; a request over HPO_MAX_PREDICT_INPUTS is refused before the model is loaded."""
    _check_count(len(body.inputs or ()), settings.max_predict_inputs, "inputs")
    info = get_study(engine, name)
    inputs, times = _inputs(body, info)
    _check_count(len(inputs), settings.max_predict_inputs, "csv")
    with engine.connect() as conn:
        served = _served(conn, settings, info, body.trial)
    predictor = predictor_for(served.folder, served.what)
    if body.steps is not None and predictor.kind != "forecasting":
        raise ApiError(422, "applies to forecasting studies only", "steps")
    from hpo_service.data.predict_csv import future_times  # pandas/torch: on predict only

    try:
        predictions = predictor.predict(inputs, body.steps, settings.predict_batch_size)
    except (ValueError, TypeError, RuntimeError, IndexError, KeyError) as error:
        field = "csv" if body.csv is not None else "inputs"
        raise ApiError(422, f"cannot predict from these inputs: {error}", field) from None
    return PredictOut(
        study=name,
        trial=served.trial,
        ensemble=served.ensemble,
        kind=predictor.kind,
        predictions=q.finite(predictions),
        times=(future_times(times, len(predictions)) or None) if times else None,
    )


def _check_count(count: int, limit: int, field: str) -> None:
    """Refused before the model loads: one request's inputs bound the server's memory."""
    if count > limit:
        raise ApiError(
            413, f"{count} inputs; at most {limit} per request (HPO_MAX_PREDICT_INPUTS)", field
        )


def _inputs(body: PredictIn, info: StudyInfo) -> tuple[list[Any], list[str]]:
    """``inputs`` as sent, or read from ``csv`` with the study's columns (and its times)."""
    from hpo_service.data import DatasetError
    from hpo_service.data.predict_csv import inputs_from_csv

    if (body.inputs is None) == (body.csv is None):
        raise ApiError(422, "give either inputs or csv", "inputs")
    if body.inputs is not None:
        return body.inputs, []
    try:
        return inputs_from_csv(body.csv or "", info.spec.task)
    except DatasetError as error:
        raise ApiError(422, str(error).removeprefix("csv: "), "csv") from None
