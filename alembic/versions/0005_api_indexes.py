"""indexes on Optuna's trials table for reads that must not grow with the study

Revision ID: 0005_api_indexes
Revises: 0003_notes
Create Date: 2026-12-01 10:30:00

Optuna's ``trials`` table has only a ``study_id`` index, so every per-study read in trial order
(the API's ``after`` cursor pages, a trial by number, CSV export by number) reads and sorts all
of the study's trials, and every count by state reads every row. Three composite indexes make
those a range scan that stops at the page:

- ``(study_id, trial_id)``: the ``after`` cursor's keyset pages and the highest trial id;
- ``(study_id, number)``: a trial by number, offset pages, the CSV export's keyset batches;
- ``(study_id, state)``: counts by state (an index-only scan on PostgreSQL), the COMPLETE
  trials the best-trial query starts from.

Why this is safe for Optuna: Optuna never reads index names or checks that its tables have
exactly its own indexes (its schema check is the version in its ``alembic_version``), the names
start with ``hpo_`` so they cannot collide with an Optuna index, and they only add lookup paths.
An Optuna upgrade that rebuilds the table (SQLite batch migrations copy a table) keeps reflected
indexes; if one were ever lost, reads stay correct, only slower. The cost is three more index
entries to write per trial insert and one more per state change.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005_api_indexes"
down_revision: str | None = "0004_trial_data"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "hpo_ix_trials_study_trial": ["study_id", "trial_id"],
    "hpo_ix_trials_study_number": ["study_id", "number"],
    "hpo_ix_trials_study_state": ["study_id", "state"],
}


def _existing(conn: sa.Connection) -> set[str]:
    return {str(ix["name"]) for ix in sa.inspect(conn).get_indexes("trials")}


def upgrade() -> None:
    present = _existing(op.get_bind())
    for name, columns in INDEXES.items():
        if name not in present:
            op.create_index(name, "trials", columns)


def downgrade() -> None:
    present = _existing(op.get_bind())
    for name in INDEXES:
        if name in present:
            op.drop_index(name, table_name="trials")
