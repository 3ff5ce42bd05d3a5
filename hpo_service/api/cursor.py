"""The ``after`` cursor of ``GET /api/studies/{name}/trials``: poll only new or changed trials.

A trial changes state at most a few times (WAITING -> RUNNING -> COMPLETE/PRUNED/FAIL) and Optuna
stamps ``datetime_start`` / ``datetime_complete`` when it does. A cursor remembers the highest
``trial_id`` delivered (``max_id``) and a change horizon ``changed``: the later of the newest stamp
delivered and the server's clock when the poll began. The next poll returns trials with a higher
id, or with a stamp at or after ``changed`` minus :data:`OVERLAP_S`. The overlap absorbs
transactions that commit after the poll read (a busy SQLite can hold a commit for seconds) and
clock differences between machines, at the price of repeating a trial changed within that window:
clients merge by trial ``number``. Delivery is at least once; a quiet study answers an empty list
once the overlap has passed, because the horizon moves with the clock, not only with the data.

A poll that hits ``limit`` returns a continuation cursor (``scan_from`` = last trial_id sent,
``scan_changed`` = the horizon so far, from the scan's first page) that resumes the same scan, in
trial_id order, until it is complete; only then do ``max_id``/``changed`` advance.

Text form (opaque to clients): ``<max_id>.<changed_us>`` or, mid-scan,
``<max_id>.<changed_us>.<scan_from>.<scan_changed_us>`` with times as microseconds since the
Unix epoch (0: none yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

OVERLAP_S = 15.0
_EPOCH = datetime(1970, 1, 1)
_MAX_PART = 2**62


class CursorError(ValueError):
    """A cursor string that this server did not write."""


def to_micros(moment: datetime | None) -> int:
    if moment is None:
        return 0
    naive = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return int((naive - _EPOCH) / timedelta(microseconds=1))


def from_micros(value: int) -> datetime | None:
    return None if value == 0 else _EPOCH + timedelta(microseconds=value)


def latest(*moments: datetime | None) -> datetime | None:
    present = [m for m in moments if m is not None]
    return max(present) if present else None


@dataclass(frozen=True)
class Cursor:
    """Times are naive UTC, as Optuna stores them."""

    max_id: int = 0
    changed: datetime | None = None
    scan_from: int = 0
    scan_changed: datetime | None = None

    @property
    def since(self) -> datetime:
        """Stamps at or after this count as changes (``changed`` minus the overlap)."""
        if self.changed is None:
            return _EPOCH
        return self.changed - timedelta(seconds=OVERLAP_S)

    def encode(self) -> str:
        parts = [self.max_id, to_micros(self.changed)]
        if self.scan_from:
            parts += [self.scan_from, to_micros(self.scan_changed)]
        return ".".join(str(p) for p in parts)

    @classmethod
    def decode(cls, text: str) -> Cursor:
        parts = text.split(".")
        if len(parts) not in (2, 4) or not all(p.isdigit() and len(p) <= 19 for p in parts):
            raise CursorError(f"not a cursor from this API: {text[:40]!r} (use next_after)")
        numbers = [int(p) for p in parts]
        if any(n >= _MAX_PART for n in numbers):
            raise CursorError(f"cursor out of range: {text[:40]!r}")
        try:
            changed = from_micros(numbers[1])
            if len(numbers) == 2:
                return cls(numbers[0], changed)
            return cls(numbers[0], changed, numbers[2], from_micros(numbers[3]))
        except OverflowError:
            raise CursorError(f"cursor out of range: {text[:40]!r}") from None

    def advance(
        self, ids: list[int], stamps: list[datetime | None], truncated: bool, began: datetime
    ) -> Cursor:
        """The cursor after delivering a page (``ids`` ascending) of this scan; ``began`` is the
        server's naive-UTC clock before this page was read (only the first page's counts)."""
        first = self.scan_changed if self.scan_from else began
        scanned = latest(first, *stamps)
        if truncated and ids:
            return Cursor(self.max_id, self.changed, ids[-1], scanned)
        top = max([self.max_id, self.scan_from, *ids])
        return Cursor(top, latest(self.changed, scanned))
