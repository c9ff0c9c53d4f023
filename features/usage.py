"""Distinct active users in a trailing window (MAU), for many snapshots at once.

Counted with the sorted keys of features/events.py and one more identity. With usage
deduplicated to (account, user, day) and each event's gap to the same user's previous
active day, the users active in ``(lo, lo + L]`` are counted by the first event of each
user after ``lo``: those with gap >= L inside the window, plus the "crossing" events whose
previous day is <= lo < day (gap < L), which is a difference of two prefix counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.events import DAY_OFFSET, STRIDE, EventIndex, Queries
from features.timeline import MAU_WINDOW_DAYS


@dataclass(frozen=True)
class UserDays:
    """Usage deduplicated to (account, user, day), indexed for distinct-user window counts."""

    days: EventIndex  # every distinct (account, user, day)
    first_in_window: EventIndex  # days whose gap to the user's previous day is >= the window
    crossing_prev: EventIndex  # previous day of events with a gap < the window
    crossing_day: EventIndex  # day of events with a gap < the window
    window: int

    def distinct_users(self, account: np.ndarray, as_of: np.ndarray, days: int) -> np.ndarray:
        if days != self.window:
            raise ValueError(f"index built for {self.window}-day windows, asked for {days}")
        lo = as_of - days
        long_gap = self.first_in_window.count(account, as_of, days)
        crossing = self.crossing_prev.upto(account, lo) - self.crossing_day.upto(account, lo)
        return long_gap + crossing


def distinct_user_days(usage: pd.DataFrame, q: Queries, window: int = MAU_WINDOW_DAYS) -> UserDays:
    """Deduplicate usage and split it into the three sorted indexes MAU needs.

    Two sorts of the usage rows do the work. The first, by (account, user, day),
    deduplicates and puts each user's active days side by side, which gives every event
    its gap to the user's previous day. The second, by (account, day), is the ``days``
    index; it carries two flags in the low bits of its keys, so every other index is a
    masked copy of it: ``crossing_day`` the events with a short gap, ``first_in_window``
    the others, and ``crossing_prev`` (the *previous* day of each short-gap event) the
    events whose *next* event has a short gap, since that previous day is their own.
    """
    account, day = q.locate(usage, "date")
    user, _ = pd.factorize(usage["user_id"], sort=False)
    # pair = account * 2**user_bits + user (the user count rounded up to a power of two): the same
    # (account, user) order, and the account of a pair is a shift, not a division.
    user_bits = int(user.max()).bit_length() if len(user) else 0
    pair = account.astype(np.int64)
    pair <<= user_bits
    pair += user
    del user
    if len(pair) and int(pair.max()) >= (np.iinfo(np.int64).max // STRIDE):
        pair = np.unique(pair, return_inverse=True)[1].astype(np.int64)  # keeps account order
        pair_account = np.zeros(int(pair.max()) + 1, dtype=np.int64)
        pair_account[pair] = account
    else:
        pair_account = None
    del account
    # np.unique of the (pair, day) keys as sort + compare: numpy's hash-based unique takes
    # tens of seconds on 30M keys. Arithmetic is in place: these arrays are usage-sized.
    keys = pair
    keys *= STRIDE
    keys += day
    keys -= DAY_OFFSET
    del pair, day
    keys.sort()
    first = np.ones(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    distinct = keys[first]
    del keys, first
    shift = STRIDE.bit_length() - 1  # STRIDE is a power of two: divmod is a shift and a mask
    pair_of = distinct >> shift
    offset_day = distinct & (STRIDE - 1)  # day - DAY_OFFSET
    del distinct
    event_account = pair_account[pair_of] if pair_account is not None else pair_of >> user_bits
    gap_short = np.zeros(len(pair_of), dtype=bool)  # the user was active < window days before
    np.logical_and(pair_of[1:] == pair_of[:-1], np.diff(offset_day) < window, out=gap_short[1:])
    del pair_of
    flags = gap_short.view(np.uint8) << 1  # bit 1: short gap; bit 0: the next event's is short
    flags[:-1] |= gap_short[1:]
    del gap_short
    tagged = event_account  # becomes event_keys(account, day) << 2 | flags
    tagged *= STRIDE
    tagged += offset_day
    tagged <<= 2
    tagged |= flags
    del event_account, offset_day
    tagged.sort()
    flags = tagged.astype(np.uint8)  # the low byte holds the flags
    short = (flags & 2).astype(bool)
    before_short = (flags & 1).astype(bool)
    del flags
    tagged >>= 2  # the (account, day) keys, sorted
    return UserDays(
        days=EventIndex(keys=tagged),
        first_in_window=EventIndex(keys=tagged[~short]),
        crossing_prev=EventIndex(keys=tagged[before_short]),
        crossing_day=EventIndex(keys=tagged[short]),
        window=window,
    )
