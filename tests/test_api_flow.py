"""A whole study over HTTP against a real ``hpo serve`` process, on SQLite and PostgreSQL:
upload -> create -> start 2 workers -> poll trials -> best -> predict -> plot -> delete, then
shutdown with workers mid-trial leaves no process behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hpo_service.config import Settings
from hpo_service.data.sources import builtin_series
from hpo_service.store.db import get_engine
from hpo_service.store.studies import trial_counts
from tests.conftest import env_for, tiny_spec

pytestmark = pytest.mark.slow
LOOKBACK = 12


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    http: httpx.Client
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float, what: str, server: Server) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n{server.tail()}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def server(migrated: Settings, tmp_path: Path) -> Iterator[Server]:
    env = env_for(migrated)
    env.update(HPO_DATA_DIR=str(tmp_path / "data"), HPO_HEARTBEAT_INTERVAL_S="1",
               HPO_POLL_INTERVAL_S="0.5", HPO_LOG_LEVEL="WARNING")  # fmt: skip
    port, log = free_port(), tmp_path / "serve.log"
    command = [sys.executable, "-m", "hpo_service", "serve", "--port", str(port)]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=out, stderr=out)
    found = Server(process, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60), log)
    try:
        wait_for(lambda: found.http.get("/readyz").status_code == 200, 90, "readyz", found)
        yield found
    finally:
        found.http.close()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def upload_sunspots(http: httpx.Client) -> tuple[str, list[float]]:
    values = [float(v) for v in builtin_series("sunspots")]
    text = "year,spots\n" + "".join(f"{1700 + i},{v}\n" for i, v in enumerate(values))
    made = http.post(
        "/api/datasets",
        files={"file": ("sunspots.csv", text.encode(), "text/csv")},
        data={"kind": "forecasting", "value_column": "spots", "time_column": "year"},
    )
    assert made.status_code == 201, made.text
    return str(made.json()["dataset"]), values


def poll_until_finished(server: Server, name: str, n_trials: int) -> dict[int, dict[str, Any]]:
    """Follow the trials with the ``after`` cursor, merging by number, until all are done."""
    trials: dict[int, dict[str, Any]] = {}
    cursor = server.http.get(f"/api/studies/{name}/trials").json()["next_after"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        page = server.http.get(f"/api/studies/{name}/trials", params={"after": cursor}).json()
        trials.update({t["number"]: t for t in page["items"]})
        cursor = page["next_after"]
        done = [t for t in trials.values() if t["state"] in ("COMPLETE", "PRUNED", "FAIL")]
        if len(done) >= n_trials:
            return trials
        time.sleep(1)
    raise AssertionError(f"trials never finished: {trials}\n{server.tail()}")


def test_a_whole_study_over_http(server: Server, migrated: Settings) -> None:
    http = server.http
    dataset, values = upload_sunspots(http)
    space = {"learning_rate": {"low": 0.003, "high": 0.03, "log": True}, "hidden_units": 8}
    spec = tiny_spec("flow", task={"dataset": dataset, "lookback": LOOKBACK}, search_space=space)
    assert http.post("/api/studies", json=spec).status_code == 201
    started = http.post("/api/studies/flow/workers", json={"processes": 2, "device": "cpu"})
    assert started.status_code == 202, started.text
    pids = started.json()["pids"]
    assert len(pids) == 2 and started.json()["devices"] == ["cpu", "cpu"]
    ours = wait_for(
        lambda: [w for w in http.get("/api/workers?live=true").json()["items"] if w["supervised"]],
        120, "two live workers", server,
    )  # fmt: skip
    assert {w["pid"] for w in ours} <= set(pids) and all(w["study_name"] == "flow" for w in ours)
    trials = poll_until_finished(server, "flow", 4)
    assert sorted(trials) == [0, 1, 2, 3] and any(t["state"] == "COMPLETE" for t in trials.values())
    study = wait_for(
        lambda: (s := http.get("/api/studies/flow").json())["state"] == "completed" and s,
        60, "completed", server,
    )  # fmt: skip
    assert study["progress"] == 1.0 and study["eta_s"] == 0.0 and study["finished"] == 4
    best = http.get("/api/studies/flow/best").json()["trials"][0]
    assert best["number"] == study["best"]["number"] and best["has_model"]
    assert len(best["curves"]["val_loss"]) >= 1 and best["worker"]["id"]
    predicted = http.post("/api/studies/flow/predict", json={"inputs": values[-LOOKBACK:]})
    assert predicted.status_code == 200, predicted.text
    body = predicted.json()
    assert body["trial"] == best["number"] and body["kind"] == "forecasting"
    assert len(body["predictions"]) == 1 and isinstance(body["predictions"][0], float)
    short = http.post("/api/studies/flow/predict", json={"inputs": values[:3]})
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "inputs"
    figure = http.get("/api/studies/flow/plots/history").json()
    assert figure["data"] and figure["layout"]
    assert len(http.get("/api/studies/flow/trials.csv").text.strip().splitlines()) == 5
    assert http.delete("/api/studies/flow").status_code == 204
    assert http.get("/api/studies/flow").status_code == 404
    assert not (Path(migrated.artifact_dir) / "flow").exists()


def test_shutdown_stops_workers_mid_trial(server: Server, migrated: Settings) -> None:
    long = tiny_spec("long", n_trials=50, budget={"n_trials": 50, "max_epochs": 500})
    assert server.http.post("/api/studies", json=long).status_code == 201
    pids = server.http.post("/api/studies/long/workers", json={"processes": 2}).json()["pids"]
    wait_for(
        lambda: server.http.get("/api/studies/long").json()["counts"]["RUNNING"] >= 1,
        120, "a running trial", server,
    )  # fmt: skip
    server.process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal it caught: -SIGTERM is clean.
    assert server.process.wait(timeout=90) in (0, -signal.SIGTERM), server.tail()
    assert not [pid for pid in pids if alive(pid)], "worker processes outlived the server"
    counts = trial_counts(get_engine(migrated), "long")
    assert counts["RUNNING"] == 0 and counts["WAITING"] >= 1, counts  # interrupted -> requeued
