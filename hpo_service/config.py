"""Settings: one typed object read from the environment (prefix ``HPO_``) and an optional ``.env``.

Nothing here runs at import time: callers build settings with :func:`get_settings` (cached per
process) or construct :class:`Settings` directly in tests and ``create_app(settings)``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hpo_service.devices import check_device

DeviceName = str  # "cpu", "cuda", "cuda:N" or "auto"


class Settings(BaseSettings):
    """Every knob the service reads. Environment variables are the field names prefixed ``HPO_``."""

    model_config = SettingsConfigDict(
        env_prefix="HPO_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default="sqlite:///./hpo.db",
        description="SQLAlchemy URL shared by the API and every worker (SQLite: one machine only).",
    )
    data_dir: Path | None = Field(
        default=None, description="Folder with file datasets (sst2/, sms_spam/) and uploaded CSVs."
    )
    artifact_dir: Path = Field(
        default=Path("./artifacts"), description="Per-trial weights, preprocessing state, config."
    )
    cache_dir: Path = Field(
        default=Path("./.hpo-cache"), description="Cached preprocessed tensors per dataset."
    )
    api_token: SecretStr | None = Field(
        default=None, description="When set, mutating API requests need 'Bearer <token>'."
    )
    auth_reads: bool = Field(default=False, description="Require the token for reads too.")
    cors_origins: list[str] = Field(
        default_factory=list, description="CORS allow-list; empty = off."
    )
    device: DeviceName = Field(default="auto", description="Default training device.")
    pool_size: int = Field(default=5, ge=1, description="Connection pool size per process.")
    max_overflow: int = Field(default=5, ge=0, description="Extra connections above pool_size.")
    heartbeat_interval_s: float = Field(default=10.0, gt=0, description="Worker heartbeat period.")
    stale_after_s: float = Field(
        default=60.0, gt=0, description="A running trial without heartbeat this long is reaped."
    )
    poll_interval_s: float = Field(default=2.0, gt=0, description="Idle worker poll period.")
    max_upload_mb: float = Field(default=50.0, gt=0, description="Dataset upload size limit.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    worker_threads: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="torch threads per worker process; default: the cores shared out among "
        "the local workers.",
    )

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        return check_device(value)

    @field_validator("database_url")
    @classmethod
    def _normalise_postgres_driver(cls, value: str) -> str:
        """Plain ``postgresql://`` would pick psycopg2, which is not installed: use psycopg 3."""
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use (never at import time)."""
    return Settings()
