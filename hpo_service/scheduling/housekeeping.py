"""The server's housekeeping thread: the reaper and joining finished worker children.

The reaper also runs inside every worker, but a study whose workers all died has nobody left to
recover its trials; the server runs it too so crashed trials are failed and requeued even then.
A thread (not an asyncio task) because ``reap`` does blocking database work.
"""

from __future__ import annotations

import logging
import threading

from hpo_service.config import Settings
from hpo_service.scheduling import reaper
from hpo_service.scheduling.supervisor import Supervisor
from hpo_service.store.db import get_engine, get_storage

log = logging.getLogger(__name__)


class Housekeeper:
    def __init__(self, settings: Settings, supervisor: Supervisor) -> None:
        self.settings = settings
        self.supervisor = supervisor
        self.interval_s = settings.heartbeat_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hpo-housekeeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def run_once(self) -> list[str]:
        """One pass; returns the reaper's outcomes (for tests and logs)."""
        self.supervisor.prune()
        engine = get_engine(self.settings)
        storage = get_storage(self.settings)
        return reaper.reap(engine, storage, self.settings.stale_after_s)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
            except Exception as error:  # database away, schema not migrated yet: try again later
                log.warning("housekeeping failed: %s", error)
