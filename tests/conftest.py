"""Shared fixtures: real databases (an SQLite file, and PostgreSQL when a URL is given) and the
shared datasets folder. PostgreSQL tests read ``HPO_TEST_POSTGRES_URL`` and skip without it;
``.ci/run`` sets it and fails when they would skip."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_datasets_dir() -> Path | None:
    """``HPO_TEST_DATA_DIR``, else ``../shared/datasets`` beside the checkout."""
    configured = os.environ.get("HPO_TEST_DATA_DIR")
    candidate = Path(configured) if configured else REPO_ROOT.parent / "shared" / "datasets"
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_datasets_dir()
    if path is None:
        pytest.skip("shared datasets not found: set HPO_TEST_DATA_DIR")
    return path
