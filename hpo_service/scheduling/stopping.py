"""How a worker is asked to stop: signals, and its supervising parent going away.

SIGTERM or SIGINT asks a worker to stop after the current epoch (its trial is queued again); a
second one stops it at once (the reaper then recovers the trial). The parent of
``hpo worker --processes K`` forwards a first stop request as SIGUSR1 and any further one as
SIGUSR2, so a signal that also reaches a child directly (systemd stopping the whole cgroup, Ctrl-C
to the terminal's process group) never counts as a second one. A child whose parent disappears
stops as if asked, so a killed parent leaves no unsupervised workers behind.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)
GRACEFUL_FROM_PARENT = signal.SIGUSR1
NOW_FROM_PARENT = signal.SIGUSR2


def stop_now(signum: int) -> None:
    """Die by ``signum`` at once."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


class StopRequests:
    """Whether this process has been asked to stop. ``install`` in the main thread only."""

    def __init__(self, label: str, parent_pid: int | None = None) -> None:
        self.label = label
        self.parent_pid = parent_pid
        self._requested = False
        self._signalled = False  # a SIGTERM/SIGINT came: the next one stops at once
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        parent = self.parent_pid
        if not self._requested and parent is not None and os.getppid() != parent:
            log.warning("%s: parent process %d is gone, stopping", self.label, parent)
            self._requested = True
        return self._requested

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        handlers = {
            signal.SIGTERM: self._on_signal,
            signal.SIGINT: self._on_signal,
            GRACEFUL_FROM_PARENT: self._on_parent,
            NOW_FROM_PARENT: self._on_parent,
        }
        self._previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}

    def restore(self) -> None:
        """Put back the handlers ``install`` replaced (a worker may run inside another program,
        a test or a benchmark)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._signalled:
            stop_now(signum)
            return
        self._signalled = True
        self._request(signum)

    def _on_parent(self, signum: int, _frame: FrameType | None) -> None:
        if signum == NOW_FROM_PARENT:
            stop_now(signal.SIGTERM)
            return
        self._request(signum)

    def _request(self, signum: int) -> None:
        if not self._requested:
            log.warning("%s: stopping after the current epoch (signal %d)", self.label, signum)
        self._requested = True
