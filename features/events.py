"""The point-in-time event index every per-table snapshot function searches.

Snapshots are taken for many (account, as_of) points at once. Each event table becomes
one sorted array of int64 keys ``account * STRIDE + day``, so "the last event on or before
as_of" is one binary search of the query keys into it and a window count the difference
of two; windowed sums are differences of prefix sums. A search bounded by
``key(account, as_of)`` cannot reach an event dated after ``as_of``: this is where the
point-in-time rule holds by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.errors import DataError
from features.timeline import MISSING_DAY, day_of, to_days, window_covered

DAY_OFFSET = day_of("1900-01-01")
STRIDE = 1 << 17  # days 1900-01-01 .. 2258: keys are account * STRIDE + (day - DAY_OFFSET)


def event_keys(account: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Sortable int64 key of (account index, day)."""
    shifted = day - DAY_OFFSET
    if len(shifted) and (shifted.min() < 0 or shifted.max() >= STRIDE):
        raise DataError("dates must lie between 1900-01-01 and 2258-11-01")
    return account.astype(np.int64) * STRIDE + shifted


@dataclass(frozen=True)
class EventIndex:
    """Events of one kind sorted by (account, day), with optional prefix sums of a value."""

    keys: np.ndarray
    values: np.ndarray | None = None  # values aligned with keys (for "last value")
    prefix: np.ndarray | None = None  # prefix sums of values, length len(keys) + 1

    @classmethod
    def build(
        cls, account: np.ndarray, day: np.ndarray, values: np.ndarray | None = None
    ) -> EventIndex:
        keys = event_keys(account, day)
        if values is None:  # equal keys are interchangeable: a plain sort, no permutation
            return cls(keys=np.sort(keys))
        order = np.argsort(keys, kind="stable")  # same-day rows keep file order: last row wins
        sorted_values = np.asarray(values)[order]
        prefix = None
        if sorted_values.dtype.kind in "fiub":
            prefix = np.concatenate(
                [[0.0], np.cumsum(np.nan_to_num(sorted_values.astype(np.float64)))]
            )
        return cls(keys=keys[order], values=sorted_values, prefix=prefix)

    def upto(self, account: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Position after the last event of ``account`` dated on or before ``day``."""
        return np.searchsorted(self.keys, event_keys(account, day), side="right")

    def count_upto(self, account: np.ndarray, day: np.ndarray) -> np.ndarray:
        """The account's events dated on or before ``day`` (its whole history so far)."""
        first = np.searchsorted(self.keys, account.astype(np.int64) * STRIDE, side="left")
        return self.upto(account, day) - first

    def count(self, account: np.ndarray, as_of: np.ndarray, days: int) -> np.ndarray:
        """Events in ``(as_of - days, as_of]``."""
        return self.upto(account, as_of) - self.upto(account, as_of - days)

    def total(self, account: np.ndarray, as_of: np.ndarray, days: int) -> np.ndarray:
        """Sum of values of events in ``(as_of - days, as_of]``."""
        assert self.prefix is not None
        return (
            self.prefix[self.upto(account, as_of)] - self.prefix[self.upto(account, as_of - days)]
        )

    def last(self, account: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Position of the account's last event on or before ``day``; -1 where there is none."""
        if len(self.keys) == 0:
            return np.full(len(account), -1, dtype=np.int64)
        position = self.upto(account, day) - 1
        found = (position >= 0) & (self.keys[np.maximum(position, 0)] // STRIDE == account)
        return np.where(found, position, -1)

    def last_day(self, account: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Day of the account's last event on or before ``day`` (``MISSING_DAY`` if none)."""
        position = self.last(account, day)
        days = (
            self.keys[np.maximum(position, 0)] % STRIDE + DAY_OFFSET if len(self.keys) else position
        )
        return np.where(position >= 0, days, MISSING_DAY)

    def last_value(self, account: np.ndarray, day: np.ndarray, fill: object = np.nan) -> np.ndarray:
        """Value of the account's last event on or before ``day`` (``fill`` if none)."""
        assert self.values is not None
        position = self.last(account, day)
        if len(self.values) == 0:
            return np.full(
                len(account), fill, dtype=self.values.dtype if fill is not np.nan else np.float64
            )
        return np.where(position >= 0, self.values[np.maximum(position, 0)], fill)


@dataclass(frozen=True)
class Queries:
    """The (account index, as_of day) pairs being snapshotted, and the data's first day."""

    accounts: pd.Index  # account_id -> account index
    account: np.ndarray
    as_of: np.ndarray
    signup: np.ndarray
    data_start: int | None

    def covered(self, days: int) -> np.ndarray:
        """Where a window of ``days`` ending at as_of lies inside the recorded history."""
        return window_covered(self.as_of, days, self.data_start)

    def locate(self, events: pd.DataFrame, date_column: str) -> tuple[np.ndarray, np.ndarray]:
        """(account index, day) of each event row; tables hold known accounts only."""
        ids = events["account_id"]
        in_arrow = all(
            isinstance(v.dtype, pd.StringDtype) and v.dtype.storage == "pyarrow"
            for v in (ids, self.accounts)
        )
        if not (in_arrow and self.accounts.is_unique):
            return self.accounts.get_indexer(ids), to_days(events[date_column])
        # Loaded tables hold Arrow strings: one Arrow hash lookup, where get_indexer would
        # first copy every id to a Python object (seconds on millions of usage rows).
        known = pa.array(self.accounts.array)
        if isinstance(known, pa.ChunkedArray):
            known = known.combine_chunks()
        values = pa.array(ids.array)
        position = pc.index_in(values, value_set=known.cast(values.type))
        if position.null_count:
            position = pc.fill_null(position, -1)
        return position.to_numpy().astype(np.intp), to_days(events[date_column])
