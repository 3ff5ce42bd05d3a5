"""Request and response models: the JSON contract the dashboard and scripts build on.

Shapes here are documented in OpenAPI and kept stable; add fields rather than rename them.
Times are ISO 8601 in UTC; durations are seconds. Non-finite numbers are sent as ``null``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# --- studies ---------------------------------------------------------------------------------


class EnsembleOut(BaseModel):
    """The average of the study's N best trials' models (task.ensemble_trials > 1)."""

    members: list[int] = Field(description="Trial numbers, best first.")
    validation: dict[str, float | None] = Field(description="Every metric on validation.")
    test: dict[str, float | None] | None = Field(
        description="Every metric on the test split; None without one."
    )
    test_n: int = Field(description="How many examples the test figures rest on.")
    computed_at: datetime | None = None


class BestOutline(BaseModel):
    number: int
    value: float | None
    params: dict[str, Any]
    test_metrics: dict[str, float | None] | None = Field(
        default=None, description="Every metric on the test split, as the trial reported it."
    )
    test_n: int | None = Field(
        default=None, description="How many examples the test figures rest on (0: no test split)."
    )
    refit_test_metrics: dict[str, float | None] | None = Field(
        default=None,
        description="The refit on train+validation (the model serving predictions) on the same "
        "test split; absent without a refit.",
    )
    ensemble: EnsembleOut | None = Field(
        default=None,
        description="The ensemble of the N best trials, which serves predictions; absent "
        "unless task.ensemble_trials > 1 and two trials completed.",
    )


class BaselineOut(BaseModel):
    """A simple model the study is measured against, on the trials' own splits and metric."""

    name: str = Field(description="naive, seasonal_naive, ets, majority, tfidf_logreg, logreg, knn")
    label: str
    val: float | None = Field(description="The study's first metric on the validation split.")
    test: float | None = Field(description="The study's first metric on the test split.")
    detail: str = Field(description="Chosen setting, season length, or why a fallback was used.")


class VerdictOut(BaseModel):
    """Best trial vs the best baseline (best on validation), on test when both have a figure."""

    baseline: str
    split: str = Field(description="test or validation")
    trial_value: float
    baseline_value: float
    relative: float | None = Field(description="Improvement as a fraction; negative: worse.")
    beats: bool
    text: str = Field(examples=["beats the best baseline by 12.5%; rmse on test: 21 vs 24 (ETS)"])
    refit_value: float | None = Field(
        default=None,
        description="The best trial's refit on train+validation (the model serving predictions) "
        "on the same test split; shown beside the comparison, which uses the search run's "
        "figure because the baselines are fit on the training split alone.",
    )
    ensemble_value: float | None = Field(
        default=None,
        description="The study's ensemble of its best trials (the model serving predictions, "
        "task.ensemble_trials) on the compared split; shown beside the comparison.",
    )


class BaselineFields(BaseModel):
    """Filled in for one study (GET /api/studies/{name} and /best), not in study lists."""

    baselines: list[BaselineOut] | None = Field(
        default=None, description="None until the first trial's worker computed them."
    )
    baselines_note: str | None = Field(
        default=None, description="Why there are no baselines (not computed yet, or an error)."
    )
    best_vs_baseline: VerdictOut | None = Field(
        default=None, description="None without a COMPLETE trial or baselines."
    )


class StudyOut(BaselineFields):
    """A study: its stored spec, lifecycle state, trial counts, best trial and progress."""

    name: str
    state: str = Field(
        description="created, running, paused, completed, failed (ended without one complete "
        "trial) or stopped"
    )
    direction: str
    directions: list[str]
    metrics: list[str]
    n_trials: int = Field(description="Trial budget.")
    finished: int = Field(description="Trials that used up budget and are done.")
    counts: dict[str, int] = Field(description="Trials by Optuna state (COMPLETE, PRUNED, ...).")
    best: BestOutline | None = Field(description="Best COMPLETE trial (single-objective only).")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    spec: dict[str, Any] = Field(description="The validated spec, defaults filled in.")
    progress: float = Field(description="finished / n_trials, 0..1.")
    elapsed_s: float | None = Field(description="Wall-clock seconds since the study started.")
    eta_s: float | None = Field(
        description="Estimated seconds left at the pace so far (None until a trial finished)."
    )


