"""Alembic environment for the service's own tables only.

It uses its own version table and an ``include_name`` filter, so autogenerate and upgrades never
touch Optuna's tables or Optuna's ``alembic_version``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine

from alembic import context
from hpo_service.store.db import VERSION_TABLE, include_service_object
from hpo_service.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=config.get_main_option("version_table") or VERSION_TABLE,
        include_name=include_service_object,
        compare_type=True,
        render_as_batch=True,
        **kwargs,
    )


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    if context.is_offline_mode():
        _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _configure(connection=conn)
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
