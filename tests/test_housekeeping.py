"""The housekeeping lock on real databases: one holder at a time (a PostgreSQL advisory lock, an
SQLite file lock), taken over once the holder lets go; only the holder reaps."""

from __future__ import annotations

from hpo_service.config import Settings
from hpo_service.scheduling.housekeeping import Housekeeper, LeaderLock
from hpo_service.scheduling.supervisor import Supervisor


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
