"""The one settings object. Environment variables ``CHURN_*``, overridable by CLI flags.

It lives in ``features`` because that is the package every other one may import;
nothing else in Churn reads ``os.environ``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from features.errors import ChurnError
from features.timeline import DEFAULT_HORIZON_DAYS, DEFAULT_HORIZONS

MIN_SIGNING_KEY_BYTES = 32
MIN_KEY_LENGTH = 16  # an API key shorter than this can be guessed
MAX_HORIZON_DAYS = 1095  # three years of monthly hazards at most
S = TypeVar("S", bound="Settings")


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def read_keys_file(path: Path, setting: str) -> list[str]:
    """One key per line; blank lines and comment lines (``#``, indented or not) skipped."""
    if not path.is_file():
        raise ValueError(f"{setting} {path} does not exist")
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def check_keys(keys: list[SecretStr], setting: str) -> None:
    """Refuse short keys, naming the setting and the length only (never the key)."""
    for position, key in enumerate(keys, start=1):
        length = len(key.get_secret_value())
        if length < MIN_KEY_LENGTH:
            raise ValueError(
                f"{setting}: key {position} has {length} characters; keys need at least "
                f"{MIN_KEY_LENGTH} (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )


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
    search_candidates: int | None = Field(
        None,
        ge=0,
        description="Capacity candidates `churn train` scores on held-out rows (default 8; 0: fixed).",
    )
    lease_seconds: float = Field(
        300.0, gt=0, description="Registry lease of a retrain or alias move, renewed while held."
    )
    lease_wait_seconds: float = Field(
        30.0, ge=0, description="How long an alias move waits for another job's lease."
    )
    prediction_log: bool = Field(
        True, description="`churn score` keeps what it scored under home/predictions."
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, gt=0, lt=65536)
    workers: int | None = Field(None, ge=1, description="Default: one per core.")
    batch_limit: int = Field(10_000, ge=1)
    model_poll_seconds: float = Field(30.0, ge=0, description="0 disables polling.")
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    api_keys_file: Path | None = None
    admin_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Keys for /admin/* (API keys do not open it)."
    )
    admin_keys_file: Path | None = None
    allow_anonymous: bool = Field(
        False, description="Serve /v1/* without keys on a non-loopback host (behind a gateway)."
    )
    reload_min_seconds: float = Field(
        2.0, ge=0, description="/admin/reload at most once per this many seconds per worker."
    )
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

    engine: Literal["local", "dask"] = Field(
        "local", description="local: one process; dask: partitions on a Dask cluster."
    )
    dask_scheduler: str | None = Field(
        None, description="Dask scheduler address; default a LocalCluster on this machine."
    )
    dask_worker_memory: str | None = Field(
        None, description="Memory limit per LocalCluster worker (4GiB); default a fair share."
    )
    dask_workers: int | None = Field(None, ge=1, description="LocalCluster workers; default cores.")
    dask_partitions: int | None = Field(
        None, ge=1, description="Account partitions; default sized to the workers' memory."
    )

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

    @field_validator("api_keys", "admin_keys", mode="before")
    @classmethod
    def _keys(cls, value: object) -> object:
        return _split_commas(value)

    @model_validator(mode="after")
    def _read_keys_files(self) -> Settings:
        if self.api_keys_file is not None:
            keys = read_keys_file(self.api_keys_file, "CHURN_API_KEYS_FILE")
            self.api_keys = [*self.api_keys, *(SecretStr(k) for k in keys)]
        if self.admin_keys_file is not None:
            keys = read_keys_file(self.admin_keys_file, "CHURN_ADMIN_KEYS_FILE")
            self.admin_keys = [*self.admin_keys, *(SecretStr(k) for k in keys)]
        check_keys(self.api_keys, "CHURN_API_KEYS")
        check_keys(self.admin_keys, "CHURN_ADMIN_KEYS")
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

    def admin_key_values(self) -> list[str]:
        return [k.get_secret_value() for k in self.admin_keys]

    def signing_key_values(self) -> list[bytes]:
        """Keys that verify bundles; the first signs new ones. Empty: bundles are checked
        for integrity (SHA-256) but not authenticated."""
        keys = [self.signing_key.get_secret_value()] if self.signing_key else []
        if self.signing_key_file is not None and self.signing_key_file.is_file():
            keys += read_keys_file(self.signing_key_file, "CHURN_SIGNING_KEY_FILE")
        return [key.encode() for key in keys]


def settings_problems(error: ValidationError) -> str:
    """A settings ValidationError as ``CHURN_NAME: what is wrong`` lines, never the values
    (pydantic's own message quotes the input, an API key included)."""
    lines = []
    for item in error.errors(include_url=False, include_context=False, include_input=False):
        field = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"CHURN_{field.upper()}: {message}" if field else message)
    return "; ".join(lines)


def read_settings(kind: type[S] = Settings, **overrides: Any) -> S:  # type: ignore[assignment]
    """``kind(**overrides)`` (environment under flags), its problems as one ChurnError that
    names every setting at fault and quotes none of the values."""
    try:
        return kind(**overrides)
    except ValidationError as exc:
        raise ChurnError(f"invalid settings: {settings_problems(exc)}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process from the environment."""
    return read_settings()
