"""Scale simulation: N workers on one study, through PgBouncer and straight to PostgreSQL.

Run by hand (loopback only; each row runs for ``--seconds`` once its workers are up)::

    python bench/bench_scale.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
    python bench/bench_scale.py --postgres ... --sizes 50 200 500 --direct 10 --seconds 30

Each simulated worker is a real :class:`Worker` (claims, ask/tell, heartbeat and reaper threads,
the registry) running in a thread, spread over ``--processes`` processes, with its own engines
and so its own connections (its URL carries ``application_name=sim-K``), pools of 1+1 per
engine, default heartbeat and reaper periods, and a cheap objective that sleeps ``--trial-s``
(+-50 %) instead of training. All share one study (random sampler, a budget that does not run
out). Rows: ``--direct`` workers straight to PostgreSQL, with psycopg's prepared statements and
then without (as ``HPO_DB_POOLER=pgbouncer`` makes it); the same number through PgBouncer
(transaction pooling, ``--pool`` server connections, the shipped ini); then each of ``--sizes``
through PgBouncer. Per row: claim latency p50/p99 (the transaction that closes the previous run
and claims the next unit of budget, retries included), trials/s (claims per second), server
connections of the database (pg_stat_activity) and client connections PgBouncer holds (maxima of
2 samples a second), backends waiting on a lock (mean and maximum of the samples:
wait_event_type 'Lock'), and committed transactions per second.

Hundreds of workers in a few processes share the interpreters' locks and, on a small machine,
the CPUs with the database: the figures are a floor for what separate worker machines would see.
Each worker runs three threads: 500 workers are 1,500 threads, more than a 2-core machine serves
(docs/scaling.md).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hpo_service.config import Settings
from hpo_service.scheduling.worker import Worker, WorkerOptions
from hpo_service.spec import StudySpec, parse_spec
from hpo_service.spec.sampling import suggest_params
from hpo_service.store import db
from hpo_service.store.studies import create_study

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' PgBouncer launcher
from bench_workers import postgres_database

from tests.test_pgbouncer import PGBOUNCER, PgBouncer, pgbouncer

SAMPLE = text(
    "SELECT COUNT(*), COUNT(*) FILTER (WHERE wait_event_type = 'Lock') FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
COMMITS = text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
HEADER = (
    "| path | workers | server conns | client conns | trials/s | claim p50 ms | claim p99 ms "
    "| lock waits mean / max | commits/s |\n|---|---|---|---|---|---|---|---|---|"
)


@dataclass
class Row:
    label: str
    workers: int
    claims: list[tuple[float, float]] = field(default_factory=list)  # (monotonic start, s)
    servers: list[int] = field(default_factory=list)
    clients: list[int] = field(default_factory=list)
    lock_waits: list[int] = field(default_factory=list)
    window: tuple[float, float] = (0.0, 0.0)
    commits: int = 0
    errors: list[str] = field(default_factory=list)  # workers that died, and why

    def line(self) -> str:
        start, end = self.window
        inside = sorted(s for t, s in self.claims if start <= t < end)
        p50 = statistics.median(inside) if inside else float("nan")
        p99 = inside[min(len(inside) - 1, int(len(inside) * 0.99))] if inside else float("nan")
        seconds = end - start
        clients = str(max(self.clients)) if self.clients else "-"
        waits = f"{statistics.mean(self.lock_waits):.1f} / {max(self.lock_waits)}"
        failed = f" {len(self.errors)} workers failed: {self.errors[0]}" if self.errors else ""
        return (
            f"| {self.label} | {self.workers} | {max(self.servers)} | {clients} "
            f"| {len(inside) / seconds:.1f} | {p50 * 1000:.1f} | {p99 * 1000:.1f} | {waits} "
            f"| {self.commits / seconds:.0f} |{failed}"
        )


# --- the simulated workers (in child processes) -------------------------------------------------


class SimWorker(Worker):
    """A worker whose claims are timed and which stops when the bench says so."""

    def __init__(self, settings: Settings, study: str, stop: Any, trial_s: float) -> None:
        super().__init__(settings, WorkerOptions(study=study), sleepy_objective(trial_s))
        self.claims: list[tuple[float, float]] = []
        self._bench_stop = stop

    def _claim(self, info: Any) -> Any:
        started = time.monotonic()
        claimed = super()._claim(info)
        self.claims.append((started, time.monotonic() - started))
        return claimed

    def _should_exit(self) -> bool:
        return bool(self._bench_stop.is_set()) or super()._should_exit()


def sleepy_objective(trial_s: float) -> Callable[[StudySpec, optuna.Trial, Any], list[float]]:
    """The cheap objective: suggest the parameters (real Optuna writes), sleep, return a value."""

    def train(spec: StudySpec, trial: optuna.Trial, _stop: Any) -> list[float]:
        params = suggest_params(trial, spec.search_space)
        time.sleep(trial_s * random.uniform(0.5, 1.5))
        return [float(params["learning_rate"])]

    return train


def sim_spec(name: str) -> StudySpec:
    return parse_spec(
        {
            "name": name,
            "task": {"dataset": "sunspots", "kind": "forecasting", "metric": "rmse"},
            "search_space": {
                "learning_rate": {"low": 0.0005, "high": 0.05, "log": True},
                "batch_size": [16, 32, 64],
                "hidden_units": {"low": 8, "high": 64, "step": 8},
                "optimizer": ["sgd", "adam"],
            },
            "budget": {"n_trials": 1_000_000},
            "sampler": {"type": "random"},
            "pruner": "none",
        }
    )


def worker_settings(url: str, root: Path, k: int, pooler: str = "none") -> Settings:
    own = make_url(url).update_query_dict({"application_name": f"sim-{k}"})
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=own.render_as_string(hide_password=False),
        db_pooler=pooler,
        artifact_dir=root / "artifacts",
        cache_dir=root / "cache",
        pool_size=1,
        max_overflow=1,
        log_level="WARNING",
    )


def simulate(job: dict[str, Any], ready: Any, stop: Any, out: Any) -> None:
    """One process: build its workers (each in a thread), wait for every process, run them."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    built: list[SimWorker] = []
    errors: list[str] = []

    def build(k: int) -> None:
        try:
            settings = worker_settings(job["url"], job["root"], k, job["pooler"])
            built.append(SimWorker(settings, job["study"], stop, job["trial_s"]))
        except Exception as error:
            errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")

    def run(worker: SimWorker) -> None:
        try:
            worker.run()
        except Exception as error:
            errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")

    for target, items in ((build, job["ks"]), (run, None)):
        if items is None:
            ready.wait()  # every process has built its workers: start together
            items = list(built)
        threads = [threading.Thread(target=target, args=(item,)) for item in items]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    out.put(([c for w in built for c in w.claims], errors))


