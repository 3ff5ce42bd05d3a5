"""Which saved model answers a prediction: one rule for the API's ``predict`` and ``hpo predict``.

A named trial's model when a trial is named; otherwise the study's ensemble of its N best trials
when it has one (``task.ensemble_trials``, :mod:`hpo_service.store.ensembles`), else the best
trial's (:mod:`hpo_service.store.best`; a multi-objective study raises ``NeedsChoice``).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from hpo_service.config import Settings
from hpo_service.store import optuna_tables as ot
from hpo_service.store import trial_data
from hpo_service.store.best import serving_trial_id
from hpo_service.store.ensembles import ensemble_folder, read_ensemble
from hpo_service.store.studies import StudyInfo, artifact_root


class NoServedModel(LookupError):
    """Nothing to predict with: the named trial does not exist, or no trial completed yet.
    ``field`` names what the caller got wrong (``trial``) or ``name`` (the study is not ready)."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Served:
    """The model that answers: a trial's (``trial``) or the ensemble's (``ensemble``: its
    members); ``folder`` is None when the trial kept no model."""

    folder: str | None
    trial: int | None = None
    ensemble: list[int] | None = None

    @property
    def what(self) -> str:
        """The model in words, for messages: "trial 3" or "the ensemble of trials 3, 7"."""
        if self.ensemble is not None:
            return "the ensemble of trials " + ", ".join(map(str, self.ensemble))
        return f"trial {self.trial}"


def served_model(
    conn: sa.Connection, settings: Settings, info: StudyInfo, trial: int | None
) -> Served:
    """The model that answers for study ``info`` (see the module docstring)."""
    sid = ot.study_id(conn, info.name)
    if trial is not None:
        row = None if sid is None else ot.by_number(conn, sid, trial)
        if row is None:
            raise NoServedModel(f"study {info.name!r} has no trial {trial}", "trial")
        return Served(trial_data.artifact_dir(conn, row.trial_id), trial=row.number)
    ensemble = read_ensemble(conn, info.id)
    if ensemble is not None:
        folder = artifact_root(settings, info.name) / ensemble_folder(ensemble.members)
        return Served(str(folder), ensemble=ensemble.members)
    best = None if sid is None else serving_trial_id(conn, sid, info.spec.directions)
    if best is None:
        raise NoServedModel(f"study {info.name!r} has no completed trial yet", "name")
    number = ot.by_ids(conn, [best])[0].number
    return Served(trial_data.artifact_dir(conn, best), trial=number)
