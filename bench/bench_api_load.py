"""The API under concurrent load: N clients on a 10,000- and a 100,000-trial study, against a
real ``hpo serve`` and, on the same database in the same run, optuna-dashboard.

    python bench/bench_api_load.py                                   # SQLite file in a temp dir
    python bench/bench_api_load.py --url postgresql://postgres@127.0.0.1:5432/postgres
    python bench/bench_api_load.py --sizes 10000 --clients 50 --duration 60 --server-workers 2

Each client loops over the dashboard's mix, one request at a time: the study list, the study,
a page of 50 trials following the ``after`` cursor (from the start to the end of the study, then
again), and the history plot. Clients are bounded (``--clients`` <= 200, ``--duration`` <= 300 s)
and talk to 127.0.0.1 only. Rows: ``hpo serve`` with the response cache (default), without it
(``HPO_API_CACHE_MB=0``: every request computed), and optuna-dashboard's study-detail API
(``/api/studies/<id>``, what its study page polls) with the same clients for
``--dashboard-duration`` seconds (client timeout 90 s there, 30 s elsewhere). The last column is
the CPU the server processes used per answered request, which a busy machine inflates far less
than latency. Latencies are measured by the client, which shares the machine: the load average
is printed before and after, and the clients are :mod:`loadclient`'s lean keep-alive connections,
whose CPU per request is printed too (httpx's took more CPU than the server it measured).
With ``--url postgresql://...`` a fresh database ``hpo_bench_api`` is created on that server
(dropped first if it exists).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from loadclient import Connection, ProtocolError  # noqa: E402

MAX_CLIENTS, MAX_DURATION_S = 200, 300.0


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    bytes: int = 0
    by_kind: dict[str, list[float]] = field(default_factory=dict)

    def breakdown(self) -> str:
        """p50 / p99 ms per kind of request."""
        parts = []
        for kind, values in self.by_kind.items():
            lat = np.array(values) * 1000
            parts.append(f"{kind} {np.percentile(lat, 50):.0f}/{np.percentile(lat, 99):.0f}")
        return "p50/p99 ms: " + ", ".join(parts)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{command[0]} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code < 500:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"{command[0]} did not come up: {log.read_text()[-2000:]}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its live children (uvicorn's server processes)."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    total = 0.0
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


async def timed(conn: Connection, kind: str, path: str, tally: Tally, **params: str) -> Any:
    began = time.perf_counter()
    try:
        status, body = await conn.get(path, params or None)
    except (OSError, ProtocolError, TimeoutError, asyncio.IncompleteReadError):
        tally.errors += 1
        return None
    tally.latencies.append(time.perf_counter() - began)
    tally.by_kind.setdefault(kind, []).append(tally.latencies[-1])
    tally.bytes += len(body)
    if status != 200:
        tally.errors += 1
        return None
    return body


async def service_client(conn: Connection, study: str, until: float, t: Tally) -> None:
    after = "0.0"
    while time.monotonic() < until:
        await timed(conn, "list", "/api/studies", t)
        await timed(conn, "study", f"/api/studies/{study}", t)
        path = f"/api/studies/{study}/trials"
        page = await timed(conn, "page", path, t, limit="50", after=after)
        if page is not None:
            body = json.loads(page)
            after = body["next_after"] if body["has_more"] else "0.0"
        await timed(conn, "plot", f"/api/studies/{study}/plots/history", t)


async def dashboard_client(conn: Connection, study_id: int, until: float, t: Tally) -> None:
    while time.monotonic() < until:
        await timed(conn, "study", f"/api/studies/{study_id}", t, after="0")


async def load(
    port: int, clients: int, seconds: float, target: Any, arg: Any, timeout: float = 30
) -> Tally:
    """``clients`` connections, each one request at a time (see :mod:`loadclient`)."""
    tally = Tally()
    conns = [Connection("127.0.0.1", port, timeout) for _ in range(clients)]
    until = time.monotonic() + seconds
    try:
        await asyncio.gather(*(target(conn, arg, until, tally) for conn in conns))
    finally:
        await asyncio.gather(*(conn.close() for conn in conns))
    return tally


def measured(pid: int, run: Any) -> tuple[Tally, float, float]:
    """``run()``'s tally, the server's CPU seconds (``pid`` and its children) and this
    process's (the clients')."""
    server, client = cpu_seconds(pid), time.process_time()
    tally = asyncio.run(run())
    return tally, cpu_seconds(pid) - server, time.process_time() - client


def row(label: str, size: int, seconds: float, result: tuple[Tally, float, float]) -> str:
    tally, server_s, client_s = result
    lat = np.array(tally.latencies or [np.nan]) * 1000
    p50, p95, p99 = (np.percentile(lat, q) for q in (50, 95, 99))
    n = len(tally.latencies)
    per = 1000 / max(1, n)
    return (
        f"| {label} | {size:,} | {n} | {n / seconds:.0f} | {p50:.1f} | {p95:.1f} | {p99:.1f} "
        f"| {tally.errors} | {tally.bytes / 1e6:.1f} | {server_s * per:.2f} "
        f"| {client_s * per:.2f} |"
    )


def database(url: str | None, root: Path) -> str:
    if url is None:
        return f"sqlite:///{root / 'load.db'}"
    import sqlalchemy as sa

    admin = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("DROP DATABASE IF EXISTS hpo_bench_api WITH (FORCE)"))
        conn.execute(sa.text("CREATE DATABASE hpo_bench_api"))
    admin.dispose()
    return url.rsplit("/", 1)[0] + "/hpo_bench_api"


def prepare(url: str, root: Path, sizes: list[int]) -> dict[int, int]:
    """Migrated database with one service study per size; returns Optuna's study ids."""
    import optuna
    import sqlalchemy as sa
    from bench_dashboard import make_study

    from hpo_service.config import Settings
    from hpo_service.store.db import get_storage, migrate

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = Settings(database_url=url, artifact_dir=root / "artifacts")
    migrate(settings)
    ids = {}
    for size in sizes:
        began = time.perf_counter()
        make_study(settings, f"big-{size}", size, 10)
        ids[size] = get_storage(settings).get_study_id_from_name(f"big-{size}")
        print(f"study big-{size}: {time.perf_counter() - began:.0f} s to write", flush=True)
    if settings.database_url.startswith("postgresql"):
        engine = sa.create_engine(settings.database_url)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))
        engine.dispose()
    return ids


