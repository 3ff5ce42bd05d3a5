"""``fit``: the training loop. Plain PyTorch; knows nothing of Optuna or the database.

Divergence is a result, not an exception: a non-finite loss ends the run with stop_reason
"diverged" and a detail string, so a worker can record it and move on to the next trial.

With ``ema_decay`` > 0 an exponential moving average of the weights (updated after every batch)
is what is validated, tested and saved; the optimizer still steps the raw weights. Why: on SST-2 a
BiLSTM's dev accuracy swings by 2-3 points from one epoch's end to the next, and the average of
the last ~1/(1-decay) batches lands near the middle of the swing (3 epochs: 0.827-0.839 raw over
5 seeds, 0.839-0.842 averaged at 0.999 over 3; ``bench/bench_sst2_ceiling.py``), at the cost of
one more copy of the weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from hpo_service.data import PreparedData, Split
from hpo_service.data.transforms import invert
from hpo_service.train.batches import batch_indices, take
from hpo_service.train.config import EpochResult, StopReason, TrainConfig, TrainResult
from hpo_service.train.metrics import classification_metrics, forecast_metrics
from hpo_service.train.model import build_model, count_parameters

EVAL_BATCH = 512


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The trial's optimizer. Adam/AdamW use the fused kernel: on CPU it is several times
    faster than the default on the (dense) embedding gradient, which dominates text models."""
    lr, wd, params = config.learning_rate, config.weight_decay, list(model.parameters())
    if config.optimizer in ("sgd", "momentum"):
        momentum = 0.9 if config.optimizer == "momentum" else 0.0
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=wd)
    if config.optimizer not in ("adam", "adamw"):
        raise ValueError(f"unknown optimizer {config.optimizer!r}")
    adam = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    try:
        return adam(params, lr=lr, weight_decay=wd, fused=True)
    except (RuntimeError, TypeError):  # a device without fused kernels
        return adam(params, lr=lr, weight_decay=wd)


