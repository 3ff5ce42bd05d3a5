"""Request dependencies: the app's settings, engine, storage and the bearer-token check.

Everything hangs off ``request.app.state`` (filled by ``create_app``), so two apps with different
settings can live in one process (tests do) and nothing is built at import time.
"""

from __future__ import annotations

import hmac
from typing import Annotated

import optuna
from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from hpo_service.api.errors import ApiError
from hpo_service.config import Settings
from hpo_service.scheduling.supervisor import Supervisor
from hpo_service.store.db import get_engine, get_storage

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_bearer = HTTPBearer(auto_error=False, description="HPO_API_TOKEN, when the server sets one.")


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


def token_matches(expected: str, given: str) -> bool:
    """Constant-time comparison, so response timing does not leak how much of a guess matched."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def require_token(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """With ``HPO_API_TOKEN`` set, mutating requests (and reads, if ``auth_reads``) need
    ``Authorization: Bearer <token>``; without it the API is open (one-machine use)."""
    if settings.api_token is None:
        return
    if request.method in SAFE_METHODS and not settings.auth_reads:
        return
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "missing bearer token (Authorization: Bearer <token>)", None, challenge)
    if not token_matches(settings.api_token.get_secret_value(), credentials.credentials):
        raise ApiError(401, "invalid bearer token", None, challenge)
