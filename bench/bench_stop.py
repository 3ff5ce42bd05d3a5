"""How long a running trial goes on after its study is stopped or its time limit passes.

Before, stop and ``budget.timeout_s`` only stopped new trials (runs went 60-90% past the limit);
now the worker stops the trial at its next epoch boundary (scheduling/halting.py). This measures,
with a real worker and the real trainer on sunspots (SQLite file, or --postgres URL):
- stop latency: seconds from ``transition(stop)`` to the trial being told;
- timeout overrun: seconds the trial ran past ``budget.timeout_s``.

    python bench/bench_stop.py [--postgres URL] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import optuna

from hpo_service.config import Settings
from hpo_service.scheduling.worker import Worker, WorkerOptions
from hpo_service.spec import parse_spec
from hpo_service.store.db import get_engine, migrate
from hpo_service.store.studies import create_study, transition


def spec(name: str, **budget: Any) -> Any:
    return parse_spec(
        {
            "name": name,
            "task": {"dataset": "sunspots", "kind": "forecasting", "lookback": 8},
            "search_space": {"hidden_units": 16, "batch_size": 64, "learning_rate": 0.01},
            "budget": {"n_trials": 1, "max_epochs": 10_000, "patience": 10_000, **budget},
            "sampler": {"type": "random", "seed": 1},
            "pruner": "none",
        }
    )


def worker(settings: Settings, name: str) -> threading.Thread:
    options = WorkerOptions(study=name, exit_when_idle=True)
    thread = threading.Thread(target=Worker(settings, options).serve, daemon=True)
    thread.start()
    return thread


def epochs_done(settings: Settings, name: str) -> int:
    trials = optuna.load_study(study_name=name, storage=settings.database_url).trials
    return len(trials[0].intermediate_values) if trials else 0


def told(settings: Settings, name: str) -> bool:
    trials = optuna.load_study(study_name=name, storage=settings.database_url).trials
    return bool(trials) and trials[0].state.is_finished()


def stop_latency(settings: Settings, name: str) -> float:
    create_study(settings, spec(name), start=True)
    thread = worker(settings, name)
    while epochs_done(settings, name) < 3:
        time.sleep(0.1)
    transition(get_engine(settings), name, "stop")
    asked = time.monotonic()
    while not told(settings, name):
        time.sleep(0.02)
    latency = time.monotonic() - asked
    thread.join()
    return latency


def timeout_overrun(settings: Settings, name: str, limit: float) -> float:
    """Seconds from the study's start to its trial being told, minus the limit (an upper
    bound: it includes polling)."""
    started = time.monotonic()
    create_study(settings, spec(name, timeout_s=limit), start=True)
    thread = worker(settings, name)
    while not told(settings, name):
        time.sleep(0.02)
    overrun = time.monotonic() - started - limit
    thread.join()
    return overrun


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="a PostgreSQL URL instead of an SQLite file")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tmp = Path(tempfile.mkdtemp())
    url = args.postgres or f"sqlite:///{tmp / 'stop.db'}"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=url, artifact_dir=tmp / "a", cache_dir=tmp / "c"
    )
    migrate(settings)
    stamp = int(time.time())
    stops = [stop_latency(settings, f"stop-{stamp}-{i}") for i in range(args.repeat)]
    overruns = [
        timeout_overrun(settings, f"late-{stamp}-{i}", args.timeout) for i in range(args.repeat)
    ]
    print(f"database: {url.split(':')[0]}")
    print(f"stop -> trial told: median {statistics.median(stops):.2f} s, max {max(stops):.2f} s")
    print(
        f"past timeout_s={args.timeout:g}: median {statistics.median(overruns):.2f} s, "
        f"max {max(overruns):.2f} s"
    )


if __name__ == "__main__":
    main()
