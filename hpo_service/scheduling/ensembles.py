"""Rebuild the study's ensemble of its N best trials: a step after a trial is told COMPLETE.

With ``task.ensemble_trials`` N > 1, the worker whose trial completes ranks the study's COMPLETE
trials (:func:`hpo_service.store.best.ranked_trial_ids`, the best-trial rule), and when the N
best differ from the stored ensemble's members it loads their saved models, measures their
average on the validation and test splits it has in hand, writes the ensemble's folder and
stores its figures (:mod:`hpo_service.store.ensembles`). Decisions:

- fewer than two COMPLETE trials with a saved model: no ensemble (the best trial serves);
- a member whose folder cannot be loaded makes this rebuild fail (logged; the previous ensemble
  keeps serving); the trial's own COMPLETE state never changes after it was told;
- the folder is named after its members (``ensemble-3-7-9``), so two workers building at once
  write identical folders, and a stored row always names a folder that was complete before it
  was stored; older folders are removed once a newer ensemble is stored.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from hpo_service.config import Settings
from hpo_service.jsonsafe import finite_json
from hpo_service.scheduling.completed import CompletedRun
from hpo_service.scheduling.outcomes import retry
from hpo_service.store import optuna_tables as ot
from hpo_service.store import trial_data
from hpo_service.store.best import ranked_trial_ids
from hpo_service.store.db import get_engine
from hpo_service.store.ensembles import (
    StoredEnsemble,
    ensemble_folder,
    read_ensemble,
    save_ensemble,
)
from hpo_service.store.studies import artifact_root, get_study
from hpo_service.train.artifacts import WEIGHTS
from hpo_service.train.ensemble import build_ensemble, save_ensemble_folder

log = logging.getLogger(__name__)


def update_ensemble(settings: Settings, run: CompletedRun) -> StoredEnsemble | None:
    """Rebuild and store the ensemble if the N best trials changed; the stored ensemble (new
    or unchanged), or None when there are not yet two members."""
    engine = get_engine(settings)
    info = get_study(engine, run.spec.name)
    ranked, seen, stored = retry(lambda: _ranking(settings, info.id, run))
    if len(ranked) < 2:
        return None
    members = [number for number, _ in ranked]
    if stored is not None and stored.members == members:
        return stored
    root = artifact_root(settings, info.name)
    ensemble = build_ensemble([folder for _, folder in ranked], run.data)
    folder = root / ensemble_folder(members)
    if not (folder / WEIGHTS).is_file():
        save_ensemble_folder(ensemble, run.data, members, folder)
    built = StoredEnsemble(
        members=members,
        validation=finite_json(ensemble.validation),  # JSON columns refuse NaN (PostgreSQL)
        test=finite_json(ensemble.test),
        test_n=len(run.data.test),
        complete_seen=seen,
    )
    if retry(lambda: save_ensemble(engine, info.id, built)):
        log.info("study %s: ensemble of trials %s stored", info.name, members)
        _remove_other_folders(root, folder)
        return built
    return None


def _ranking(
    settings: Settings, study_id: int, run: CompletedRun
) -> tuple[list[tuple[int, Path]], int, StoredEnsemble | None]:
    """(trial number, model folder) of the N best COMPLETE trials that kept a model, how many
    COMPLETE trials there are, and the stored ensemble."""
    with get_engine(settings).connect() as conn:
        sid = ot.study_id(conn, run.spec.name)
        if sid is None:
            return [], 0, None
        n = run.spec.task.ensemble_trials
        seen = ot.count(conn, sid, ["COMPLETE"])
        ids = ranked_trial_ids(conn, sid, run.spec.directions[0], n + 2)
        numbers = {row.trial_id: row.number for row in ot.by_ids(conn, ids)}
        folders = {trial_id: trial_data.artifact_dir(conn, trial_id) for trial_id in ids}
        stored = read_ensemble(conn, study_id)
    kept = [
        (numbers[t], Path(str(folders[t])))
        for t in ids
        if folders[t] and (Path(str(folders[t])) / WEIGHTS).is_file()
    ]
    return kept[:n], seen, stored


def _remove_other_folders(root: Path, keep: Path) -> None:
    """Earlier ensembles' folders (a reader that already loaded one keeps its cached model;
    another builder's ``.staging-`` folder is left alone)."""
    for folder in root.glob("ensemble-*"):
        if folder != keep and "." not in folder.name and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
