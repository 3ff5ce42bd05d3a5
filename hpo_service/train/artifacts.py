"""Per-trial artifacts and the predictor that serves them.

A trial directory holds ``weights.pt`` (the best epoch's state dict), ``preprocessing.json``
(vocabulary or scaler, label names, shapes) and ``config.json`` (the resolved TrainConfig plus a
result summary). JSON rather than pickles so artifacts stay readable and safe to load; the weights
are read with ``weights_only=True`` for the same reason. A folder that cannot be loaded (a file
missing, truncated or corrupt, weights that do not fit the described model) raises
:class:`ArtifactError`, whose message names the file but never its path: it reaches API clients.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpo_service.data import PreparedData
from hpo_service.data.text import encode, tokenize
from hpo_service.data.transforms import forward, invert, lag
from hpo_service.train.config import TrainConfig, TrainResult
from hpo_service.train.model import EnsembleModel, RecurrentModel, build_model

WEIGHTS, PREPROCESSING, CONFIG = "weights.pt", "preprocessing.json", "config.json"
#: What a predictor reads from preprocessing.json, for every kind and per kind.
STATE_KEYS: dict[str, tuple[str, ...]] = {
    "forecasting": ("lookback", "scaler"),
    "text_classification": ("vocab", "max_length"),
    "sequence_classification": ("seq_shape", "scaler"),
}
COMMON_STATE_KEYS = ("kind", "input_size", "n_outputs", "label_names")
log = logging.getLogger(__name__)
#: Inputs the model sees at once when predicting (the API passes HPO_PREDICT_BATCH_SIZE).
DEFAULT_BATCH = 512
#: Characters of text in one prediction batch (~50,000 tokens): 10,000 texts of 1,000 characters
#: took ~220 MB above the server's resting memory with 512 texts (512,000 characters) a batch.
BATCH_CHARS = 256_000


class ArtifactError(ValueError):
    """A trial's saved artifacts cannot be loaded; the message names the file, not its path."""


#: Present but may be null: ``max_length`` None means texts are not truncated.
NULLABLE_STATE_KEYS = frozenset({"max_length"})


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

    def __init__(
        self, model: RecurrentModel | EnsembleModel, state: dict[str, Any], config: dict[str, Any]
    ):
        self.model = model.eval()
        self.state = state
        self.config = config
        self.kind: str = state["kind"]
        self.labels: list[str] = state["label_names"]
        vocab = state.get("vocab") or []
        self._stoi = {token: i for i, token in enumerate(vocab)}

    def predict(
        self, inputs: list, steps: int | None = None, batch_size: int = DEFAULT_BATCH
    ) -> list:
        """Predictions in input order; ``steps`` (forecasting only): how many values ahead,
        default the model's horizon. Texts and sequences go through the model ``batch_size``
        at a time (texts also at most BATCH_CHARS characters), so memory is bounded by one
        batch (its padded tensor and activations), not by the request: 10,000 texts of 1,000
        characters at once took 2.2 GB above the server's resting memory."""
        if self.kind == "forecasting":
            return self._forecast([float(v) for v in inputs], steps or self.state["horizon"])
        if steps is not None:
            raise ValueError("steps applies to forecasting models only")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if self.kind == "text_classification":
            texts = [str(t) for t in inputs]
            out: list[Any] = [None] * len(texts)
            for chosen in _text_batches(texts, batch_size):
                for i, answer in zip(chosen, self._texts([texts[i] for i in chosen]), strict=True):
                    out[i] = answer
            return out
        labels: list[str] = []
        for start in range(0, len(inputs), batch_size):
            batch = self._sequences(inputs[start : start + batch_size])
            labels += [self.labels[int(i)] for i in self._probabilities(batch, None).argmax(-1)]
        return labels

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
                "label": self.labels[max(range(len(row)), key=row.__getitem__)],
                "probabilities": {name: float(p) for name, p in zip(self.labels, row, strict=True)},
            }
            for row in probabilities.tolist()
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
    def _forecast(self, series: list[float], steps: int) -> list[float]:
        """The next ``steps`` values: the model's horizon directly, and beyond it recursively
        (each forecast joins the history the next window is cut from)."""
        transform = self.state.get("target_transform", "none")
        season = int(self.state.get("season") or 12)
        lookback, k = self.state["lookback"], lag(transform, season)
        history = np.asarray(series, dtype=np.float64)
        need = lookback + k
        if len(history) < need or not np.isfinite(history[-need:]).all():
            raise ValueError(f"need at least {need} finite values, got {len(history)}")
        mean, std = self.state["scaler"]["mean"][0], self.state["scaler"]["std"][0]
        out: list[float] = []
        while len(out) < steps:
            try:
                z = forward(history[-need:], transform, season)
            except ValueError as error:  # log of a value at or below -1
                raise ValueError(str(error).removeprefix("task.target_transform: ")) from None
            window = torch.tensor((z - mean) / std, dtype=torch.float32)
            scaled = self.model(window.view(1, lookback, 1)).double()
            context = torch.tensor(history[len(history) - k :]).view(1, k)
            ahead = invert(scaled * std + mean, context, transform, season)[0].numpy()
            out.extend(float(v) for v in ahead)
            history = np.concatenate([history, ahead])
        return out[:steps]


