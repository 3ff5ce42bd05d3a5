"""The service behind PgBouncer in transaction pooling mode, for real: each test starts Debian's
``/usr/sbin/pgbouncer`` on a free loopback port with an ini generated from the one the Kubernetes
manifests ship (deploy/kubernetes/base/pgbouncer.ini; only addresses, auth and pool sizes
change), in front of the test's PostgreSQL. The API and ``hpo worker`` processes go through it
with ``HPO_DB_POOLER=pgbouncer``; ``hpo migrate`` goes direct, as documented. Pools are smaller
than the number of clients, so every transaction may land on another server connection: a
prepared statement, ``SET`` or session lock carried from one transaction to the next would break
these tests. One test runs the API and a worker on a single server connection, which also catches
any code that holds a connection in a transaction while it waits for a second one.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from fastapi.testclient import TestClient
from optuna.trial import TrialState
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url

from hpo_service.api.app import create_app
from hpo_service.config import Settings
from hpo_service.scheduling.worker import Worker, WorkerOptions
from hpo_service.spec import parse_spec
from hpo_service.store.db import SchemaOutdated, get_engine, get_storage, migrate, session_scope
from hpo_service.store.models import TrialRun, WorkerRecord
from hpo_service.store.studies import create_study
from tests.conftest import REPO_ROOT, make_settings, tiny_spec
from tests.test_api_flow import free_port
from tests.test_runs import flaky_train, run_statuses
from tests.test_worker import (
    Workers,
    failures,
    running_runs,
    start_when_registered,
    study_state,
    trials,
    wait_for,
)

pytestmark = pytest.mark.postgres
PGBOUNCER = Path("/usr/sbin/pgbouncer")
SHIPPED_INI = REPO_ROOT / "deploy" / "kubernetes" / "base" / "pgbouncer.ini"
# Statements that would tie a client to one server connection beyond its transaction.
SESSION_STATE = re.compile(
    r"^\s*(SET\s+(?!LOCAL)|RESET|LISTEN|PREPARE|DEALLOCATE|DECLARE\b.*\bWITH\s+HOLD|"
    r"CREATE\s+TEMP)|pg_advisory_lock|pg_advisory_unlock",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class PgBouncer:
    port: int
    pool_size: int

    def url(self, direct: str) -> str:
        """``direct``, the same database, through this PgBouncer."""
        return make_url(direct).set(host="127.0.0.1", port=self.port).render_as_string(False)

    def show(self, what: str, database: str) -> list[dict[str, Any]]:
        """Rows of the admin console's ``SHOW <what>`` for ``database``."""
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=pgbouncer",
            autocommit=True,
            cursor_factory=psycopg.ClientCursor,  # the admin console speaks the simple protocol
        ) as conn:
            cursor = conn.execute(f"SHOW {what}")
            names = [column.name for column in cursor.description or []]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        return [row for row in rows if row.get("database") == database]


def write_ini(folder: Path, port: int, pool_size: int, **settings: str) -> Path:
    """The shipped ini with this machine's addresses, trust auth, small pools and
    ``settings``."""
    ini = configparser.ConfigParser()
    ini.read(SHIPPED_INI)
    assert ini["pgbouncer"]["pool_mode"] == "transaction"
    ini["databases"] = {"*": "host=127.0.0.1 port=5432"}
    ini["pgbouncer"].update(
        listen_addr="127.0.0.1",
        listen_port=str(port),
        auth_type="trust",
        auth_file=str(folder / "userlist.txt"),
        admin_users="postgres",
        default_pool_size=str(pool_size),
        reserve_pool_size="0",
        max_db_connections=str(pool_size),
        server_tls_sslmode="disable",
        **settings,
    )
    (folder / "userlist.txt").write_text('"postgres" ""\n')
    path = folder / "pgbouncer.ini"
    with path.open("w") as handle:
        ini.write(handle)
    return path


