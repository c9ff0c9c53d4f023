"""Time, in one place: days, windows, observation dates, renewals and labels.

Every date inside the pipeline is an integer number of days since 1970-01-01
(``int64``; missing dates are ``NaN`` once they become float features). A window
of ``N`` days ending at ``as_of`` is the half-open interval ``(as_of - N, as_of]``:
an event dated exactly ``as_of`` counts, one dated ``as_of - N`` does not. Keeping
that rule here, and nowhere else, is what makes the point-in-time invariant
(nothing after ``as_of`` can change a snapshot) checkable in one place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from features.errors import quoted

if TYPE_CHECKING:  # pandas is imported where it is used: serving workers never load it
    import pandas as pd

DAYS_PER_MONTH = 365.25 / 12
MISSING_DAY = np.iinfo(np.int64).min  # integer stand-in for a missing date
EPOCH = np.datetime64("1970-01-01", "D")

# The dates Churn accepts, in requests and in tables: well inside what every date type on
# the way can hold (pandas' nanosecond timestamps end in 2262, Python's dates start in year 1),
# so no conversion can overflow. 9999-12-31, the usual "never" of exports, means "no date".
FIRST_DATE = dt.date(1900, 1, 1)
LAST_DATE = dt.date(2200, 12, 31)
NO_DATE = dt.date(9999, 12, 31)

# Trailing windows, in days (DESIGN.md section 4).
MAU_WINDOW_DAYS = 30
MAU_WINDOWS = 6
DAU_WINDOW_DAYS = 30
SHORT_WINDOW_DAYS = 30
QUARTER_WINDOW_DAYS = 90
YEAR_WINDOW_DAYS = 365
MIN_HISTORY_DAYS = 90
DEFAULT_HORIZON_DAYS = 90
DEFAULT_HORIZONS = (30, 90, 180, 365)  # days ahead of the time-to-churn model

# Lifecycle stages by tenure (early 0-3 months, mid 3-12, late 12+).
LIFECYCLE_STAGES = ("early", "mid", "late")
EARLY_STAGE_DAYS = 3 * DAYS_PER_MONTH
MID_STAGE_DAYS = 12 * DAYS_PER_MONTH

# Contract terms, in months. Aliases seen in real exports map onto these names.
CONTRACT_TERM_MONTHS: dict[str, int] = {
    "monthly": 1,
    "quarterly": 3,
    "semiannual": 6,
    "annual": 12,
    "biennial": 24,
    "triennial": 36,
}
CONTRACT_ALIASES: dict[str, str] = {
    "month": "monthly",
    "month-to-month": "monthly",
    "month to month": "monthly",
    "monthly": "monthly",
    "quarter": "quarterly",
    "quarterly": "quarterly",
    "semiannual": "semiannual",
    "semi-annual": "semiannual",
    "half-year": "semiannual",
    "annual": "annual",
    "annually": "annual",
    "yearly": "annual",
    "year": "annual",
    "one year": "annual",
    "1 year": "annual",
    "12 months": "annual",
    "biennial": "biennial",
    "two year": "biennial",
    "2 year": "biennial",
    "24 months": "biennial",
    "triennial": "triennial",
    "three year": "triennial",
    "3 year": "triennial",
    "36 months": "triennial",
}


def normalize_contract_type(value: str | None) -> str | None:
    """Map a contract label ('Month-to-month', 'One year', 'ANNUAL') onto our vocabulary.

    Returns None for a missing value; raises ValueError for a label we cannot read,
    because guessing a contract term would silently corrupt renewal dates.
    """
    if value is None:
        return None
    key = " ".join(str(value).strip().lower().replace("_", " ").split())
    if key == "":
        return None
    if key in CONTRACT_ALIASES:
        return CONTRACT_ALIASES[key]
    raise ValueError(
        f"unknown contract type {quoted(value)}; expected one of {sorted(CONTRACT_TERM_MONTHS)}"
        " (or an alias such as 'month-to-month', 'one year', 'two year')"
    )


# --- conversions -----------------------------------------------------------------


def to_days(values: pd.Series | np.ndarray | Iterable) -> np.ndarray:
    """Dates (datetime64, Timestamp, ``date``, ISO strings) -> int64 days since epoch.

    Missing dates become ``MISSING_DAY``. Time of day is dropped: the day is what counts.
    """
    import pandas as pd  # batch paths only: serving workers never import pandas

    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if not pd.api.types.is_datetime64_any_dtype(series):
        series = pd.to_datetime(series, format="ISO8601")
    if getattr(series.dt, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    # In the column's own unit: nanoseconds (pandas' old default) end in 2262.
    whole_days = series.to_numpy().astype("datetime64[D]")
    days = whole_days.astype(np.int64)
    days[np.isnat(whole_days)] = MISSING_DAY
    return days


def day_of(value: dt.date | str | pd.Timestamp) -> int:
    """One date -> days since epoch."""
    import pandas as pd

    return int((np.datetime64(pd.Timestamp(value).date(), "D") - EPOCH).astype(np.int64))


def date_of(day: int) -> dt.date:
    """Days since epoch -> ``datetime.date``."""
    return (EPOCH + np.timedelta64(int(day), "D")).astype(dt.date)


def days_to_datetime(days: np.ndarray) -> np.ndarray:
    """int64 or float days (missing as ``MISSING_DAY`` / NaN) -> ``datetime64[s]`` with NaT."""
    values = np.asarray(days)
    missing = np.isnan(values) if values.dtype.kind == "f" else values == MISSING_DAY
    whole = np.where(missing, 0, values).astype(np.int64)
    out = (EPOCH + whole.astype("timedelta64[D]")).astype("datetime64[s]")
    out[missing] = np.datetime64("NaT")
    return out


def today_utc() -> dt.date:
    """The default ``as_of`` of a request."""
    return dt.datetime.now(dt.UTC).date()


# --- windows -----------------------------------------------------------------------


def window_start(as_of: np.ndarray, days: int) -> np.ndarray:
    """Exclusive lower bound of the window ``(as_of - days, as_of]``."""
    return as_of - days


def window_covered(as_of: np.ndarray, days: int, data_start: int | None) -> np.ndarray:
    """True where the whole window ``(as_of - days, as_of]`` lies inside the data.

    A window that reaches before the first recorded day of a table would count
    events that were never recorded as zeros; such windows are NaN instead.
    """
    if data_start is None:
        return np.zeros(len(as_of), dtype=bool)
    return window_start(as_of, days) + 1 >= data_start


# --- months, observation dates and renewals ----------------------------------------


def add_months(days: np.ndarray, months: np.ndarray | int) -> np.ndarray:
    """Shift dates by whole months, clipping the day to the month's length (Jan 31 + 1 = Feb 28)."""
    dates = (EPOCH + np.asarray(days, dtype=np.int64).astype("timedelta64[D]")).astype(
        "datetime64[D]"
    )
    month_start = dates.astype("datetime64[M]")
    day_in_month = (dates - month_start.astype("datetime64[D]")).astype(np.int64)
    target = month_start + np.asarray(months, dtype=np.int64).astype("timedelta64[M]")
    target_len = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(
        np.int64
    )
    shifted = target.astype("datetime64[D]") + np.minimum(day_in_month, target_len - 1).astype(
        "timedelta64[D]"
    )
    return (shifted - EPOCH).astype(np.int64)


