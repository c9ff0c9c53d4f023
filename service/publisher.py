"""`churn serve`'s parent: resolve the model, keep a verified copy on disk, tell the workers.

The parent is the only process that talks to MLflow. In a background thread, while uvicorn
starts the workers, it resolves ``CHURN_MODEL_URI``:

* ``models:/<name>@<alias>`` or ``models:/<name>/<N>``: the registry names a version and
  its SHA-256 tag; the bundle is downloaded once into ``CHURN_HOME/model-cache/<sha256>.churn``
  (skipped when that file exists with that hash), verified, and published;
* a bundle path: hashed and published as it is, without importing MLflow.

It then polls every ``CHURN_MODEL_POLL_SECONDS`` (0: only until the first success) and
republishes when the alias moves, and answers the workers' reload requests within
``REQUEST_CHECK_SECONDS``. A version that fails (no SHA-256 tag, a download error, a hash
that does not match) is published as the ``error`` next to the model still served, and is
not fetched again by polling, only when a worker asks (``/admin/reload``).

The cache repairs itself: the served bundle's hash is checked again on every resolution
(every poll, every worker request), and a worker that cannot load the bundle it was
pointed at asks the parent to resolve again, so a damaged or deleted cached copy is
downloaded again without a person. Servers sharing one ``CHURN_HOME`` hold a shared lock
on the bundle each serves and never prune a locked or recently used one.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from features.errors import ChurnError, ModelError
from features.files import file_sha256
from features.redact import redact
from features.settings import Settings
from models.archive import SigningKeys, verify_bundle
from service.pointer import (
    BundleRef,
    Failure,
    Pointer,
    clear_requests,
    now_iso,
    pending_requests,
    publish,
)

if TYPE_CHECKING:
    from models.registry import Registry

log = logging.getLogger("churn.serve")
REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")
REQUEST_CHECK_SECONDS = 0.25
RETRY_SECONDS = 5.0  # until the first model is published, when polling is off
CACHE_KEEP = 5  # bundles kept in the cache (the served one always)
CACHE_MIN_AGE_SECONDS = 600.0  # a bundle touched more recently than this is never pruned
BUNDLE_SUFFIX = ".churn"


@dataclass
class Attempt:
    """What one resolution looked at, for its failure message."""

    version: str | None = None
    sha256: str | None = None


class Publisher:
    """Resolves ``settings.resolved_model_uri`` and publishes the pointer in ``directory``."""

    def __init__(self, settings: Settings, directory: Path) -> None:
        self.settings = settings
        self.directory = directory
        self.uri = settings.resolved_model_uri
        self.cache = settings.resolved_home / "model-cache"
        self.keys = SigningKeys(tuple(settings.signing_key_values()))
        self.model: BundleRef | None = None
        self.error: Failure | None = None
        self._seq = 0
        self._failed: tuple[str | None, str | None] | None = None  # not retried by polling
        self._file_stamp: tuple[int, int, int] | None = None
        self._held: BinaryIO | None = None  # the served cache file, shared-locked
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the loop ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="churn-publisher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._held is not None:
            self._held.close()

    def run(self) -> None:
        """Resolve now, then on the poll interval and whenever a worker asks."""
        due = time.monotonic()
        while not self._stop.is_set():
            try:
                requests = pending_requests(self.directory)
                if requests or time.monotonic() >= due:
                    self.resolve_and_publish(answered=requests)
                    clear_requests(self.directory, requests)
                    due = time.monotonic() + self._interval()
            except Exception:  # e.g. a full disk: keep the loop (and the workers' answers) alive
                log.exception("publishing the model pointer failed")
                due = time.monotonic() + RETRY_SECONDS
            self._stop.wait(REQUEST_CHECK_SECONDS)

    def _interval(self) -> float:
        seconds = self.settings.model_poll_seconds
        if seconds > 0:
            return seconds
        return RETRY_SECONDS if self.model is None else float("inf")

    # --- one resolution ------------------------------------------------------------------

    def resolve_and_publish(self, answered: list[str] | None = None) -> None:
        """Resolve once; publish when something changed or a worker waits for the answer."""
        answered = answered or []
        attempt = Attempt()
        try:
            found = self._resolve_importing_if_needed(attempt, retry_failed=bool(answered))
        except Exception as exc:  # the old model keeps serving; the workers are told why
            if isinstance(exc, ChurnError):
                self._failed = (attempt.version, attempt.sha256)
                message = redact(str(exc))
            else:  # MLflow outages and the like
                message = redact(f"cannot look up {self.uri}: {type(exc).__name__}: {exc}")
            changed = self.error is None or self.error.message != message
            if changed:
                log.error(
                    "model resolution failed",
                    extra={
                        "fields": {"uri": self.uri, "version": attempt.version, "error": message}
                    },
                )
            if changed or answered:
                self.error = Failure(message, attempt.version, now_iso())
                self._publish(answered)
            return
        if found is None:  # a failed version polling does not retry
            if answered:
                self._publish(answered)
            return
        changed = found != self.model or self.error is not None
        self.model, self.error, self._failed = found, None, None
        if changed:
            log.info(
                "model published",
                extra={
                    "fields": {
                        "uri": self.uri,
                        "version": found.version,
                        "sha256": found.sha256,
                        "path": found.path,
                    }
                },
            )
        if changed or answered:
            self._publish(answered)

    def _resolve_importing_if_needed(
        self, attempt: Attempt, retry_failed: bool
    ) -> BundleRef | None:
        """``resolve``; if MLflow turns out to need a package `churn serve` marked
        unavailable (``service.worker.UNUSED_IN_WORKERS``) for this store, allow it, retry."""
        try:
            return self.resolve(attempt, retry_failed)
        except ModuleNotFoundError as exc:
            from service.worker import UNUSED_IN_WORKERS

            blocked = [n for n in UNUSED_IN_WORKERS if n in sys.modules and sys.modules[n] is None]
            if (exc.name or "").split(".")[0] not in blocked:
                raise
            log.warning(
                f"resolving {self.uri} needs {exc.name}: importing it in this process after all"
            )
            for name in blocked:
                del sys.modules[name]
            return self.resolve(attempt, retry_failed)

    def resolve(self, attempt: Attempt, retry_failed: bool) -> BundleRef | None:
        """The bundle to serve; None when it is a version that already failed (and no retry)."""
        match = REGISTRY_URI.match(self.uri)
        if match is None:
            return self._bundle_file(Path(self.uri))
        return self._registered(match, attempt, retry_failed)

    def _bundle_file(self, path: Path) -> BundleRef:
        try:
            info = path.stat()
        except OSError:
            raise ModelError(
                f"{self.uri} is neither a model bundle file nor a models:/name@alias URI"
            ) from None
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if self.model is not None and stamp == self._file_stamp:
            return self.model
        verify_bundle(path, self.keys)
        self._file_stamp = stamp
        return BundleRef(
            path=str(path.resolve()), sha256=file_sha256(path), uri=self.uri, name=path.stem
        )

    def _registered(
        self, match: re.Match[str], attempt: Attempt, retry_failed: bool
    ) -> BundleRef | None:
        from models.registry import Registry, registered_sha  # imports MLflow (parent only)

        name = match["name"]
        registry = Registry.of(self.settings)
        found = registry.version(name, match["alias"], match["version"])
        attempt.version = str(found.version)
        expected = registered_sha(found)
        attempt.sha256 = expected
        served = self.model
        if (
            served
            and (served.version, served.sha256) == (attempt.version, expected)
            and intact(Path(served.path), expected)
        ):
            return served  # re-verified: a damaged or missing cached copy is fetched again
        if not retry_failed and self._failed == (attempt.version, expected):
            return None
        try:
            path = self._fetch(registry, name, attempt.version, expected)
            self._hold(path)
        except OSError as exc:
            raise ModelError(
                f"cannot keep {name} version {attempt.version} in the model cache {self.cache}: {exc}"
            ) from exc
        return BundleRef(
            path=str(path),
            sha256=expected,
            uri=self.uri,
            name=name,
            version=attempt.version,
            run_id=found.run_id,
        )

    def _fetch(self, registry: Registry, name: str, version: str, expected: str) -> Path:
        """The verified bundle in the cache: reused when present, else downloaded and checked
        (SHA-256, and with signing keys the signature) before it takes the cache name."""
        cached = self.cache / f"{expected}{BUNDLE_SUFFIX}"
        if intact(cached, expected):
            verify_bundle(cached, self.keys)
            cached.touch()
            return cached
        self.cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=self.cache) as scratch:
            bundle = registry.download(name, version, Path(scratch))
            actual = file_sha256(bundle)
            if actual != expected:
                raise ModelError(
                    f"model bundle {bundle.name} has SHA-256 {actual}, expected {expected}: refusing to load"
                )
            verify_bundle(bundle, self.keys)
            os.replace(bundle, cached)
        self._prune(keep=cached)
        return cached

    def _hold(self, path: Path) -> None:
        """Keep a shared lock on the bundle this server serves: other servers on the same
        ``CHURN_HOME`` then never prune it (``_prune`` needs an exclusive lock)."""
        if self._held is not None and os.fstat(self._held.fileno()).st_ino == path.stat().st_ino:
            return
        handle = path.open("rb")
        fcntl.flock(handle, fcntl.LOCK_SH)
        previous, self._held = self._held, handle
        if previous is not None:
            previous.close()

    def _prune(self, keep: Path) -> None:
        """Drop the least recently used bundles beyond ``CACHE_KEEP``: never the one served
        here, one another server serves (locked), or one touched within ``CACHE_MIN_AGE``."""
        served = {keep, Path(self.model.path)} if self.model else {keep}
        try:
            bundles = sorted(
                self.cache.glob(f"*{BUNDLE_SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True
            )
        except OSError:  # another server pruning the same cache: next time
            return
        for old in bundles[CACHE_KEEP:]:
            if old in served:
                continue
            with contextlib.suppress(OSError), old.open("rb") as handle:
                if time.time() - os.fstat(handle.fileno()).st_mtime < CACHE_MIN_AGE_SECONDS:
                    continue
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # another server on this home serves it
                old.unlink()

    def _publish(self, answered: list[str]) -> None:
        self._seq += 1
        publish(self.directory, Pointer(self._seq, self.model, self.error, tuple(answered)))


def intact(path: Path, sha256: str) -> bool:
    """The file is there and has the SHA-256 it was cached under."""
    try:
        return file_sha256(path) == sha256
    except OSError:
        return False
