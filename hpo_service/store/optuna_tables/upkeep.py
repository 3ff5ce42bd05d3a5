"""The only SQL that writes Optuna's tables: the one-time upgrade of migration ``0004_trial_data``.

Everywhere else the service changes Optuna's tables through Optuna's storage API. This upgrade
cannot: the storage API has no way to delete a user attribute, and on SQLite a second connection
(Optuna's own) would wait for the lock that the migration's transaction holds. So these few
statements write exactly what Optuna's storage would write (``json.dumps`` of the value, the key
``Study.set_metric_names`` uses), inside the migration's transaction; the schema they rely on is
the one :mod:`.schema` describes and a test pins to the installed Optuna.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import sqlalchemy as sa

from hpo_service.store.optuna_tables.schema import (
    METRIC_NAMES_KEY,
    STUDY_SYSTEM_ATTRIBUTES,
    TRIAL_USER_ATTRIBUTES,
)


def metric_names(conn: sa.Connection, sid: int) -> list[str] | None:
    """What ``optuna.load_study(...).metric_names`` says for study ``sid``."""
    s = STUDY_SYSTEM_ATTRIBUTES.c
    query = sa.select(s.value_json).where(s.study_id == sid, s.key == METRIC_NAMES_KEY)
    found = conn.scalar(query)
    return None if found is None else [str(name) for name in json.loads(found)]


def set_metric_names(conn: sa.Connection, sid: int, names: list[str]) -> None:
    """``study.set_metric_names(names)`` for a study that has none yet."""
    row = {"study_id": sid, "key": METRIC_NAMES_KEY, "value_json": json.dumps(names)}
    conn.execute(sa.insert(STUDY_SYSTEM_ATTRIBUTES).values(row))


def delete_user_attrs(conn: sa.Connection, trial_id: int, keys: Iterable[str]) -> None:
    """Remove these user attributes from one trial."""
    keys = list(keys)
    if keys:
        a = TRIAL_USER_ATTRIBUTES.c
        where = (a.trial_id == trial_id, a.key.in_(keys))
        conn.execute(sa.delete(TRIAL_USER_ATTRIBUTES).where(*where))
