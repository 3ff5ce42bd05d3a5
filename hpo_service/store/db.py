"""Engines, sessions, Optuna storage and migrations. The only module that builds engines.

Each process holds one bounded pool (pre-ping, recycle) per database URL. SQLite runs in WAL
mode with a busy timeout and is for one machine only; PostgreSQL serves many machines.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import optuna
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CursorResult, Engine, Result, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from alembic import command
from hpo_service.config import Settings

log = logging.getLogger(__name__)
VERSION_TABLE = "hpo_alembic_version"
SQLITE_BUSY_TIMEOUT_S = 30.0
#: Reads map the database file instead of copying pages through a 2 MB per-connection cache:
#: at 100,000 trials (a 146 MB file) a page of 50 trials took 6.6 ms without it.
SQLITE_MMAP_BYTES = 1 << 30
T = TypeVar("T")

_engines: dict[tuple[str, int, int, str], Engine] = {}
_storages: dict[tuple[str, str], optuna.storages.RDBStorage] = {}


class SchemaOutdated(RuntimeError):
    """The database lacks tables or migrations this code needs."""


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
    cursor.close()


def engine_kwargs(
    url: str, pool_size: int = 5, max_overflow: int = 5, pooled: bool = False
) -> dict[str, Any]:
    """Pool settings shared by the service's engine and Optuna's storage engine.

    ``pooled``: PostgreSQL is behind a transaction pooler (``HPO_DB_POOLER=pgbouncer``), where a
    statement prepared in one transaction is missing, or already there, on the server connection
    of the next; psycopg then prepares nothing (``prepare_threshold=None``). Direct connections
    keep psycopg's prepared statements: they save about a quarter of the server's CPU per trial
    (docs/scaling.md)."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    return {
        **({"connect_args": {"prepare_threshold": None}} if pooled else {}),
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "pool_pre_ping": True,
        "pool_recycle": 1800,
        "pool_timeout": 60,
    }


def _kwargs(settings: Settings) -> dict[str, Any]:
    pooled = settings.db_pooler != "none"
    return engine_kwargs(settings.database_url, settings.pool_size, settings.max_overflow, pooled)


def get_engine(settings: Settings) -> Engine:
    """The process's engine for ``settings.database_url`` (built once, then reused)."""
    key = (settings.database_url, settings.pool_size, settings.max_overflow, settings.db_pooler)
    if key not in _engines:
        engine = create_engine(settings.database_url, **_kwargs(settings))
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_on_connect)
        _engines[key] = engine
    return _engines[key]


def dispose_engines() -> None:
    """Forget pooled connections, e.g. in a forked child, which must not share its parent's."""
    for engine in _engines.values():
        engine.dispose(close=False)
    for storage in _storages.values():
        storage.engine.dispose(close=False)
    _engines.clear()
    _storages.clear()


@contextlib.contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error, always close."""
    session = sessionmaker(bind=engine, expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed: the race checks ("did this worker still own
    the run?") read it. ``Session.execute`` is typed as ``Result``; for such statements it is a
    ``CursorResult``."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount or 0)


def is_transient(error: BaseException) -> bool:
    """A lost connection or a lock timeout: worth retrying after a pause."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, OperationalError):
        return True
    message = str(error).lower()
    return any(
        s in message for s in ("terminating connection", "server closed", "database is locked")
    )


def with_retry(fn: Callable[[], T], attempts: int = 8, first_delay_s: float = 0.25) -> T:
    """Run ``fn`` again after transient database errors (PostgreSQL restart, SQLite busy)."""
    delay = first_delay_s
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as error:
            if attempt == attempts or not is_transient(error):
                raise
            log.warning(
                "database error (%s), retry %d/%d in %.1fs", error, attempt, attempts, delay
            )
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
    raise AssertionError("unreachable")


def get_storage(settings: Settings) -> optuna.storages.RDBStorage:
    """Optuna's storage on the same database, one per process and URL. It never creates tables
    (``hpo migrate`` does) and stops on an outdated Optuna schema."""
    key = (settings.database_url, settings.db_pooler)
    if key not in _storages:
        _storages[key] = _make_storage(settings)
    return _storages[key]


