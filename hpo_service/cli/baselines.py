"""The baselines block of ``hpo study show`` and of ``hpo run``'s final summary.

Same fields and verdict as the API (:func:`hpo_service.api.baselines.baseline_fields`), so the
command line and the dashboard never disagree about whether a study beats its baselines.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape

from hpo_service.api.baselines import summary_fields
from hpo_service.cli.common import fmt_value
from hpo_service.config import Settings
from hpo_service.store import db
from hpo_service.store.studies import StudyInfo


def fields_for(cfg: Settings, info: StudyInfo, summary: dict[str, Any]) -> dict[str, Any]:
    """``baselines``, ``baselines_note`` and ``best_vs_baseline`` for the summary's best trial."""
    return summary_fields(db.get_engine(cfg), info, summary.get("best"))


def _figure(value: float | None) -> str:
    return "-" if value is None else fmt_value(value)


def print_baselines(console: Console, metric: str, fields: dict[str, Any]) -> None:
    """One line per baseline (validation / test), then the verdict sentence."""
    rows = fields["baselines"]
    if rows is None:
        console.print(f"baselines: {escape(fields['baselines_note'] or 'none')}")
        return
    console.print(f"baselines ({metric}, validation / test):")
    width = max((len(r["label"]) for r in rows), default=0)
    for r in rows:
        console.print(
            f"  {escape(r['label']).ljust(width)}  {_figure(r['val'])} / {_figure(r['test'])}"
        )
    verdict = fields["best_vs_baseline"]
    if verdict is not None:
        style = "green" if verdict["beats"] else "bold red"
        console.print(f"[{style}]{escape(verdict['text'])}[/{style}]")
