"""Per-study counters on ``hpo_studies``: budget in use, failures, claims, a change watermark.

Counting a study's runs on every claim (a GROUP BY over all of them) grows with the study and
holds the study's lock while it runs. Instead, every statement that moves a run between statuses
updates the study's row in the same transaction, through the functions below, which are the only
writers of these columns:

- ``budget_used``: runs that use up budget (in flight, complete, pruned, and failed when the spec
  counts failures). The claim is one ``UPDATE ... WHERE budget_used < n_trials RETURNING``, so
  racing workers serialise on the study's row and the budget stays exact.
- ``runs_failed``: failed runs; failures that do not use budget still cap a study at ``n_trials``
  of them, so a broken dataset cannot loop forever.
- ``runs_claimed``: every claim ever made; a claim's ordinal seeds its worker's sampler.
- ``change_seq``: bumped whenever the service changes a trial of the study (claim, attach, tell,
  reap, requeue, a queued configuration) or the study itself (a state change, a new budget).
  Per-epoch reports do not bump it (a write per epoch per worker on the study's row): what
  they change, a running trial's intermediate values, is shown only by the trial's own detail.
  Readers use it as a cheap watermark for caches, polls
  and ETags instead of scanning the study's trials.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, or_, select, true, update
from sqlalchemy.orm import Session

from hpo_service.store.models import IN_FLIGHT, RunStatus, StudyRecord, StudyState

_ALWAYS_COUNTED = (*IN_FLIGHT, RunStatus.COMPLETE.value, RunStatus.PRUNED.value)


def uses_budget(status: str | None, count_failed: bool) -> bool:
    """Whether a run in ``status`` holds a unit of budget. ``requeued`` and ``crashed`` runs
    never do: their parameters run again, or were never set."""
    if status is None:
        return False
    return status in _ALWAYS_COUNTED or (count_failed and status == RunStatus.FAILED)


def _not_expired(timeout_s: float | None, now: datetime) -> ColumnElement[bool]:
    """No claim after the study's deadline (``budget.timeout_s`` from its start)."""
    if not timeout_s:
        return true()
    cutoff = now - timedelta(seconds=timeout_s)
    return or_(StudyRecord.started_at.is_(None), StudyRecord.started_at >= cutoff)


def take_unit(
    session: Session, study_id: int, timeout_s: float | None, now: datetime
) -> int | None:
    """Take one unit of a running study's budget: one UPDATE whose WHERE checks state, budget,
    failure cap and deadline, so it is exact under racing claims (the row lock on PostgreSQL
    re-checks the WHERE after a concurrent update; SQLite serialises writers). Returns the
    claim's ordinal (0, 1, ... in claim order), or None when nothing may be claimed."""
    row = session.execute(
        update(StudyRecord)
        .where(
            StudyRecord.id == study_id,
            StudyRecord.state == StudyState.RUNNING,
            StudyRecord.budget_used < StudyRecord.n_trials,
            StudyRecord.runs_failed < StudyRecord.n_trials,
            _not_expired(timeout_s, now),
        )
        .values(
            budget_used=StudyRecord.budget_used + 1,
            runs_claimed=StudyRecord.runs_claimed + 1,
            change_seq=StudyRecord.change_seq + 1,
            updated_at=now,
        )
        .returning(StudyRecord.runs_claimed)
        .execution_options(synchronize_session=False)
    ).first()
    return None if row is None else int(row[0]) - 1


def run_moved(
    session: Session, study_id: int, old: str | None, new: str, count_failed: bool
) -> None:
    """Account for one run of the study moving from status ``old`` to ``new`` (in the caller's
    transaction, after the UPDATE that moved it succeeded)."""
    used = int(uses_budget(new, count_failed)) - int(uses_budget(old, count_failed))
    failed = int(new == RunStatus.FAILED) - int(old == RunStatus.FAILED)
    values: dict[str, Any] = {"change_seq": StudyRecord.change_seq + 1}
    if used:
        values["budget_used"] = StudyRecord.budget_used + used
    if failed:
        values["runs_failed"] = StudyRecord.runs_failed + failed
    session.execute(
        update(StudyRecord)
        .where(StudyRecord.id == study_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def bump(session: Session, study_id: int) -> None:
    """Note a change to one of the study's trials that moves no run (a trial attached to its run,
    a configuration queued)."""
    session.execute(
        update(StudyRecord)
        .where(StudyRecord.id == study_id)
        .values(change_seq=StudyRecord.change_seq + 1)
        .execution_options(synchronize_session=False)
    )


#: What a reader needs to know whether anything it showed of a study changed: the record's id
#: and creation time (a study deleted and created again under the same name is another study),
#: its change counter and its state.
Mark = tuple[int, str, int, str]


def _marks(conn: Connection, name: str | None) -> list[Mark]:
    columns = (StudyRecord.id, StudyRecord.created_at, StudyRecord.change_seq, StudyRecord.state)
    query = select(*columns).order_by(StudyRecord.id)
    if name is not None:
        query = query.where(StudyRecord.name == name)
    return [(int(i), str(c), int(s), str(st)) for i, c, s, st in conn.execute(query)]


def study_mark(conn: Connection, name: str) -> Mark | None:
    """The study's :data:`Mark`, None when the service has no study of that name (a plain
    Optuna study, or none): one primary-key-sized read, whatever the study's size."""
    found = _marks(conn, name)
    return found[0] if found else None


def all_marks(conn: Connection) -> list[Mark]:
    """Every study's :data:`Mark` (the study list's watermark): one row per study, no trials."""
    return _marks(conn, None)
