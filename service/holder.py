"""The model a worker serves, and how it changes: load, canary, swap, poll.

A request reads ``holder.current`` once and uses that ``Serving`` to the end, so a swap
(one reference assignment) never changes a model under a request in flight. A new model
must load (SHA-256 verified by ``models.registry``) *and* score canary snapshots before
it is swapped in; if either fails, the old model keeps serving and the failure is kept
in ``last_reload`` for ``/v1/model``. Loading runs in a thread, so requests are answered
while MLflow downloads and unpickles.

Every worker polls the champion alias (``CHURN_MODEL_POLL_SECONDS``): a cheap registry
lookup of the version the alias points at (or the SHA-256 of a bundle file) and a reload
only when it changed, so all workers converge after a promotion.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np

from features.errors import ChurnError, ModelError
from features.schema import AccountSnapshot, records_to_columns
from features.settings import Settings
from models.bundle import ChurnModel, file_sha256
from service.schemas import MINIMAL_EXAMPLE, SNAPSHOT_EXAMPLE

log = logging.getLogger("churn.model")
REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")
CANARY = [
    AccountSnapshot.model_validate(SNAPSHOT_EXAMPLE),
    AccountSnapshot.model_validate(MINIMAL_EXAMPLE),
    AccountSnapshot(account_id="canary-empty"),
]
if TYPE_CHECKING:  # models.registry imports MLflow: only when a models:/ URI is loaded
    from models.registry import LoadedModel

    Loader = Callable[[Settings], LoadedModel]
    Peeker = Callable[[Settings], str | None]


@dataclass(frozen=True)
class Serving:
    """A loaded model plus what every response repeats about it, computed once per load."""

    loaded: LoadedModel
    loaded_at: dt.datetime
    ref: dict[str, str | None]  # {name, version, run_id}
    identity: str | None  # registry version or bundle SHA-256: what polling compares

    @property
    def model(self) -> ChurnModel:
        return self.loaded.model


@dataclass(frozen=True)
class ReloadStatus:
    at: dt.datetime
    ok: bool
    version: str | None
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "ok": self.ok,
            "version": self.version,
            "error": self.error,
        }


def load_configured(settings: Settings) -> LoadedModel:
    """Load ``CHURN_MODEL_URI`` (default the champion) from the configured MLflow store."""
    from models.registry import load_model

    uri = settings.resolved_model_uri
    if REGISTRY_URI.match(uri):
        _point_mlflow_at(settings)
    return load_model(
        uri, settings.resolved_tracking_uri, settings.registry_uri or settings.resolved_tracking_uri
    )


def peek_configured(settings: Settings) -> str | None:
    """What the configured URI points at now: the registry version, or the bundle's SHA-256."""
    uri = settings.resolved_model_uri
    match = REGISTRY_URI.match(uri)
    if match is None:
        path = Path(uri)
        return file_sha256(path) if path.is_file() else None
    if match["version"]:
        return match["version"]
    from models.registry import resolve_version

    registry = settings.registry_uri or settings.resolved_tracking_uri
    found = resolve_version(
        match["name"], match["alias"], None, settings.resolved_tracking_uri, registry
    )
    return str(found.version)


def _point_mlflow_at(settings: Settings) -> None:
    """MLflow resolves ``models:/`` artifact downloads through its global registry URI."""
    import mlflow

    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri or settings.resolved_tracking_uri)


def canary(model: ChurnModel) -> None:
    """Score fixed snapshots end to end (features, contributions, drivers); raise if anything is off."""
    try:
        columns = records_to_columns(CANARY, dt.date(2025, 6, 1))
        scores = model.score(columns, explain=True)
        model.drivers(columns, scores)
        model.risk_tiers(scores.probability)
        model.missing_inputs(columns)
    except Exception as exc:  # any failure means: do not serve this model
        raise ModelError(f"canary scoring failed: {type(exc).__name__}: {exc}") from exc
    probability = np.asarray(scores.probability)
    if probability.shape != (len(CANARY),) or not np.all((probability >= 0) & (probability <= 1)):
        raise ModelError(
            f"canary scoring returned probabilities outside [0, 1]: {probability.tolist()}"
        )