def _text_batches(texts: list[str], batch_size: int) -> list[list[int]]:
    """Indexes of ``texts`` in batches of similar length (less padding): at most ``batch_size``
    texts and :data:`BATCH_CHARS` characters each (one text at least), so a batch of long texts
    holds as many tokens as one of short texts, and memory does not grow with text length."""
    batches: list[list[int]] = []
    current: list[int] = []
    chars = 0
    for i in sorted(range(len(texts)), key=lambda k: len(texts[k])):
        if current and (len(current) >= batch_size or chars + len(texts[i]) > BATCH_CHARS):
            batches.append(current)
            current, chars = [], 0
        current.append(i)
        chars += len(texts[i])
    return [*batches, current] if current else batches


def load_predictor(directory: Path) -> Predictor:
    """Rebuild the model from an artifact directory written by :func:`save_artifacts`; any
    failure is an :class:`ArtifactError` (the cause is logged with the folder)."""
    directory = Path(directory)
    for name in (WEIGHTS, PREPROCESSING, CONFIG):
        if not (directory / name).is_file():
            raise ArtifactError(f"artifact file missing: {name}")
    state = _read_json(directory / PREPROCESSING)
    config = _read_json(directory / CONFIG)
    _check_state(state)
    weights = _read_weights(directory / WEIGHTS)
    try:
        model = build_model(state, config["train_config"])
        model.load_state_dict(weights)
        return Predictor(model, state, config)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        log.warning("artifacts in %s do not fit together: %r", directory, error)
        reason = str(error).strip().splitlines()[0][:300] if str(error).strip() else "mismatch"
        raise ArtifactError(
            f"{WEIGHTS} does not fit the model {PREPROCESSING} and {CONFIG} describe ({reason})"
        ) from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        log.warning("cannot read %s: %s", path, error)
        raise ArtifactError(f"{path.name} is not readable JSON") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path.name} does not hold a JSON object")
    return data


def _check_state(state: dict[str, Any]) -> None:
    """Refuse a preprocessing state the predictor would trip over at prediction time, where
    the failure would wrongly blame the client's inputs."""
    kind = state.get("kind")
    if kind not in STATE_KEYS:
        raise ArtifactError(f"{PREPROCESSING}: unknown kind {kind!r:.60}")
    missing = [
        k
        for k in (*COMMON_STATE_KEYS, *STATE_KEYS[kind])
        if k not in state or (state[k] is None and k not in NULLABLE_STATE_KEYS)
    ]
    scaler = state.get("scaler")
    scaled = "scaler" in STATE_KEYS[kind] and scaler is not None
    if scaled and not (isinstance(scaler, dict) and scaler.get("mean") and scaler.get("std")):
        missing.append("scaler.mean/std")
    if missing:
        raise ArtifactError(f"{PREPROCESSING} lacks {', '.join(missing)}")


def _read_weights(path: Path) -> Mapping[str, Any]:
    """The state dict, read with ``weights_only=True`` (no arbitrary objects unpickled)."""
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        # A broken file fails in many ways (pickle, zip, EOF, runtime errors); every one means
        # the same to a caller: these weights are unusable.
        log.warning("cannot load %s: %r", path, error)
        raise ArtifactError(
            f"{WEIGHTS} is not a readable state dict (truncated or corrupt)"
        ) from None
    if not isinstance(weights, Mapping):
        raise ArtifactError(f"{WEIGHTS} does not hold a state dict")
    return weights
