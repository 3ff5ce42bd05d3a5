"""GPU packing: trials per hour with M worker processes sharing each GPU (``--per-gpu M``).

Prepared for a machine with a GPU; run by hand::

    python bench/bench_gpu_packing.py                        # M = 1, 2, 4, 8 on every visible GPU
    python bench/bench_gpu_packing.py --device cpu --per-gpu 1 2 --trials-per-process 1  # dry run

For each M it creates a study of small LSTMs (hidden 128, batch 64, the co2 series, a few epochs)
with M x GPUs x ``--trials-per-process`` trials on a fresh SQLite file, runs
``hpo worker --device cuda --per-gpu M --exit-when-idle`` (on ``--device cpu``: ``--processes M``),
and reports trials per hour between the first claim and the last finished trial (process start-up
excluded), plus the wall time including start-up.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from hpo_service.config import Settings
from hpo_service.scheduling.processes import cuda_device_count
from hpo_service.spec import parse_spec
from hpo_service.store.db import dispose_engines, get_engine, migrate, session_scope
from hpo_service.store.models import TrialRun
from hpo_service.store.studies import create_study


def packing_spec(name: str, n_trials: int, epochs: int) -> dict[str, object]:
    return {
        "name": name,
        "task": {"dataset": "co2", "kind": "forecasting", "metric": "rmse", "lookback": 52},
        "search_space": {
            "learning_rate": {"low": 0.0005, "high": 0.01, "log": True},
            "batch_size": 64,
            "hidden_units": 128,
            "optimizer": "adam",
            "cell": "lstm",
        },
        "budget": {"n_trials": n_trials, "max_epochs": epochs},
        "sampler": {"type": "random", "seed": 0},
        "pruner": "none",
    }


def measure(
    args: argparse.Namespace, per_gpu: int, gpus: int, root: Path
) -> tuple[int, float, float]:
    """(trials, trials per hour while training, wall seconds including start-up)."""
    url = f"sqlite:///{root / f'packing-{per_gpu}.db'}"
    settings = Settings(_env_file=None, database_url=url, artifact_dir=root / "artifacts")  # type: ignore[call-arg]
    migrate(settings)
    n_trials = per_gpu * gpus * args.trials_per_process
    spec = parse_spec(packing_spec(f"packing-{per_gpu}", n_trials, args.epochs))
    create_study(settings, spec, start=True)
    placement = (
        ["--processes", str(per_gpu)] if args.device == "cpu" else ["--per-gpu", str(per_gpu)]
    )
    command = [sys.executable, "-m", "hpo_service", "worker", "--study", spec.name]
    command += ["--device", args.device, *placement, "--exit-when-idle"]
    env = {**os.environ, "HPO_DATABASE_URL": url, "HPO_ARTIFACT_DIR": str(root / "artifacts")}
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    wall = time.perf_counter() - started
    with session_scope(get_engine(settings)) as session:
        first, last, done = session.execute(
            select(
                func.min(TrialRun.started_at), func.max(TrialRun.finished_at), func.count()
            ).where(TrialRun.status == "complete")
        ).one()
    dispose_engines()
    if not done or first is None or last is None:
        raise RuntimeError(f"M={per_gpu}: no trial completed")
    return int(done), 3600 * int(done) / (last - first).total_seconds(), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--per-gpu", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--trials-per-process", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    gpus = 1 if args.device == "cpu" else cuda_device_count()
    if gpus == 0:
        raise SystemExit("no CUDA device is visible (use --device cpu for a dry run)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for per_gpu in args.per_gpu:
            done, per_hour, wall = measure(args, per_gpu, gpus, Path(tmp))
            rows.append((per_gpu, done, per_hour, wall))
            print(f"M={per_gpu}: {done} trials, {per_hour:8.0f} trials/h, {wall:6.1f} s wall")
    base = rows[0][2]
    print(f"\n{args.device} x {gpus}, {args.epochs} epochs per trial (co2, LSTM 128, batch 64)")
    print("M   trials/h   vs M=" + str(rows[0][0]))
    for per_gpu, _, per_hour, _ in rows:
        print(f"{per_gpu:<3} {per_hour:9.0f}   {per_hour / base:5.2f}x")


if __name__ == "__main__":
    main()
