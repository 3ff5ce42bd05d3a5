"""Local worker processes: plan devices, spawn K workers, forward signals, wait.

Each child is a fresh interpreter (``spawn``), so no database connection or CUDA context is shared
across a fork. The parent forwards stop signals in a form a child cannot mistake for a second
signal (:mod:`.stopping`); children run in their own process group, so a terminal's
hang-up reaches only the parent, and stop gracefully when the parent is gone. CPU workers split
the machine's cores so parallel trials do not oversubscribe torch's threads.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import NoReturn

from hpo_service.config import Settings
from hpo_service.devices import DeviceError, parse_device
from hpo_service.scheduling.stopping import GRACEFUL_FROM_PARENT, NOW_FROM_PARENT
from hpo_service.scheduling.worker import WorkerOptions, run_worker
from hpo_service.store.db import dispose_engines


class DevicePlanError(ValueError):
    """The requested devices cannot be provided on this machine."""


def cuda_device_count() -> int:
    try:
        import torch

        return int(torch.cuda.device_count())
    except Exception:
        return 0


def visible_gpus(device: str, gpu_count: int) -> list[int]:
    """The GPU indices a cuda / cuda:N request means, checked against what is visible."""
    parsed = parse_device(device)
    if gpu_count == 0:
        raise DevicePlanError(f"device {device}: no CUDA device is visible on this machine")
    if parsed.index is None:
        return list(range(gpu_count))
    if parsed.index >= gpu_count:
        raise DevicePlanError(f"device {device}: only {gpu_count} CUDA device(s) are visible")
    return [parsed.index]


def plan_devices(
    device: str, processes: int | None, per_gpu: int | None, gpu_count: int | None = None
) -> list[str]:
    """The device of each local worker process.

    ``per_gpu`` M packs M processes on every GPU the device names (``cuda``: all visible ones,
    ``cuda:N``: that one), so the count is M x GPUs and ``processes``, if given, must match.
    Without it, ``processes`` (default 1) go round-robin over the GPUs, or all on the CPU.
    ``gpu_count`` defaults to what torch sees (asked only when a GPU may be involved).
    """
    try:
        parse_device(device)
    except DeviceError as error:
        raise DevicePlanError(str(error)) from None
    if device != "cpu" and gpu_count is None:
        gpu_count = cuda_device_count()
    gpu_count = gpu_count or 0
    if device == "auto":
        device = "cuda" if gpu_count else "cpu"
    if per_gpu is not None:
        if device == "cpu":
            raise DevicePlanError("--per-gpu needs a CUDA device, and none is in use")
        gpus = visible_gpus(device, gpu_count)
        total = per_gpu * len(gpus)
        if processes is not None and processes != total:
            raise DevicePlanError(
                f"--processes {processes} contradicts --per-gpu {per_gpu} on {len(gpus)} GPU(s) "
                f"({total} processes); give one of them"
            )
        return [f"cuda:{gpus[i % len(gpus)]}" for i in range(total)]
    count = processes or 1
    if device == "cpu":
        return ["cpu"] * count
    gpus = visible_gpus(device, gpu_count)
    return [f"cuda:{gpus[i % len(gpus)]}" for i in range(count)]


def default_threads(local_workers: int, cpu_count: int | None = None) -> int:
    """torch threads for each of ``local_workers`` worker processes on this machine: the cores
    shared out among them, so that parallel trials do not oversubscribe the cores (two workers
    with two threads each on two cores ran epochs several times slower than with one);
    ``OMP_NUM_THREADS``, when set, is an upper bound. bench/bench_threads.py measures it."""
    cores = max(1, (cpu_count or os.cpu_count() or 1) // max(1, local_workers))
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cores, int(limit))) if limit.isdigit() and int(limit) > 0 else cores


#: The earlier name of :func:`default_threads`.
threads_per_process = default_threads


def worker_threads(settings: Settings, requested: int | None, local_workers: int) -> int:
    """Threads per worker: asked for (``--threads``, the API's ``threads``), else the setting
    ``HPO_WORKER_THREADS``, else :func:`default_threads` for the local workers."""
    return requested or settings.worker_threads or default_threads(local_workers)


def exit_now(code: int) -> NoReturn:
    """End a worker process without interpreter teardown, which with torch loaded costs 1-2 s of
    CPU per process (seconds of wall time when a pool of workers stops together on a busy
    machine). Everything a worker owns is already closed: its trial is told and its row says
    stopped; logs and pooled connections are flushed and closed here."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    dispose_engines()
    os._exit(code)


def _child(settings: Settings, options: WorkerOptions) -> None:
    os.setpgrp()  # a terminal's SIGHUP reaches only the parent; children see it is gone
    run_worker(settings, options)
    exit_now(0)


def spawn_workers(
    settings: Settings, options: WorkerOptions, devices: list[str]
) -> list[BaseProcess]:
    ctx = multiprocessing.get_context("spawn")
    threads = worker_threads(settings, options.num_threads, len(devices))
    children: list[BaseProcess] = []
    for device in devices:
        child_options = replace(options, device=device, num_threads=threads, parent_pid=os.getpid())
        process = ctx.Process(target=_child, args=(settings, child_options), daemon=False)
        process.start()
        children.append(process)
    return children


def forward_signals(children: Sequence[BaseProcess]) -> None:
    """SIGTERM/SIGINT to the parent reach every child: the first as a graceful stop request,
    any further one as "stop now" (see :mod:`.stopping`)."""
    received = 0

    def forward(_signum: int, _frame: FrameType | None) -> None:
        nonlocal received
        received += 1
        request = GRACEFUL_FROM_PARENT if received == 1 else NOW_FROM_PARENT
        for child in children:
            if child.is_alive() and child.pid:
                os.kill(child.pid, request)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)


def exit_code(children: Sequence[BaseProcess]) -> int:
    """0 when every child exited 0 (a graceful stop included), else 1."""
    return 0 if all(child.exitcode == 0 for child in children) else 1


def run_local(settings: Settings, options: WorkerOptions, devices: list[str]) -> int:
    """Run the planned workers and return the exit code: one runs in this process (no second
    interpreter to start), several as children this process supervises."""
    if len(devices) == 1:
        threads = worker_threads(settings, options.num_threads, 1)
        run_worker(settings, replace(options, device=devices[0], num_threads=threads))
        return 0
    children = spawn_workers(settings, options, devices)
    forward_signals(children)
    for child in children:
        child.join()
    return exit_code(children)
