"""``hpo migrate``, ``hpo study ...``, ``hpo run`` and ``hpo worker``."""

from __future__ import annotations

import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hpo_service.cli.baselines import fields_for, print_baselines
from hpo_service.cli.common import console, err_console, print_json, settings
from hpo_service.config import Settings
from hpo_service.spec import SpecLimits
from hpo_service.store import db
from hpo_service.store.intake import intake_file
from hpo_service.store.studies import (
    StudyExists,
    StudyInfo,
    create_study,
    delete_study,
    get_study,
    list_studies,
    summarize,
    transition,
)

study_app = typer.Typer(help="Create, list, inspect and control studies.", no_args_is_help=True)

DeviceOpt = Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto (default: HPO_DEVICE).")]


def migrate() -> None:
    """Create or upgrade Optuna's and the service's tables (idempotent, safe to run in parallel)."""
    cfg = settings()
    before, after = db.migrate(cfg)
    note = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    console.print(f"database {note} revision {after}")


def _limits(cfg: Settings) -> SpecLimits:
    """Studies are trained by workers, which read only the data roots: no local-path opt-in
    here (it is for `hpo train`, which reads in this process)."""
    return cfg.spec_limits()


@study_app.command("create")
def study_create(
    file: Path, start: Annotated[bool, typer.Option(help="Start it at once.")] = False
) -> None:
    """Create a study from a YAML or JSON spec."""
    cfg = settings()
    db.check_schema(cfg)
    info = create_study(cfg, intake_file(db.get_engine(cfg), file, _limits(cfg)), start=start)
    console.print(f"created study [bold]{info.name}[/bold] ({info.state})")


@study_app.command("list")
def study_list(
    state: Annotated[str | None, typer.Option(help="Only studies in this state.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List studies, newest first."""
    cfg = settings()
    db.check_schema(cfg)
    infos, _ = list_studies(db.get_engine(cfg), state=state, limit=1000)
    summaries = [summarize(cfg, info) for info in infos]
    if as_json:
        print_json([{k: v for k, v in s.items() if k != "spec"} for s in summaries])
        return
    table = Table("name", "state", "finished", "best", "created")
    for s in summaries:
        best = s["best"]["value"] if s["best"] else "-"
        table.add_row(
            s["name"],
            s["state"],
            f"{s['finished']}/{s['n_trials']}",
            str(best),
            s["created_at"][:19],
        )
    console.print(table)


@study_app.command("show")
def study_show(
    name: str, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Show a study's state, trial counts and best trial."""
    cfg = settings()
    db.check_schema(cfg)
    info = get_study(db.get_engine(cfg), name)
    summary = summarize(cfg, info)
    fields = fields_for(cfg, info, summary)
    if as_json:
        print_json({**summary, **fields})
        return
    console.print(
        f"[bold]{summary['name']}[/bold]  {summary['state']}  "
        f"{summary['finished']}/{summary['n_trials']} finished"
    )
    console.print("counts: " + ", ".join(f"{k} {v}" for k, v in summary["counts"].items()))
    _print_best(summary)
    print_baselines(console, summary["metrics"][0], fields)


def _print_best(summary: dict[str, Any]) -> None:
    best = summary["best"]
    if best is None:
        console.print("best: none yet")
        return
    console.print(f"best: trial {best['number']}  {summary['metrics'][0]} = {best['value']:.6g}")
    for key, value in best["params"].items():
        console.print(f"  {key} = {value}")


def _action(action: str) -> None:
    @study_app.command(action)
    def command(name: str) -> None:
        cfg = settings()
        db.check_schema(cfg)
        info = transition(db.get_engine(cfg), name, action)
        console.print(f"study {info.name} is {info.state}")

    command.__doc__ = f"{action.capitalize()} a study."


for _name in ("start", "pause", "resume", "stop"):
    _action(_name)


@study_app.command("delete")
def study_delete(
    name: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False
) -> None:
    """Delete a study, its trials and its artifacts."""
    cfg = settings()
    db.check_schema(cfg)
    if not yes and not typer.confirm(f"delete study {name} and all its trials?"):
        raise typer.Exit(1)
    delete_study(cfg, name)
    console.print(f"deleted {name}")


def _ensure_running(cfg: Settings, file: Path) -> StudyInfo:
    spec = intake_file(db.get_engine(cfg), file, _limits(cfg))
    engine = db.get_engine(cfg)
    try:
        info = create_study(cfg, spec, start=True)
        err_console.print(f"created study {info.name}")
    except StudyExists:
        info = get_study(engine, spec.name)
        if info.spec != spec:
            err_console.print(f"[yellow]study {spec.name} exists; using its stored spec[/yellow]")
        if info.state in ("created", "paused"):
            info = transition(engine, spec.name, "start")
    return info


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
            c, best = summary["counts"], summary["best"]
            detail = (
                f"complete {c['COMPLETE']} pruned {c['PRUNED']} failed {c['FAIL']} "
                f"running {c['RUNNING']} best {best['value']:.5g}"
                if best
                else f"complete {c['COMPLETE']} pruned {c['PRUNED']} failed {c['FAIL']} "
                f"running {c['RUNNING']}"
            )
            progress.update(task, completed=summary["finished"], detail=detail)
            if not alive:
                return
            time.sleep(1.0)


#: torch threads per worker process (``HPO_WORKER_THREADS``; default: cores / local workers).
ThreadsOpt = Annotated[
    int | None,
    typer.Option(min=1, max=256, help="torch threads per worker (default: cores / local workers)."),
]


def run(
    file: Path,
    workers: Annotated[int, typer.Option(min=1, help="Local worker processes.")] = 1,
    device: DeviceOpt = "",
    threads: ThreadsOpt = None,
) -> None:
    """Create the study if needed, run K local workers until its budget is spent, show progress,
    then print the best trial."""
    from hpo_service.scheduling.processes import (
        DevicePlanError,
        exit_code,
        forward_signals,
        plan_devices,
        spawn_workers,
    )
    from hpo_service.scheduling.worker import WorkerOptions

    cfg = settings()
    db.check_schema(cfg)
    try:
        devices = plan_devices(device or cfg.device, workers, None)
    except DevicePlanError as error:
        raise typer.BadParameter(str(error), param_hint="--device") from None
    info = _ensure_running(cfg, file)
    options = WorkerOptions(study=info.name, exit_when_idle=True, num_threads=threads)
    children = spawn_workers(cfg, options, devices)
    forward_signals(children)
    _watch(cfg, info, children)
    for child in children:
        child.join()
    summary = summarize(cfg, get_study(db.get_engine(cfg), info.name))
    console.print(
        f"study {summary['name']} is {summary['state']}: "
        + ", ".join(f"{k} {v}" for k, v in summary["counts"].items() if v)
    )
    _print_best(summary)
    print_baselines(console, summary["metrics"][0], fields_for(cfg, info, summary))
    raise typer.Exit(exit_code(children))


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
    db.check_schema(cfg)
    if study:
        get_study(db.get_engine(cfg), study)  # unknown study: one clear error, exit 2
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
    app.command("migrate")(migrate)
    app.add_typer(study_app, name="study")
    app.command("run")(run)
    app.command("worker")(worker)
