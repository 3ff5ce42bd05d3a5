"""Migrations on real databases: create, re-run, no drift, concurrency, outdated-schema stop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from hpo_service.config import Settings
from hpo_service.store import db
from hpo_service.store.models import Base
from tests.conftest import env_for, make_settings


def table_names(settings: Settings) -> set[str]:
    return set(inspect(db.get_engine(settings)).get_table_names())


def test_fresh_database_to_head_and_rerun_changes_nothing(settings: Settings) -> None:
    before, after = db.migrate(settings)
    assert before is None and after == db.head_revision()
    tables = table_names(settings)
    assert {"hpo_studies", "hpo_trial_runs", "hpo_workers", "hpo_datasets"} <= tables
    assert {"studies", "trials", "alembic_version", db.VERSION_TABLE} <= tables
    assert db.migrate(settings) == (after, after)
    assert table_names(settings) == tables
    db.check_schema(settings)


def test_autogenerate_finds_no_drift(migrated: Settings) -> None:
    with db.get_engine(migrated).connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": db.include_service_object,
            },
        )
        assert compare_metadata(context, Base.metadata) == []


def test_optuna_keeps_its_own_version_table(migrated: Settings) -> None:
    with db.get_engine(migrated).connect() as conn:
        optuna_rev = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        ours = conn.execute(text(f"SELECT version_num FROM {db.VERSION_TABLE}")).scalar()
    assert ours == db.head_revision()
    storage = optuna.storages.RDBStorage(migrated.database_url)
    assert optuna_rev == storage.get_head_version()
    optuna.create_study(study_name="plain", storage=storage)
    assert optuna.load_study(study_name="plain", storage=storage).trials == []


def test_outdated_schema_names_hpo_migrate(settings: Settings) -> None:
    with pytest.raises(db.SchemaOutdated, match="hpo migrate"):
        db.check_schema(settings)
    db.migrate(settings)
    with db.get_engine(settings).begin() as conn:
        conn.execute(text(f"UPDATE {db.VERSION_TABLE} SET version_num = 'old'"))
    with pytest.raises(db.SchemaOutdated, match=r"revision old.*hpo migrate"):
        db.check_schema(settings)


def test_ensure_schema_sets_up_only_an_empty_database(settings: Settings) -> None:
    """``hpo run``/``serve``/``worker`` on a new database need no ``hpo migrate`` first; a
    database that has tables at an older revision still asks for it."""
    assert db.ensure_schema(settings) is True
    assert {"hpo_studies", "studies"} <= table_names(settings)
    assert db.ensure_schema(settings) is False  # already there: nothing to do
    with db.get_engine(settings).begin() as conn:
        conn.execute(text(f"UPDATE {db.VERSION_TABLE} SET version_num = 'old'"))
    with pytest.raises(db.SchemaOutdated, match=r"revision old.*hpo migrate"):
        db.ensure_schema(settings)


def test_two_concurrent_migrate_processes_both_succeed(settings: Settings, tmp_path: Path) -> None:
    env = env_for(settings)
    cmd = [sys.executable, "-m", "hpo_service", "migrate"]
    procs = [
        subprocess.Popen(
            cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    db.check_schema(settings)


def test_cli_process_stops_on_unmigrated_database(settings: Settings, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hpo_service", "study", "list"],
        env=env_for(settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "hpo migrate" in result.stderr and "Traceback" not in result.stderr


def test_transient_errors_are_retried() -> None:
    calls = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise db.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return 7

    assert db.with_retry(flaky, first_delay_s=0.01) == 7 and len(calls) == 3
    with pytest.raises(ValueError):
        db.with_retry(lambda: (_ for _ in ()).throw(ValueError("bad")), first_delay_s=0.01)


def test_sqlite_connections_use_wal_and_map_the_file(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'pragmas.db'}", tmp_path)
    with db.get_engine(settings).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA mmap_size").scalar() == db.SQLITE_MMAP_BYTES
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
