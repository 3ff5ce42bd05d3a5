"""``hpo serve``: run the REST API (and the dashboard, when installed) with uvicorn.

One server process uses one core at best (the GIL), so ``--workers N`` runs N uvicorn
processes on the same port; each builds its app from the environment through
``hpo_service.api.app.serve_app``. The default is the machine's cores (at most
:data:`MAX_DEFAULT_WORKERS`): the API is CPU-bound once the database answers from its cache.
Background housekeeping (the reaper) runs in one of them at a time
(``scheduling/housekeeping.py``).

Every connection is served with ``TCP_NODELAY`` (:class:`NoDelayH11Protocol`). asyncio sets it
only on sockets whose ``proto`` is TCP, and uvicorn's multi-process mode binds its socket with
``proto`` 0, so keep-alive clients of ``--workers N`` waited for Nagle's algorithm and the
client's delayed ACK (40 ms) before each small body: in ``bench/bench_api_load.py`` a single
client saw 48 ms for a cached 2 kB answer that took 1.5 ms on a fresh connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
from pathlib import Path
from typing import Annotated

import typer
from uvicorn.protocols.http.h11_impl import H11Protocol

from hpo_service.cli.common import err_console, settings

#: The default process count never goes above this (each holds its own connection pool).
MAX_DEFAULT_WORKERS = 8


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with Nagle's algorithm off on every connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):  # a connection already gone
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


#: How uvicorn finds the protocol in each server process.
HTTP_PROTOCOL = f"{__name__}:{NoDelayH11Protocol.__name__}"


def default_workers(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may use, at most MAX_DEFAULT_WORKERS: the CPU affinity, lowered
    to a container's CPU quota (cgroup v2 ``cpu.max``), which affinity does not show."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota: the affinity stands
    return max(1, min(cores, MAX_DEFAULT_WORKERS))


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind (0.0.0.0: every interface).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Server processes on this port (default: the cores, at most 8).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the API. Set HPO_API_TOKEN before binding to anything but localhost."""
    import uvicorn

    from hpo_service.api.app import serve_app
    from hpo_service.scheduling.supervisor import SERVER_GROUP_ENV
    from hpo_service.store.db import ensure_schema

    cfg = settings()
    logging.basicConfig(level=cfg.log_level, format="%(asctime)s %(name)s %(message)s")
    ensure_schema(cfg)  # an empty database is set up; an outdated one asks for `hpo migrate`
    if host not in ("127.0.0.1", "localhost", "::1") and cfg.api_token is None:
        err_console.print(
            f"[yellow]warning:[/yellow] serving on {host} without HPO_API_TOKEN: anyone who can "
            "reach it can create, stop and delete studies"
        )
    count = workers or default_workers()
    if count == 1:
        uvicorn.run(
            serve_app(),
            host=host,
            port=port,
            http=NoDelayH11Protocol,
            log_level=cfg.log_level.lower(),
        )
        return
    # Inherited by every server process and the workers they spawn (scheduling/supervisor.py).
    os.environ[SERVER_GROUP_ENV] = str(os.getpid())
    uvicorn.run(
        "hpo_service.api.app:serve_app",
        factory=True,
        workers=count,
        http=HTTP_PROTOCOL,
        host=host,
        port=port,
        log_level=cfg.log_level.lower(),
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
