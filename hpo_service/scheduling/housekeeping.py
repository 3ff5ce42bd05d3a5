"""The server's housekeeping thread: the reaper and joining finished worker children.

The reaper also runs inside every worker, but a study whose workers all died has nobody left to
recover its trials; the server runs it too so crashed trials are failed and requeued even then.
A thread (not an asyncio task) because ``reap`` does blocking database work.

``hpo serve --workers N`` runs N server processes on one database (and several servers may run
on several machines): the reaper should run once per interval, not N times over the same rows.
So only the process that holds the housekeeping lock reaps (:class:`LeaderLock`): a PostgreSQL
advisory lock, held by a transaction left open on one connection (transaction-scoped, so it also
works through PgBouncer in transaction mode, and it goes away with the connection if the
process dies), or on SQLite an exclusive ``flock`` on ``<database file>.housekeeping.lock``
(released by the kernel when the process dies). The others try again every interval and take
over when the holder is gone. Joining finished children stays per process: each process has
its own.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from hpo_service.config import Settings
from hpo_service.scheduling import reaper
from hpo_service.scheduling.supervisor import Supervisor
from hpo_service.store.db import engine_kwargs, get_engine, get_storage

log = logging.getLogger(__name__)
#: The advisory lock's key (the migration lock uses 724311).
LOCK_KEY = 724312


class LeaderLock:
    """Held by at most one process per database at a time; :meth:`held` tries to take it and
    says whether this process has it now."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._conn: Connection | None = None
        self._file: IO[str] | None = None

    def held(self) -> bool:
        url = make_url(self.settings.database_url)
        if url.get_backend_name() == "postgresql":
            return self._postgres()
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return self._sqlite(Path(str(url.database)))
        return True  # an in-memory database belongs to this process alone

    def _postgres(self) -> bool:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return True
            except Exception:  # connection lost: so is the lock
                self.release()
        url = self.settings.database_url
        options = engine_kwargs(url, pooled=self.settings.db_pooler != "none")
        engine = create_engine(
            url, poolclass=NullPool, connect_args=options.get("connect_args", {})
        )
        conn = engine.connect()
        got = conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK_KEY}).scalar()
        if got:
            self._conn = conn  # the transaction stays open: it holds the lock
            return True
        conn.close()
        engine.dispose()
        return False

    def _sqlite(self, database: Path) -> bool:
        if self._file is not None:
            return True
        handle = open(database.with_name(database.name + ".housekeeping.lock"), "w")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.rollback()
                conn.close()
            except Exception as error:  # already gone: the lock went with it
                log.debug("housekeeping lock connection: %s", error)
        if self._file is not None:
            handle, self._file = self._file, None
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


class Housekeeper:
    def __init__(self, settings: Settings, supervisor: Supervisor) -> None:
        self.settings = settings
        self.supervisor = supervisor
        self.interval_s = settings.heartbeat_interval_s
        self.lock = LeaderLock(settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hpo-housekeeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.lock.release()

    def run_once(self) -> list[str] | None:
        """One pass; returns the reaper's outcomes (for tests and logs), None when another
        process holds the housekeeping lock and reaps instead."""
        self.supervisor.prune()
        if not self.lock.held():
            return None
        engine = get_engine(self.settings)
        storage = get_storage(self.settings)
        return reaper.reap(engine, storage, self.settings.stale_after_s)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
            except Exception as error:  # database away, schema not migrated yet: try again later
                log.warning("housekeeping failed: %s", error)