class ModelHolder:
    """Holds the serving model of one worker; reloads are serialised, requests never wait."""

    def __init__(
        self,
        settings: Settings,
        loader: Loader = load_configured,
        peek: Peeker = peek_configured,
    ) -> None:
        self.settings = settings
        self.current: Serving | None = None
        self.last_reload: ReloadStatus | None = None
        self._loader = loader
        self._peek = peek
        self._swap_listeners: list[Callable[[Serving | None, Serving], None]] = []
        self._failure_listeners: list[Callable[[str], None]] = []
        self._lock = asyncio.Lock()
        self._failed_identity: str | None = None

    @property
    def ready(self) -> bool:
        return self.current is not None

    def subscribe(
        self,
        on_swap: Callable[[Serving | None, Serving], None] | None = None,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        """Be told about swaps (old, new) and refused models (the error message)."""
        if on_swap:
            self._swap_listeners.append(on_swap)
        if on_failure:
            self._failure_listeners.append(on_failure)

    async def reload(self, force: bool = False) -> tuple[bool, Serving]:
        """Load the configured model unless it is the one served; raise ModelError if it fails.

        Returns (swapped, serving). On failure the old model keeps serving.
        """
        async with self._lock:
            return await anyio.to_thread.run_sync(self.load_blocking, force)

    async def poll_once(self) -> None:
        """Reload if the alias (or bundle file) moved; failures are recorded, never raised."""
        async with self._lock:
            try:
                identity = await anyio.to_thread.run_sync(self._peek, self.settings)
            except Exception as exc:
                self._record_failure(
                    f"cannot look up {self.settings.resolved_model_uri}: {_message(exc)}", None
                )
                return
            served = self.current.identity if self.current else None
            if identity is None or identity == served or identity == self._failed_identity:
                return
            # A failure is recorded in last_reload; the old model keeps serving.
            with contextlib.suppress(ChurnError):
                await anyio.to_thread.run_sync(self.load_blocking, True)

    async def poll_forever(self) -> None:
        """Load at start-up (retrying on the poll interval) and follow the alias from then on."""
        interval = self.settings.model_poll_seconds
        while True:
            if self.current is None:
                with contextlib.suppress(ChurnError):
                    await self.reload(force=True)
            else:
                await self.poll_once()
            await asyncio.sleep(interval if interval > 0 else 5.0)
            if interval <= 0 and self.current is not None:
                return  # polling disabled: stop once the first model is in

    def load_blocking(self, force: bool) -> tuple[bool, Serving]:
        previous = self.current
        if not force and previous is not None and self._peek_quietly() == previous.identity:
            return False, previous
        try:
            loaded = self._loader(self.settings)
            canary(loaded.model)
        except Exception as exc:
            message = _message(exc)
            self._record_failure(message, self._peek_quietly())
            serving = (
                f"still serving version {previous.ref['version']}"
                if previous
                else "no model is served"
            )
            raise ModelError(
                f"loading {self.settings.resolved_model_uri} failed ({serving}): {message}"
            ) from exc
        serving = Serving(
            loaded=loaded,
            loaded_at=_now(),
            ref={"name": loaded.name, "version": loaded.version, "run_id": loaded.run_id},
            identity=loaded.version if loaded.version is not None else loaded.sha256,
        )
        self.current = serving  # the swap: one reference assignment
        self._failed_identity = None
        self.last_reload = ReloadStatus(serving.loaded_at, True, loaded.version, None)
        log.info(
            "model loaded",
            extra={
                "fields": {
                    "uri": loaded.uri,
                    "version": loaded.version,
                    "previous": previous.ref["version"] if previous else None,
                }
            },
        )
        for listener in self._swap_listeners:
            listener(previous, serving)
        return True, serving

    def _peek_quietly(self) -> str | None:
        try:
            return self._peek(self.settings)
        except Exception:
            return None

    def _record_failure(self, message: str, identity: str | None) -> None:
        if identity is not None:
            self._failed_identity = identity
        self.last_reload = ReloadStatus(_now(), False, identity, message)
        log.error(
            "model load failed",
            extra={"fields": {"uri": self.settings.resolved_model_uri, "error": message}},
        )
        for on_failure in self._failure_listeners:
            on_failure(message)


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ChurnError) else f"{type(exc).__name__}: {exc}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
