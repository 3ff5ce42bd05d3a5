"""Conditional GETs (ETag / ``If-None-Match`` -> 304) and a small response cache for the study
pages, both keyed on each study's change counter.

Why: a profile of ``GET /api/studies/{name}`` on a 10,000-trial SQLite study (20-33 ms) put
two thirds of the time in two scans of the study's trials (the counts by state, 6 ms, and the
best value, 13 ms) and most of the rest in SQLAlchemy overhead; JSON encoding was under 1 ms.
Those answers change only when the study does, and every change the service makes to a study or
its trials bumps ``hpo_studies.change_seq`` in the same transaction
(:mod:`hpo_service.store.counters`). So one indexed read of that counter (``study_mark``) tells
whether a response computed earlier is still the answer: a client that sends the ETag back gets
304 with no body, and any other client gets the stored bytes without a query over the trials.

Covered: ``GET /api/studies`` (keyed on every study's mark), ``/api/studies/{name}``,
``.../trials`` (pages and polls), ``.../best`` and ``.../plots/{kind}``. Not covered: a trial's
detail (its intermediate values change every epoch, which does not bump the counter), CSV
export (streamed), studies the service does not own (plain Optuna studies have no counter).

Rules that keep it correct:

- The mark is read *before* the response is computed, and writers bump the counter in the
  same transaction as (or after) their change, so a stored response is never older than its key.
- Responses of a study that may have running trials (state running, paused or stopped) also
  show the clock (elapsed time, ETA, running trials' durations, the cursor's horizon): their key
  includes the current second, so they are at most :data:`CLOCK_S` old.
- Trials written to a service study by something else than the service (a plain Optuna
  process on the same study) do not bump the counter and may be seen up to one change late.
- A mark read by one request also serves the requests for the same study that arrive within
  :data:`MARK_TTL_S` (one read in flight per study, the others wait for it): at several hundred
  requests a second that turns most requests into no query and no thread hop. Any other request
  through this process (a POST, PATCH or DELETE) forgets the marks when it completes, so a
  client reads its own writes; a change made by a worker or another server process shows up to
  :data:`MARK_TTL_S` later.

Requests for one key that arrive while it is being computed wait for that computation (50
clients on one study ask alike: this cut the server's CPU per request from 24.5 to 4.6 ms in
``bench/bench_api_load.py``). The cache is per process, bounded by ``HPO_API_CACHE_MB`` (least
recently used entries go first; one entry is at most an eighth of it); 0 turns it off and leaves
the ETags.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from typing import Any

import anyio
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hpo_service import __version__
from hpo_service.config import Settings
from hpo_service.store import counters
from hpo_service.store.db import get_engine

#: Responses that show the clock are at most this old (seconds).
CLOCK_S = 1.0
#: A study's mark, once read, answers this process's requests for this long (seconds).
MARK_TTL_S = 0.05
#: At most this many studies' marks are remembered (a client naming many studies can't grow it).
MAX_MARKS = 1024
#: Study states in which trials may be running, so responses depend on the clock.
_LIVE_STATES = {"running", "paused", "stopped"}
_STUDY_PATH = re.compile(r"^/api/studies/([^/]+)(?:/trials|/best|/plots/[^/]+)?$")
_LIST_PATH = "/api/studies"
Stored = tuple[int, list[tuple[bytes, bytes]], bytes]


class ResponseCache:
    """Least-recently-used responses, bounded in bytes (thread-safe)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entry_limit = max_bytes // 8
        self._entries: OrderedDict[tuple[str, ...], Stored] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> Stored | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: tuple[str, ...], value: Stored) -> None:
        size = len(value[2]) + 256
        if size > self.entry_limit:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            self._size += size - (0 if old is None else len(old[2]) + 256)
            self._entries[key] = value
            while self._size > self.max_bytes and self._entries:
                _, dropped = self._entries.popitem(last=False)
                self._size -= len(dropped[2]) + 256

    def __len__(self) -> int:
        return len(self._entries)


def _target(path: str) -> str | None:
    """The study a covered path belongs to ('' for the list), None for any other path."""
    if path == _LIST_PATH:
        return ""
    found = _STUDY_PATH.match(path)
    return found.group(1) if found else None


def read_marks(engine: Engine, name: str) -> list[counters.Mark] | None:
    """The marks a response of ``name`` ('' for the list) depends on; None when not covered."""
    with engine.connect() as conn:
        if name == "":
            return counters.all_marks(conn)
        mark = counters.study_mark(conn, name)
    return None if mark is None else [mark]


