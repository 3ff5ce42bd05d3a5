"""The one module that knows Optuna's schema and reads Optuna's tables with SQL.

Everything else in the service reads studies and trials through these functions (or through
Optuna's own storage API); nothing else names an Optuna table in a query. The schema and how
Optuna encodes states, values and params are described once, in :mod:`.schema`; a test pins them
to the installed Optuna. The functions come in four groups:

- :mod:`.queries`: a study's id and directions, trial counts by state, orphaned RUNNING trials,
  the per-study watermark (the API's polling cursor).
- :mod:`.trials`: trial rows a page or a few ids at a time, with values, params, user attributes
  and intermediate values (the API's trial lists, details, CSV export and best trials).
- :mod:`.upkeep`: metric names, and the one-time move of bulky user attributes (migration
  ``0004_trial_data``), the only SQL that writes Optuna's tables.
- :mod:`.arrays`: whole-study columns as numpy arrays through a raw DBAPI cursor, and the
  studies' change marks that tell whether a cached figure is current (plots).
"""

from hpo_service.store.optuna_tables.arrays import (
    ParamColumns,
    TrialTimes,
    ValueColumns,
    change_marks,
    complete_values,
    intermediate_columns,
    param_columns,
    trial_times,
)
from hpo_service.store.optuna_tables.queries import (
    Orphan,
    Watermark,
    count_with_user_attr,
    counts_by_state,
    counts_by_study_and_state,
    directions,
    orphan_trials,
    study_id,
    watermark,
)
from hpo_service.store.optuna_tables.schema import (
    FINISHED_STATES,
    TRIAL_STATES,
    TRIALS,
    decode_value,
    distribution,
)
from hpo_service.store.optuna_tables.trials import (
    TrialRow,
    batches,
    best_by_value,
    by_ids,
    by_number,
    changed_since,
    complete_finite_values,
    count,
    intermediate,
    page,
    param_names,
    params_for,
    user_attrs,
    user_attrs_for,
    values_for,
)
from hpo_service.store.optuna_tables.upkeep import delete_user_attrs, metric_names, set_metric_names

__all__ = [
    "FINISHED_STATES",
    "TRIALS",
    "TRIAL_STATES",
    "Orphan",
    "ParamColumns",
    "TrialRow",
    "TrialTimes",
    "ValueColumns",
    "Watermark",
    "batches",
    "best_by_value",
    "by_ids",
    "by_number",
    "change_marks",
    "changed_since",
    "complete_finite_values",
    "complete_values",
    "count",
    "count_with_user_attr",
    "counts_by_state",
    "counts_by_study_and_state",
    "decode_value",
    "delete_user_attrs",
    "directions",
    "distribution",
    "intermediate",
    "intermediate_columns",
    "metric_names",
    "orphan_trials",
    "page",
    "param_columns",
    "param_names",
    "params_for",
    "set_metric_names",
    "study_id",
    "trial_times",
    "user_attrs",
    "user_attrs_for",
    "values_for",
    "watermark",
]
