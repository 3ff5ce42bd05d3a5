"""Time this project's plots against optuna.visualization on the same stored study.

    python bench/make_big_study.py --url sqlite:///big.db --trials 10000 --epochs 10
    python bench/bench_plots.py --url sqlite:///big.db --study big-10000

Ours: ``study_figure`` (or ``compare_figure``) with a fresh engine and an empty figure cache per
run, SQL read + build + ``json.dumps`` as the API would send it; median and worst of
``--repeat`` runs; "warm" is one more call on the same engine (figure cache hit).
Optuna: ``optuna.load_study`` on a fresh storage, then cold ``get_trials()`` (the read), the
matching ``optuna.visualization`` function and ``fig.to_json()``. The ratio is optuna's total
over our median. Kinds optuna has no equivalent for print "-".
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import optuna
import sqlalchemy as sa
from optuna import visualization as vis
from optuna.importance import PedAnovaImportanceEvaluator

from hpo_service.plots import PLOT_KINDS, PlotError, cache, compare_figure, study_figure


def optuna_plotter(kind: str, params: dict[str, Any]) -> Callable[[Any], Any] | None:
    two = [params["x"], params["y"]] if "x" in params else None
    return {
        "history": vis.plot_optimization_history,
        "intermediate_values": vis.plot_intermediate_values,
        "parallel_coordinate": vis.plot_parallel_coordinate,
        "slice": vis.plot_slice,
        "contour": lambda s: vis.plot_contour(s, params=two),
        "rank": lambda s: vis.plot_rank(s, params=params.get("all")),
        "param_importances": lambda s: vis.plot_param_importances(
            s, evaluator=PedAnovaImportanceEvaluator()),
        "edf": vis.plot_edf,
        "timeline": vis.plot_timeline,
        "pareto_front": vis.plot_pareto_front,
        "compare history": vis.plot_optimization_history,
        "compare edf": vis.plot_edf,
    }.get(kind)


def time_ours(
    url: str, build: Callable[[sa.Engine], dict], repeat: int
) -> tuple[list, float, int, dict]:
    """Cold runs (fresh engine, empty figure cache), then one warm run (cache hit)."""
    runs, size, fig = [], 0, {}
    for _ in range(repeat):
        cache.clear()
        engine = sa.create_engine(url)
        t0 = time.perf_counter()
        fig = build(engine)
        size = len(json.dumps(fig, separators=(",", ":"), allow_nan=False))
        runs.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    json.dumps(build(engine), separators=(",", ":"), allow_nan=False)
    warm = time.perf_counter() - t0
    engine.dispose()
    return runs, warm, size, fig


def time_optuna(url: str, names: list[str], plot: Callable[[Any], Any]) -> tuple[float, float, int]:
    storage = optuna.storages.RDBStorage(url)
    studies = [optuna.load_study(study_name=n, storage=storage) for n in names]
    t0 = time.perf_counter()
    for s in studies:
        s.get_trials(deepcopy=False)
    t1 = time.perf_counter()
    fig = plot(studies if len(studies) > 1 else studies[0])
    size = len(fig.to_json())
    t2 = time.perf_counter()
    storage.engine.dispose()
    return t1 - t0, t2 - t1, size


def contour_params(fig: dict) -> dict[str, str]:
    """The two params our contour picked, so optuna draws the same pair."""
    layout = fig["layout"]
    return {"x": layout["xaxis"]["title"]["text"], "y": layout["yaxis"]["title"]["text"]}


def rank_params(fig: dict) -> dict[str, Any]:
    """The params our rank plot paired (its axis titles), so optuna draws the same ones."""
    layout = fig["layout"]
    axes = sorted(k for k in layout if k.startswith(("xaxis", "yaxis")))
    return {"all": sorted({layout[k]["title"]["text"] for k in axes})}


def bench_kind(args: argparse.Namespace, kind: str) -> list[str] | None:
    names = [args.study, *args.compare_with]
    if kind.startswith("compare "):
        ck = kind.split()[1]
        build: Callable[[sa.Engine], dict] = lambda e: compare_figure(e, names, ck)  # noqa: E731
    else:
        build = lambda e: study_figure(e, args.study, kind)  # noqa: E731
    try:
        runs, warm, size, fig = time_ours(args.url, build, args.repeat)
    except PlotError as err:
        print(f"{kind:22s} skipped: {err}")
        return None
    row = [kind, f"{statistics.median(runs):.3f}", f"{max(runs):.3f}", f"{warm:.3f}",
           f"{size / 1e6:.3f}"]
    given = {"contour": contour_params, "rank": rank_params}.get(kind)
    plot = optuna_plotter(kind, given(fig) if given else {})
    if plot is None or args.skip_optuna:
        return [*row, "-", "-", "-", "-", "-"]
    on = names if kind.startswith("compare ") else [args.study]
    read, draw, osize = time_optuna(args.url, on, plot)
    total = read + draw
    ratio = total / statistics.median(runs)
    return [*row, f"{read:.2f}", f"{draw:.2f}", f"{total:.2f}", f"{osize / 1e6:.2f}",
            f"{ratio:.0f}x"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--study", required=True)
    ap.add_argument("--compare-with", nargs="*", default=[], metavar="STUDY",
                    help="more studies for the compare kinds (default: the study alone)")
    ap.add_argument("--kinds", nargs="*", default=None, help="subset of kinds to run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-optuna", action="store_true")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    kinds = args.kinds or [*PLOT_KINDS, "compare history", "compare edf"]
    head = ["kind", "ours s (median)", "ours s (worst)", "ours warm s", "ours MB", "optuna read s",
            "optuna plot+json s", "optuna total s", "optuna MB", "ratio"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for kind in kinds:
        row = bench_kind(args, kind)
        if row is not None:
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