# --- one row, measured from the parent ----------------------------------------------------------


def sample(row: Row, direct: str, bouncer: PgBouncer | None, stop: threading.Event) -> None:
    admin = create_engine(direct, isolation_level="AUTOCOMMIT")
    database = make_url(direct).database or ""
    with admin.connect() as conn:
        while not stop.wait(0.5):
            servers, waits = conn.execute(SAMPLE).one()
            row.servers.append(int(servers))
            row.lock_waits.append(int(waits))
            if bouncer is not None:
                row.clients.append(len(bouncer.show("CLIENTS", database)))
    admin.dispose()


def commits(direct: str) -> int:
    engine = create_engine(direct, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        value = int(conn.execute(COMMITS).scalar_one())
    engine.dispose()
    return value


def run_row(
    row: Row, url: str, direct: str, bouncer: PgBouncer | None, args: Any, pooler: str
) -> Row:
    """Start ``row.workers`` workers (``HPO_DB_POOLER=pooler``) on a fresh study, measure
    ``args.seconds``, stop them."""
    root = Path(tempfile.mkdtemp(prefix="hpo-scale-"))
    study = f"scale-{uuid.uuid4().hex[:8]}"
    create_study(worker_settings(url, root, 0), sim_spec(study), start=True)
    db.dispose_engines()
    ctx = multiprocessing.get_context("spawn")
    processes = max(1, min(args.processes, row.workers))
    ready, stop, out = ctx.Barrier(processes + 1), ctx.Event(), ctx.Queue()
    jobs = [
        {"url": url, "root": root, "study": study, "trial_s": args.trial_s, "pooler": pooler}
        | {"ks": range(p, row.workers, processes)}
        for p in range(processes)
    ]
    procs = [ctx.Process(target=simulate, args=(job, ready, stop, out)) for job in jobs]
    for proc in procs:
        proc.start()
    ready.wait()
    time.sleep(args.warmup)
    sampling = threading.Event()
    sampler = threading.Thread(target=sample, args=(row, direct, bouncer, sampling))
    sampler.start()
    before, start = commits(direct), time.monotonic()
    time.sleep(args.seconds)
    row.window, row.commits = (start, time.monotonic()), commits(direct) - before
    sampling.set()
    stop.set()
    try:
        for _ in procs:  # each process's workers finish their trial, then report
            claims, errors = out.get(timeout=args.seconds + 600)
            row.claims += claims
            row.errors += errors
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
        sampler.join()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", required=True, help="admin URL of a PostgreSQL server")
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--direct", type=int, default=10, help="workers in the direct rows")
    parser.add_argument("--pool", type=int, default=20, help="PgBouncer server connections")
    parser.add_argument("--processes", type=int, default=4, help="processes the workers share")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window per row")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--trial-s", type=float, default=1.0, help="objective sleep (+-50%%)")
    args = parser.parse_args()
    if not PGBOUNCER.exists():
        sys.exit(f"{PGBOUNCER} is missing: apt-get install pgbouncer")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    load = os.getloadavg()[0]
    print(HEADER, flush=True)
    with postgres_database(args.postgres) as direct, tempfile.TemporaryDirectory() as tmp:
        db.migrate(worker_settings(direct, Path(tmp), 0))
        for label, pooler in (("direct", "none"), ("direct, no prepared statements", "pgbouncer")):
            row = run_row(Row(label, args.direct), direct, direct, None, args, pooler)
            print(row.line(), flush=True)
        with pgbouncer(args.pool, Path(tmp) / "pgbouncer.log") as bouncer:
            for n in [args.direct, *args.sizes]:
                row = Row("PgBouncer", n)
                run_row(row, bouncer.url(direct), direct, bouncer, args, "pgbouncer")
                print(row.line(), flush=True)
    print(
        f"\n{args.seconds:g} s measured per row after {args.warmup:g} s; objective "
        f"{args.trial_s:g} s +-50 %; PgBouncer pool {args.pool}; pools 1+1 per engine; "
        f"workers in {args.processes} processes; {os.cpu_count()} CPUs, load average "
        f"{load:.1f} before, {os.getloadavg()[0]:.1f} after"
    )


if __name__ == "__main__":
    main()
