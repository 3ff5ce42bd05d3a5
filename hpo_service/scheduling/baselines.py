"""The worker's side of baselines: compute them for a study once, on the data it just loaded.

The first trial a worker trains for a study finds no stored baselines, computes them from the
prepared splits it has in hand (:func:`hpo_service.train.baselines.compute_baselines`, seconds
on the built-in sets, about a minute for TF-IDF on SST-2) and stores them; racing workers store
once (:func:`hpo_service.store.baselines.save_baselines`). Nothing here may fail a trial: an
error becomes the stored ``error`` and the trial trains as usual.
"""

from __future__ import annotations

import logging

from hpo_service.config import Settings
from hpo_service.data.prepared import PreparedData
from hpo_service.jsonsafe import finite_json
from hpo_service.spec import StudySpec
from hpo_service.store.baselines import get_baselines, save_baselines
from hpo_service.store.db import get_engine
from hpo_service.train.baselines import compute_baselines

log = logging.getLogger(__name__)


def ensure_baselines(settings: Settings, spec: StudySpec, data: PreparedData) -> bool:
    """Compute and store the study's baselines unless they are stored; True if this call
    stored them."""
    engine = get_engine(settings)
    if get_baselines(engine, spec.name) is not None:
        return False
    error = None
    try:
        found = compute_baselines(
            _untransformed(settings, spec, data), spec.task.metrics[0], spec.directions[0],
            spec.task.season,
        )
        results = [finite_json(b.model_dump()) for b in found]
    except Exception as failure:  # a baseline must never cost the study its trials
        log.warning("study %s: baselines failed: %s", spec.name, failure)
        results, error = [], f"{type(failure).__name__}: {failure}"[:1000]
    return save_baselines(engine, spec.name, results, error)


def _untransformed(settings: Settings, spec: StudySpec, data: PreparedData) -> PreparedData:
    """The splits in the series' own units: baselines forecast values, not a trial's log or
    differences. The validation and test targets are the same points whatever the transform
    (only the first training windows move), so the comparison stays on the same splits."""
    if data.target_transform == "none":
        return data
    from hpo_service.data import load_dataset
    from hpo_service.data.sources import DataRoots

    task = spec.task.model_copy(update={"target_transform": "none", "lookback": data.lookback})
    return load_dataset(task, DataRoots.from_settings(settings), settings.cache_dir)
