"""What the dashboard's study page asks the API for, timed on a big study (default 10,000 trials).

    python bench/bench_dashboard.py                                  # SQLite file in a temp dir
    python bench/bench_dashboard.py --url postgresql://postgres@127.0.0.1:5432/hpo_bench

The first view of a study page is three requests (the browser sends them in parallel): the study
summary, one page of 50 trials and the ``history`` figure. Every other plot tab is fetched when
it is opened, and live progress polls ``trials?after=CURSOR``. This runs the real app in process
(no network) and prints time and bytes of each, cold (first request) and warm (best of
``--repeat``); for reference, optuna-dashboard 0.21 answered its study-detail request on the same
10,000-trial database in 7.1 s cold, 2.1 s warm, with a 20 MB body.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FIRST_VIEW = ("summary", "trials page", "history plot")


def make_study(settings: Any, name: str, trials: int, epochs: int) -> None:
    """The service's study record plus bulk-inserted Optuna trials (bench/make_big_study.py)."""
    from hpo_service.spec import parse_spec
    from hpo_service.store.db import get_engine, get_storage
    from hpo_service.store.studies import create_study

    spec = parse_spec(
        {
            "name": name,
            "task": {"dataset": "sunspots", "kind": "forecasting", "metric": "rmse"},
            "search_space": {
                "optimizer": ["sgd", "momentum", "adam", "adamw", "rmsprop"],
                "learning_rate": {"low": 1e-5, "high": 0.1, "log": True},
                "batch_size": [16, 32, 64, 128, 256],
                "hidden_units": {"low": 16, "high": 256},
                "num_layers": {"low": 1, "high": 3},
                "dropout": {"low": 0.0, "high": 0.5},
            },
            "budget": {"n_trials": trials, "max_epochs": epochs},
        }
    )
    create_study(settings, spec)
    loader = importlib.util.spec_from_file_location("make_big_study", HERE / "make_big_study.py")
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    storage = get_storage(settings)
    module.insert_all(get_engine(settings), storage.get_study_id_from_name(name), trials, epochs, 0)


def timed(client: Any, path: str, params: dict[str, str] | None = None) -> tuple[float, int]:
    start = time.perf_counter()
    response = client.get(path, params=params)
    seconds = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"GET {path} {params or ''}: {response.status_code} {response.text[:300]}")
    return seconds, len(response.content)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=None, help="database URL (default: a new SQLite file)")
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--study", default=None, help="study name (default dash-<trials>)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from fastapi.testclient import TestClient

    from hpo_service.api.app import create_app
    from hpo_service.config import Settings
    from hpo_service.store.db import get_engine, migrate
    from hpo_service.store.studies import StudyNotFound, get_study
    from hpo_service.web.routes import mount_dashboard

    tmp = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    url = args.url or f"sqlite:///{tmp / 'hpo.db'}"
    name = args.study or f"dash-{args.trials}"
    settings = Settings(
        _env_file=None,
        database_url=url,
        artifact_dir=tmp / "artifacts",  # type: ignore[call-arg]
        cache_dir=tmp / "cache",
        device="cpu",
    )
    migrate(settings)
    try:
        get_study(get_engine(settings), name)
    except StudyNotFound:
        start = time.perf_counter()
        make_study(settings, name, args.trials, args.epochs)
        print(
            f"made {name!r}: {args.trials} trials x {args.epochs} epochs "
            f"in {time.perf_counter() - start:.1f} s"
        )

    app = create_app(settings)
    mount_dashboard(app)
    base = f"/api/studies/{name}"
    requests: dict[str, tuple[str, dict[str, str] | None]] = {
        "summary": (base, None),
        "trials page": (f"{base}/trials", {"limit": "50", "order": "desc"}),
        "history plot": (f"{base}/plots/history", None),
    }
    from hpo_service.plots import PLOT_KINDS

    with TestClient(app) as client:
        results: dict[str, list[tuple[float, int]]] = {key: [] for key in requests}
        for key, (path, params) in requests.items():  # the app's first requests: cold
            results[key].append(timed(client, path, params))
        cursor = client.get(f"{base}/trials", params={"limit": "1"}).json()["next_after"]
        requests["poll (nothing new)"] = (f"{base}/trials", {"after": cursor, "limit": "1000"})
        for kind in PLOT_KINDS:
            if kind not in ("history", "pareto_front"):
                requests[f"tab {kind}"] = (f"{base}/plots/{kind}", None)
        for key in requests:
            results.setdefault(key, [])
        for _ in range(max(1, args.repeat)):
            for key, (path, params) in requests.items():
                results[key].append(timed(client, path, params))

    dialect = url.split(":", 1)[0]
    print(
        f"\n{args.trials:,}-trial study on {dialect}, app in process "
        f"(cold = first request, warm = best of the next {args.repeat})"
    )
    print(f"{'request':32} {'cold s':>8} {'warm s':>8} {'kB':>8}")
    for key, runs in results.items():
        print(f"{key:32} {runs[0][0]:8.3f} {min(s for s, _ in runs):8.3f} {runs[0][1] / 1e3:8.1f}")
    cold = sum(results[k][0][0] for k in FIRST_VIEW)
    warm = sum(min(s for s, _ in results[k]) for k in FIRST_VIEW)
    size = sum(results[k][0][1] for k in FIRST_VIEW)
    print(
        f"\nstudy page first view ({', '.join(FIRST_VIEW)}; sequential, the browser sends them"
        f" in parallel): {cold:.3f} s cold, {warm:.3f} s warm, {size / 1e3:.0f} kB"
    )
    print(
        f"optuna-dashboard 0.21 study detail (issue 6): 7.1 s cold, 2.1 s warm, 20 MB -> "
        f"{7.1 / cold:.0f}x / {2.1 / warm:.0f}x faster, {20e6 / size:.0f}x smaller"
    )
    if size > 1_000_000 or warm > 0.5:
        sys.exit("first view over budget (0.5 s, 1 MB)")


if __name__ == "__main__":
    main()
