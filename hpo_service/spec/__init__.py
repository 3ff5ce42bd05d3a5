"""The study spec: what a study is, how it is read, limited and turned into Optuna's parts.

Modules: :mod:`.space` (search-space entries and the hyperparameter list), :mod:`.model`
(``StudySpec`` and its parts, field-named errors), :mod:`.decode` (hardened YAML/JSON),
:mod:`.limits` and :mod:`.size` (caps checked at intake), :mod:`.parse` (intake and stored specs),
:mod:`.sampling` (sampler, pruner and suggestions rebuilt from a spec in every process, since
Optuna persists neither). This face re-exports what the rest of the service uses; modules inside
the package import each other directly, never through it.
"""

from hpo_service.spec.limits import SpecLimits
from hpo_service.spec.model import (
    BUILTIN_DATASETS,
    BUILTIN_TEST_SETS,
    METRICS,
    UPLOAD_ID,
    UPLOAD_PREFIX,
    BudgetSpec,
    Kind,
    PrunerSpec,
    SamplerSpec,
    SpecError,
    StudySpec,
    TaskSpec,
    format_errors,
    split_params,
)
from hpo_service.spec.parse import (
    load_spec,
    load_stored_spec,
    parse_spec,
    parse_spec_text,
    spec_to_dict,
)
from hpo_service.spec.space import (
    DATA_PARAMETERS,
    HYPERPARAMETERS,
    FloatRange,
    IntRange,
    SearchSpace,
)

__all__ = [
    "BUILTIN_DATASETS",
    "BUILTIN_TEST_SETS",
    "DATA_PARAMETERS",
    "HYPERPARAMETERS",
    "METRICS",
    "UPLOAD_ID",
    "UPLOAD_PREFIX",
    "BudgetSpec",
    "FloatRange",
    "IntRange",
    "Kind",
    "PrunerSpec",
    "SamplerSpec",
    "SearchSpace",
    "SpecError",
    "SpecLimits",
    "StudySpec",
    "TaskSpec",
    "format_errors",
    "load_spec",
    "load_stored_spec",
    "parse_spec",
    "parse_spec_text",
    "spec_to_dict",
    "split_params",
]