class StudyPage(BaseModel):
    items: list[StudyOut]
    total: int
    offset: int
    limit: int


class QueueTrialIn(BaseModel):
    params: dict[str, Any] = Field(
        description="Values for search-space entries; entries left out are sampled as usual.",
        examples=[{"learning_rate": 0.01, "hidden_units": 32}],
    )


class StudyPatch(BaseModel):
    """Changes to a study; only its trial budget can change after creation."""

    model_config = ConfigDict(extra="forbid")

    n_trials: int = Field(
        ge=1,
        le=1_000_000,
        description="New trial budget: not below the trials already used. A completed or "
        "failed study given more budget runs again.",
        examples=[40],
    )


class QueuedOut(BaseModel):
    study: str
    params: dict[str, Any]
    waiting: int = Field(description="Queued configurations now waiting to be evaluated.")


# --- trials ----------------------------------------------------------------------------------


class TrialOut(BaseModel):
    number: int
    state: str = Field(description="COMPLETE, PRUNED, FAIL, RUNNING or WAITING")
    value: float | None = Field(description="First objective value (None unless COMPLETE).")
    values: list[float | None] | None
    params: dict[str, Any]
    started_at: datetime | None
    completed_at: datetime | None
    duration_s: float | None = Field(description="Run time so far for a RUNNING trial.")


class TrialPage(BaseModel):
    items: list[TrialOut]
    total: int = Field(description="Trials of the study matching the filters.")
    limit: int
    offset: int
    has_more: bool = Field(description="More items match: ask again with next_after or offset.")
    next_after: str = Field(
        description="Cursor: pass as ?after= to get only trials added or changed since."
    )


class StepValue(BaseModel):
    step: int
    value: float | None


class WorkerBrief(BaseModel):
    id: str
    host: str | None
    device: str | None


class TrialDetail(TrialOut):
    intermediate_values: list[StepValue] = Field(description="Reported objective per epoch.")
    curves: dict[str, list[float | None]] = Field(
        description="Per-epoch train_loss, val_loss, seconds and val_<metric> lists."
    )
    metrics: dict[str, dict[str, float | None]] = Field(
        description="Validation metrics at the best epoch ('best'), the last ('final') and "
        "the test split ('test')."
    )
    train_n: int | None = Field(default=None, description="Examples the search run trained on.")
    refit: dict[str, Any] | None = Field(
        default=None,
        description="The refit on train+validation whose weights serve predictions: epochs, "
        "train_n and its test metrics (absent when task.refit did not apply).",
    )
    val_n: int | None = Field(default=None, description="Examples the validation metrics rest on.")
    test_n: int | None = Field(
        default=None,
        description="Examples the test metrics rest on; 0 when the study has no test split.",
    )
    best_epoch: int | None
    stop_reason: str | None = Field(description="max_epochs, early_stopping, pruned, ...")
    n_params: int | None
    fail_reason: str | None
    retries: int
    worker: WorkerBrief | None
    has_model: bool = Field(description="Saved weights exist, so /predict can use this trial.")
    user_attrs: dict[str, Any] = Field(
        description="Other attributes: Optuna user attributes of the trial (small scalars) and "
        "list- or dict-valued ones kept in the service's trial data."
    )


class BestOut(BaselineFields):
    study: str
    metrics: list[str]
    directions: list[str]
    trials: list[TrialDetail] = Field(
        description="The best trial (single objective) or the Pareto front (multi-objective)."
    )
    ensemble: EnsembleOut | None = Field(
        default=None,
        description="The ensemble of the N best trials (task.ensemble_trials > 1), which "
        "serves predictions when no trial is named.",
    )