@contextlib.contextmanager
def pgbouncer(pool_size: int, log: Path, **settings: str) -> Iterator[PgBouncer]:
    """A PgBouncer process for the duration, ``settings`` overriding the ini's; as root it drops
    to ``postgres`` (PgBouncer refuses to run as root)."""
    if not PGBOUNCER.exists():
        pytest.skip(f"{PGBOUNCER} is missing: apt-get install pgbouncer")
    folder = Path(tempfile.mkdtemp(prefix="hpo-pgbouncer-"))
    port = free_port()
    ini = write_ini(folder, port, pool_size, **settings)
    user: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in (folder, *folder.iterdir()):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        user = ["-u", "postgres"]
    with log.open("wb") as out:
        proc = subprocess.Popen([PGBOUNCER, *user, str(ini)], stdout=out, stderr=subprocess.STDOUT)
    bouncer = PgBouncer(port, pool_size)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                bouncer.show("POOLS", "pgbouncer")
                break
            except psycopg.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"pgbouncer did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield bouncer
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pooled(
    pg_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Settings, PgBouncer, str]]:
    """Settings through a PgBouncer pool of 2 server connections (or ``request.param``), after
    a direct ``migrate``."""
    migrate(make_settings(pg_url, tmp_path, poll_interval_s=0.1))
    # A client that waits 20 s for a server connection is stuck: fail fast.
    log = tmp_path / "pgbouncer.log"
    with pgbouncer(getattr(request, "param", 2), log, query_wait_timeout="20") as bouncer:
        url = bouncer.url(pg_url)
        settings = make_settings(url, tmp_path, poll_interval_s=0.1, db_pooler="pgbouncer")
        yield settings, bouncer, make_url(pg_url).database or ""


@pytest.mark.parametrize("pooled", [1], indirect=True)
def test_api_and_worker_through_pgbouncer_keep_no_session_state(
    pooled: tuple[Settings, PgBouncer, str],
) -> None:
    settings, bouncer, database = pooled
    statements: list[str] = []
    storage = get_storage(settings)
    for engine in (get_engine(settings), storage.engine):
        event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    spec = tiny_spec("bounced", budget={"n_trials": 20, "max_epochs": 1})
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["status"] == "ready"
        created = client.post(
            "/api/studies?start=true",
            content=yaml.safe_dump(spec),
            headers={"Content-Type": "application/yaml"},
        )
        assert created.status_code == 201, created.text
        # flaky_train fails trial numbers 3, 8, 13 ... and prunes 4, 9, 14 ...; failures do not
        # use up budget, so 20 complete or pruned trials take trials 0 to 24.
        worker = Worker(settings, WorkerOptions(study="bounced", exit_when_idle=True), flaky_train)
        assert worker.serve() == 25
        counts = client.get("/api/studies/bounced").json()["counts"]
    assert counts == {"COMPLETE": 15, "PRUNED": 5, "FAIL": 5, "RUNNING": 0, "WAITING": 0}
    assert len(statements) > 200
    assert [s for s in statements if SESSION_STATE.search(s)] == []
    assert bouncer.show("STATS", database)[0]["total_xact_count"] > 100
    assert len(bouncer.show("SERVERS", database)) <= bouncer.pool_size


def test_prepared_statements_are_off_only_behind_the_pooler(
    pooled: tuple[Settings, PgBouncer, str], pg_url: str, tmp_path: Path
) -> None:
    """HPO_DB_POOLER=pgbouncer: psycopg prepares nothing; direct: psycopg's default (prepare a
    statement on its 5th use), which saves server CPU."""
    direct = make_settings(pg_url, tmp_path)
    for settings, threshold in ((pooled[0], None), (direct, 5)):
        for engine in (get_engine(settings), get_storage(settings).engine):
            with engine.connect() as conn:
                assert conn.connection.driver_connection.prepare_threshold == threshold  # type: ignore[union-attr]


def test_outdated_optuna_schema_is_refused_through_pgbouncer(
    pooled: tuple[Settings, PgBouncer, str], pg_url: str, tmp_path: Path
) -> None:
    """Optuna's schema check is the service's own (one connection at a time): it still stops a
    process on an outdated schema, with a message naming ``hpo migrate``."""
    direct = make_settings(pg_url, tmp_path)
    with get_engine(direct).begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'v3.0.0.a'"))
    with pytest.raises(SchemaOutdated, match=r"schema v3\.0\.0\.a, .*run `hpo migrate`"):
        get_storage(pooled[0])


