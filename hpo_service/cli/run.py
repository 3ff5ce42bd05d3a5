"""``hpo run`` (a study from a spec file to its best trial, on local workers) and ``hpo worker``.

Both set up an empty database themselves (:func:`~hpo_service.store.db.ensure_schema`) and check
the study's dataset before any process starts (:func:`~hpo_service.store.intake.check_data`), so
the usual first mistakes end in one line and exit 2. ``hpo run`` exits 1 when the study ends
without a single complete trial, after one line per kind of failure; the workers' log (with the
failed trials' tracebacks) is shown only with ``--verbose``, because a traceback per trial buried
the one reason that mattered.
"""

from __future__ import annotations

import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hpo_service.cli.baselines import fields_for, print_baselines
from hpo_service.cli.common import console, err_console, fmt_value, settings
from hpo_service.cli.studies import print_best, study_limits
from hpo_service.config import Settings
from hpo_service.data.sources import DataRoots
from hpo_service.store import db
from hpo_service.store.failures import failure_kinds, failure_lines
from hpo_service.store.intake import check_data, intake_file
from hpo_service.store.studies import (
    StudyExists,
    StudyInfo,
    create_study,
    get_study,
    summarize,
    transition,
)

DeviceOpt = Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto (default: HPO_DEVICE).")]
#: torch threads per worker process (``HPO_WORKER_THREADS``; default: cores / local workers).
ThreadsOpt = Annotated[
    int | None,
    typer.Option(min=1, max=256, help="torch threads per worker (default: cores / local workers)."),
]
#: Log level of ``hpo run``'s workers without ``--verbose``: their warnings and failed trials are
#: summed up at the end instead.
QUIET_LOG_LEVEL = "ERROR"


def _ensure_running(cfg: Settings, file: Path) -> StudyInfo:
    roots = DataRoots.from_settings(cfg)
    spec = intake_file(db.get_engine(cfg), file, study_limits(cfg), roots=roots)
    engine = db.get_engine(cfg)
    try:
        info = create_study(cfg, spec, start=True)
        err_console.print(f"created study {info.name}")
    except StudyExists:
        info = get_study(engine, spec.name)
        if info.spec != spec:
            err_console.print(f"[yellow]study {spec.name} exists; using its stored spec[/yellow]")
        if spec.budget.n_trials != info.n_trials:  # re-running never changes a budget silently
            err_console.print(
                f"its budget stays {info.n_trials} trials; to change it: "
                f"hpo study extend {spec.name} --trials {spec.budget.n_trials}",
                highlight=False,
                soft_wrap=True,
            )
        check_data(cfg, info.spec)
        if info.state in ("created", "paused"):
            info = transition(engine, spec.name, "start")
    return info


def _detail(summary: dict[str, Any]) -> str:
    counts = summary["counts"]
    text = " ".join(
        f"{label} {counts[key]}"
        for label, key in (("complete", "COMPLETE"), ("pruned", "PRUNED"), ("failed", "FAIL"))
    )
    text += f" running {counts['RUNNING']}"
    best = summary["best"]
    return f"{text} best {fmt_value(best['value'])}" if best else text


def _watch(cfg: Settings, info: StudyInfo, children: list[BaseProcess]) -> None:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console) as progress:
        task = progress.add_task(info.name, total=info.n_trials, detail="")
        while True:
            alive = any(child.is_alive() for child in children)
            summary = summarize(cfg, get_study(db.get_engine(cfg), info.name))
            progress.update(task, completed=summary["finished"], detail=_detail(summary))
            if not alive:
                return
            time.sleep(1.0)


def _report(cfg: Settings, info: StudyInfo) -> bool:
    """Print the study's end state, its failures by kind and its best trial; True when at least
    one trial completed."""
    summary = summarize(cfg, get_study(db.get_engine(cfg), info.name))
    console.print(
        f"study {summary['name']} is {summary['state']}: "
        + ", ".join(f"{k} {v}" for k, v in summary["counts"].items() if v),
        highlight=False,
    )
    for line in failure_lines(failure_kinds(db.get_engine(cfg), info.id)):
        err_console.print(line, highlight=False, soft_wrap=True, markup=False)
    print_best(summary)
    print_baselines(console, summary["metrics"][0], fields_for(cfg, info, summary))
    return bool(summary["counts"]["COMPLETE"])


def run(
    file: Path,
    workers: Annotated[int, typer.Option(min=1, help="Local worker processes.")] = 1,
    device: DeviceOpt = "",
    threads: ThreadsOpt = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the workers' log, with tracebacks.")
    ] = False,
) -> None:
    """Create the study if needed, run K local workers until its budget is spent, show progress,
    then print the best trial. Exit 1 when no trial completed (one line per kind of failure),
    2 on bad input."""
    from hpo_service.scheduling.processes import (
        DevicePlanError,
        exit_code,
        forward_signals,
        plan_devices,
        spawn_workers,
    )
    from hpo_service.scheduling.worker import WorkerOptions

    cfg = settings()
    db.ensure_schema(cfg)
    try:
        devices = plan_devices(device or cfg.device, workers, None)
    except DevicePlanError as error:
        raise typer.BadParameter(str(error), param_hint="--device") from None
    info = _ensure_running(cfg, file)
    options = WorkerOptions(
        study=info.name, exit_when_idle=True, num_threads=threads, tracebacks=verbose
    )
    child_cfg = cfg if verbose else cfg.model_copy(update={"log_level": QUIET_LOG_LEVEL})
    children = spawn_workers(child_cfg, options, devices)
    forward_signals(children)
    _watch(cfg, info, children)
    for child in children:
        child.join()
    any_complete = _report(cfg, info)
    raise typer.Exit(exit_code(children) or (0 if any_complete else 1))


def worker(
    study: Annotated[str | None, typer.Option(help="Only this study.")] = None,
    processes: Annotated[
        int | None, typer.Option(min=1, help="Worker processes on this machine (default 1).")
    ] = None,
    device: DeviceOpt = "",
    per_gpu: Annotated[
        int | None, typer.Option(min=1, help="Processes per GPU (M x GPUs in all).")
    ] = None,
    exit_when_idle: Annotated[
        bool, typer.Option(help="Exit once the study's budget is met (all served studies).")
    ] = False,
    threads: ThreadsOpt = None,
) -> None:
    """Claim and train trials of running studies until stopped. SIGTERM/SIGINT: finish the
    epoch, queue the trial again, exit 0; a second signal stops at once (the trial is recovered
    by the reaper). Without --exit-when-idle an idle worker polls for new work."""
    from hpo_service.scheduling.processes import DevicePlanError, exit_now, plan_devices, run_local
    from hpo_service.scheduling.worker import WorkerOptions

    cfg = settings()
    db.ensure_schema(cfg)
    if study:  # an unknown study or a missing dataset: one clear error, exit 2
        check_data(cfg, get_study(db.get_engine(cfg), study).spec)
    try:
        devices = plan_devices(device or cfg.device, processes, per_gpu)
    except DevicePlanError as error:
        raise typer.BadParameter(str(error), param_hint="--device/--per-gpu") from None
    err_console.print(
        f"starting {len(devices)} worker process(es) on {', '.join(sorted(set(devices)))}"
    )
    options = WorkerOptions(study=study, exit_when_idle=exit_when_idle, num_threads=threads)
    exit_now(run_local(cfg, options, devices))


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("worker")(worker)
