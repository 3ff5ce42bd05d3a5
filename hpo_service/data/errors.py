"""The data package's one error, in a module of its own so that light callers (the spec intake
of ``hpo study create``, the API's create route) can check a dataset without importing torch."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset cannot be found or read; the message says what to fix."""
