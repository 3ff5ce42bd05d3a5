"""Views: from stored rows to the API's response shapes (studies, trials, CSV lines).

Routes stay thin: they read through the store and hand rows to these functions, so the shape of
a study or a trial is written once whichever route returns it.

Studies: ``studies.summarize`` plus progress, elapsed time and an ETA. The ETA is the pace so far
(elapsed / finished trials, which already reflects how many workers run in parallel) times the
trials left, capped by the study's timeout. It is only given while the study runs: a paused study
has no pace, a finished one has nothing left.

Trials: the detail joins what Optuna stores (values, params, per-epoch intermediate values, the
small user attributes the objective writes once per trial) with the service's own records (the
curves, metrics and artifact folder in ``hpo_trial_data``; which worker ran it, why it failed),
so one request answers "what happened to trial 17".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hpo_service.api import trial_queries as q
from hpo_service.api.schemas import StepValue, StudyOut, TrialDetail, TrialOut, WorkerBrief
from hpo_service.config import Settings
from hpo_service.store import trial_data
from hpo_service.store.clock import utcnow
from hpo_service.store.models import ENDED, TrialRun, WorkerRecord
from hpo_service.store.studies import StudyInfo, summarize

#: ``hpo_service.train.artifacts.WEIGHTS``, spelled out so that listing trials does not import
#: torch (the API process loads it only for /predict; a test keeps the two equal).
WEIGHTS_FILE = "weights.pt"
#: User attributes that have their own field in TrialDetail (the rest go to ``user_attrs``).
_KNOWN_ATTRS = {
    "best_epoch", "stop_reason", "n_params", "fail_reason", "hpo_retries",
    "train_n", "val_n", "test_n",
}  # fmt: skip


def utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None else None


def duration_s(row: q.TrialRow, now: datetime) -> float | None:
    if row.start is None:
        return None
    end = row.complete or now
    return round(max(0.0, (end - row.start).total_seconds()), 3)


def _now_naive() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def trial_out(
    row: q.TrialRow, values: list[float | None] | None, params: dict[str, Any]
) -> TrialOut:
    return TrialOut(
        number=row.number,
        state=row.state,
        value=values[0] if values else None,
        values=values,
        params=params,
        started_at=utc(row.start),
        completed_at=utc(row.complete),
        duration_s=duration_s(row, _now_naive()),
    )


def trial_outs(conn: sa.Connection, rows: list[q.TrialRow]) -> list[TrialOut]:
    ids = [r.trial_id for r in rows]
    values, params = q.values_for(conn, ids), q.params_for(conn, ids)
    return [trial_out(r, values.get(r.trial_id), params.get(r.trial_id, {})) for r in rows]


def _run_and_worker(conn: sa.Connection, trial_id: int) -> tuple[str | None, WorkerBrief | None]:
    runs, workers = TrialRun.__table__, WorkerRecord.__table__
    query = (
        sa.select(runs.c.reason, runs.c.worker_id, workers.c.host, workers.c.device)
        .select_from(runs.outerjoin(workers, workers.c.id == runs.c.worker_id))
        .where(runs.c.optuna_trial_id == trial_id)
        .order_by(runs.c.id.desc())
        .limit(1)
    )
    found = conn.execute(query).first()
    if found is None:
        return None, None
    reason, worker_id, host, device = found
    worker = WorkerBrief(id=worker_id, host=host, device=device) if worker_id else None
    return reason, worker


def _has_model(artifact_dir: Any) -> bool:
    return isinstance(artifact_dir, str) and (Path(artifact_dir) / WEIGHTS_FILE).is_file()


def _count(value: Any) -> int | None:
    """A stored example count, or None for trials stored before counts were kept."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def trial_detail(conn: sa.Connection, row: q.TrialRow) -> TrialDetail:
    base = trial_outs(conn, [row])[0]
    attrs = q.user_attrs(conn, row.trial_id)
    data = trial_data.load(conn, row.trial_id)
    reason, worker = _run_and_worker(conn, row.trial_id)
    retries = attrs.get("hpo_retries", 0)
    return TrialDetail(
        **base.model_dump(),
        intermediate_values=[
            StepValue(step=s, value=v) for s, v in q.intermediate(conn, row.trial_id)
        ],
        curves={name: list(values) for name, values in data.curves.items()},
        metrics={name: data.metric_set(name) for name in trial_data.METRIC_SETS},
        train_n=_count(attrs.get("train_n")),
        refit=data.extra.get("refit") if isinstance(data.extra.get("refit"), dict) else None,
        val_n=_count(attrs.get("val_n")),
        test_n=_count(attrs.get("test_n")),
        best_epoch=attrs.get("best_epoch"),
        stop_reason=attrs.get("stop_reason"),
        n_params=attrs.get("n_params"),
        fail_reason=attrs.get("fail_reason") or reason,
        retries=retries if isinstance(retries, int) else 0,
        worker=worker,
        has_model=_has_model(data.artifact_dir),
        user_attrs={
            **{k: v for k, v in attrs.items() if k not in _KNOWN_ATTRS},
            **{k: v for k, v in data.extra.items() if k != "refit"},
        },
    )


def csv_lines(
    conn: sa.Connection, sid: int, states: list[str] | None, metrics: list[str]
) -> Iterator[str]:
    """The header, then one line per trial: number, state, one column per objective, times,
    duration and one ``param_<name>`` column per parameter seen in the study."""
    names = q.param_names(conn, sid)
    header = ["number", "state", *metrics, "started_at", "completed_at", "duration_s"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header + [f"param_{n}" for n in names])
    now = _now_naive()
    for rows in q.batches(conn, sid, states):
        ids = [r.trial_id for r in rows]
        values, params = q.values_for(conn, ids), q.params_for(conn, ids)
        for row in rows:
            objective = values.get(row.trial_id) or []
            objective += [None] * (len(metrics) - len(objective))
            times = [utc(row.start), utc(row.complete), duration_s(row, now)]
            stamps = [
                "" if t is None else t.isoformat() if isinstance(t, datetime) else t for t in times
            ]
            got = params.get(row.trial_id, {})
            writer.writerow(
                [row.number, row.state, *objective, *stamps, *(got.get(n, "") for n in names)]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _elapsed(info: StudyInfo, now: datetime) -> float | None:
    if info.started_at is None:
        return None
    end = info.finished_at or now
    return max(0.0, (end - info.started_at).total_seconds())


def _eta(info: StudyInfo, finished: int, elapsed: float | None) -> float | None:
    if info.state != "running" or elapsed is None:
        return None
    left = max(0, info.n_trials - finished)
    eta = elapsed / finished * left if finished else None
    timeout = info.spec.budget.timeout_s
    if timeout is not None:
        remaining = max(0.0, timeout - elapsed)
        eta = remaining if eta is None else min(eta, remaining)
    return None if eta is None else round(eta, 1)


def progress_fields(info: StudyInfo, finished: int, now: datetime | None = None) -> dict[str, Any]:
    elapsed = _elapsed(info, now or utcnow())
    done = info.state in ENDED
    return {
        "progress": 1.0
        if info.state == "completed"
        else min(1.0, finished / max(1, info.n_trials)),
        "elapsed_s": None if elapsed is None else round(elapsed, 1),
        "eta_s": 0.0 if done else _eta(info, finished, elapsed),
    }


def study_out(settings: Settings, info: StudyInfo) -> StudyOut:
    summary = summarize(settings, info)
    return StudyOut(**summary, **progress_fields(info, summary["finished"]))