def _make_storage(settings: Settings) -> optuna.storages.RDBStorage:
    """Optuna's schema check, made here one connection at a time: Optuna's own holds a
    connection in a transaction while it opens a second, so behind a transaction pooler, workers
    starting together could each hold a server connection and wait for another, for ever."""
    storage = optuna.storages.RDBStorage(
        settings.database_url,
        engine_kwargs=_kwargs(settings),
        skip_table_creation=True,
        skip_compatibility_check=True,
    )
    current, head = storage.get_current_version(), storage.get_head_version()
    if current != head:
        storage.engine.dispose()
        raise SchemaOutdated(
            f"Optuna's tables are at schema {current}, this version needs {head}: run `hpo migrate`"
        )
    if storage.engine.dialect.name == "sqlite":
        event.listen(storage.engine, "connect", _sqlite_on_connect)
    return storage


# --- migrations -------------------------------------------------------------------------------


def include_service_object(name: str | None, type_: str, _parents: Any) -> bool:
    """Alembic filter: the service's migrations see only its own ``hpo_`` tables."""
    if type_ == "table":
        return bool(name) and name.startswith("hpo_") and name != VERSION_TABLE  # type: ignore[union-attr]
    return True


def migrations_dir() -> Path:
    """The service's migrations: inside an installed wheel they are ``hpo_service/_alembic``
    (mapped from the top-level ``alembic/`` folder); in a source checkout, that folder itself."""
    package = Path(__file__).resolve().parents[1]  # hpo_service/
    packaged = package / "_alembic"
    return packaged if packaged.is_dir() else package.parent / "alembic"


def alembic_config(url: str) -> Config:
    """Config for the service's migrations, which ship inside the package."""
    script_location = migrations_dir()
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.set_main_option("version_table", VERSION_TABLE)
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise concurrent ``hpo migrate`` runs: an advisory lock on PostgreSQL, a file lock
    beside an SQLite file. The lock is transaction-scoped (held by a transaction left open for
    the whole migration), so it cannot outlive it on a pooled server connection."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(724311)"))
            yield
        return
    database = make_url(str(engine.url)).database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(Path(database).with_name(Path(database).name + ".migrate.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def migrate(settings: Settings) -> tuple[str | None, str]:
    """Create or upgrade Optuna's tables, then the service's. Idempotent and safe to run from
    several processes at once. Returns (revision before, revision after)."""
    engine = get_engine(settings)
    url = settings.database_url
    with _migration_lock(engine):
        storage = optuna.storages.RDBStorage(
            url, engine_kwargs=engine_kwargs(url), skip_compatibility_check=True
        )
        if storage.get_current_version() != storage.get_head_version():
            storage.upgrade()
        storage.engine.dispose()
        before = current_revision(engine)
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        return before, head_revision()


def check_schema(settings: Settings) -> None:
    """Stop a process early, with a message naming ``hpo migrate``, on an outdated schema."""
    engine = get_engine(settings)
    try:
        current = current_revision(engine)
    except OperationalError as error:
        raise SchemaOutdated(f"cannot reach the database: {error.orig}") from None
    head = head_revision()
    if current != head:
        found = "no service tables" if current is None else f"revision {current}"
        raise SchemaOutdated(
            f"database {engine.url.render_as_string(hide_password=True)} has {found}, "
            f"this version needs {head}: run `hpo migrate`"
        )


def ensure_schema(settings: Settings) -> bool:
    """:func:`check_schema` for the commands a first run starts with (``hpo run``, ``hpo serve``,
    ``hpo worker``): a database with no tables at all is set up here (:func:`migrate`), so a
    quick start needs no separate ``hpo migrate``. A database that has tables but an older
    schema still stops with the message naming ``hpo migrate``: upgrades stay deliberate.
    Returns whether the tables were created."""
    engine = get_engine(settings)
    try:
        empty = not inspect(engine).get_table_names()
    except OperationalError as error:
        raise SchemaOutdated(f"cannot reach the database: {error.orig}") from None
    if empty:
        migrate(settings)
    check_schema(settings)
    return empty