def run_service(args: argparse.Namespace, url: str, root: Path, cache_mb: str) -> list[str]:
    env = {**os.environ, "HPO_DATABASE_URL": url, "HPO_LOG_LEVEL": "WARNING"}
    env |= {"HPO_API_CACHE_MB": cache_mb, "HPO_ARTIFACT_DIR": str(root / "artifacts")}
    port = free_port()
    hpo = [sys.executable, "-m", "hpo_service", "serve", "--port", str(port)]
    proc = start([*hpo, "--workers", str(args.server_workers)], env, port, root / "serve.log")
    label = f"hpo serve x{args.server_workers}" + (", no cache" if cache_mb == "0" else "")
    try:
        rows = []
        for size in args.sizes:
            study = f"big-{size}"
            result = measured(
                proc.pid,
                lambda s=study: load(port, args.clients, args.duration, service_client, s),  # type: ignore[misc]
            )
            rows.append(row(label, size, args.duration, result))
            print(rows[-1], result[0].breakdown(), flush=True)
        return rows
    finally:
        stop(proc)


def run_dashboard(args: argparse.Namespace, url: str, root: Path, ids: dict[int, int]) -> list[str]:
    port = free_port()
    exe = Path(sys.executable).with_name("optuna-dashboard")
    command = [str(exe), url, "--host", "127.0.0.1", "--port", str(port)]
    proc = start(command, dict(os.environ), port, root / "dashboard.log")
    try:
        size = args.sizes[0]
        seconds = args.dashboard_duration
        # A study-detail answer takes tens of seconds at 10,000 trials: a longer client timeout.
        result = measured(
            proc.pid, lambda: load(port, args.clients, seconds, dashboard_client, ids[size], 90)
        )
        return [row("optuna-dashboard", size, seconds, result)]
    finally:
        stop(proc)


def main() -> None:
    from hpo_service.cli.serve import default_workers

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=None, help="PostgreSQL server URL (default: SQLite file)")
    ap.add_argument("--sizes", default="10000,100000", help="trials per study, comma-separated")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds per service row")
    ap.add_argument("--dashboard-duration", type=float, default=30.0, help="0: skip it")
    ap.add_argument("--server-workers", type=int, default=default_workers())
    ap.add_argument("--no-uncached", action="store_true", help="skip the HPO_API_CACHE_MB=0 row")
    args = ap.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 < args.duration <= MAX_DURATION_S:
        raise SystemExit(f"--clients 1..{MAX_CLIENTS}, --duration up to {MAX_DURATION_S:g} s")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        url = database(args.url, root)
        ids = prepare(url, root, args.sizes)
        print(f"\nload average before: {os.getloadavg()}; {os.cpu_count()} cores", flush=True)
        header = (
            "| server | trials | requests | req/s | p50 ms | p95 ms | p99 ms | errors | MB "
            "| server CPU ms/request | client CPU ms/request |"
        )
        rows = [header, "|---|---|---|---|---|---|---|---|---|---|---|"]
        print("\n".join(rows), flush=True)
        rows += run_service(args, url, root, "64")
        if not args.no_uncached:
            rows += run_service(args, url, root, "0")
        if args.dashboard_duration > 0:
            rows += run_dashboard(args, url, root, ids)
            print(rows[-1], flush=True)
        print(f"load average after: {os.getloadavg()}\n")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
