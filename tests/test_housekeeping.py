"""The housekeeping lock on real databases: one holder at a time (a PostgreSQL advisory lock, an
SQLite file lock), taken over once the holder lets go; only the holder reaps. And the other
half of running several server processes: stopping a study's workers reaches the workers a
sibling process started (scheduling/supervisor.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from hpo_service.config import Settings
from hpo_service.scheduling.housekeeping import Housekeeper, LeaderLock
from hpo_service.scheduling.supervisor import SERVER_GROUP_ENV, Supervisor, signal_group_workers


def test_one_holder_at_a_time_and_takeover(migrated: Settings) -> None:
    first, second = LeaderLock(migrated), LeaderLock(migrated)
    try:
        assert first.held()
        assert first.held()  # kept, not taken again
        assert not second.held()
        first.release()
        assert second.held()
        assert not first.held()
    finally:
        first.release()
        second.release()


def test_only_the_holder_reaps(migrated: Settings) -> None:
    keepers = [Housekeeper(migrated, Supervisor(migrated)) for _ in range(2)]
    try:
        outcomes = [keeper.run_once() for keeper in keepers]
        assert outcomes[0] == [] and outcomes[1] is None
    finally:
        for keeper in keepers:
            keeper.stop()


def test_stopping_reaches_only_processes_of_the_same_server_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker a sibling server process started carries the group in its environment and gets
    SIGTERM; any other process on the machine, even with a registered pid, is left alone."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    ours = subprocess.Popen(sleeper, env={**os.environ, SERVER_GROUP_ENV: "4242"})
    other = subprocess.Popen(sleeper, env={**os.environ, SERVER_GROUP_ENV: "99"})
    monkeypatch.setenv(SERVER_GROUP_ENV, "4242")
    try:
        time.sleep(0.5)  # let both exec, so /proc shows their own environment
        assert signal_group_workers([ours.pid, other.pid], own=[]) == [ours.pid]
        assert ours.wait(10) == -signal.SIGTERM
        assert other.poll() is None
        assert signal_group_workers([other.pid], own=[other.pid]) == []
    finally:
        for proc in (ours, other):
            proc.kill()
            proc.wait()
