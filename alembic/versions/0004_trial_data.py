"""per-trial data in the service's own table; Optuna's metric names on every study

Revision ID: 0004_trial_data
Revises: 0003_notes
Create Date: 2026-12-01 10:50:00

Curves, metric dicts and the artifact folder used to be Optuna user attributes, which made
optuna-dashboard's trial page thousands of pixels wide and ``study.trials_dataframe()`` full of
list-valued cells. They move to ``hpo_trial_data`` (hpo_service/store/trial_data.py), and studies
made before get Optuna's metric names from their spec. The data move runs the service's own
code (hpo_service/store/adopt.py) rather than frozen SQL: ``hpo migrate`` upgrades Optuna's
tables first, so they always have the schema that code knows, whichever Optuna is installed.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004_trial_data"
down_revision: str | None = "0003_notes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hpo_trial_data",
        sa.Column("trial_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("trial_number", sa.Integer(), nullable=False),
        sa.Column("curves", sa.JSON(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("artifact_dir", sa.Text(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["study_id"], ["hpo_studies.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("trial_id"),
    )
    op.create_index("ix_hpo_trial_data_study", "hpo_trial_data", ["study_id", "trial_number"])
    bind = op.get_bind()
    if sa.inspect(bind).has_table("trials"):  # Optuna's tables (``hpo migrate`` makes them first)
        from hpo_service.store.adopt import adopt_existing

        adopt_existing(bind)


def downgrade() -> None:
    # The moved data is not put back into Optuna's user attributes.
    op.drop_index("ix_hpo_trial_data_study", table_name="hpo_trial_data")
    op.drop_table("hpo_trial_data")
