"""Datasets: loading, cleaning, leakage-free splits, encoding and a preprocessing cache.

``DatasetError`` is imported eagerly; the rest lazily (PEP 562), because loading pulls in torch
(seconds) and the spec intake only needs :mod:`.availability` and the error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpo_service.data.errors import DatasetError

if TYPE_CHECKING:
    from hpo_service.data.load import load_dataset
    from hpo_service.data.prepared import PreparedData, Split

__all__ = ["DatasetError", "PreparedData", "Split", "load_dataset"]


def __getattr__(name: str) -> Any:
    if name == "load_dataset":
        from hpo_service.data.load import load_dataset

        return load_dataset
    if name in ("PreparedData", "Split"):
        from hpo_service.data import prepared

        return getattr(prepared, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
