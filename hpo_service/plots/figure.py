"""Small helpers to hand-build compact plotly figure dicts (no plotly import, no template).

Every list that leaves this module is plain Python (JSON-able, NaN/inf turned into ``None``) and
rounded to a few significant digits so that 10,000-trial figures stay well under 2 MB.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Figure = dict[str, Any]

PALETTE = (
    "#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A",
    "#19D3F3", "#FF6692", "#B6E880", "#FF97FF", "#FECB52",
)
NO_TRIALS = "no completed trials yet"
SEED = 20240601  # fixed, so repeated requests show the same sample


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def round_sig(values: np.ndarray, sig: int = 6) -> np.ndarray:
    """Round to ``sig`` significant digits (vectorised); non-finite values pass through."""
    a = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(a) & (a != 0)
    if not finite.any():
        return a
    out = a.copy()
    mag = np.floor(np.log10(np.abs(a[finite])))
    scale = 10.0 ** (sig - 1 - mag)
    out[finite] = np.round(a[finite] * scale) / scale
    return out


def nums(values: Any, sig: int = 6) -> list[Any]:
    """A JSON-safe list: rounded floats, ``None`` for NaN/inf."""
    a = round_sig(np.asarray(values, dtype=np.float64), sig)
    bad = ~np.isfinite(a)
    if not bad.any():
        return a.tolist()
    obj = a.astype(object)
    obj[bad] = None
    return obj.tolist()


def ints(values: Any) -> list[int]:
    return np.asarray(values, dtype=np.int64).tolist()


def base_layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title},
        "margin": {"t": 70, "l": 70, "r": 30, "b": 60},
        "hovermode": "closest",
    }
    layout.update(extra)
    return layout


def add_note(fig: Figure, text: str, below: bool = False, **meta: Any) -> Figure:
    """Put a visible note above (or below) the plot, e.g. "showing 500 of 10,000 trials"."""
    layout = fig["layout"]
    annotations = layout.setdefault("annotations", [])
    existing = [a for a in annotations if a.get("name") == "note"]
    if existing:  # one note line per figure: a second note joins the first
        existing[0]["text"] += "<br>" + text
    else:
        annotations.append({
            "name": "note", "text": text, "xref": "paper", "yref": "paper", "x": 0,
            "y": -0.08 if below else 1.0, "xanchor": "left",
            "yanchor": "top" if below else "bottom", "showarrow": False,
            "font": {"size": 12, "color": "#555"},
        })
    notes = layout.setdefault("meta", {}).setdefault("notes", [])
    notes.append(text)
    layout["meta"].update(meta)
    return fig


def empty_figure(title: str, message: str = NO_TRIALS) -> Figure:
    """A valid figure with nothing but a centred message."""
    fig: Figure = {"data": [], "layout": base_layout(title)}
    fig["layout"]["xaxis"] = {"visible": False}
    fig["layout"]["yaxis"] = {"visible": False}
    fig["layout"]["annotations"] = [{
        "text": message, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
        "showarrow": False, "font": {"size": 16},
    }]
    fig["layout"]["meta"] = {"empty": True, "notes": [message]}
    return fig


def shown_note(shown: int, total: int, what: str = "trials") -> str:
    return f"showing {shown:,} of {total:,} {what}"


def sample_indices(loss: np.ndarray, limit: int, top: int) -> np.ndarray:
    """Indices of at most ``limit`` items: the ``top`` lowest ``loss`` plus a fixed random rest.

    Returned sorted ascending (original order), all items when there are at most ``limit``.
    """
    n = loss.size
    if n <= limit:
        return np.arange(n)
    top = min(top, limit)
    best = np.argpartition(loss, top - 1)[:top] if top else np.empty(0, np.int64)
    rest_mask = np.ones(n, dtype=bool)
    rest_mask[best] = False
    rest = np.flatnonzero(rest_mask)
    rng = np.random.default_rng(SEED)
    picked = rng.choice(rest, size=limit - top, replace=False)
    return np.sort(np.concatenate([best, picked]))


def group_quantiles(
    keys: np.ndarray, values: np.ndarray, n_groups: int, qs: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-group quantiles (linear interpolation) for integer ``keys`` in [0, n_groups).

    Returns (counts, quantiles) with quantiles of shape (len(qs), n_groups), NaN for empty groups.
    """
    order = np.lexsort((values, keys))
    sorted_vals = values[order]
    counts = np.bincount(keys, minlength=n_groups)
    starts = np.cumsum(counts) - counts
    out = np.full((len(qs), n_groups), np.nan)
    has = counts > 0
    for i, q in enumerate(qs):
        pos = starts[has] + q * (counts[has] - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.ceil(pos).astype(np.int64)
        frac = pos - lo
        out[i, has] = sorted_vals[lo] * (1 - frac) + sorted_vals[hi] * frac
    return counts, out


def grid_domains(n: int, cols: int, gap: float = 0.08) -> list[tuple[list[float], list[float]]]:
    """(x domain, y domain) for ``n`` subplots in a grid of ``cols`` columns, row-major."""
    rows = -(-n // cols)
    width = (1 - gap * (cols - 1)) / cols
    height = (1 - gap * 1.5 * (rows - 1)) / rows
    out = []
    for i in range(n):
        r, c = divmod(i, cols)
        x0 = c * (width + gap)
        y1 = 1 - r * (height + gap * 1.5)
        out.append(([round(x0, 4), round(x0 + width, 4)], [round(y1 - height, 4), round(y1, 4)]))
    return out
