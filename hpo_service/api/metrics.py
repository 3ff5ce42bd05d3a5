"""Prometheus metrics: trials by state, live workers and request latency.

Trial and worker numbers are read from the database at scrape time (one grouped query each), so
they are right for every worker on every machine, not just what this process saw. Each app gets
its own registry: two apps in one process (tests) never share or double-register metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hpo_service.config import Settings
from hpo_service.scheduling.registry import count_live
from hpo_service.store import optuna_tables
from hpo_service.store.db import get_engine, session_scope
from hpo_service.store.models import StudyRecord

log = logging.getLogger(__name__)


class DatabaseCollector(Collector):
    """Gauges computed from the shared database on each scrape."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("hpo_database_up", "1 if the last scrape could read the database")
        try:
            metrics = self._read()
        except Exception as error:  # a scrape must not fail because the database is away
            log.warning("metrics: cannot read the database: %s", error)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield from metrics

    def _read(self) -> list[Metric]:
        trials = GaugeMetricFamily(
            "hpo_trials", "Trials by study and state", labels=["study", "state"]
        )
        studies = GaugeMetricFamily("hpo_studies", "Studies by state", labels=["state"])
        live = GaugeMetricFamily("hpo_workers_live", "Workers heard from within stale_after_s")
        engine = get_engine(self.settings)
        with session_scope(engine) as session:
            for name, state, count in optuna_tables.counts_by_study_and_state(session.connection()):
                trials.add_metric([name, state], float(count))
            by_state = select(StudyRecord.state, func.count()).group_by(StudyRecord.state)
            for state, count in session.execute(by_state):
                studies.add_metric([state], float(count))
            live.add_metric([], float(count_live(session, self.settings.stale_after_s)))
        return [trials, studies, live]


def build_registry(settings: Settings) -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(settings))
    latency = Histogram(
        "hpo_http_request_duration_seconds",
        "HTTP request latency by method, route template and status",
        ["method", "route", "status"],
        registry=registry,
    )
    return registry, latency


class MetricsMiddleware:
    """Times every HTTP request; labels use the route template (``/api/studies/{name}``), so
    the number of series stays bounded whatever paths clients send."""

    def __init__(self, app: ASGIApp, latency: Histogram) -> None:
        self.app = app
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.latency.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - started
            )
