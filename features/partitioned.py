"""Account tables on Dask: read in pieces, checked, shuffled once by account.

For data one machine cannot hold. Every table is read in pieces (a range of a Parquet
file's row groups, or a whole CSV), each coerced and checked by the functions of
``features.tables``; the problems of every piece are collected and reported together,
naming the file and its rows. The tables are then shuffled once by ``account_id`` into N
partitions, so partition i of every table holds all rows of the same accounts. Each
partition becomes the very ``Tables`` the single-process path builds (with the whole data
set's span), and stage 1, labels and scoring run on it unchanged: one implementation.

A table is ``NAME.parquet`` (a file, or a directory of Parquet files as Spark, Dask or
pyarrow write them, hive-style ``key=value`` folders read as columns), files matching
``NAME-*.parquet``, or ``NAME.csv`` (read whole: for small tables). The paths must be
reachable from every worker (a shared volume).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd
import pyarrow.parquet as pq
from dask.delayed import Delayed

from features.errors import DataError
from features.snapshot import active_snapshots
from features.tables import (
    ACCOUNTS,
    EVENT_TABLES,
    TABLES,
    Tables,
    check_accounts,
    check_events,
    coerce_table,
    known_events,
    read_table,
    table_path,
)

PIECE_ROWS = 4_000_000  # rows read by one task; a piece is a whole number of row groups
PROBLEMS_SHOWN = 10


@dataclass(frozen=True)
class Piece:
    """Part of one table's files that one task reads."""

    table: str
    path: str
    row_groups: tuple[int, ...] | None  # None: the whole file (CSV)
    first_row: int = 0  # rows of the file before this piece: errors name rows of the file
    keys: tuple[tuple[str, str], ...] = ()  # hive partition columns from the folder names


# --- finding and reading pieces ------------------------------------------------------------


def table_files(directory: Path, name: str) -> list[Path]:
    """The files of one table (empty: the table is absent)."""
    single = table_path(directory, name)
    matched = sorted(p for p in directory.glob(f"{name}-*.parquet") if p.is_file())
    if single is not None and matched:
        raise DataError(f"both {single.name} and {matched[0].name} exist; keep one", table=name)
    if matched:
        return matched
    if single is None:
        return []
    if single.is_dir():
        files = sorted(
            p
            for p in single.rglob("*.parquet")
            if p.is_file() and not any(part.startswith(("_", ".")) for part in p.parts)
        )
        if not files:
            raise DataError(f"{single} holds no .parquet files", table=name)
        return files
    return [single]


def table_pieces(directory: Path, name: str, piece_rows: int = PIECE_ROWS) -> list[Piece]:
    """Pieces of one table: consecutive row groups of each file, up to ``piece_rows`` rows."""
    pieces: list[Piece] = []
    root = table_path(directory, name)
    for file in table_files(directory, name):
        if file.suffix != ".parquet":
            pieces.append(Piece(name, str(file), None))
            continue
        keys = _hive_keys(file, root)
        try:
            metadata = pq.ParquetFile(file).metadata
        except Exception as exc:  # pyarrow raises many types; name the file
            raise DataError(f"cannot read {file.name}: {exc}", table=name) from exc
        groups: list[int] = []
        start = rows = 0
        for group in range(metadata.num_row_groups):
            if groups and rows + metadata.row_group(group).num_rows > piece_rows:
                pieces.append(Piece(name, str(file), tuple(groups), start, keys))
                start, groups, rows = start + rows, [], 0
            groups.append(group)
            rows += metadata.row_group(group).num_rows
        pieces.append(Piece(name, str(file), tuple(groups), start, keys))
    return pieces


def _hive_keys(file: Path, root: Path | None) -> tuple[tuple[str, str], ...]:
    if root is None or not root.is_dir():
        return ()
    folders = file.relative_to(root).parent.parts
    return tuple(tuple(part.split("=", 1)) for part in folders if "=" in part)  # type: ignore[misc]


def read_piece(piece: Piece) -> pd.DataFrame:
    """One piece as the file holds it (column names stripped, hive keys added)."""
    spec = TABLES[piece.table]
    if piece.row_groups is None:
        return read_table(Path(piece.path), spec)
    try:
        frame = pq.ParquetFile(piece.path).read_row_groups(list(piece.row_groups)).to_pandas()
    except Exception as exc:  # pyarrow raises many types; name the file
        raise DataError(f"cannot read {Path(piece.path).name}: {exc}", table=spec.name) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    for key, value in piece.keys:
        if key not in frame:
            frame[key] = value
    return frame


