"""Output files, written atomically: a temp file beside the target, then one rename.

A job killed half-way leaves the previous file (or none), never a truncated one. The
data is on disk (fsynced) before the rename, so a power cut cannot leave an empty file
under the final name, and the result gets the permissions the umask gives a new file
(``mkstemp`` alone would leave it readable by its owner only). Outputs of several files
(a report, a demo data set) are written into a temporary folder that is renamed into
place as a whole: ``atomic_directory``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from features.errors import DataError
from features.schema import frame_to_records

if TYPE_CHECKING:  # only write_frame handles frames; model bundles are written without pandas
    import pandas as pd

FRAME_FORMATS = (".parquet", ".csv", ".jsonl")


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (``os.umask`` alone
    sets it, which races with other threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The permissions ``open(path, "w")`` would give a new file."""
    return 0o666 & ~current_umask()


def fsync_directory(path: Path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_file(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path in the target's directory; fsync it and rename it over the target
    on success (with the umask's permissions); remove it on failure."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(temp)
        os.chmod(temp, new_file_mode())
        _fsync_file(Path(temp))
        os.replace(temp, target)
        fsync_directory(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(temp_path)`` and move the result into place."""
    with atomic_path(path) as temp:
        write(temp)
    return Path(path)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield an empty temp folder beside ``path``; on success it replaces ``path`` whole.

    Every file inside is fsynced before the swap. An existing ``path`` is moved aside,
    the new folder renamed in, then the old one deleted: a reader sees the old set or
    the new set, never a mix (for an instant, between the two renames, neither). On
    failure the temp folder is removed and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    aside: Path | None = None
    try:
        yield temp
        os.chmod(temp, 0o777 & ~current_umask())  # mkdtemp makes it 0700
        for file in (p for p in temp.rglob("*") if p.is_file()):
            _fsync_file(file)
        if target.exists():
            aside = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
            )
            os.replace(target, aside / target.name)
        os.replace(temp, target)
        fsync_directory(target.parent)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)


def write_frame(frame: pd.DataFrame, path: str | Path, snapshots: bool = False) -> Path:
    """Write a frame as Parquet, CSV or JSON lines, chosen by the file extension.

    With ``snapshots=True`` JSON lines are shaped like AccountSnapshot (``mau`` a list,
    ``attributes`` an object), so each line can be POSTed to the API as it is.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FRAME_FORMATS:
        raise DataError(f"cannot write {Path(path).name}: use one of {', '.join(FRAME_FORMATS)}")
    if suffix == ".parquet":
        return write_atomic(path, lambda temp: frame.to_parquet(temp, index=False))
    if suffix == ".csv":
        return write_atomic(path, lambda temp: frame.to_csv(temp, index=False))
    records = frame_to_records(frame) if snapshots else frame.to_dict(orient="records")

    def write_lines(temp: Path) -> None:
        with temp.open("wb") as out:
            for record in records:
                out.write(
                    orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC)
                )
                out.write(b"\n")

    return write_atomic(path, write_lines)


def file_sha256(path: str | Path) -> str:
    """A file's SHA-256: recorded at registration, checked before every load."""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
