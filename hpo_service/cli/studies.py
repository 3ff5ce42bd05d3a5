"""``hpo migrate`` and ``hpo study ...`` (``hpo run`` and ``hpo worker`` are in :mod:`.run`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hpo_service.cli.baselines import fields_for, print_baselines
from hpo_service.cli.common import console, fmt_value, print_json, settings
from hpo_service.config import Settings
from hpo_service.data.sources import DataRoots
from hpo_service.spec import SpecLimits
from hpo_service.store import db
from hpo_service.store.intake import check_data, intake_file
from hpo_service.store.studies import (
    create_study,
    delete_study,
    extend_budget,
    get_study,
    list_studies,
    summarize,
    transition,
)

study_app = typer.Typer(help="Create, list, inspect and control studies.", no_args_is_help=True)


def migrate() -> None:
    """Create or upgrade Optuna's and the service's tables (idempotent, safe to run in parallel)."""
    cfg = settings()
    before, after = db.migrate(cfg)
    note = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    console.print(f"database {note} revision {after}")


def study_limits(cfg: Settings) -> SpecLimits:
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
    spec = intake_file(
        db.get_engine(cfg), file, study_limits(cfg), roots=DataRoots.from_settings(cfg)
    )
    info = create_study(cfg, spec, start=start)
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
        best = fmt_value(s["best"]["value"]) if s["best"] else "-"
        table.add_row(
            s["name"],
            s["state"],
            f"{s['finished']}/{s['n_trials']}",
            best,
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
    print_best(summary)
    print_baselines(console, summary["metrics"][0], fields)


def print_best(summary: dict[str, Any]) -> None:
    best = summary["best"]
    if best is None:
        console.print("best: none yet")
        return
    metric, value = summary["metrics"][0], fmt_value(best["value"])
    console.print(f"best: trial {best['number']}  {metric} = {value}", highlight=False)
    for line in held_out_lines(metric, best):
        console.print(f"  {line}", highlight=False)
    for key, param in best["params"].items():
        console.print(f"  {key} = {fmt_value(param)}", highlight=False)


def held_out_lines(metric: str, best: dict[str, Any]) -> list[str]:
    """The best trial's test figure with the number of examples it rests on (``test_n``), and
    its refit's figure on the same test split when it has one: a test accuracy of 1.0 on 14
    rows and on 872 are different claims."""
    count = best.get("test_n")
    if count == 0:
        return ["no test split (test_fraction 0): no test figure"]
    examples = f" ({count} examples)" if isinstance(count, int) else ""
    lines = []
    sets = {"test": best.get("test_metrics"), "refit test": best.get("refit_test_metrics")}
    for label, figures in sets.items():
        figure = (figures or {}).get(metric)
        if isinstance(figure, int | float):
            lines.append(f"{label} {metric} {fmt_value(figure)}{examples}")
    if len(lines) == 2:
        lines[1] += ", retrained on train+validation; its model serves predictions"
    return lines + ensemble_lines(metric, best.get("ensemble"))


def ensemble_lines(metric: str, ensemble: dict[str, Any] | None) -> list[str]:
    """The study's ensemble of its best trials (``task.ensemble_trials``): its members and its
    figures, test with the examples it rests on; it is what serves predictions."""
    if not ensemble:
        return []
    members = ", ".join(str(number) for number in ensemble["members"])
    figures = []
    for split, values in (
        ("validation", ensemble.get("validation")),
        ("test", ensemble.get("test")),
    ):
        figure = (values or {}).get(metric)
        if isinstance(figure, int | float):
            count = f" ({ensemble.get('test_n')} examples)" if split == "test" else ""
            figures.append(f"{split} {metric} {fmt_value(figure)}{count}")
    shown = "; ".join(figures) or "no figures"
    return [f"ensemble of trials {members}: {shown}; it serves predictions"]


def _action(action: str) -> None:
    @study_app.command(action)
    def command(name: str) -> None:
        cfg = settings()
        db.check_schema(cfg)
        if action in ("start", "resume"):  # fail fast: a missing dataset fails every trial
            check_data(cfg, get_study(db.get_engine(cfg), name).spec)
        info = transition(db.get_engine(cfg), name, action)
        console.print(f"study {info.name} is {info.state}")

    command.__doc__ = f"{action.capitalize()} a study."


for _name in ("start", "pause", "resume", "stop"):
    _action(_name)


@study_app.command("extend")
def study_extend(
    name: str,
    trials: Annotated[
        int, typer.Option("--trials", min=1, max=1_000_000, help="The new trial budget.")
    ],
) -> None:
    """Set a study's trial budget to N: not below the trials it already used; a completed or
    failed study given more budget runs again (a stopped one stays stopped)."""
    cfg = settings()
    db.check_schema(cfg)
    info = extend_budget(db.get_engine(cfg), name, trials)
    console.print(f"study {info.name} has a budget of {info.n_trials} trials ({info.state})")


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


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)
    app.add_typer(study_app, name="study")
