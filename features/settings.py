"""The one settings object. Environment variables ``CHURN_*``, overridable by CLI flags.

It lives in ``features`` because that is the package every other one may import;
nothing else in Churn reads ``os.environ``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from features.timeline import DEFAULT_HORIZON_DAYS, DEFAULT_HORIZONS

MIN_SIGNING_KEY_BYTES = 32
MAX_HORIZON_DAYS = 1095  # three years of monthly hazards at most


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Paths, names and knobs shared by the CLI, training and the service."""

    model_config = SettingsConfigDict(env_prefix="CHURN_", extra="ignore", validate_default=True)

    home: Path = Field(Path(".churn"), description="Embedded MLflow store, demo data, locks.")
    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default SQLite in home."
    )
    registry_uri: str | None = Field(
        None, description="MLflow registry URI; default = tracking URI."
    )
    experiment: str = "churn"
    model_name: str = "churn-model"
    model_uri: str | None = Field(
        None, description="What `churn serve` loads; default the champion."
    )
    champion_alias: str = "champion"

    horizon_days: int = Field(DEFAULT_HORIZON_DAYS, gt=0, le=730)
    horizons: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_HORIZONS),
        description="Days of the time-to-churn model's probabilities; 'none' trains without it.",
    )
    exclude_columns: Annotated[list[str], NoDecode] = Field(default_factory=list)
    retrain_min_gain: float = Field(
        0.0, ge=0, le=1, description="ROC-AUC a challenger must add to replace the champion."
    )
    retrain_min_churners: int = Field(
        20, ge=1, description="Churners the test window needs to judge a challenger."
    )
    retrain_max_ece: float = Field(
        0.05, gt=0, le=1, description="A less calibrated challenger is never promoted."
    )
    lease_seconds: float = Field(
        300.0, gt=0, description="Registry lease of a retrain or alias move, renewed while held."
    )
    lease_wait_seconds: float = Field(
        30.0, ge=0, description="How long an alias move waits for another job's lease."
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, gt=0, lt=65536)
    workers: int | None = Field(None, ge=1, description="Default: one per core.")
    batch_limit: int = Field(10_000, ge=1)
    model_poll_seconds: float = Field(30.0, ge=0, description="0 disables polling.")
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    api_keys_file: Path | None = None
    playbook: Path | None = Field(None, description="TOML playbook overriding the packaged one.")
    signing_key: SecretStr | None = Field(
        None, description="HMAC key: signs registered bundles, verifies every load."
    )
    signing_key_file: Path | None = Field(
        None, description="Signing keys, one per line: the first signs, every one verifies."
    )
    gross_margin: float = Field(1.0, gt=0, le=1)
    discount_rate: float = Field(
        0.10, ge=0, le=1, description="Annual rate discounting expected_remaining_value."
    )
    log_level: str = "info"

    @field_validator("exclude_columns", mode="before")
    @classmethod
    def _columns(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("horizons", mode="before")
    @classmethod
    def _horizons(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("none", "no", "off", ""):
            return []
        return _split_commas(value)

    @field_validator("horizons")
    @classmethod
    def _horizon_days(cls, value: list[int]) -> list[int]:
        if any(not 0 < h <= MAX_HORIZON_DAYS for h in value):
            raise ValueError(f"horizons must be days between 1 and {MAX_HORIZON_DAYS}: {value}")
        return sorted(set(value))

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys(cls, value: object) -> object:
        return _split_commas(value)

    @model_validator(mode="after")
    def _read_keys_file(self) -> Settings:
        if self.api_keys_file is not None:
            if not self.api_keys_file.is_file():
                raise ValueError(f"CHURN_API_KEYS_FILE {self.api_keys_file} does not exist")
            lines = self.api_keys_file.read_text().splitlines()
            keys = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
            self.api_keys = [*self.api_keys, *(SecretStr(k) for k in keys)]
        return self

    @model_validator(mode="after")
    def _check_signing_keys(self) -> Settings:
        if self.signing_key_file is not None and not self.signing_key_file.is_file():
            raise ValueError(f"CHURN_SIGNING_KEY_FILE {self.signing_key_file} does not exist")
        short = [key for key in self.signing_key_values() if len(key) < MIN_SIGNING_KEY_BYTES]
        if short:
            raise ValueError(
                f"a signing key must be at least {MIN_SIGNING_KEY_BYTES} bytes "
                "(e.g. `openssl rand -hex 32`)"
            )
        return self

    # --- derived values --------------------------------------------------------

    @property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def resolved_tracking_uri(self) -> str:
        """The configured store, or the embedded SQLite file under ``home``."""
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{self.resolved_home / 'mlflow.db'}"

    @property
    def artifact_location(self) -> str | None:
        """Where the embedded store keeps artifacts (None: the server decides)."""
        if self.tracking_uri:
            return None
        return (self.resolved_home / "artifacts").as_uri()

    @property
    def champion_uri(self) -> str:
        return f"models:/{self.model_name}@{self.champion_alias}"

    @property
    def resolved_model_uri(self) -> str:
        return self.model_uri or self.champion_uri

    @property
    def resolved_workers(self) -> int:
        return self.workers or (os.cpu_count() or 1)

    @property
    def body_limit_bytes(self) -> int:
        """About 2 KB per account of the batch limit, plus slack for the envelope."""
        return self.batch_limit * 2048 + 64 * 1024

    def api_key_values(self) -> list[str]:
        return [k.get_secret_value() for k in self.api_keys]

    def signing_key_values(self) -> list[bytes]:
        """Keys that verify bundles; the first signs new ones. Empty: bundles are checked
        for integrity (SHA-256) but not authenticated."""
        keys = [self.signing_key.get_secret_value()] if self.signing_key else []
        if self.signing_key_file is not None and self.signing_key_file.is_file():
            lines = self.signing_key_file.read_text().splitlines()
            keys += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        return [key.encode() for key in keys]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process from the environment."""
    return Settings()
