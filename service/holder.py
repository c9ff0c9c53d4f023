"""The model a worker serves, and how it changes: look, load, canary, swap.

A request reads ``holder.current`` once and uses that ``Serving`` to the end, so a swap
(one reference assignment) never changes a model under a request in flight. A new model
must load (its SHA-256 verified) *and* score canary snapshots before it is swapped in; if
either fails, the old model keeps serving and the failure is kept in ``last_reload`` for
``/v1/model``. Loading runs in a thread, so requests are answered meanwhile.

Where models come from is a ``ModelSource``:

* ``PublishedSource`` (``churn serve`` workers): the parent process resolves the model and
  publishes a pointer to a verified local bundle (``service.pointer``); the worker stats the
  pointer every second (every 50 ms until its first model), loads what it names, and asks
  the parent to resolve again on ``/admin/reload``. No MLflow in the worker.
* ``RegistrySource`` (in-process use, tests): resolves ``CHURN_MODEL_URI`` itself through
  ``models.registry`` and polls it every ``CHURN_MODEL_POLL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import numpy as np

from features.errors import ChurnError, ModelError
from features.redact import redact
from features.schema import AccountSnapshot, attribute_names, records_to_columns
from features.settings import Settings
from models.archive import NO_KEYS, SigningKeys
from models.bundle import ChurnModel
from service.pointer import Failure, PointerFile
from service.schemas import MINIMAL_EXAMPLE, SNAPSHOT_EXAMPLE

log = logging.getLogger("churn.model")
CANARY = [
    AccountSnapshot.model_validate(SNAPSHOT_EXAMPLE),
    AccountSnapshot.model_validate(MINIMAL_EXAMPLE),
    AccountSnapshot(account_id="canary-empty"),
]
if TYPE_CHECKING:
    from models.registry import LoadedModel

    Loader = Callable[[Settings], LoadedModel]
    Peeker = Callable[[Settings], str | None]


@dataclass(frozen=True)
class Serving:
    """A loaded model plus what every response repeats about it, computed once per load."""

    loaded: LoadedModel
    loaded_at: dt.datetime
    ref: dict[str, str | None]  # {name, version, run_id}
    identity: str | None  # what polling compares (registry version, bundle SHA-256)
    wide: ChurnModel  # the same model predicting with more threads (large batches)
    attributes: tuple[str, ...]  # the attributes the model reads: the only ones made columns

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


@dataclass(frozen=True)
class Upstream:
    """What the source would load now, and its latest failure (if it reports one)."""

    identity: str | None
    version: str | None = None
    failure: Failure | None = None
    generation: int | None = None  # a republication of the same model (e.g. after a repair)


class ModelSource(Protocol):
    """Where a holder's models come from."""

    uri: str

    def changed(self) -> bool:
        """Cheap: may ``look`` answer differently than last time?"""

    def look(self) -> Upstream:
        """What would be loaded now (blocking; runs in a thread)."""

    def load(self) -> tuple[LoadedModel, str | None]:
        """Load it (blocking): the model and its identity."""

    async def refresh(self) -> Failure | None:
        """Have the upstream resolve again now (``/admin/reload``); its failure, if any."""

    def interval(self, ready: bool) -> float | None:
        """Seconds until the next look; None stops watching."""


class RegistrySource:
    """In-process: resolve ``CHURN_MODEL_URI`` through ``models.registry`` (imports MLflow)."""

    def __init__(
        self,
        settings: Settings,
        loader: Loader | None = None,
        peek: Peeker | None = None,
    ) -> None:
        self.settings = settings
        self.uri = settings.resolved_model_uri
        self._loader = loader or load_configured
        self._peek = peek or peek_configured

    def changed(self) -> bool:
        return True

    def look(self) -> Upstream:
        identity = self._peek(self.settings)
        return Upstream(identity, identity)

    def load(self) -> tuple[LoadedModel, str | None]:
        loaded = self._loader(self.settings)
        return loaded, loaded.version if loaded.version is not None else loaded.sha256

    async def refresh(self) -> Failure | None:
        return None

    def interval(self, ready: bool) -> float | None:
        seconds = self.settings.model_poll_seconds
        if seconds > 0:
            return seconds
        return None if ready else 5.0  # polling off: retry only until the first model


