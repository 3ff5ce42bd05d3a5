"""Target transforms for forecasting, applied before scaling and inverted for metrics and
predictions, so RMSE and forecasts are always in the series' original units.

Why: an LSTM fed a trending series (co2) must extrapolate levels it never saw in training; the
difference (``diff``) or the change against one season ago (``seasonal_diff``) is stationary, and
``log`` turns multiplicative growth into additive. Each transform needs ``lag`` original values
before a window's first target to be inverted (1 for ``diff``, ``season`` for
``seasonal_diff``, none for ``log``); those values are kept with each window as its context.
"""

from __future__ import annotations

import numpy as np
import torch

from hpo_service.data.prepared import DatasetError

TRANSFORMS = ("none", "log", "diff", "seasonal_diff")
#: seasonal_diff's lag when ``task.season`` is unset (monthly data).
DEFAULT_SEASON = 12


def season_of(season: int | None) -> int:
    """``task.season``, or :data:`DEFAULT_SEASON` when the spec leaves it unset."""
    return season or DEFAULT_SEASON


def lag(transform: str, season: int) -> int:
    """Original values a transformed value depends on, before its own time step."""
    return {"diff": 1, "seasonal_diff": season}.get(transform, 0)


def forward(values: np.ndarray, transform: str, season: int) -> np.ndarray:
    """The transformed series, ``lag`` values shorter than ``values``."""
    if transform == "log":
        if (values <= -1).any():
            raise DatasetError(
                f"task.target_transform: log is log(1 + value) and needs values above -1; "
                f"the series reaches {values.min():g}"
            )
        return np.log1p(values)
    k = lag(transform, season)
    if k >= len(values):
        raise DatasetError(f"task.season: {season} is not shorter than the series ({len(values)})")
    return values[k:] - values[:-k] if k else values.copy()


def invert(z: torch.Tensor, context: torch.Tensor, transform: str, season: int) -> torch.Tensor:
    """Original-unit values [N, h] from transformed ones [N, h] and each row's last ``lag``
    original values [N, lag] (for a seasonal difference beyond one season, earlier forecasts
    serve as the history)."""
    z = z.double()
    if transform == "log":
        return torch.expm1(z)
    if transform == "diff":
        return context[:, -1:].double() + torch.cumsum(z, dim=1)
    if transform == "seasonal_diff":
        history = context.double()
        for k in range(z.shape[1]):
            history = torch.cat([history, history[:, -season : -season + 1] + z[:, k : k + 1]], 1)
        return history[:, context.shape[1] :]
    return z
