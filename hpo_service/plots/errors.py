"""The one exception the plotting module raises on purpose."""

from __future__ import annotations


class PlotError(ValueError):
    """A plot request that cannot be served; ``status`` is the HTTP status the API should send.

    404: the study does not exist. 422: unknown kind, bad ``params`` value or unknown key, or a
    kind that does not apply to the study (e.g. ``pareto_front`` on a single-objective study).
    """

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