class PublishedSource:
    """A `churn serve` worker: follow the pointer the parent publishes (``service.pointer``)."""

    def __init__(
        self,
        directory: Path,
        uri: str,
        poll_seconds: float = 1.0,
        start_seconds: float = 0.05,
        reply_seconds: float = 120.0,
        keys: SigningKeys = NO_KEYS,
    ) -> None:
        self.pointer = PointerFile(directory)
        self.keys = keys
        self._repair_asked: str | None = None
        self.uri = uri
        self.poll_seconds = poll_seconds
        self.start_seconds = start_seconds
        self.reply_seconds = reply_seconds

    def changed(self) -> bool:
        return self.pointer.changed()

    def look(self) -> Upstream:
        pointer = self.pointer.read()
        if pointer is None:
            return Upstream(None)
        model = pointer.model
        if model is None:
            return Upstream(None, None, pointer.error, pointer.seq)
        return Upstream(model.identity, model.version, pointer.error, pointer.seq)

    def load(self) -> tuple[LoadedModel, str | None]:
        from models.registry import LoadedModel

        pointer = self.pointer.read()
        if pointer is None or pointer.model is None:
            why = pointer.error.message if pointer and pointer.error else "nothing published yet"
            raise ModelError(f"the serving parent has no model to offer: {why}")
        ref = pointer.model
        try:
            model = ChurnModel.load(ref.path, sha256=ref.sha256, keys=self.keys)
        except ModelError:
            if self._repair_asked != ref.identity:  # once per model: the parent re-verifies
                self._repair_asked = ref.identity  # its cache, fetches again, republishes
                self.pointer.request_reload()
            raise
        self._repair_asked = None
        loaded = LoadedModel(
            model,
            uri=ref.uri,
            name=ref.name,
            version=ref.version,
            run_id=ref.run_id,
            sha256=ref.sha256,
        )
        return loaded, ref.identity

    async def refresh(self) -> Failure | None:
        """Drop a request for the parent and wait (bounded) until a pointer answers it."""
        request_id = self.pointer.request_reload()
        deadline = time.monotonic() + self.reply_seconds
        while time.monotonic() < deadline:
            answer = self.pointer.peek()
            if answer is not None and request_id in answer.answered:
                return answer.error
            await asyncio.sleep(0.02)
        self.pointer.withdraw(request_id)
        raise ModelError(
            f"the `churn serve` parent did not answer the reload request within "
            f"{self.reply_seconds:.0f} s; the current model keeps serving"
        )

    def interval(self, ready: bool) -> float | None:
        return self.poll_seconds if ready else self.start_seconds


def load_configured(settings: Settings) -> LoadedModel:
    """Load ``CHURN_MODEL_URI`` (default the champion) from the configured MLflow store."""
    from models.registry import load_model

    return load_model(settings.resolved_model_uri, settings)


