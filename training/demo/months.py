"""The simulation calendar: months are integers (months since 1970-01), days since epoch.

Contract decision dates use the same arithmetic as `features.timeline`, so the demo and
the pipeline agree on every date.
"""

from __future__ import annotations

import numpy as np

from features.timeline import EPOCH, MISSING_DAY, add_months
from training.demo.draws import Bools, Ints


def month_of(day: Ints | int) -> Ints:
    """Days since epoch -> month index."""
    days = np.asarray(day, dtype=np.int64)
    return (EPOCH + days.astype("timedelta64[D]")).astype("datetime64[M]").astype(np.int64)


def month_start(month: int) -> int:
    """First day of a month index."""
    return int(np.datetime64(int(month), "M").astype("datetime64[D]").astype(np.int64))


def month_end(month: int) -> int:
    """Last day of a month index."""
    return month_start(month + 1) - 1


def decision_days(signup_day: Ints, signup_month: Ints, annual: Bools, month: int) -> Ints:
    """The contract decision date in `month` (``MISSING_DAY`` if none).

    Monthly contracts can end at every monthly billing anniversary, annual ones only at a
    signup anniversary; `add_months` from the signup date is the same arithmetic as
    `features.timeline.next_term_end`, so both sides agree on the calendar.
    """
    k = month - signup_month
    due = (k >= 1) & (~annual | (k % 12 == 0))
    days = add_months(signup_day, np.maximum(k, 0))
    return np.where(due, days, MISSING_DAY)
