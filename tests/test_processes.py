"""Device planning for local worker processes (``--processes``, ``--device``, ``--per-gpu``), the
CPU-thread split, exit codes, and the CLI's clear errors. No GPU is needed: the planner takes the
visible GPU count as an argument, which is how the GPU cases are checked on a CPU-only machine.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest

from hpo_service.config import Settings
from hpo_service.scheduling.processes import (
    DevicePlanError,
    exit_code,
    plan_devices,
    threads_per_process,
)
from hpo_service.store.db import migrate
from tests.conftest import env_for, make_settings


@pytest.mark.parametrize(
    ("device", "processes", "per_gpu", "gpus", "expected"),
    [
        ("cpu", None, None, 0, ["cpu"]),
        ("cpu", 3, None, 0, ["cpu"] * 3),
        ("auto", 2, None, 0, ["cpu", "cpu"]),
        ("auto", 2, None, 1, ["cuda:0", "cuda:0"]),
        ("cuda", 3, None, 2, ["cuda:0", "cuda:1", "cuda:0"]),
        ("cuda:1", 2, None, 2, ["cuda:1", "cuda:1"]),
        # --per-gpu M: M processes on every GPU the device names.
        ("cuda", None, 4, 1, ["cuda:0"] * 4),
        ("cuda", None, 2, 2, ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]),
        ("cuda", 4, 2, 2, ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]),
        ("cuda:1", None, 3, 4, ["cuda:1"] * 3),
        ("auto", None, 8, 1, ["cuda:0"] * 8),
    ],
)
def test_plan_devices(
    device: str, processes: int | None, per_gpu: int | None, gpus: int, expected: list[str]
) -> None:
    assert plan_devices(device, processes, per_gpu, gpu_count=gpus) == expected


@pytest.mark.parametrize(
    ("device", "processes", "per_gpu", "gpus", "message"),
    [
        ("cpu", None, 2, 0, "--per-gpu needs a CUDA device"),
        ("auto", None, 2, 0, "--per-gpu needs a CUDA device"),
        ("cuda", 1, None, 0, "no CUDA device is visible"),
        ("cuda", None, 2, 0, "no CUDA device is visible"),
        ("cuda:2", 1, None, 2, "only 2 CUDA device"),
        ("cuda", 3, 2, 2, "--processes 3 contradicts --per-gpu 2 on 2 GPU"),
        ("tpu", 1, None, 0, "device must be cpu, cuda, cuda:N or auto"),
        ("cuda:x", 1, None, 1, "device must be cpu, cuda, cuda:N or auto"),
    ],
)
def test_impossible_plans_say_why(
    device: str, processes: int | None, per_gpu: int | None, gpus: int, message: str
) -> None:
    with pytest.raises(DevicePlanError, match=message):
        plan_devices(device, processes, per_gpu, gpu_count=gpus)


def test_threads_split_the_cores_and_respect_omp_num_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads_per_process(4, cpu_count=16) == 4
    assert threads_per_process(32, cpu_count=16) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads_per_process(1, cpu_count=16) == 2
    assert threads_per_process(16, cpu_count=16) == 1


def _exit_with(code: int) -> None:
    raise SystemExit(code)


def test_exit_code_is_zero_only_when_every_child_exits_zero() -> None:
    ctx = multiprocessing.get_context("fork")
    ok = [ctx.Process(target=_exit_with, args=(0,)) for _ in range(2)]
    bad = [ctx.Process(target=_exit_with, args=(0,)), ctx.Process(target=_exit_with, args=(3,))]
    for child in ok + bad:
        child.start()
    for child in ok + bad:
        child.join(timeout=30)
    assert exit_code(ok) == 0 and exit_code(bad) == 1


def _hpo_worker(settings: Settings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hpo_service", "worker", *args],
        env=env_for(settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_rejects_unknown_study_and_impossible_devices(sqlite_url: str, tmp_path: Path) -> None:
    migrated = make_settings(sqlite_url, tmp_path)
    migrate(migrated)
    unknown = _hpo_worker(migrated, tmp_path, "--study", "nope", "--exit-when-idle")
    assert unknown.returncode == 2, unknown.stderr
    assert "no study named 'nope'" in unknown.stderr and "Traceback" not in unknown.stderr
    packed = _hpo_worker(migrated, tmp_path, "--device", "cpu", "--per-gpu", "2")
    assert packed.returncode == 2 and "--per-gpu needs a CUDA device" in packed.stderr
