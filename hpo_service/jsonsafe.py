"""Finite-number JSON, in one place: NaN and infinities become ``null``.

Strict JSON has no spelling for NaN or infinity, and JSON columns, browsers and ``jq`` refuse
them, yet a diverged trial's metrics are full of them. Every value the service writes as JSON
(trial attributes, API answers, ``hpo ... --json``) passes through :func:`finite_json`.
"""

from __future__ import annotations

import math
from typing import Any


def finite_json(value: Any) -> Any:
    """A copy of ``value`` (dicts, lists and tuples walked) with non-finite floats as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value
