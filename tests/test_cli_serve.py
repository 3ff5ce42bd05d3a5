"""``hpo serve --workers 2`` for real (uvicorn processes on 127.0.0.1, an SQLite file): both
processes answer, exactly one holds the housekeeping lock, and its reaper recovers a trial whose
worker went silent. The default process count follows the cores."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import select

from hpo_service.cli.serve import MAX_DEFAULT_WORKERS, default_workers
from hpo_service.scheduling import claims
from hpo_service.spec import parse_spec
from hpo_service.spec.sampling import suggest_params
from hpo_service.store.db import dispose_engines, get_engine, get_storage, migrate, session_scope
from hpo_service.store.models import RunStatus, TrialRun
from hpo_service.store.studies import create_study, load_optuna_study
from tests.conftest import env_for, make_settings, tiny_spec


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children(pid: int) -> set[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {int(p) for p in found}


def lock_is_held(path: Path) -> bool:
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def stale_run(settings: object) -> int:
    """A claimed run with its trial attached, as a worker leaves it when it dies."""
    engine = get_engine(settings)  # type: ignore[arg-type]
    info = create_study(settings, parse_spec(tiny_spec("reaped")), start=True)  # type: ignore[arg-type]
    with session_scope(engine) as session:
        claimed = claims.claim_unit(session, info.id, "gone", info.spec)
    assert claimed is not None
    trial = load_optuna_study(get_storage(settings), info).ask()  # type: ignore[arg-type]
    suggest_params(trial, info.spec.search_space)
    with session_scope(engine) as session:
        assert claims.attach(session, claimed.run_id, trial, 0, worker_id="gone")
    return claimed.run_id


def test_two_processes_serve_and_one_reaps(tmp_path: Path) -> None:
    cfg = make_settings(f"sqlite:///{tmp_path / 'hpo.db'}", tmp_path)
    migrate(cfg)
    run_id = stale_run(cfg)
    env = {
        **env_for(cfg),
        "HPO_HEARTBEAT_INTERVAL_S": "0.3",
        "HPO_STALE_AFTER_S": "1",
        "HPO_LOG_LEVEL": "WARNING",
    }
    port = free_port()
    command = [sys.executable, "-m", "hpo_service", "serve", "--port", str(port), "--workers", "2"]
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=out, stderr=out)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240  # each process imports the app: slow on a busy machine
        while len(children(process.pid)) < 2 or not _up(base):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        with ThreadPoolExecutor(8) as pool:
            codes = list(
                pool.map(lambda _: httpx.get(f"{base}/api/studies").status_code, range(40))
            )
        assert codes == [200] * 40
        engine = get_engine(cfg)
        while True:
            with session_scope(engine) as session:
                status = session.scalar(select(TrialRun.status).where(TrialRun.id == run_id))
            if status == RunStatus.REQUEUED:
                break
            assert time.monotonic() < deadline + 30, f"run still {status}: {log.read_text()}"
            time.sleep(0.3)
        assert lock_is_held(tmp_path / "hpo.db.housekeeping.lock")
        holders = [p for p in children(process.pid) if _holds_lock(p, tmp_path)]
        assert len(holders) == 1, holders
    finally:
        process.terminate()
        process.wait(60)
        dispose_engines()
    assert "Traceback" not in log.read_text()


def _holds_lock(pid: int, root: Path) -> bool:
    target = str(root / "hpo.db.housekeeping.lock")
    fds = Path(f"/proc/{pid}/fd")
    return any(os.path.realpath(fd) == target for fd in fds.iterdir())


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_default_workers_follow_the_cores_and_a_container_quota(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    no_quota = tmp_path / "none"
    assert default_workers(no_quota) == max(1, min(cores, MAX_DEFAULT_WORKERS))
    quota = tmp_path / "cpu.max"
    quota.write_text("max 100000\n")
    assert default_workers(quota) == max(1, min(cores, MAX_DEFAULT_WORKERS))
    quota.write_text("50000 100000\n")  # half a core: one process
    assert default_workers(quota) == 1


async def _server_side_nodelay(protocol: type) -> int:
    """TCP_NODELAY of the server's end of a connection accepted, as uvicorn's multi-process mode
    accepts them, on a socket bound with ``proto`` 0 (where asyncio does not set it)."""
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    async def app(scope: dict, receive: object, send: object) -> None:  # never called
        raise AssertionError

    config = uvicorn.Config(app, http=protocol, lifespan="off")
    config.load()
    state = ServerState()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: protocol(config=config, server_state=state, app_state={}), sock=listener
    )
    _, writer = await asyncio.open_connection(*listener.getsockname())
    for _ in range(100):
        if state.connections:
            break
        await asyncio.sleep(0.01)
    (connection,) = state.connections
    sock = connection.transport.get_extra_info("socket")  # type: ignore[union-attr]
    value = int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    writer.close()
    server.close()
    return value


def test_served_connections_send_without_waiting_for_nagle() -> None:
    import asyncio

    from uvicorn.protocols.http.h11_impl import H11Protocol

    from hpo_service.cli.serve import NoDelayH11Protocol

    assert asyncio.run(_server_side_nodelay(H11Protocol)) == 0  # what uvicorn alone does
    assert asyncio.run(_server_side_nodelay(NoDelayH11Protocol)) == 1