def task_loss(kind: str, n_classes: int, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MSE on scaled forecasts, BCE on one logit for binary, cross-entropy otherwise."""
    out = out.float()
    if kind == "forecasting":
        return F.mse_loss(out, y)
    if n_classes == 2:
        return F.binary_cross_entropy_with_logits(out.squeeze(-1), y.float())
    return F.cross_entropy(out, y)


@dataclass
class _Training:
    """Mutable state of one ``fit`` call."""

    config: TrainConfig
    data: PreparedData
    model: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    scaler: torch.amp.GradScaler
    generator: torch.Generator
    epochs: list[EpochResult] = field(default_factory=list)
    best_epoch: int = 0
    best_value: float | None = None
    best_state: dict[str, torch.Tensor] | None = None
    averaged: AveragedModel | None = None  # the weights' moving average (``ema_decay`` > 0)

    @property
    def evaluated(self) -> nn.Module:
        """The weights that are validated, tested and saved: the average when there is one."""
        if self.averaged is None:
            return self.model
        module: nn.Module = self.averaged.module
        return module

    @property
    def amp(self) -> bool:
        return self.scaler.is_enabled()

    def autocast(self) -> AbstractContextManager[Any]:
        return torch.autocast("cuda", dtype=torch.float16) if self.amp else nullcontext()

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The task's loss; for an ensemble in training ([k, B, n]) the mean of its members'."""
        if out.dim() == 3:
            return torch.stack([self.loss(member, y) for member in out]).mean()
        return task_loss(self.data.kind, self.data.n_classes, out, y)


def train_epoch(run: _Training, epoch: int) -> tuple[float, str]:
    """Mean training loss, and a non-empty detail if the loss stopped being finite."""
    run.model.train()
    total, count = 0.0, 0
    batches = batch_indices(run.data.train, run.config.batch_size, run.generator)
    for number, index in enumerate(batches, 1):
        x, lengths, y = take(run.data.train, index, run.device)
        with run.autocast():
            loss = run.loss(run.model(x, lengths), y)
        value = loss.item()
        if not math.isfinite(value):
            return math.nan, f"training loss became {value} at epoch {epoch}, batch {number}"
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        if run.config.grad_clip > 0:
            run.scaler.unscale_(run.optimizer)
            nn.utils.clip_grad_norm_(run.model.parameters(), run.config.grad_clip)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        if run.averaged is not None:
            run.averaged.update_parameters(run.model)
        total += value * len(index)
        count += len(index)
    return total / max(count, 1), ""


def evaluate(run: _Training, split: Split) -> dict[str, float]:
    """Metrics over a whole split, forecasts in original units; ``loss`` as in training."""
    return split_metrics(run.evaluated, run.data, split, run.device, run.autocast)


@torch.inference_mode()
def split_metrics(
    model: nn.Module,
    data: PreparedData,
    split: Split,
    device: torch.device | None = None,
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> dict[str, float]:
    """Any model's metrics over one of ``data``'s splits (a trial's during training, a study
    ensemble's after it): forecasts in original units, ``loss`` the task's loss."""
    model.eval()
    outs, ys = [], []
    for index in batch_indices(split, EVAL_BATCH, None):
        x, lengths, y = take(split, index, device or torch.device("cpu"))
        with autocast():
            outs.append(model(x, lengths).float())
        ys.append(y)
    out, y = torch.cat(outs), torch.cat(ys)
    loss = task_loss(data.kind, data.n_classes, out, y).item()
    if data.kind == "forecasting":
        metrics = forecast_metrics(*original_units(data, split, out.cpu(), y.cpu()))
    else:
        pred = (out.squeeze(-1) > 0).long() if data.n_classes == 2 else out.argmax(-1)
        metrics = classification_metrics(pred.cpu(), y.cpu(), data.n_classes)
    return {**metrics, "loss": loss}


def original_units(
    data: PreparedData, split: Split, out: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forecasts and targets (in split order) unscaled and, with a target transform, inverted
    from each window's context, so metrics are in the series' own units."""
    assert data.scaler is not None
    mean, std = data.scaler["mean"][0], data.scaler["std"][0]
    pred, true = out * std + mean, y * std + mean
    if split.context is None or split.target is None:
        return pred, true
    return invert(pred, split.context, data.target_transform, data.season), split.target


def _start(config: TrainConfig, data: PreparedData) -> _Training:
    """Seed, build the model and optimizer on the chosen device."""
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    model = build_model(data.state(), asdict(config)).to(device)
    use_amp = config.amp and device.type == "cuda"
    return _Training(
        config,
        data,
        model,
        make_optimizer(config, model),
        device,
        torch.amp.GradScaler("cuda", enabled=use_amp),
        torch.Generator().manual_seed(config.seed),
        averaged=moving_average(model, config.ema_decay),
    )


def moving_average(model: nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of ``model``'s weights, or None when ``decay`` is 0."""
    if decay <= 0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))


def _better(config: TrainConfig, value: float, best: float | None) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value < best if config.direction == "minimize" else value > best


def run_epoch(run: _Training, epoch: int) -> EpochResult | str:
    """One epoch of training and validation, or the reason it diverged."""
    started = time.perf_counter()
    train_loss, detail = train_epoch(run, epoch)
    if detail:
        return detail
    metrics = evaluate(run, run.data.val)
    if not math.isfinite(metrics["loss"]):
        return f"validation loss became {metrics['loss']} at epoch {epoch}"
    seconds = time.perf_counter() - started
    return EpochResult(epoch, train_loss, metrics["loss"], metrics, seconds)


def _record(run: _Training, result: EpochResult) -> None:
    """Keep the curve, and a CPU copy of the weights whenever the monitored metric improves."""
    run.epochs.append(result)
    value = result.metrics.get(run.config.metric, result.val_loss)
    if run.config.keep_last or _better(run.config, value, run.best_value):
        run.best_epoch, run.best_value = result.epoch, value
        run.best_state = {
            k: v.detach().to("cpu", copy=True) for k, v in run.evaluated.state_dict().items()
        }


def _stop_reason(
    run: _Training,
    result: EpochResult,
    on_epoch: Callable[[EpochResult], bool] | None,
    should_stop: Callable[[], bool] | None,
) -> StopReason | None:
    """Pruning first (the pruner saw this epoch), then shutdown, then patience."""
    if on_epoch is not None and on_epoch(result):
        return "pruned"
    if should_stop is not None and should_stop():
        return "interrupted"
    patience = run.config.patience
    if patience is not None and result.epoch - run.best_epoch >= patience:
        return "early_stopping"
    return None


def fit(
    config: TrainConfig,
    data: PreparedData,
    on_epoch: Callable[[EpochResult], bool] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train up to ``config.max_epochs`` epochs; see :class:`TrainResult` for what comes back.

    ``on_epoch`` gets each epoch's validation result and returns True to prune; ``should_stop``
    is polled after each epoch (graceful shutdown). The best epoch is chosen on
    ``config.metric`` (falling back to loss), and its weights give ``test_metrics``.
    """
    run = _start(config, data)
    for epoch in range(1, config.max_epochs + 1):
        outcome = run_epoch(run, epoch)
        if isinstance(outcome, str):
            return _finish(run, "diverged", outcome)
        _record(run, outcome)
        reason = _stop_reason(run, outcome, on_epoch, should_stop)
        if reason is not None:
            return _finish(run, reason)
    return _finish(run, "max_epochs")


def _finish(run: _Training, reason: StopReason, detail: str = "") -> TrainResult:
    """Test metrics with the best weights (skipped for pruned runs: nobody reads them)."""
    test: dict[str, float] = {}
    if run.best_state is not None and reason != "pruned" and len(run.data.test):
        run.evaluated.load_state_dict(run.best_state)
        test = evaluate(run, run.data.test)
    return TrainResult(
        epochs=run.epochs,
        best_epoch=run.best_epoch,
        stop_reason=reason,
        test_metrics=test,
        n_params=count_parameters(run.model),
        reason_detail=detail,
        best_state=run.best_state,
        train_n=len(run.data.train),
        val_n=len(run.data.val),
        test_n=len(run.data.test) if test else 0,
    )
