"""Local worker processes started through the API, owned by the server process.

One-machine use: ``POST /api/studies/{name}/workers`` spawns workers here, and the server must not
leave them behind. Shutdown sends SIGTERM (a worker finishes its epoch, requeues the trial and
exits 0), waits, and only then SIGKILLs stragglers. Finished children are joined on every call and
by the background loop, so none linger as zombies. Remote workers never pass through here: they
register themselves in ``hpo_workers``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path

from hpo_service.config import Settings

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 30.0
#: Set by ``hpo serve --workers N`` (to the parent's pid) in every server process and so
#: inherited by the workers they spawn: it tells a sibling process's workers apart from any other
#: worker on the machine.
SERVER_GROUP_ENV = "HPO_SERVER_GROUP"


def in_server_group(pid: int, group: str) -> bool:
    """Whether process ``pid`` was started by a process of this ``hpo serve`` group (Linux
    /proc; a process that is gone or not ours to read is not)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"{SERVER_GROUP_ENV}={group}".encode() in environ


def signal_group_workers(pids: list[int], own: list[int]) -> list[int]:
    """SIGTERM those of ``pids`` (registered workers of a study on this host) that a sibling
    server process of the same ``hpo serve --workers N`` started, so that stopping a study's
    workers reaches every process's children, not only the one that took the request."""
    group = os.environ.get(SERVER_GROUP_ENV)
    if not group:
        return []
    me = os.getpid()
    return terminate(
        [p for p in pids if p not in own and p != me and in_server_group(p, group)]
    )


def terminate(pids: list[int]) -> list[int]:
    """SIGTERM each of ``pids``; returns those that were still there to receive it."""
    sent = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            sent.append(pid)
        except ProcessLookupError:
            pass
    return sent


@dataclass(frozen=True)
class Child:
    study: str
    device: str
    process: BaseProcess


class Supervisor:
    """Starts, tracks and stops the server's own worker processes (thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._children: list[Child] = []
        self._lock = threading.Lock()
        self._closed = False

    def start(self, study: str, count: int, device: str, threads: int | None = None) -> list[Child]:
        """Spawn ``count`` workers serving ``study``; they exit once it stops running. Without
        ``threads`` (and ``HPO_WORKER_THREADS``) each gets the cores shared out among all the
        workers this server runs, these included, so that they do not oversubscribe them."""
        from hpo_service.scheduling import (
            processes,  # imports the trainer (torch): only when needed
        )
        from hpo_service.scheduling.worker import WorkerOptions

        devices = processes.plan_devices(device, count, None)
        local = len(self.pids()) + len(devices)
        threads = processes.worker_threads(self.settings, threads, local)
        options = WorkerOptions(
            study=study, device=device, exit_when_idle=True, num_threads=threads
        )
        with self._lock:
            if self._closed:
                raise RuntimeError("the server is shutting down")
            spawned = processes.spawn_workers(self.settings, options, devices)
            started = [Child(study, d, p) for d, p in zip(devices, spawned, strict=True)]
            self._children.extend(started)
        log.info("started %d worker(s) for %s: pids %s", len(started), study, self.pids(study))
        return started

    def prune(self) -> None:
        """Join children that exited, so they do not stay as zombies."""
        with self._lock:
            alive = []
            for child in self._children:
                if child.process.is_alive():
                    alive.append(child)
                else:
                    child.process.join(timeout=0)
            self._children = alive

    def pids(self, study: str | None = None) -> list[int]:
        self.prune()
        with self._lock:
            return [
                c.process.pid
                for c in self._children
                if c.process.pid is not None and (study is None or c.study == study)
            ]

    def signal(self, study: str | None = None) -> list[int]:
        """SIGTERM the live children (of one study, or all); returns their pids."""
        return terminate(self.pids(study))

    def stop(self, study: str | None = None, timeout_s: float = STOP_TIMEOUT_S) -> list[int]:
        """SIGTERM, wait up to ``timeout_s`` for a clean exit, then SIGKILL what is left."""
        sent = self.signal(study)
        with self._lock:
            targets = [c for c in self._children if study is None or c.study == study]
        deadline = time.monotonic() + timeout_s
        for child in targets:
            child.process.join(timeout=max(0.0, deadline - time.monotonic()))
        for child in targets:
            if child.process.is_alive():
                log.warning(
                    "worker %s did not stop in %.0fs: killing it", child.process.pid, timeout_s
                )
                child.process.kill()
                child.process.join(timeout=5)
        self.prune()
        return sent

    def open(self) -> None:
        """Accept new workers (app start-up; an app may start again after a shutdown)."""
        with self._lock:
            self._closed = False

    def close(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Server shutdown: refuse new workers, stop every child."""
        with self._lock:
            self._closed = True
        self.stop(None, timeout_s)
