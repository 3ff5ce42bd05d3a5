"""Local worker processes: spawn K, place them on devices, forward signals, wait.

Each child is a fresh interpreter (``spawn``), so no database connection or CUDA context is shared
across a fork. CPU workers split the machine's cores between them so parallel trials do not
oversubscribe torch's thread pool.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from dataclasses import replace
from multiprocessing.process import BaseProcess
from types import FrameType

from hpo_service.config import Settings
from hpo_service.worker import WorkerOptions, run_worker


def cuda_device_count() -> int:
    try:
        import torch

        return int(torch.cuda.device_count())
    except Exception:
        return 0


def plan_devices(device: str, processes: int, per_gpu: int | None) -> list[str]:
    """The device of each process. ``per_gpu`` packs that many processes on every visible GPU."""
    if device == "auto":
        device = "cuda" if cuda_device_count() else "cpu"
    if device == "cuda" and per_gpu:
        gpus = max(1, cuda_device_count())
        return [f"cuda:{i % gpus}" for i in range(gpus * per_gpu)]
    if device == "cuda":
        gpus = max(1, cuda_device_count())
        return [f"cuda:{i % gpus}" for i in range(processes)]
    return [device] * processes


def threads_per_process(processes: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, processes))


def _child(settings: Settings, options: WorkerOptions) -> None:
    raise SystemExit(0 if run_worker(settings, options) >= 0 else 1)


def spawn_workers(
    settings: Settings, options: WorkerOptions, devices: list[str]
) -> list[BaseProcess]:
    ctx = multiprocessing.get_context("spawn")
    threads = options.num_threads or threads_per_process(len(devices))
    children: list[BaseProcess] = []
    for device in devices:
        child_options = replace(options, device=device, num_threads=threads)
        process = ctx.Process(target=_child, args=(settings, child_options), daemon=False)
        process.start()
        children.append(process)
    return children


def forward_signals(children: list[BaseProcess]) -> None:
    """SIGTERM/SIGINT to the parent reach every child; each child handles its own second signal."""

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.is_alive() and child.pid:
                os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)


def exit_code(children: list[BaseProcess]) -> int:
    codes = [child.exitcode for child in children]
    return 0 if all(code == 0 for code in codes) else 1