@pytest.mark.slow
def test_racing_worker_processes_through_pgbouncer_spend_the_budget_exactly(
    pooled: tuple[Settings, PgBouncer, str], tmp_path: Path
) -> None:
    settings, bouncer, database = pooled
    spec = tiny_spec("race", budget={"n_trials": 12, "max_epochs": 1})
    info = create_study(settings, parse_spec(spec), start=False)
    workers = Workers(settings, tmp_path)
    try:
        for _ in range(4):
            workers.start("--study", "race", "--exit-when-idle", HPO_DB_POOLER="pgbouncer")
        start_when_registered(settings, "race", 4, workers)
        clients = servers = 0
        while any(proc.poll() is None for proc in workers.procs):
            clients = max(clients, len(bouncer.show("CLIENTS", database)))
            servers = max(servers, len(bouncer.show("SERVERS", database)))
            time.sleep(0.2)
        assert workers.wait(timeout=150) == [0, 0, 0, 0], workers.logs()
    finally:
        workers.kill_leftovers()
    done = trials(settings, "race")
    assert Counter(t.state for t in done) == {TrialState.COMPLETE: 12}, failures(done)
    assert sorted(t.number for t in done) == list(range(12))
    assert run_statuses(settings, info.id) == {"complete": 12}
    with session_scope(get_engine(settings)) as session:
        rows = session.scalars(select(WorkerRecord)).all()
    assert len(rows) == 4 and sum(r.trials_done for r in rows) == 12
    assert study_state(settings, "race") == "completed"
    # Many clients, at most pool_size server connections: the pooler multiplexed them.
    assert clients >= 8 and servers <= bouncer.pool_size, (clients, servers)


@pytest.mark.slow
def test_worker_killed_mid_trial_behind_pgbouncer_is_recovered(
    pooled: tuple[Settings, PgBouncer, str], tmp_path: Path
) -> None:
    settings = pooled[0]
    spec = tiny_spec("kill", budget={"n_trials": 4, "max_epochs": 12})
    info = create_study(settings, parse_spec(spec), start=False)
    workers = Workers(settings, tmp_path)
    try:
        for _ in range(2):
            workers.start(
                "--study",
                "kill",
                "--exit-when-idle",
                HPO_STALE_AFTER_S="3",
                HPO_DB_POOLER="pgbouncer",
            )
        start_when_registered(settings, "kill", 2, workers)
        run_id, victim_id, victim_pid = wait_for(
            lambda: running_runs(settings, 1), 60, "a trial mid-training", workers
        )[0]
        with session_scope(get_engine(settings)) as session:
            victim_trial = session.get(TrialRun, run_id).trial_number  # type: ignore[union-attr]
        os.kill(victim_pid, signal.SIGKILL)
        codes = workers.wait(timeout=120)
    finally:
        workers.kill_leftovers()
    assert sorted(codes) == [-signal.SIGKILL, 0], workers.logs()
    done = trials(settings, "kill")
    crashed = next(t for t in done if t.number == victim_trial)
    assert crashed.state == TrialState.FAIL, failures(done)
    assert crashed.user_attrs["fail_reason"].startswith("worker lost")
    retried = [t for t in done if t.user_attrs.get("hpo_retry_of") == crashed.number]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert retried[0].params == crashed.params
    # Exact counts; a live worker's lapsed heartbeat on this busy machine may add a requeue.
    states = Counter(t.state for t in done)
    assert states[TrialState.COMPLETE] == 4 and set(states) <= {
        TrialState.COMPLETE,
        TrialState.FAIL,
    }
    assert run_statuses(settings, info.id) == {"complete": 4, "requeued": states[TrialState.FAIL]}
    with session_scope(get_engine(settings)) as session:
        retry_run = session.scalar(
            select(TrialRun).where(TrialRun.optuna_trial_id == retried[0]._trial_id)
        )
        victim = session.get(WorkerRecord, victim_id)
    assert retry_run is not None and retry_run.worker_id != victim_id
    assert victim is not None and victim.state == "lost"
    assert study_state(settings, "kill") == "completed"
