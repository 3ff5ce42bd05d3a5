"""per-study counters: budget in use, failures, claims, change watermark

Revision ID: 0002_counters
Revises: 0001
Create Date: 2026-12-01 07:30:00

The counters replace a count over all of a study's runs on every claim (see
hpo_service/store/counters.py). Existing studies get them computed from their runs here, once.
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from alembic import op

revision: str = "0002_counters"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("budget_used", "runs_failed", "runs_claimed", "change_seq")
_ALWAYS_COUNTED = ("running", "reaping", "complete", "pruned")


def _backfill(conn: Any) -> None:
    """Counters of existing studies, from their runs (the rule of counters.uses_budget)."""
    counts: dict[int, dict[str, int]] = {}
    rows = conn.execute(
        sa.text("SELECT study_id, status, COUNT(*) FROM hpo_trial_runs GROUP BY study_id, status")
    )
    for study_id, status, n in rows:
        counts.setdefault(int(study_id), {})[str(status)] = int(n)
    specs = conn.execute(sa.text("SELECT id, spec FROM hpo_studies"))
    for study_id, spec in list(specs):
        spec = json.loads(spec) if isinstance(spec, str) else spec  # text on SQLite
        by_status = counts.get(int(study_id), {})
        counted = _ALWAYS_COUNTED
        if (spec.get("budget") or {}).get("count_failed"):
            counted = (*counted, "failed")
        values = {
            "id": study_id,
            "used": sum(by_status.get(s, 0) for s in counted),
            "failed": by_status.get("failed", 0),
            "claimed": sum(by_status.values()),
        }
        conn.execute(
            sa.text(
                "UPDATE hpo_studies SET budget_used = :used, runs_failed = :failed, "
                "runs_claimed = :claimed, change_seq = :claimed WHERE id = :id"
            ),
            values,
        )


def upgrade() -> None:
    with op.batch_alter_table("hpo_studies", schema=None) as batch_op:
        for name in _COLUMNS[:3]:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column(
                "change_seq",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=False,
                server_default="0",
            )
        )
    _backfill(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("hpo_studies", schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
