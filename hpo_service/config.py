"""Settings: one typed object read from the environment (prefix ``HPO_``) and an optional ``.env``.

Nothing here runs at import time: callers build settings with :func:`get_settings` (cached per
process) or construct :class:`Settings` directly in tests and ``create_app(settings)``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hpo_service.devices import check_device
from hpo_service.spec.limits import (
    DEFAULT_MAX_CHOICES,
    DEFAULT_MAX_GRID_SIZE,
    DEFAULT_MAX_MODEL_MB,
    NUMERIC_CAPS,
    SpecLimits,
)

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
        default=None,
        description="Read-only folder with file datasets (sst2/, sms_spam/, CSVs); never written.",
    )
    upload_dir: Path = Field(
        default=Path("./.hpo-state/uploads"),
        description="Where uploaded CSVs are written (shared by the API and every worker).",
    )
    allow_local_paths: bool = Field(
        default=False,
        description="Let `hpo train` read any local CSV (absolute, ~, relative to the current "
        "directory). The API and workers never honour it.",
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
    db_pooler: Literal["none", "pgbouncer"] = Field(
        default="none",
        description="'pgbouncer': PostgreSQL is reached through a transaction pooler, so no "
        "server-side prepared statements (docs/scaling.md).",
    )
    pool_size: int = Field(default=5, ge=1, description="Connection pool size per process.")
    max_overflow: int = Field(default=5, ge=0, description="Extra connections above pool_size.")
    heartbeat_interval_s: float = Field(default=10.0, gt=0, description="Worker heartbeat period.")
    stale_after_s: float = Field(
        default=60.0, gt=0, description="A running trial without heartbeat this long is reaped."
    )
    poll_interval_s: float = Field(default=2.0, gt=0, description="Idle worker poll period.")
    max_upload_mb: float = Field(
        default=50.0, gt=0, description="Dataset upload size limit (POST /api/datasets only)."
    )
    max_body_mb: float = Field(
        default=2.0, gt=0, description="Size limit of every other request body (JSON, YAML)."
    )
    max_upload_columns: int = Field(
        default=1000, ge=1, description="Most columns an uploaded CSV may have."
    )
    max_upload_rows: int = Field(
        default=1_000_000, ge=1, description="Most data rows an uploaded CSV may have."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_model_mb: float = Field(
        default=DEFAULT_MAX_MODEL_MB,
        gt=0,
        description="Most training memory a spec's largest configuration may need (estimate).",
    )
    max_choices: int = Field(
        default=DEFAULT_MAX_CHOICES, ge=1, description="Most choices per search-space entry."
    )
    max_grid_size: int = Field(
        default=DEFAULT_MAX_GRID_SIZE, ge=1, description="Most points of a grid search."
    )
    spec_caps: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=dict,
        description="Overrides of the numeric spec caps, by field path (JSON object).",
    )
    worker_threads: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="torch threads per worker process; default: the cores shared out among "
        "the local workers.",
    )
    tpe_history: int = Field(
        default=2000,
        ge=0,
        description="TPE's 'above' (not good) set holds at most this many recent finished "
        "trials; the 'good' set is still chosen from all of them; 0 = unbounded (Optuna's own).",
    )
    api_cache_mb: float = Field(
        default=64.0,
        ge=0,
        description="In-process cache of study-scoped GET responses, per server process, "
        "invalidated by each study's change counter; 0 turns it off (ETags stay).",
    )
    max_predict_inputs: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Most inputs (texts, sequences, series points) of one predict request.",
    )
    predict_batch_size: int = Field(
        default=512, ge=1, le=65_536, description="Inputs a model sees at once when predicting."
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

    @field_validator("spec_caps")
    @classmethod
    def _known_caps(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(NUMERIC_CAPS))
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}; known: {', '.join(NUMERIC_CAPS)}")
        return value

    def spec_limits(self, allow_local_paths: bool = False) -> SpecLimits:
        """The limits intake holds specs to. Local paths only where the caller says so: the
        CLI passes ``allow_local_paths``; the API never does."""
        return SpecLimits(
            cap_overrides=tuple(sorted(self.spec_caps.items())),
            max_choices=self.max_choices,
            max_grid_size=self.max_grid_size,
            max_model_mb=self.max_model_mb,
            allow_local_paths=allow_local_paths,
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use (never at import time)."""
    return Settings()