def checked_piece(piece: Piece) -> pd.DataFrame:
    """A piece coerced and checked by the rules of its table (as ``validate_tables`` does)."""
    spec = TABLES[piece.table]
    frame = coerce_table(read_piece(piece), spec)
    if spec is ACCOUNTS:
        check_accounts(frame)
    else:
        check_events(frame, spec)
    return frame


# --- validation across pieces --------------------------------------------------------------


@dataclass(frozen=True)
class PieceReport:
    """What checking one piece found: its rows, its first and last dates, any problem."""

    piece: Piece
    rows: int
    extremes: pd.DataFrame  # the earliest and latest value of each date column (2 rows)
    empty: pd.DataFrame  # the checked piece's columns and types, no rows
    problem: DataError | None = None


def check_piece(piece: Piece) -> PieceReport:
    """Check one piece; a broken contract is reported with the file's row numbers."""
    try:
        frame = checked_piece(piece)
    except DataError as error:
        rows = [r + piece.first_row for r in error.rows]
        message = re.sub(
            r"\brow (\d+):", lambda m: f"row {int(m[1]) + piece.first_row}:", str(error)
        )
        problem = DataError(message, rows=rows)
        problem.table, problem.column = error.table or piece.table, error.column
        return PieceReport(piece, 0, pd.DataFrame(), pd.DataFrame(), problem)
    dates = [c for c in TABLES[piece.table].dates if c in frame]
    extremes = frame[dates].agg(["min", "max"]) if len(frame) else frame[dates].iloc[:0]
    return PieceReport(piece, len(frame), extremes.reset_index(drop=True), frame.iloc[:0])


def raise_problems(reports: Sequence[PieceReport]) -> None:
    """One error for every piece that broke the contract: which file, column and rows."""
    broken = [r for r in reports if r.problem is not None]
    if not broken:
        return
    lines = [f"  {Path(r.piece.path).name}: {r.problem}" for r in broken[:PROBLEMS_SHOWN]]
    if len(broken) > PROBLEMS_SHOWN:
        lines.append(f"  ... and {len(broken) - PROBLEMS_SHOWN} more")
    first = broken[0].problem
    assert first is not None
    raise DataError(
        f"{len(broken)} of {len(reports)} pieces break the data contract:\n" + "\n".join(lines),
        rows=first.rows,
    )


def span_of(reports: Sequence[PieceReport]) -> tuple[dt.date, dt.date]:
    """First and last day of the whole data set, by the rules of ``Tables``, from the
    earliest and latest dates of every piece."""
    extremes: dict[str, list[pd.DataFrame]] = {}
    for report in reports:
        extremes.setdefault(report.piece.table, []).append(report.extremes)
    frames = {name: pd.concat(parts, ignore_index=True) for name, parts in extremes.items()}
    tables = Tables(**frames)
    return tables.data_start(), tables.data_end()


# --- the partitioned data set ----------------------------------------------------------------


@dataclass(frozen=True)
class PartitionedTables:
    """Every table as a Dask dataframe of N partitions; partition i of each holds all rows
    of the same accounts."""

    frames: dict[str, dd.DataFrame]  # accounts first, then the event tables present
    span: tuple[dt.date, dt.date]
    shape: Tables  # no rows: which tables and columns the data set has
    rows: dict[str, int]

    @property
    def npartitions(self) -> int:
        return self.frames["accounts"].npartitions

    @cached_property
    def partitions(self) -> list[Delayed]:
        """A delayed ``Tables`` per partition. Every computation built from this list shares
        one read and one shuffle when computed together."""
        delayed_parts = {name: frame.to_delayed() for name, frame in self.frames.items()}
        return [
            dask.delayed(partition_tables, pure=True)(
                {name: parts[i] for name, parts in delayed_parts.items()}, self.span, i
            )
            for i in range(self.npartitions)
        ]

    def map(self, function: Callable[..., Any], *args: Any) -> list[Delayed]:
        """``function(tables, *args)`` on every partition (results of any type)."""
        call = dask.delayed(function, pure=True)
        return [call(tables, *args) for tables in self.partitions]

    def map_frames(
        self,
        function: Callable[..., pd.DataFrame],
        *args: Any,
        meta: pd.DataFrame | None = None,
    ) -> dd.DataFrame:
        """``function(tables, *args)`` on every partition, as one Dask dataframe; its types
        are ``meta``'s, by default those of ``function`` on the data set's empty shape."""
        meta = function(self.shape, *args) if meta is None else meta
        return dd.from_delayed(self.map(function, *args), meta=meta.iloc[:0], verify_meta=False)

    def unknown_accounts(self) -> list[Delayed]:
        """Per partition: event rows naming accounts missing from accounts, by table."""
        return self.map(_unknown_accounts)