def make_etag(path: str, query: str, marks: list[counters.Mark], now: float) -> str:
    """A weak validator: the same while no study it depends on changed (and, for live studies,
    within the same second)."""
    live = any(mark[3] in _LIVE_STATES for mark in marks)
    second = int(now // CLOCK_S) if live else 0
    text = repr((__version__, path, query, marks, second))
    return 'W/"' + hashlib.blake2b(text.encode(), digest_size=12).hexdigest() + '"'


def matches(header: str | None, etag: str) -> bool:
    """``If-None-Match`` matches (weak comparison, lists and ``*`` allowed)."""
    if not header:
        return False
    wanted = etag.removeprefix("W/")
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or wanted in tags


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class ConditionalMiddleware:
    """ETags, 304s and the response cache for the covered GETs (see the module docstring).
    Installed inside the token gate, so nothing is answered before the token is checked."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.cache = ResponseCache(int(settings.api_cache_mb * 1024 * 1024))
        self._pending: dict[tuple[str, ...], anyio.Event] = {}
        self._marks: dict[str, tuple[float, list[counters.Mark] | None]] = {}
        self._reading: dict[str, anyio.Event] = {}
        self._generation = 0  # moves when the marks are forgotten; older reads are not kept

    def _forget_marks(self) -> None:
        self._generation += 1
        self._marks.clear()

    async def _write(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A request that may change a study: the marks are forgotten before its answer leaves
        (routes commit before they answer) and again when it ends, so its client's next read
        sees the change."""

        async def forget_then_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._forget_marks()
            await send(message)

        try:
            await self.app(scope, receive, forget_then_send)
        finally:
            self._forget_marks()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = _target(scope["path"]) if scope["type"] == "http" else None
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD"):
            await self._write(scope, receive, send)
            return
        if name is None or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        marks = await self._current_marks(name)
        if marks is None:
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        etag = make_etag(scope["path"], query, marks, time.time())
        if matches(_header(scope, b"if-none-match"), etag):
            await _send(send, 304, _validators(etag), b"")
            return
        key = (scope["path"], query, etag)
        if self.cache.max_bytes and await self._from_cache(key, send):
            return
        if not self.cache.max_bytes:
            await self._compute(scope, receive, send, key)
            return
        # One computation per key at a time: clients that ask while it runs wait for its bytes
        # instead of computing the same answer again (50 dashboards on one study ask alike).
        done = self._pending[key] = anyio.Event()
        try:
            await self._compute(scope, receive, send, key)
        finally:
            if self._pending.get(key) is done:
                del self._pending[key]
            done.set()

    async def _current_marks(self, name: str) -> list[counters.Mark] | None:
        """``read_marks`` of ``name``, reused for :data:`MARK_TTL_S`; None when not covered or
        the database is away (then the route answers, 503, as it would without us)."""
        for _ in range(2):  # a read that failed while we waited: read ourselves
            known = self._marks.get(name)
            if known is not None and time.monotonic() - known[0] < MARK_TTL_S:
                return known[1]
            in_flight = self._reading.get(name)
            if in_flight is None:
                break
            await in_flight.wait()
        done = self._reading[name] = anyio.Event()
        began, generation = time.monotonic(), self._generation  # the mark is at least this fresh
        try:
            marks = await anyio.to_thread.run_sync(read_marks, get_engine(self.settings), name)
        except Exception:
            return None
        finally:
            if self._reading.get(name) is done:
                del self._reading[name]
            done.set()
        if generation == self._generation:  # no write finished while we read
            if len(self._marks) >= MAX_MARKS:
                self._marks.clear()
            self._marks[name] = (began, marks)
        return marks

    async def _from_cache(self, key: tuple[str, ...], send: Send) -> bool:
        """Answer from the cache, after waiting for a computation of the same key in flight;
        False when there is nothing stored (then the caller computes)."""
        in_flight = self._pending.get(key)
        if in_flight is not None:
            await in_flight.wait()
        stored = self.cache.get(key)
        if stored is None:
            return False
        await _send(send, stored[0], stored[1], stored[2])
        return True

    async def _compute(
        self, scope: Scope, receive: Receive, send: Send, key: tuple[str, ...]
    ) -> None:
        """Run the route, add the validators to a 200 and keep its bytes when they fit."""
        started: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
                if message["status"] == 200:
                    headers = [h for h in message.get("headers", []) if h[0] != b"etag"]
                    message = {**message, "headers": headers + _validators(key[2])}
            elif message["type"] == "http.response.body" and started.get("status") == 200:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False) and self.cache.max_bytes:
                    headers = [*started.get("headers", []), *_validators(key[2])]
                    self.cache.put(key, (200, headers, b"".join(chunks)))
            await send(message)

        await self.app(scope, receive, capture)


def _validators(etag: str) -> list[tuple[bytes, bytes]]:
    """The ETag, and ``no-cache``: clients may keep the body but must ask (cheaply) each time."""
    return [(b"etag", etag.encode()), (b"cache-control", b"no-cache")]


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    if status == 304:
        headers = [h for h in headers if h[0] not in (b"content-length", b"content-type")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
