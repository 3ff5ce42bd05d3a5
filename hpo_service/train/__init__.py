"""The plain-PyTorch trainer: model, loop, metrics and per-trial artifacts."""

from hpo_service.train.artifacts import Predictor, load_predictor, save_artifacts
from hpo_service.train.config import EpochResult, TrainConfig, TrainResult
from hpo_service.train.loop import fit

__all__ = [
    "EpochResult",
    "Predictor",
    "TrainConfig",
    "TrainResult",
    "fit",
    "load_predictor",
    "save_artifacts",
]
