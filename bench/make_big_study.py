"""Generate a big, realistic LSTM-tuning study straight into Optuna's tables (bulk INSERTs).

    python bench/make_big_study.py --url sqlite:///big.db --trials 10000 --epochs 10

The study is created through Optuna (so the schema and version rows are Optuna's own) and then
filled with executemany INSERTs: ~10,000 trials in a few seconds instead of minutes through
``study.add_trials``. The result loads with ``optuna.load_study``. Params mimic the service's
search space: optimizer (categorical), learning_rate (log float), batch_size (categorical int),
hidden_units (int), num_layers (int), dropout (float). About 25% of trials are pruned part-way,
2% fail, the rest complete all epochs; two to four workers overlap in time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np
import optuna
import sqlalchemy as sa
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)
from optuna.storages._rdb import models
from optuna.trial import TrialState

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "rmsprop")
OPT_PENALTY = np.array([0.25, 0.12, 0.0, -0.02, 0.06])
BATCH_SIZES = (16, 32, 64, 128, 256)
DISTRIBUTIONS = {
    "optimizer": CategoricalDistribution(OPTIMIZERS),
    "learning_rate": FloatDistribution(1e-5, 1e-1, log=True),
    "batch_size": CategoricalDistribution(BATCH_SIZES),
    "hidden_units": IntDistribution(16, 256),
    "num_layers": IntDistribution(1, 3),
    "dropout": FloatDistribution(0.0, 0.5),
}


def sample_params(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Internal (float) representation per param: categorical = index into choices."""
    return {
        "optimizer": rng.integers(0, len(OPTIMIZERS), n).astype(float),
        "learning_rate": np.exp(rng.uniform(np.log(1e-5), np.log(1e-1), n)),
        "batch_size": rng.integers(0, len(BATCH_SIZES), n).astype(float),
        "hidden_units": rng.integers(16, 257, n).astype(float),
        "num_layers": rng.integers(1, 4, n).astype(float),
        "dropout": rng.uniform(0.0, 0.5, n),
    }


def learning_curves(rng: np.random.Generator, p: dict[str, np.ndarray], epochs: int) -> np.ndarray:
    """Validation loss per epoch, shape (n, epochs): decays towards a param-dependent floor."""
    n = len(p["learning_rate"])
    floor = (
        0.30
        + 0.08 * (np.log10(p["learning_rate"]) + 2.5) ** 2
        + OPT_PENALTY[p["optimizer"].astype(int)]
        + 0.03 * np.abs(p["batch_size"] - 2)
        + 0.04 * (p["hidden_units"] < 48)
        + 0.1 * (p["dropout"] - 0.2) ** 2
        - 0.015 * p["num_layers"]
        + rng.normal(0, 0.02, n)
    )
    start = floor + rng.uniform(0.5, 1.5, n)
    rate = rng.uniform(0.2, 0.8, n)
    e = np.arange(1, epochs + 1)
    curve = floor[:, None] + (start - floor)[:, None] * np.exp(-rate[:, None] * e[None, :])
    return curve + rng.normal(0, 0.01, curve.shape)


def trial_rows(
    study_id: int, rng: np.random.Generator, n: int, epochs: int
) -> tuple[list[dict], np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    params = sample_params(rng, n)
    curves = learning_curves(rng, params, epochs)
    states = np.full(n, 0)  # 0 complete, 1 pruned, 2 fail
    final = curves[:, -1]
    prune_candidates = final > np.quantile(final, 0.7)
    states[prune_candidates & (rng.random(n) < 0.85)] = 1
    states[rng.random(n) < 0.02] = 2
    n_steps = np.where(states == 0, epochs, rng.integers(1, max(2, epochs // 2) + 1, n))
    n_steps[states == 2] = rng.integers(0, epochs, int((states == 2).sum()))
    secs_per_epoch = rng.uniform(1.0, 6.0, n)
    durations = n_steps * secs_per_epoch + rng.uniform(0.5, 2.0, n)
    workers = 3
    begin = dt.datetime(2025, 1, 1, 8, 0, 0)
    free_at = np.zeros(workers)
    starts = np.zeros(n)
    for i in range(n):  # trials go to whichever worker is free first
        w = int(np.argmin(free_at))
        starts[i] = free_at[w] + rng.uniform(0.05, 0.3)
        free_at[w] = starts[i] + durations[i]
    state_names = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    rows = [
        {
            "number": i,
            "study_id": study_id,
            "state": state_names[states[i]],
            "datetime_start": begin + dt.timedelta(seconds=float(starts[i])),
            "datetime_complete": begin + dt.timedelta(seconds=float(starts[i] + durations[i])),
        }
        for i in range(n)
    ]
    return rows, curves, n_steps, params | {"_state": states}


def insert_all(
    engine: sa.Engine, study_id: int, n: int, epochs: int, seed: int, objectives: int = 1
) -> None:
    rng = np.random.default_rng(seed)
    rows, curves, n_steps, params = trial_rows(study_id, rng, n, epochs)
    states = params.pop("_state")
    with engine.begin() as conn:
        conn.execute(sa.insert(models.TrialModel.__table__), rows)
        ids = dict(
            conn.execute(
                sa.text("SELECT number, trial_id FROM trials WHERE study_id = :s"), {"s": study_id}
            ).all()
        )
        trial_ids = [ids[i] for i in range(n)]
        finite = models.TrialValueModel.TrialValueType.FINITE
        values = [
            {"trial_id": trial_ids[i], "objective": 0, "value": float(curves[i, n_steps[i] - 1]),
             "value_type": finite}
            for i in range(n) if states[i] == 0 or (states[i] == 1 and objectives == 1)
        ]
        if objectives == 2:  # second objective: model size (thousands of weights), minimised
            size = params["hidden_units"] ** 2 * params["num_layers"] * 4 / 1000
            values += [{"trial_id": trial_ids[i], "objective": 1, "value": float(size[i]),
                        "value_type": finite} for i in range(n) if states[i] == 0]
        ifinite = models.TrialIntermediateValueModel.TrialIntermediateValueType.FINITE
        inter = [
            {"trial_id": trial_ids[i], "step": s, "intermediate_value": float(curves[i, s]),
             "intermediate_value_type": ifinite}
            for i in range(n) for s in range(int(n_steps[i]))
        ]
        dist_json = {k: distribution_to_json(d) for k, d in DISTRIBUTIONS.items()}
        prows = [
            {"trial_id": trial_ids[i], "param_name": k, "param_value": float(v[i]),
             "distribution_json": dist_json[k]}
            for k, v in params.items() for i in range(n)
        ]
        conn.execute(sa.insert(models.TrialValueModel.__table__), values)
        conn.execute(sa.insert(models.TrialIntermediateValueModel.__table__), inter)
        conn.execute(sa.insert(models.TrialParamModel.__table__), prows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="SQLAlchemy URL of the Optuna storage")
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--study", default=None, help="study name (default big-<trials>)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--objectives", type=int, choices=(1, 2), default=1,
                    help="2: also minimise model size (for pareto_front)")
    args = ap.parse_args()
    name = args.study or f"big-{args.trials}"
    t0 = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(args.url)
    study = optuna.create_study(storage=storage, study_name=name,
                                directions=["minimize"] * args.objectives)
    study_id = study._study_id
    insert_all(storage.engine, study_id, args.trials, args.epochs, args.seed, args.objectives)
    if storage.engine.dialect.name == "postgresql":  # fresh statistics, as autovacuum would
        with storage.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))
    print(f"study {name!r}: {args.trials} trials x {args.epochs} epochs "
          f"in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