def peek_configured(settings: Settings) -> str | None:
    """What the configured URI points at now: the registry version, or the bundle's SHA-256."""
    from models.registry import MODEL_URI, Registry

    uri = settings.resolved_model_uri
    match = MODEL_URI.match(uri)
    if match is None:
        from features.files import file_sha256

        path = Path(uri)
        return file_sha256(path) if path.is_file() else None
    if match["version"]:
        return match["version"]
    found = Registry.of(settings).alias_version(match["name"], match["alias"])
    if found is None:
        raise ModelError(f"model {match['name']!r} has no alias {match['alias']!r}")
    return found


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
    """Holds the serving model of one worker; reloads are serialised, requests never wait.

    ``threads``: LightGBM threads per prediction (``churn serve``: 1 per worker);
    ``wide_threads``: for the large batches the scorer hands to ``Serving.wide``.
    """

    def __init__(
        self,
        settings: Settings,
        source: ModelSource | None = None,
        *,
        threads: int | None = None,
        wide_threads: int = 2,
    ) -> None:
        self.settings = settings
        self.source: ModelSource = source or RegistrySource(settings)
        self.current: Serving | None = None
        self.last_reload: ReloadStatus | None = None
        self.threads = threads
        self.wide_threads = wide_threads
        self._swap_listeners: list[Callable[[Serving | None, Serving], None]] = []
        self._failure_listeners: list[Callable[[str], None]] = []
        self._lock = asyncio.Lock()
        self._failed: tuple[str | None, int | None] | None = None  # (identity, generation)
        self._seen_failure: Failure | None = None

    @property
    def ready(self) -> bool:
        return self.current is not None

    @property
    def uri(self) -> str:
        return self.source.uri

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
        """Have the source resolve again, then load unless it is the model served (or
        ``force``); raise ModelError if that fails. Returns (swapped, serving); on failure
        the old model keeps serving."""
        async with self._lock:
            failure = await self.source.refresh()
            if failure is not None:
                self._note_upstream_failure(failure)
                raise ModelError(
                    f"loading {self.uri} failed ({self._still_serving()}): {failure.message}"
                )
            return await anyio.to_thread.run_sync(self.load_blocking, force)

    async def poll_once(self) -> None:
        """Load what the source names if it changed; failures are recorded, never raised."""
        if not self.source.changed():
            return
        async with self._lock:
            try:
                upstream = await anyio.to_thread.run_sync(self.source.look)
            except Exception as exc:
                self._record_failure(f"cannot look up {self.uri}: {_message(exc)}", None, None)
                return
            if upstream.failure is not None:
                self._note_upstream_failure(upstream.failure)
            served = self.current.identity if self.current else None
            failed = (upstream.identity, upstream.generation) == self._failed
            if upstream.identity is None or upstream.identity == served or failed:
                return
            # A failure is recorded in last_reload; the old model keeps serving.
            with contextlib.suppress(ChurnError):
                await anyio.to_thread.run_sync(self.load_blocking, True)

    async def watch(self) -> None:
        """Follow the source: the first model as soon as there is one, then every change."""
        while True:
            await self.poll_once()
            interval = self.source.interval(self.ready)
            if interval is None:
                return
            await asyncio.sleep(interval)

    def load_blocking(self, force: bool) -> tuple[bool, Serving]:
        previous = self.current
        if not force and previous is not None:
            upstream = self._look_quietly()
            if upstream is not None and upstream.identity == previous.identity:
                return False, previous
        try:
            loaded, identity = self.source.load()
            if self.threads is not None:
                loaded.model.set_threads(self.threads)
            canary(loaded.model)
        except Exception as exc:
            message = _message(exc)
            upstream = self._look_quietly()
            self._record_failure(
                message,
                (upstream.identity, upstream.generation) if upstream else None,
                upstream.version if upstream else None,
            )
            raise ModelError(
                f"loading {self.uri} failed ({self._still_serving()}): {message}"
            ) from exc
        model = loaded.model
        wide = dataclasses.replace(model, threads=self.wide_threads) if self.threads else model
        serving = Serving(
            loaded=loaded,
            loaded_at=_now(),
            ref={"name": loaded.name, "version": loaded.version, "run_id": loaded.run_id},
            identity=identity,
            wide=wide,
            attributes=tuple(attribute_names(model.spec.inputs)),
        )
        self.current = serving  # the swap: one reference assignment
        self._failed = None
        self.last_reload = ReloadStatus(serving.loaded_at, True, loaded.version, None)
        log.info(
            "model loaded",
            extra={
                "fields": {
                    "uri": loaded.uri,
                    "version": loaded.version,
                    "sha256": loaded.sha256,
                    "previous": previous.ref["version"] if previous else None,
                }
            },
        )
        for listener in self._swap_listeners:
            listener(previous, serving)
        return True, serving

    def _still_serving(self) -> str:
        current = self.current
        return (
            f"still serving version {current.ref['version']}" if current else "no model is served"
        )

    def _look_quietly(self) -> Upstream | None:
        try:
            return self.source.look()
        except Exception:
            return None

    def _note_upstream_failure(self, failure: Failure) -> None:
        """A failure the source reports (the parent's resolution): recorded once."""
        if failure == self._seen_failure:
            return
        self._seen_failure = failure
        self._record_failure(
            failure.message, None, failure.version, dt.datetime.fromisoformat(failure.at)
        )

    def _record_failure(
        self,
        message: str,
        failed: tuple[str | None, int | None] | None,
        version: str | None,
        at: dt.datetime | None = None,
    ) -> None:
        if failed is not None and failed[0] is not None:
            self._failed = failed
        message = redact(message)
        self.last_reload = ReloadStatus(at or _now(), False, version, message)
        log.error(
            "model load failed",
            extra={"fields": {"uri": self.uri, "version": version, "error": message}},
        )
        for on_failure in self._failure_listeners:
            on_failure(message)


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ChurnError) else f"{type(exc).__name__}: {exc}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
