"""Forecasting target transforms on statsmodels' weekly co2 series: one fixed configuration
trained with each transform, test RMSE in ppm (original units, inverted from the transform).

Run by hand (not a test; about two minutes on a loaded 2-core machine):

    python bench/bench_transforms.py [--epochs 10]

It shows whether a transform helps one configuration; a study can search
``search_space.target_transform`` and let the trials decide.
"""

from __future__ import annotations

import argparse
import time

from hpo_service.data import load_dataset
from hpo_service.spec import TaskSpec
from hpo_service.train import TrainConfig, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    config = TrainConfig(
        learning_rate=0.005, batch_size=64, hidden_units=32, optimizer="adam",
        max_epochs=args.epochs, metric="rmse", num_threads=1,
    )  # fmt: skip
    for transform in ("none", "diff", "seasonal_diff"):
        task = TaskSpec(
            dataset="co2", kind="forecasting", lookback=52, target_transform=transform, season=52
        )
        data = load_dataset(task, None)
        started = time.perf_counter()
        result = fit(config, data)
        print(
            f"co2 {transform}: test rmse {result.test_metrics['rmse']:.3f} ppm "
            f"(n={result.test_n}), best epoch {result.best_epoch}, "
            f"{time.perf_counter() - started:.0f} s"
        )


if __name__ == "__main__":
    main()
