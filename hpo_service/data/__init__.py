"""Datasets: loading, cleaning, leakage-free splits, encoding and a preprocessing cache."""

from hpo_service.data.load import load_dataset
from hpo_service.data.prepared import DatasetError, PreparedData, Split

__all__ = ["DatasetError", "PreparedData", "Split", "load_dataset"]
