"""api/trial_queries.py on a real database: the trial count a page reports is recounted when the
study's mark moves and reused while it does not; plain Optuna studies are counted every time."""

from __future__ import annotations

import optuna
from sqlalchemy.orm import Session

from hpo_service.api import trial_queries as q
from hpo_service.config import Settings
from hpo_service.spec import parse_spec
from hpo_service.store import counters
from hpo_service.store.db import get_engine, get_storage
from hpo_service.store.studies import create_study, get_study
from tests.conftest import tiny_spec


def _add_plain_trial(settings: Settings, name: str) -> None:
    study = optuna.load_study(study_name=name, storage=get_storage(settings))
    study.add_trial(optuna.trial.create_trial(value=1.0))


def test_count_follows_the_mark_and_plain_studies_are_counted_each_time(
    migrated: Settings,
) -> None:
    create_study(migrated, parse_spec(tiny_spec("counted", n_trials=5)), start=False)
    engine = get_engine(migrated)
    with engine.connect() as conn:
        sid = q.study_id(conn, "counted")
        assert q.count_current(conn, "counted", sid, None) == 0
    _add_plain_trial(migrated, "counted")  # written behind the service's back: no bump
    with engine.connect() as conn:
        assert q.count_current(conn, "counted", sid, None) == 0
        assert q.count(conn, sid, None) == 1
    with Session(engine) as session, session.begin():
        counters.bump(session, get_study(engine, "counted").id)
    with engine.connect() as conn:
        assert q.count_current(conn, "counted", sid, None) == 1
        assert q.count_current(conn, "counted", sid, ["COMPLETE"]) == 1
        assert q.count_current(conn, "counted", sid, ["RUNNING"]) == 0

    optuna.create_study(study_name="plain", storage=get_storage(migrated))
    with engine.connect() as conn:
        plain = q.study_id(conn, "plain")
        assert q.count_current(conn, "plain", plain, None) == 0
    _add_plain_trial(migrated, "plain")
    with engine.connect() as conn:
        assert q.count_current(conn, "plain", plain, None) == 1
