"""Output files, written atomically: a temp file beside the target, then one rename.

A job killed half-way leaves the previous file (or none), never a truncated one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
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


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path in the target's directory; rename it over the target on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(temp)
        os.replace(temp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(temp_path)`` and move the result into place."""
    with atomic_path(path) as temp:
        write(temp)
    return Path(path)


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
                out.write(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC))
                out.write(b"\n")

    return write_atomic(path, write_lines)


def file_sha256(path: str | Path) -> str:
    """A file's SHA-256: recorded at registration, checked before every load."""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
