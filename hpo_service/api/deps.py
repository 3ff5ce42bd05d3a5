"""Request dependencies: the app's settings, engine, storage and worker supervisor.

Everything hangs off ``request.app.state`` (filled by ``create_app``), so two apps with different
settings can live in one process (tests do) and nothing is built at import time. The bearer
token is not a dependency: FastAPI parses a body before dependencies run, so the token is
checked earlier, by :class:`hpo_service.api.auth.TokenMiddleware`.
"""

from __future__ import annotations

from typing import Annotated

import optuna
from fastapi import Depends, Path, Request
from sqlalchemy import Engine

from hpo_service.config import Settings
from hpo_service.scheduling.supervisor import Supervisor
from hpo_service.store.db import get_engine, get_storage


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(app_settings)]


def app_engine(settings: SettingsDep) -> Engine:
    return get_engine(settings)


def app_storage(settings: SettingsDep) -> optuna.storages.RDBStorage:
    return get_storage(settings)


def app_supervisor(request: Request) -> Supervisor:
    supervisor: Supervisor = request.app.state.supervisor
    return supervisor


EngineDep = Annotated[Engine, Depends(app_engine)]
StorageDep = Annotated[optuna.storages.RDBStorage, Depends(app_storage)]
SupervisorDep = Annotated[Supervisor, Depends(app_supervisor)]
StudyName = Annotated[
    str, Path(max_length=100, description="Study name.", examples=["sunspots-lstm"])
]