class PredictIn(BaseModel):
    inputs: list[Any] | None = Field(
        default=None,
        min_length=1,
        max_length=1_000_000,
        description="Forecasting: one series (at least `lookback` numbers). Text: strings. "
        "Sequences: [steps][features] nested lists. Give this or `csv`. At most "
        "HPO_MAX_PREDICT_INPUTS (default 10,000) items, else 413; run through the model "
        "HPO_PREDICT_BATCH_SIZE at a time.",
    )
    csv: str | None = Field(
        default=None,
        min_length=1,
        description="Instead of `inputs`: CSV text with the study's columns, as uploaded "
        "(a forecast then comes with the time stamps that follow the series).",
    )
    steps: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Forecasting: values ahead (default: the horizon); beyond the model's "
        "horizon each forecast is fed back as history (recursive).",
    )
    trial: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="Trial number; default: the study's ensemble when it has one "
        "(task.ensemble_trials), else the best trial.",
    )


class PredictOut(BaseModel):
    study: str
    trial: int | None = Field(
        description="The trial whose model answered; None when the study's ensemble did."
    )
    ensemble: list[int] | None = Field(
        default=None, description="The ensemble's member trials, when it answered."
    )
    kind: str
    predictions: list[Any]
    times: list[str] | None = Field(
        default=None, description="Time stamps of the forecasts (csv with a time column)."
    )


# --- notes and artifacts --------------------------------------------------------------------


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        max_length=20_000,
        description="Markdown. Stored as given; an empty text clears the note.",
        examples=["Best so far; **rerun** with more epochs."],
    )


class NoteOut(BaseModel):
    study: str
    trial: int | None = Field(description="None: the note on the study itself.")
    text: str = Field(description="Markdown as stored: escape it before rendering as HTML.")
    updated_at: datetime | None = Field(description="None when no note was written yet.")


class ArtifactFile(BaseModel):
    name: str = Field(description="File name inside the trial's artifact folder.")
    size_bytes: int
    url: str = Field(description="Where to download it.")


class ArtifactList(BaseModel):
    study: str
    trial: int
    files: list[ArtifactFile]
    zip_url: str | None = Field(description="All files as one zip; None when there are none.")


# --- workers ---------------------------------------------------------------------------------


class WorkersIn(BaseModel):
    processes: int = Field(default=1, ge=1, le=32, description="Local worker processes.")
    device: str | None = Field(
        default=None, description="cpu, cuda, cuda:N or auto; default HPO_DEVICE."
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="torch threads per worker; default HPO_WORKER_THREADS, else the cores "
        "shared out among the server's running workers and these.",
    )


class WorkersStarted(BaseModel):
    study: str
    pids: list[int]
    devices: list[str]


class WorkersStopped(BaseModel):
    study: str
    pids: list[int] = Field(description="Supervised worker processes sent SIGTERM.")


class WorkerOut(BaseModel):
    id: str
    host: str
    pid: int
    device: str
    study_name: str | None = Field(description="The study it serves (None: any running study).")
    state: str = Field(description="idle, busy, stopped or lost")
    current_study: str | None
    current_trial_number: int | None
    trials_done: int = Field(description="Trials it finished, whatever the outcome.")
    outcomes: dict[str, int] = Field(
        default={}, description="Its finished runs by status: complete, pruned, failed."
    )
    started_at: datetime
    heartbeat_at: datetime
    live: bool = Field(description="Not stopped and heard from within HPO_STALE_AFTER_S.")
    supervised: bool = Field(description="Started by this server (POST .../workers).")


class WorkerPage(BaseModel):
    items: list[WorkerOut]
    total: int
    offset: int
    limit: int


# --- datasets and operations -----------------------------------------------------------------


class DatasetOut(BaseModel):
    id: str
    name: str
    kind: str
    dataset: str = Field(description="What a spec's task.dataset says to use it: upload:<id>.")
    mapping: dict[str, Any] = Field(description="Column mapping used for this dataset.")
    header: list[str]
    rows: int = Field(description="Usable rows found on upload.")
    size_bytes: int
    created_at: datetime


class DatasetPage(BaseModel):
    items: list[DatasetOut]
    total: int
    offset: int
    limit: int


class StatusOut(BaseModel):
    status: str
    detail: str | None = None
