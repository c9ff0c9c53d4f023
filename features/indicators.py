"""Stage 2, row by row: what each feature means and how to compute it from columns.

Indicators are a catalogue: each is a name that says "what per window", the snapshot
fields it reads, a function, and how to say its value in words for the API's reasons.
Every function is pure numpy over *columns* (field name -> numpy array), the same for a
frame's columns in training and length-1 arrays for one HTTP request. Text becomes
level codes here too; which levels exist is learnt in ``features.derive``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Literal

import numpy as np

from features.schema import MAU_COLUMNS
from features.timeline import (
    CONTRACT_TERM_MONTHS,
    DAYS_PER_MONTH,
    LIFECYCLE_STAGES,
    MISSING_DAY,
    lifecycle_stage_codes,
    next_term_end,
    next_term_end_one,
)

NPS_CATEGORIES = ("detractor", "passive", "promoter")
OTHER = "__other__"
FEW_ROWS = 32  # encode_levels: up to this many rows, dict lookups beat numpy's per-call cost


# --- indicator types (each written once) --------------------------------------------------


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is not positive or unknown."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def pct_change(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Relative change new vs old (-0.45 = down 45%), NaN where old is 0 or unknown."""
    return ratio(new, old) - 1.0


def days_between(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    return later - earlier


def nanmean_rows(stacked: np.ndarray) -> np.ndarray:
    """Per column, the mean of the known values of the rows (windows x accounts); NaN where
    none is known (``np.nanmean`` would warn there)."""
    known = ~np.isnan(stacked)
    count = known.sum(axis=0)
    total = np.where(known, stacked, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def nanmax_rows(stacked: np.ndarray) -> np.ndarray:
    """Per column, the largest known value of the rows; NaN where none is known."""
    known = ~np.isnan(stacked)
    best = np.where(known, stacked, -np.inf).max(axis=0)
    return np.where(known.any(axis=0), best, np.nan)


# --- the columns view every indicator reads ---------------------------------------------


def _read_only(values: np.ndarray) -> np.ndarray:
    """A read-only view: an indicator that wrote into a shared column would corrupt others."""
    view = values.view()
    view.flags.writeable = False
    return view


def _to_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return np.nan


class View:
    """Columns with missing fields read as NaN, so every indicator works on partial data.

    A column is read as numbers once per view and shared, read-only, by every indicator
    that reads it (several read ``as_of``, ``seats`` and the MAU windows); for one HTTP
    request numpy's fixed cost per call is most of the feature time.
    """

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        self.columns = columns
        self.n = len(next(iter(columns.values()))) if columns else 0
        self._numbers: dict[str, np.ndarray] = {}
        self._mau: dict[tuple[str, int, int], np.ndarray] = {}  # (statistic, start, stop)

    def num(self, name: str) -> np.ndarray:
        found = self._numbers.get(name)
        if found is None:
            found = self._numbers[name] = _read_only(self._read_number(name))
        return found

    def _read_number(self, name: str) -> np.ndarray:
        values = self.columns.get(name)
        if values is None:
            return np.full(self.n, np.nan)
        values = np.asarray(values)
        if values.dtype.kind == "O":  # text where a number was learnt: read it if it is one
            return np.array([_to_float(v) for v in values], dtype=np.float64)
        return values.astype(np.float64, copy=False)

    @cached_property
    def mau_windows(self) -> np.ndarray:
        """The MAU windows stacked (windows x accounts, newest first), read-only."""
        return _read_only(np.vstack([self.num(c) for c in MAU_COLUMNS]))

    def mau(
        self, statistic: Literal["mean", "max"], start: int = 0, stop: int = len(MAU_COLUMNS)
    ) -> np.ndarray:
        """The ``mean`` or ``max`` of the known MAU windows ``start:stop`` (newest first)."""
        key = (statistic, start, stop)
        found = self._mau.get(key)
        if found is None:
            reduce = nanmean_rows if statistic == "mean" else nanmax_rows
            found = self._mau[key] = _read_only(reduce(self.mau_windows[start:stop]))
        return found

    def text(self, name: str) -> np.ndarray:
        values = self.columns.get(name)
        if values is None:
            return np.full(self.n, None, dtype=object)
        values = np.asarray(values)
        if values.dtype.kind == "f":  # a number where text was learnt: compare as text
            return np.array([None if np.isnan(v) else format(v, "g") for v in values], dtype=object)
        return values.astype(object, copy=False)

    def tenure_days(self) -> np.ndarray:
        from_dates = days_between(self.num("as_of"), self.num("signup_date"))
        from_months = self.num("tenure_months") * DAYS_PER_MONTH
        return np.where(np.isnan(from_dates), from_months, from_dates)


_CONTRACTS = tuple(CONTRACT_TERM_MONTHS)
_TERMS = np.array([*CONTRACT_TERM_MONTHS.values(), np.nan], dtype=np.float64)


def _contract_term(v: View) -> np.ndarray:
    codes = encode_levels(v.text("contract_type"), _CONTRACTS)
    return _TERMS[np.where(np.isnan(codes), len(_CONTRACTS), codes).astype(np.int64)]


def _days_to_renewal(v: View) -> np.ndarray:
    """Days to the end of the contract term; without a renewal date, the next signup
    anniversary of the term (how contracts renew, DESIGN section 10), as in stage 1."""
    as_of = v.num("as_of")
    given = days_between(v.num("renewal_date"), as_of)
    if not np.isnan(given).any():  # the usual case costs nothing more
        return given
    signup = as_of - v.tenure_days()
    term = _contract_term(v)
    known = np.isnan(given) & ~np.isnan(signup) & ~np.isnan(term)
    if not known.any():
        return given
    anchor, day, months = (
        np.round(signup[known]).astype(np.int64),
        as_of[known].astype(np.int64),
        term[known].astype(np.int64),
    )
    if len(anchor) <= FEW_ROWS:
        end = np.array(
            [
                next_term_end_one(*row)
                for row in zip(anchor.tolist(), day.tolist(), months.tolist(), strict=True)
            ]
        )
    else:
        end = next_term_end(anchor, day, months)
    given[known] = np.where(end == MISSING_DAY, np.nan, end - as_of[known])
    return given


def _nps_category(v: View) -> np.ndarray:
    score = v.num("nps_last")
    return np.where(
        np.isnan(score), np.nan, np.where(score >= 9, 2.0, np.where(score >= 7, 1.0, 0.0))
    )


def _never_contacted(v: View) -> np.ndarray:
    last, recent = v.num("last_contact_date"), v.num("contacts_90d")
    return np.where(~np.isnan(last), 0.0, np.where(np.isnan(recent), np.nan, 1.0))


# --- reasons in words ------------------------------------------------------------------------


def _pct(value: float) -> str:
    return f"{'down' if value < 0 else 'up'} {abs(value) * 100:.0f}%"


def _months(days: float) -> str:
    months = days / DAYS_PER_MONTH
    return (
        f"{months:.0f} month{'s' if round(months) != 1 else ''}"
        if months >= 1
        else f"{days:.0f} days"
    )


def _term_words(value: float) -> str:
    names = {1: "month-to-month contract", 12: "annual contract", 24: "two-year contract"}
    return names.get(int(value), f"{value:.0f}-month contract")


@dataclass(frozen=True)
class Indicator:
    """One model feature: its name, the snapshot fields it reads, how to compute and say it."""

    name: str
    inputs: tuple[str, ...]
    compute: Callable[[View], np.ndarray]
    say: Callable[[float], str]
    categorical: tuple[str, ...] = ()  # fixed levels (codes 0..k-1) for built-in categoricals


CATALOGUE: tuple[Indicator, ...] = (
    Indicator(
        "tenure_days",
        ("signup_date", "tenure_months"),
        View.tenure_days,
        lambda x: f"tenure {_months(x)}",
    ),
    Indicator(
        "lifecycle_stage",
        ("signup_date", "tenure_months"),
        lambda v: lifecycle_stage_codes(v.tenure_days()),
        lambda x: f"{LIFECYCLE_STAGES[int(x)]}-stage account",
        categorical=LIFECYCLE_STAGES,
    ),
    Indicator("contract_term_months", ("contract_type",), _contract_term, _term_words),
    Indicator(
        "days_to_renewal",
        ("renewal_date",),
        lambda v: _days_to_renewal(v),
        lambda x: f"renewal in {x:.0f} days",
    ),
    Indicator("seats", ("seats",), lambda v: v.num("seats"), lambda x: f"{x:.0f} seats"),
    Indicator("mrr", ("mrr",), lambda v: v.num("mrr"), lambda x: f"MRR {x:,.0f}"),
    Indicator(
        "mrr_pct_change_90d",
        ("mrr", "mrr_90d_ago"),
        lambda v: pct_change(v.num("mrr"), v.num("mrr_90d_ago")),
        lambda x: f"MRR {_pct(x)} in 90 days" if x else "MRR unchanged in 90 days",
    ),
    Indicator(
        "mau_30d", ("mau",), lambda v: v.num("mau_0"), lambda x: f"{x:.0f} active users in 30 days"
    ),
    Indicator(
        "mau_per_seat_30d",
        ("mau", "seats"),
        lambda v: ratio(v.num("mau_0"), v.num("seats")),
        lambda x: f"{x * 100:.0f}% of seats active in 30 days",
    ),
    Indicator(
        "mau_per_seat_90d",
        ("mau", "seats"),
        lambda v: ratio(v.mau("mean", 0, 3), v.num("seats")),
        lambda x: f"{x * 100:.0f}% of seats active per month over 3 months",
    ),
    Indicator(
        "mau_per_seat_180d",
        ("mau", "seats"),
        lambda v: ratio(v.mau("mean"), v.num("seats")),
        lambda x: f"{x * 100:.0f}% of seats active per month over 6 months",
    ),
    Indicator(
        "dau_per_seat_30d",
        ("dau_avg_30d", "seats"),
        lambda v: ratio(v.num("dau_avg_30d"), v.num("seats")),
        lambda x: f"{x * 100:.1f}% of seats active on an average day",
    ),
    Indicator(
        "mau_pct_change_vs_prior_60d",
        ("mau",),
        lambda v: pct_change(v.num("mau_0"), v.mau("mean", 1, 3)),
        lambda x: f"active users {_pct(x)} vs prior 2 months",
    ),
    Indicator(
        "mau_pct_change_90d_vs_prior_90d",
        ("mau",),
        lambda v: pct_change(v.mau("mean", 0, 3), v.mau("mean", 3)),
        lambda x: f"active users {_pct(x)} last 3 months vs the 3 before",
    ),
    Indicator(
        "mau_pct_below_6m_peak",
        ("mau",),
        lambda v: 1.0 - ratio(v.num("mau_0"), v.mau("max")),
        lambda x: f"active users {x * 100:.0f}% below their 6-month peak",
    ),
    Indicator(
        "dau_mau_ratio_30d",
        ("dau_avg_30d", "mau"),
        lambda v: ratio(v.num("dau_avg_30d"), v.num("mau_0")),
        lambda x: f"stickiness (DAU/MAU) {x * 100:.0f}%",
    ),
    Indicator(
        "nps_last_score",
        ("nps_last",),
        lambda v: v.num("nps_last"),
        lambda x: f"last NPS answer {x:.0f}",
    ),
    Indicator(
        "nps_category",
        ("nps_last",),
        _nps_category,
        lambda x: f"NPS {NPS_CATEGORIES[int(x)]}",
        categorical=NPS_CATEGORIES,
    ),
    Indicator(
        "days_since_last_nps",
        ("nps_last_date",),
        lambda v: days_between(v.num("as_of"), v.num("nps_last_date")),
        lambda x: f"last NPS answer {x:.0f} days ago",
    ),
    Indicator(
        "nps_avg_12m",
        ("nps_avg_12m",),
        lambda v: v.num("nps_avg_12m"),
        lambda x: f"NPS average {x:.1f} over 12 months",
    ),
    Indicator(
        "nps_answers_12m",
        ("nps_count_12m",),
        lambda v: v.num("nps_count_12m"),
        lambda x: f"{x:.0f} NPS answers in 12 months",
    ),
    Indicator(
        "days_since_last_contact",
        ("last_contact_date",),
        lambda v: days_between(v.num("as_of"), v.num("last_contact_date")),
        lambda x: f"no contact for {x:.0f} days",
    ),
    Indicator(
        "never_contacted",
        ("last_contact_date", "contacts_90d"),
        _never_contacted,
        lambda x: "never contacted" if x >= 0.5 else "contacted before",
    ),
    Indicator(
        "contacts_90d",
        ("contacts_90d",),
        lambda v: v.num("contacts_90d"),
        lambda x: f"{x:.0f} contacts in 90 days",
    ),
    Indicator(
        "tickets_30d",
        ("tickets_30d",),
        lambda v: v.num("tickets_30d"),
        lambda x: f"{x:.0f} tickets in 30 days",
    ),
    Indicator(
        "tickets_90d",
        ("tickets_90d",),
        lambda v: v.num("tickets_90d"),
        lambda x: f"{x:.0f} tickets in 90 days",
    ),
    Indicator(
        "tickets_per_seat_90d",
        ("tickets_90d", "seats"),
        lambda v: ratio(v.num("tickets_90d"), v.num("seats")),
        lambda x: f"{x:.2f} tickets per seat in 90 days",
    ),
    Indicator(
        "ticket_burst_30d",
        ("tickets_30d", "tickets_90d"),
        lambda v: v.num("tickets_30d") - v.num("tickets_90d") / 3.0,
        lambda x: f"{abs(x):.1f} tickets {'above' if x >= 0 else 'below'} the monthly average",
    ),
    Indicator(
        "tickets_open",
        ("tickets_open",),
        lambda v: v.num("tickets_open"),
        lambda x: f"{x:.0f} open tickets",
    ),
    Indicator(
        "tickets_high_90d",
        ("tickets_high_90d",),
        lambda v: v.num("tickets_high_90d"),
        lambda x: f"{x:.0f} high-priority tickets in 90 days",
    ),
    Indicator(
        "ticket_hours_to_close_avg_90d",
        ("ticket_hours_to_close_avg_90d",),
        lambda v: v.num("ticket_hours_to_close_avg_90d"),
        lambda x: f"tickets took {x:.0f} hours to close on average",
    ),
    Indicator(
        "stakeholders_left_90d",
        ("stakeholders_left_90d",),
        lambda v: v.num("stakeholders_left_90d"),
        lambda x: f"{x:.0f} key contact{'s' if x != 1 else ''} left in 90 days",
    ),
)
INDICATORS = {indicator.name: indicator for indicator in CATALOGUE}


# --- text -> level codes ------------------------------------------------------------------


def encode_levels(values: np.ndarray, levels: Sequence[str]) -> np.ndarray:
    """Text -> level code; unseen values -> the ``other`` code if any, else NaN; None -> NaN.

    Matching is exact first and then ignores case and surrounding spaces, so "Yes ",
    "yes" and "YES" from a request all find the level "Yes" learnt in training. A few rows
    (one HTTP request) take dict lookups with the same result; numpy's fixed cost per call
    would be most of a request's feature time.
    """
    if len(values) <= FEW_ROWS:
        return _encode_few(values, tuple(levels))
    return _encode_many(values, levels)


def _encode_many(values: np.ndarray, levels: Sequence[str]) -> np.ndarray:
    missing = np.equal(values, None)
    codes = np.full(len(values), np.nan)
    if len(levels) == 0:
        return codes
    text = np.where(missing, "", values).astype(str)
    level_text = np.asarray(levels, dtype=str)
    codes, found = _match(text, level_text)
    retry = ~found & ~missing
    if retry.any():
        codes[retry], found[retry] = _match(_fold(text[retry]), _fold(level_text))
    if OTHER in levels:
        codes = np.where(~found & ~missing, float(list(levels).index(OTHER)), codes)
    return np.where(found | ~np.isnan(codes), codes, np.nan).astype(np.float64)


def _encode_few(values: np.ndarray, levels: tuple[str, ...]) -> np.ndarray:
    """``_encode_many`` for a few rows: the same codes by dict lookups.

    Text that is not plain ASCII goes to ``_encode_many``: numpy folds case code point by
    code point and drops trailing NULs, where ``str.lower`` may not ("İ" -> "i̇").
    """
    codes = np.full(len(values), np.nan)
    if len(levels) == 0:
        return codes
    exact, folded, other = _level_lookup(levels)
    for i, value in enumerate(values):
        missing = value is None
        text = "" if missing else str(value)
        if not text.isascii() or "\x00" in text:
            return _encode_many(values, levels)
        code = exact.get(text)
        if code is None and not missing:
            code = folded.get(text.strip().lower(), other)
        if code is not None:
            codes[i] = code
    return codes


@lru_cache(maxsize=256)
def _level_lookup(levels: tuple[str, ...]) -> tuple[dict[str, int], dict[str, int], int | None]:
    """Exact and folded (case, surrounding spaces) level -> code; the ``other`` code if any.

    The first level wins where several fold alike, as the stable sort in ``_match`` does.
    """
    exact: dict[str, int] = {}
    folded: dict[str, int] = {}
    for code, level in enumerate(levels):
        exact.setdefault(str(level), code)
        folded.setdefault(str(level).strip().lower(), code)
    return exact, folded, (levels.index(OTHER) if OTHER in levels else None)


def _match(text: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(levels, kind="stable")
    ordered = levels[order]
    position = np.clip(np.searchsorted(ordered, text), 0, len(levels) - 1)
    found = ordered[position] == text
    return np.where(found, order[position], np.nan).astype(np.float64), found


def _fold(text: np.ndarray) -> np.ndarray:
    return np.char.lower(np.char.strip(text))