def _unknown_accounts(tables: Tables) -> dict[str, int]:
    return tables.unknown_accounts


def partition_tables(frames: dict[str, pd.DataFrame], span: tuple[dt.date, dt.date], i: int):
    """The ``Tables`` of one partition: its accounts (checked again, since duplicates from
    different files meet only here) and the events of those accounts."""
    accounts = frames["accounts"].reset_index(drop=True).copy()
    try:
        check_accounts(accounts)
    except DataError as error:
        raise DataError(
            f"in account partition {i} (rows counted within the partition): {error}"
        ) from error
    events = {
        spec.name: frames[spec.name].reset_index(drop=True)
        for spec in EVENT_TABLES
        if spec.name in frames
    }
    return replace(known_events(accounts, events), span=span)


def load_partitioned(
    directory: str | Path,
    partitions: int | None = None,
    partition_rows: int = 20_000_000,
    piece_rows: int = PIECE_ROWS,
) -> PartitionedTables:
    """Find, check and partition a data directory on the current Dask client.

    Every piece is checked first (one pass, the problems of all pieces reported together),
    then the tables are shuffled by account into ``partitions`` partitions (default: one
    per ``partition_rows`` rows of all tables).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"data directory {directory} does not exist")
    pieces = {name: table_pieces(directory, name, piece_rows) for name in TABLES}
    pieces = {name: found for name, found in pieces.items() if found}
    if "accounts" not in pieces:
        raise DataError(
            "the accounts table (accounts.parquet or accounts.csv) is required", table="accounts"
        )
    every = [piece for found in pieces.values() for piece in found]
    reports: list[PieceReport] = list(dask.compute(*[dask.delayed(check_piece)(p) for p in every]))
    raise_problems(reports)
    empty = {name: next(r.empty for r in reports if r.piece.table == name) for name in pieces}
    rows = {name: sum(r.rows for r in reports if r.piece.table == name) for name in pieces}
    count = partitions or max(1, math.ceil(sum(rows.values()) / partition_rows))
    with dask.config.set({"dataframe.convert-string": False}):  # keep the tables' own types
        frames = {
            name: dd.from_map(
                checked_piece, found, meta=empty[name], enforce_metadata=False
            ).shuffle(on="account_id", npartitions=count)
            for name, found in pieces.items()
        }
    shape = known_events(empty["accounts"], {n: f for n, f in empty.items() if n != "accounts"})
    span = span_of(reports)
    return PartitionedTables(frames, span, replace(shape, span=span), rows)


# --- what runs on every partition ----------------------------------------------------------------


def snapshots(
    data: PartitionedTables, dates: Sequence[dt.date], exclude_columns: Sequence[str] = ()
) -> dd.DataFrame:
    """Stage 1 on every partition: snapshots of every account active on each date."""
    return data.map_frames(active_snapshots, list(dates), list(exclude_columns))


def write_parquet_directory(frame: dd.DataFrame, out: str | Path, *also: Any) -> tuple[Any, ...]:
    """Write ``frame`` as a Parquet directory (one file per partition), replacing ``out``
    whole on success; ``also`` is computed in the same pass (sharing its reads)."""
    from features.files import atomic_directory

    if Path(out).suffix.lower() in (".csv", ".jsonl"):
        raise DataError(f"the dask engine writes a Parquet directory, not {Path(out).name}")
    with atomic_directory(out) as temp:
        written = frame.to_parquet(temp, write_index=False, compute=False)
        _, *results = dask.compute(written, *also)
    return tuple(results)
