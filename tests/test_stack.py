"""The compose stack's sequence as plain processes on the local PostgreSQL: ``hpo migrate``,
then ``hpo serve``, then two ``hpo worker`` processes; a study created over HTTP completes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import env_for, make_settings, tiny_spec


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hpo(*args: str) -> list[str]:
    return [sys.executable, "-m", "hpo_service", *args]


@pytest.fixture
def stack_env(pg_url: str, tmp_path: Path) -> dict[str, str]:
    env = env_for(make_settings(pg_url, tmp_path))
    env["HPO_API_TOKEN"] = "stack-token"
    env["HPO_HEARTBEAT_INTERVAL_S"] = "1"
    env["HPO_POLL_INTERVAL_S"] = "0.5"
    return env


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in started:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_until_ready(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("the API never became ready")


def test_stack_sequence_completes_a_study(
    stack_env: dict[str, str], processes: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    subprocess.run(hpo("migrate"), env=stack_env, cwd=tmp_path, check=True, timeout=120)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "stack.log", "wb")  # noqa: SIM115 - closed with the processes
    serve = hpo("serve", "--host", "127.0.0.1", "--port", str(port))
    processes.append(subprocess.Popen(serve, env=stack_env, cwd=tmp_path, stdout=log, stderr=log))
    wait_until_ready(base)
    for _ in range(2):
        worker = hpo("worker", "--processes", "1", "--device", "cpu")
        processes.append(
            subprocess.Popen(worker, env=stack_env, cwd=tmp_path, stdout=log, stderr=log)
        )
    headers = {"Authorization": "Bearer stack-token"}
    created = httpx.post(
        f"{base}/api/studies", json=tiny_spec("stack", n_trials=4), headers=headers, timeout=30
    )
    assert created.status_code == 201, created.text
    started = httpx.post(f"{base}/api/studies/stack/resume", headers=headers, timeout=30)
    assert started.status_code in (200, 409), started.text
    deadline = time.monotonic() + 240
    study = {}
    while time.monotonic() < deadline:
        study = httpx.get(f"{base}/api/studies/stack", timeout=10).json()
        if study["state"] == "completed":
            break
        time.sleep(1)
    assert study.get("state") == "completed", (study, (tmp_path / "stack.log").read_text()[-3000:])
    counts = study["counts"]
    assert counts["COMPLETE"] + counts["PRUNED"] == 4 and counts["RUNNING"] == 0
    workers = httpx.get(f"{base}/api/workers", timeout=10).json()
    items = workers["items"] if isinstance(workers, dict) else workers
    assert len({w["id"] for w in items}) >= 2
    for proc in processes[1:]:
        proc.send_signal(signal.SIGTERM)
    assert all(proc.wait(timeout=60) == 0 for proc in processes[1:])
    assert os.path.exists(tmp_path / "stack.log")
