"""What time it is, in one place: this process's UTC clock, and the database server's clock.

Heartbeats and the cutoffs they are judged by must come from one clock, or a worker whose machine
runs a minute behind looks dead. On PostgreSQL that clock is the server's (``now()``), shared by
every worker on every machine; SQLite serves one machine, so there it is this machine's clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session


def utcnow() -> datetime:
    """This process's clock, timezone-aware UTC: for timestamps nobody compares across machines."""
    return datetime.now(UTC)


def db_now(session: Session) -> Any:
    """``now()`` for a heartbeat or a cutoff: the PostgreSQL server's clock as an SQL expression
    (evaluated inside the statement), or this machine's clock on SQLite."""
    return func.now() if session.get_bind().dialect.name == "postgresql" else utcnow()


def server_time(session: Session) -> datetime:
    """The database clock's current value, for cutoffs computed in Python."""
    now = db_now(session)
    if isinstance(now, datetime):
        return now
    value = session.scalar(select(now))
    assert isinstance(value, datetime)
    return value