def months_between(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Whole calendar months from ``start`` to ``end`` (may be off by one at day boundaries)."""
    s = (EPOCH + start.astype("timedelta64[D]")).astype("datetime64[M]").astype(np.int64)
    e = (EPOCH + end.astype("timedelta64[D]")).astype("datetime64[M]").astype(np.int64)
    return e - s


def next_term_end(anchor: np.ndarray, as_of: np.ndarray, term_months: np.ndarray) -> np.ndarray:
    """The first ``anchor + k * term`` (k any integer) strictly after ``as_of``.

    With the signup date as anchor this is the next renewal of a contract that renews on
    signup anniversaries; with an exported current ``renewal_date`` as anchor, the same
    arithmetic projects it back (or forward) by whole terms to the one in force at
    ``as_of``. ``term_months`` <= 0 or missing anchors give ``MISSING_DAY``.
    """
    anchor = np.asarray(anchor, dtype=np.int64)
    as_of = np.asarray(as_of, dtype=np.int64)
    term = np.asarray(term_months, dtype=np.int64)
    valid = (anchor != MISSING_DAY) & (as_of != MISSING_DAY) & (term > 0)
    safe_anchor = np.where(valid, anchor, 0)
    safe_as_of = np.where(valid, as_of, 0)
    safe_term = np.where(valid, term, 1)
    k = np.floor_divide(months_between(safe_anchor, safe_as_of), safe_term)
    candidate = add_months(safe_anchor, k * safe_term)
    # months_between may over- or under-shoot by one term at day boundaries: fix both ways.
    for _ in range(2):
        behind = candidate <= safe_as_of
        k = np.where(behind, k + 1, k)
        candidate = np.where(behind, add_months(safe_anchor, k * safe_term), candidate)
    for _ in range(2):
        earlier = add_months(safe_anchor, (k - 1) * safe_term)
        ahead = earlier > safe_as_of
        k = np.where(ahead, k - 1, k)
        candidate = np.where(ahead, earlier, candidate)
    return np.where(valid, candidate, MISSING_DAY)


_EPOCH_DATE = dt.date(1970, 1, 1)


def next_term_end_one(anchor: int, as_of: int, term_months: int) -> int:
    """:func:`next_term_end` for one account in plain Python: a scoring request pays
    microseconds instead of numpy's per-call cost. Dates beyond Python's years 1-9999 take
    numpy's path, whose dates reach much further."""
    if anchor == MISSING_DAY or as_of == MISSING_DAY or term_months <= 0:
        return MISSING_DAY
    try:
        return _next_term_end_dates(anchor, as_of, term_months)
    except (OverflowError, ValueError):
        vectorised = next_term_end(np.array([anchor]), np.array([as_of]), np.array([term_months]))
        return int(vectorised[0])


def _next_term_end_dates(anchor: int, as_of: int, term_months: int) -> int:
    start = _EPOCH_DATE + dt.timedelta(days=anchor)
    current = _EPOCH_DATE + dt.timedelta(days=as_of)
    k = ((current.year - start.year) * 12 + current.month - start.month) // term_months - 1
    while _shift_months(start, k * term_months) <= current:
        k += 1
    while _shift_months(start, (k - 1) * term_months) > current:
        k -= 1
    return (_shift_months(start, k * term_months) - _EPOCH_DATE).days


def _shift_months(date: dt.date, months: int) -> dt.date:
    """``date`` plus whole months, the day clipped to the month's length (as add_months)."""
    year, month = divmod(date.year * 12 + date.month - 1 + months, 12)
    following = dt.date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    return dt.date(year, month + 1, min(date.day, (following - dt.timedelta(days=1)).day))


def first_observation_date(
    data_start: dt.date, min_history_days: int = MIN_HISTORY_DAYS
) -> dt.date:
    """The first month start at least ``min_history_days`` after the first day of data."""
    import pandas as pd

    earliest = pd.Timestamp(data_start) + pd.Timedelta(days=min_history_days)
    month_start = earliest.to_period("M").to_timestamp()
    if month_start < earliest:
        month_start = (earliest + pd.offsets.MonthBegin(1)).normalize()
    return month_start.date()


def observation_dates(
    data_start: dt.date,
    data_end: dt.date,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    every: str = "MS",
    min_history_days: int = MIN_HISTORY_DAYS,
) -> list[dt.date]:
    """Dates at which training snapshots are taken.

    From the first month start with ``min_history_days`` of history to the last date
    whose whole horizon ``(as_of, as_of + horizon]`` lies inside the data (censoring).
    ``every`` is a pandas frequency: ``MS`` month starts (default), ``W-MON``, ``QS``...
    """
    import pandas as pd

    first = pd.Timestamp(first_observation_date(data_start, min_history_days))
    last = pd.Timestamp(data_end) - pd.Timedelta(days=horizon_days)
    if last < first:
        return []
    return [d.date() for d in pd.date_range(first, last, freq=every)]


def churn_label(churn_day: np.ndarray, as_of: np.ndarray, horizon_days: int) -> np.ndarray:
    """1 where the account churned in ``(as_of, as_of + horizon]``, else 0."""
    churned = churn_day != MISSING_DAY
    return (churned & (churn_day > as_of) & (churn_day <= as_of + horizon_days)).astype(np.int8)


def label_known_by(as_of: np.ndarray, horizon_days: int, day: int) -> np.ndarray:
    """True where the label of a snapshot at ``as_of`` is settled on ``day``: its whole
    horizon has passed. A model judged on ``day`` must not learn from the others (their
    outcomes overlap what it is judged on)."""
    return as_of + horizon_days <= day


def horizon_inside(as_of: np.ndarray, horizon_days: int, data_end: int) -> np.ndarray:
    """True where the whole horizon ``(as_of, as_of + horizon]`` lies inside the data, so
    "not churned within it" is known rather than censored."""
    return np.asarray(as_of) + horizon_days <= data_end


# --- monthly intervals of the time-to-churn model ------------------------------------------


def month_bounds(months: int) -> np.ndarray:
    """Day offsets from ``as_of`` bounding the monthly intervals: interval ``k`` is
    ``(as_of + bounds[k], as_of + bounds[k + 1]]``, months of 365.25 / 12 days rounded to
    whole days (so 12 months end exactly 365 days after ``as_of``)."""
    return np.round(np.arange(months + 1) * DAYS_PER_MONTH).astype(np.int64)


def months_covering(horizon_days: int) -> int:
    """The fewest monthly intervals whose end reaches ``horizon_days`` (365 days: 12)."""
    months = max(1, int(np.ceil(horizon_days / DAYS_PER_MONTH)))
    while month_bounds(months)[-1] < horizon_days:
        months += 1
    while months > 1 and month_bounds(months - 1)[-1] >= horizon_days:
        months -= 1
    return months


def interval_of(days_after: np.ndarray, months: int) -> np.ndarray:
    """The interval ``k`` holding a day ``days_after`` as_of (``bounds[k] < d <= bounds[k + 1]``);
    -1 on or before as_of, ``months`` or more past the last interval."""
    return np.searchsorted(month_bounds(months), np.asarray(days_after), side="left") - 1


def active_on(signup_day: np.ndarray, churn_day: np.ndarray, as_of: np.ndarray) -> np.ndarray:
    """An account is active on ``as_of`` if it signed up on or before it and has not churned by it."""
    not_churned = (churn_day == MISSING_DAY) | (churn_day > as_of)
    return (signup_day != MISSING_DAY) & (signup_day <= as_of) & not_churned


def lifecycle_stage_codes(tenure_days: np.ndarray) -> np.ndarray:
    """Tenure in days -> 0 early (< 3 months), 1 mid (3-12), 2 late (12+), NaN unknown."""
    codes = np.where(
        tenure_days < EARLY_STAGE_DAYS, 0.0, np.where(tenure_days < MID_STAGE_DAYS, 1.0, 2.0)
    )
    return np.where(np.isnan(tenure_days), np.nan, codes)
