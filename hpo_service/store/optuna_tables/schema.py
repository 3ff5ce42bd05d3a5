"""Optuna's tables as this service reads them, and how Optuna encodes what it stores there.

These are read-only SQLAlchemy Core descriptions of the tables that Optuna's RDB storage creates
(``optuna/storages/_rdb/models.py``), naming only the columns the service reads. They are never
used to create or alter anything: Optuna's own migrations own the schema. A test checks every
table, column and type here against the installed Optuna's models, so an Optuna upgrade that
changes the schema fails that test rather than a query in production.

How Optuna encodes values (Optuna 5, the same since the RDB schema moved to alembic):

- ``trials.state``, ``trial_values.value_type``, ``trial_intermediate_values.
  intermediate_value_type`` and ``study_directions.direction`` are ``sqlalchemy.Enum`` columns
  over Python enums, which store the member's NAME, never its number: ``TrialState.COMPLETE``
  (value 1) is stored as ``'COMPLETE'``. On SQLite the column is a VARCHAR; on PostgreSQL it is a
  native enum type (``trialstate``, ``trialvaluetype``, ``trialintermediatevaluetype``,
  ``studydirection``) whose labels are the same names. Every driver returns the name as ``str``.
- PostgreSQL has no ``=`` between such an enum and ``varchar``: a bind typed as a String (which
  SQLAlchemy renders as ``%(x)s::VARCHAR`` there) fails. The columns below are therefore declared
  as ``sa.Enum`` with the same type names: their binds carry no cast, the server reads them as the
  enum, and the same expression works on both backends without casting the column.
- A trial value is a float, or NULL with ``value_type`` ``INF_POS`` / ``INF_NEG`` for +-infinity;
  NaN is never stored (Optuna fails such a trial). An intermediate value is NULL for +-infinity
  and NaN (type ``INF_POS`` / ``INF_NEG`` / ``NAN``).
- Datetimes are naive UTC. ``trial_params.param_value`` is the distribution's internal form (a
  categorical choice's index), decoded with ``distribution_json``; attribute values are JSON
  text (``json.dumps``, which writes NaN and Infinity as bare words).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from optuna.distributions import BaseDistribution, json_to_distribution

#: Optuna's trial states by name, in the order the service shows them (counts, API docs).
TRIAL_STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
#: Trial states whose values, params and intermediate values are final.
FINISHED_STATES = ("COMPLETE", "PRUNED", "FAIL")
VALUE_TYPES = ("FINITE", "INF_POS", "INF_NEG")
INTERMEDIATE_VALUE_TYPES = ("FINITE", "INF_POS", "INF_NEG", "NAN")
DIRECTIONS = ("NOT_SET", "MINIMIZE", "MAXIMIZE")
#: The study system attribute where ``Study.set_metric_names`` keeps the names (Optuna 5).
METRIC_NAMES_KEY = "study:metric_names"


def _enum(names: tuple[str, ...], type_name: str) -> sa.Enum:
    """A column type matching Optuna's ``sa.Enum(PythonEnum)`` (see the module docstring)."""
    return sa.Enum(*names, name=type_name, create_constraint=False, validate_strings=False)


TRIAL_STATE = _enum(TRIAL_STATES, "trialstate")
VALUE_TYPE = _enum(VALUE_TYPES, "trialvaluetype")
INTERMEDIATE_VALUE_TYPE = _enum(INTERMEDIATE_VALUE_TYPES, "trialintermediatevaluetype")
DIRECTION = _enum(DIRECTIONS, "studydirection")
#: Optuna's ``FLOAT_PRECISION``: double precision on every backend.
DOUBLE = sa.Float(precision=53)

metadata = sa.MetaData()

STUDIES = sa.Table(
    "studies",
    metadata,
    sa.Column("study_id", sa.Integer, primary_key=True),
    sa.Column("study_name", sa.String(512)),
)
STUDY_DIRECTIONS = sa.Table(
    "study_directions",
    metadata,
    sa.Column("study_id", sa.Integer),
    sa.Column("objective", sa.Integer),
    sa.Column("direction", DIRECTION),
)
STUDY_SYSTEM_ATTRIBUTES = sa.Table(
    "study_system_attributes",
    metadata,
    sa.Column("study_id", sa.Integer),
    sa.Column("key", sa.String(512)),
    sa.Column("value_json", sa.Text),
)
TRIALS = sa.Table(
    "trials",
    metadata,
    sa.Column("trial_id", sa.Integer, primary_key=True),
    sa.Column("number", sa.Integer),
    sa.Column("study_id", sa.Integer),
    sa.Column("state", TRIAL_STATE),
    sa.Column("datetime_start", sa.DateTime),
    sa.Column("datetime_complete", sa.DateTime),
)
TRIAL_VALUES = sa.Table(
    "trial_values",
    metadata,
    sa.Column("trial_id", sa.Integer),
    sa.Column("objective", sa.Integer),
    sa.Column("value", DOUBLE),
    sa.Column("value_type", VALUE_TYPE),
)
TRIAL_PARAMS = sa.Table(
    "trial_params",
    metadata,
    sa.Column("trial_id", sa.Integer),
    sa.Column("param_name", sa.String(512)),
    sa.Column("param_value", DOUBLE),
    sa.Column("distribution_json", sa.Text),
)
TRIAL_USER_ATTRIBUTES = sa.Table(
    "trial_user_attributes",
    metadata,
    sa.Column("trial_id", sa.Integer),
    sa.Column("key", sa.String(512)),
    sa.Column("value_json", sa.Text),
)
TRIAL_INTERMEDIATE_VALUES = sa.Table(
    "trial_intermediate_values",
    metadata,
    sa.Column("trial_id", sa.Integer),
    sa.Column("step", sa.Integer),
    sa.Column("intermediate_value", DOUBLE),
    sa.Column("intermediate_value_type", INTERMEDIATE_VALUE_TYPE),
)


def decode_value(value: float | None, value_type: str) -> float:
    """A trial value from its stored form (``value``, ``value_type``)."""
    if value_type == "INF_POS":
        return float("inf")
    if value_type == "INF_NEG":
        return float("-inf")
    return float("nan") if value is None else float(value)


def direction_name(stored: str) -> str:
    """``"maximize"`` or ``"minimize"`` for a stored direction (NOT_SET reads as minimize)."""
    return "maximize" if stored == "MAXIMIZE" else "minimize"


@lru_cache(maxsize=512)
def distribution(distribution_json: str) -> BaseDistribution:
    """The distribution a ``trial_params`` row was sampled from (a study has few distinct ones)."""
    return json_to_distribution(distribution_json)


def external_param(distribution_json: str, internal: float) -> Any:
    """A parameter as the objective saw it (a categorical choice, an int) from its stored form."""
    return distribution(distribution_json).to_external_repr(internal)


def decode_attr(value_json: str) -> Any:
    """An attribute's value (it may hold NaN or infinity: JSON-safe it before sending)."""
    return json.loads(value_json)
