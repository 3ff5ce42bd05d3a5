"""Per-trial artifacts and the predictor that serves them.

A trial directory holds ``weights.pt`` (the best epoch's state dict), ``preprocessing.json``
(vocabulary or scaler, label names, shapes) and ``config.json`` (the resolved TrainConfig plus a
result summary). JSON rather than pickles so artifacts stay readable and safe to load.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpo_service.data import PreparedData
from hpo_service.data.text import encode, tokenize
from hpo_service.train.config import TrainConfig, TrainResult
from hpo_service.train.model import RecurrentModel, build_model

WEIGHTS, PREPROCESSING, CONFIG = "weights.pt", "preprocessing.json", "config.json"


def save_artifacts(
    result: TrainResult, data: PreparedData, config: TrainConfig, directory: Path
) -> Path:
    """Write the best weights, preprocessing state and config; returns the directory."""
    if result.best_state is None:
        raise ValueError(
            f"no weights to save: the run stopped with {result.stop_reason} "
            "before any epoch finished"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(result.best_state, directory / WEIGHTS)
    (directory / PREPROCESSING).write_text(json.dumps(data.state()), encoding="utf-8")
    summary = {
        "train_config": asdict(config),
        "best_epoch": result.best_epoch,
        "stop_reason": result.stop_reason,
        "test_metrics": result.test_metrics,
        "best_metrics": result.best.metrics if result.best else {},
        "n_params": result.n_params,
    }
    (directory / CONFIG).write_text(
        json.dumps(summary, indent=2, default=_jsonable), encoding="utf-8"
    )
    return directory


def _jsonable(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else str(value)


class Predictor:
    """Predictions from saved artifacts, on CPU.

    ``predict`` takes a list: texts -> ``{"label", "probabilities"}`` per text; sequences
    ([T][F] nested lists, or flat lists of T*F numbers) -> label per sequence; for forecasting
    the list is one series (at least ``lookback`` values) -> the next ``horizon`` values.
    """

    def __init__(self, model: RecurrentModel, state: dict[str, Any], config: dict[str, Any]):
        self.model = model.eval()
        self.state = state
        self.config = config
        self.kind: str = state["kind"]
        self.labels: list[str] = state["label_names"]
        vocab = state.get("vocab") or []
        self._stoi = {token: i for i, token in enumerate(vocab)}

    def predict(self, inputs: list) -> list:
        if self.kind == "forecasting":
            return self._forecast([float(v) for v in inputs])
        if self.kind == "text_classification":
            return self._texts([str(t) for t in inputs])
        probabilities = self._probabilities(self._sequences(inputs), None)
        return [self.labels[int(i)] for i in probabilities.argmax(-1)]

    @torch.inference_mode()
    def _probabilities(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        out = self.model(x, lengths).float()
        if len(self.labels) == 2:
            positive = torch.sigmoid(out.squeeze(-1))
            return torch.stack([1 - positive, positive], dim=-1)
        return torch.softmax(out, dim=-1)

    def _texts(self, texts: list[str]) -> list[dict[str, Any]]:
        if not texts:
            return []
        x, lengths = encode([tokenize(t) for t in texts], self._stoi, self.state["max_length"])
        probabilities = self._probabilities(x, lengths)
        return [
            {
                "label": self.labels[int(row.argmax())],
                "probabilities": {name: float(p) for name, p in zip(self.labels, row, strict=True)},
            }
            for row in probabilities
        ]

    def _sequences(self, inputs: list) -> torch.Tensor:
        """Standardise with the training scaler; accepts nested [T][F] or flat T*F rows."""
        steps, features = self.state["seq_shape"]
        try:
            x = np.asarray(inputs, dtype=np.float32).reshape(len(inputs), steps, features)
        except ValueError:
            raise ValueError(f"each sequence needs {steps} steps of {features} features") from None
        scaler = self.state["scaler"]
        return torch.from_numpy(
            (x - np.asarray(scaler["mean"])) / np.asarray(scaler["std"])
        ).float()

    @torch.inference_mode()
    def _forecast(self, series: list[float]) -> list[float]:
        lookback = self.state["lookback"]
        values = np.asarray(series, dtype=np.float64)
        if len(values) < lookback or not np.isfinite(values[-lookback:]).all():
            raise ValueError(f"need at least {lookback} finite values, got {len(values)}")
        mean, std = self.state["scaler"]["mean"][0], self.state["scaler"]["std"][0]
        window = torch.tensor((values[-lookback:] - mean) / std, dtype=torch.float32)
        scaled = self.model(window.view(1, lookback, 1))[0]
        return [float(v) * std + mean for v in scaled]


def load_predictor(directory: Path) -> Predictor:
    """Rebuild the model from an artifact directory written by :func:`save_artifacts`."""
    directory = Path(directory)
    for name in (WEIGHTS, PREPROCESSING, CONFIG):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"artifact file missing: {directory / name}")
    state = json.loads((directory / PREPROCESSING).read_text(encoding="utf-8"))
    config = json.loads((directory / CONFIG).read_text(encoding="utf-8"))
    model = build_model(state, config["train_config"])
    model.load_state_dict(torch.load(directory / WEIGHTS, map_location="cpu", weights_only=True))
    return Predictor(model, state, config)
