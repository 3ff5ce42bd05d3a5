"""A study's ensemble: several trained trials' models averaged, saved as one artifact folder.

Plain torch, like the rest of ``train``: it knows nothing of Optuna or the store. The members
share the study's preprocessing (the spec refuses an ensemble over searched data entries), so the
ensemble is one :class:`~hpo_service.train.model.EnsembleModel` whose members are the trials'
models (each possibly an ensemble itself): in evaluation mode it returns the logits of the
members' mean class probabilities, or their mean forecast. Saved like a trial's folder
(``weights.pt``, ``preprocessing.json``, ``config.json`` whose ``train_config`` lists each
member's under ``members``), it loads with :func:`~hpo_service.train.artifacts.load_predictor`
and serves predictions through the same code as any trial.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hpo_service.data import PreparedData
from hpo_service.jsonsafe import finite_json
from hpo_service.train.artifacts import CONFIG, PREPROCESSING, WEIGHTS, load_predictor
from hpo_service.train.loop import split_metrics
from hpo_service.train.model import EnsembleModel


@dataclass(frozen=True)
class TrialEnsemble:
    """The averaged model, the members' hyperparameters (best member first) and its figures:
    ``validation`` on the validation split, ``test`` on the test split (None when empty)."""

    model: EnsembleModel
    member_configs: list[dict[str, Any]]
    validation: dict[str, float]
    test: dict[str, float] | None


def build_ensemble(directories: list[Path], data: PreparedData) -> TrialEnsemble:
    """Load the members' saved models (an ArtifactError names a broken file) and measure their
    average on ``data``'s validation and test splits, the splits every member was judged on."""
    predictors = [load_predictor(directory) for directory in directories]
    model = EnsembleModel([p.model for p in predictors]).eval()
    return TrialEnsemble(
        model=model,
        member_configs=[p.config["train_config"] for p in predictors],
        validation=split_metrics(model, data, data.val),
        test=split_metrics(model, data, data.test) if len(data.test) else None,
    )


def save_ensemble_folder(
    ensemble: TrialEnsemble, data: PreparedData, members: list[int], directory: Path
) -> Path:
    """Write the ensemble's folder under a private name and move it into place, so a reader
    never sees half of it; a folder already there (another worker built the same members) is
    kept."""
    staging = directory.with_name(f"{directory.name}.staging-{uuid.uuid4().hex[:8]}")
    staging.mkdir(parents=True)
    try:
        torch.save(ensemble.model.state_dict(), staging / WEIGHTS)
        (staging / PREPROCESSING).write_text(json.dumps(data.state()), encoding="utf-8")
        summary = {
            "train_config": {"members": ensemble.member_configs},
            "members": members,
            "best_metrics": ensemble.validation,
            "test_metrics": ensemble.test,
        }
        (staging / CONFIG).write_text(json.dumps(finite_json(summary), indent=2), "utf-8")
        staging.rename(directory)
    except OSError:
        if not (directory / WEIGHTS).is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory
