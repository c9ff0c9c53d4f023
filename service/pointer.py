"""The model pointer: how the `churn serve` parent tells its workers which bundle to serve.

The parent (``service.publisher``) resolves ``CHURN_MODEL_URI``, puts a verified bundle
on local disk and writes a small JSON *pointer* into the run's serving directory; workers
(``service.worker``) stat that file, load the bundle it names and verify its SHA-256
themselves. The pointer is replaced atomically (temp file + rename), so a reader sees the
old pointer or the new one, never half of either.

``/admin/reload`` in a worker drops a request file into the same directory; the parent's
loop picks it up within a fraction of a second, resolves again, and answers by listing the
request's id in the pointer it writes next (``answered``), together with the outcome
(``error`` when the champion could not be fetched or verified).

Only the standard library, orjson and pydantic-settings here: both sides import this.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import Field

from features.files import write_atomic
from features.settings import Settings

POINTER_FILE = "model.json"
REQUEST_SUFFIX = ".reload"
SERVING_DIR_ENV = "CHURN_SERVING_DIR"  # ServeSettings.serving_dir, set by `churn serve`


class ServeSettings(Settings):
    """Settings of a `churn serve` worker: the shared ones plus where its parent publishes."""

    serving_dir: Path | None = Field(
        None, description="Set by `churn serve` for its workers: the run's pointer directory."
    )


@dataclass(frozen=True)
class BundleRef:
    """A verified bundle on local disk and where it came from."""

    path: str
    sha256: str
    uri: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None

    @property
    def identity(self) -> str:
        """What changes when the served model changes (a version may be re-registered)."""
        return f"{self.version or ''}:{self.sha256}"


@dataclass(frozen=True)
class Failure:
    """The parent's latest failed resolution: which version, why, when."""

    message: str
    version: str | None
    at: str  # ISO timestamp, UTC


@dataclass(frozen=True)
class Pointer:
    """What the workers should serve (``model``), the latest failure, and answered requests."""

    seq: int
    model: BundleRef | None
    error: Failure | None = None
    answered: tuple[str, ...] = ()
    published_at: str = field(default_factory=lambda: now_iso())

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> Pointer:
        data: dict[str, Any] = orjson.loads(raw)
        model, error = data.get("model"), data.get("error")
        return cls(
            seq=int(data["seq"]),
            model=BundleRef(**model) if model else None,
            error=Failure(**error) if error else None,
            answered=tuple(data.get("answered", ())),
            published_at=str(data.get("published_at", "")),
        )


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


# --- the parent's side -----------------------------------------------------------------------


def publish(directory: Path, pointer: Pointer) -> None:
    write_atomic(directory / POINTER_FILE, lambda temp: temp.write_bytes(pointer.to_json()))


def pending_requests(directory: Path) -> list[str]:
    """Ids of the reload requests waiting for the parent."""
    return sorted(
        path.name.removesuffix(REQUEST_SUFFIX) for path in directory.glob(f"*{REQUEST_SUFFIX}")
    )


def clear_requests(directory: Path, ids: list[str]) -> None:
    for request_id in ids:
        with contextlib.suppress(FileNotFoundError):
            (directory / f"{request_id}{REQUEST_SUFFIX}").unlink()


# --- the workers' side -----------------------------------------------------------------------


class PointerFile:
    """A worker's view of the pointer: a cheap ``stat`` tells whether to read it again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / POINTER_FILE
        self._stamp: tuple[int, int, int] | None = None

    def changed(self) -> bool:
        """True when the pointer was (re)written since the last ``read`` (or never read)."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (info.st_ino, info.st_mtime_ns, info.st_size) != self._stamp

    def read(self) -> Pointer | None:
        """The current pointer, or None before the parent's first publication."""
        try:
            with self.path.open("rb") as handle:
                info = os.fstat(handle.fileno())
                raw = handle.read()
        except FileNotFoundError:
            return None
        self._stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        return Pointer.from_json(raw)

    def peek(self) -> Pointer | None:
        """The current pointer, without marking it as seen by ``changed``."""
        try:
            return Pointer.from_json(self.path.read_bytes())
        except FileNotFoundError:
            return None

    def request_reload(self) -> str:
        """Ask the parent to resolve again now; returns the id its answer will carry."""
        request_id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        write_atomic(self.directory / f"{request_id}{REQUEST_SUFFIX}", lambda temp: temp.touch())
        return request_id

    def withdraw(self, request_id: str) -> None:
        clear_requests(self.directory, [request_id])
