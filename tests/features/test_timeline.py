"""Time rules: windows, months, renewals, observation dates, labels."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.timeline import (
    MISSING_DAY,
    add_months,
    churn_label,
    day_of,
    first_observation_date,
    lifecycle_stage_codes,
    next_term_end,
    next_term_end_one,
    normalize_contract_type,
    observation_dates,
    to_days,
)


def days(*texts: str) -> np.ndarray:
    return np.array([day_of(t) for t in texts], dtype=np.int64)


def test_add_months_clips_to_month_end() -> None:
    shifted = add_months(days("2024-01-31", "2024-03-31", "2023-02-28"), np.array([1, -1, 12]))
    assert shifted.tolist() == days("2024-02-29", "2024-02-29", "2024-02-28").tolist()


def test_next_term_end_from_signup_anniversaries() -> None:
    signup = days("2023-02-15", "2023-02-15", "2024-01-31")
    as_of = days("2024-02-14", "2024-02-15", "2024-03-05")
    terms = np.array([12, 12, 1])
    assert (
        next_term_end(signup, as_of, terms).tolist()
        == days("2024-02-15", "2025-02-15", "2024-03-31").tolist()
    )


def test_next_term_end_projects_a_later_anchor_back() -> None:
    exported_renewal = days("2026-03-01")
    assert (
        next_term_end(exported_renewal, days("2024-06-30"), np.array([12])).tolist()
        == days("2025-03-01").tolist()
    )


def test_next_term_end_is_missing_without_a_term() -> None:
    assert next_term_end(days("2024-01-01"), days("2024-02-01"), np.array([0]))[0] == MISSING_DAY


@given(
    st.dates(dt.date(2000, 1, 1), dt.date(2040, 1, 1)),
    st.integers(0, 4000),
    st.sampled_from([1, 3, 6, 12, 24]),
)
def test_next_term_end_is_the_first_anniversary_after_as_of(
    anchor: dt.date, offset: int, term: int
) -> None:
    as_of = day_of(anchor) + offset
    end = next_term_end(days(anchor.isoformat()), np.array([as_of]), np.array([term]))[0]
    k = np.arange(-1, 400)
    anniversaries = add_months(np.full(len(k), day_of(anchor)), k * term)
    assert end == anniversaries[anniversaries > as_of].min()


@given(
    st.dates(dt.date(2000, 1, 1), dt.date(2040, 1, 1)),
    st.integers(-400, 4000),
    st.sampled_from([1, 3, 6, 12, 24]),
)
def test_one_account_renews_as_the_vectorised_rule_says(
    anchor: dt.date, offset: int, term: int
) -> None:
    as_of = day_of(anchor) + offset
    vectorised = next_term_end(days(anchor.isoformat()), np.array([as_of]), np.array([term]))[0]
    assert next_term_end_one(day_of(anchor), as_of, term) == vectorised


@given(
    st.integers(-1_000_000, 3_000_000),  # years about -770 to 10,200: beyond Python's dates
    st.integers(0, 500_000),
    st.sampled_from([1, 12, 36]),
)
def test_one_account_renews_as_the_vectorised_rule_says_at_any_date(
    anchor: int, offset: int, term: int
) -> None:
    """A tenure of 20,000 months, or a date in year 9999, used to overflow ``datetime.date``."""
    as_of = anchor + offset
    vectorised = next_term_end(np.array([anchor]), np.array([as_of]), np.array([term]))[0]
    assert next_term_end_one(anchor, as_of, term) == vectorised


def test_days_beyond_pandas_nanoseconds_are_not_wrapped() -> None:
    import pandas as pd

    dates = pd.Series(np.array(["9999-12-31", "1600-01-01", "NaT"], dtype="datetime64[s]"))
    assert to_days(dates).tolist() == [
        (dt.date(9999, 12, 31) - dt.date(1970, 1, 1)).days,
        (dt.date(1600, 1, 1) - dt.date(1970, 1, 1)).days,
        MISSING_DAY,
    ]


def test_one_account_without_a_term_has_no_renewal() -> None:
    assert next_term_end_one(day_of("2024-01-31"), day_of("2024-06-30"), 0) == MISSING_DAY


def test_first_observation_date_is_a_month_start_90_days_in() -> None:
    assert first_observation_date(dt.date(2023, 1, 1)) == dt.date(2023, 4, 1)
    assert first_observation_date(dt.date(2023, 1, 2)) == dt.date(2023, 5, 1)


def test_observation_dates_leave_room_for_the_horizon() -> None:
    dates = observation_dates(dt.date(2023, 1, 1), dt.date(2023, 12, 31), horizon_days=90)
    assert dates[0] == dt.date(2023, 4, 1) and dates[-1] == dt.date(2023, 10, 1)
    assert all(d + dt.timedelta(days=90) <= dt.date(2023, 12, 31) for d in dates)


def test_observation_dates_empty_when_data_too_short() -> None:
    assert observation_dates(dt.date(2023, 1, 1), dt.date(2023, 5, 1)) == []


def test_label_counts_churn_in_the_horizon_only() -> None:
    as_of = np.full(4, day_of("2024-01-01"))
    churn = np.array(
        [day_of("2024-01-01"), day_of("2024-03-31"), day_of("2024-04-01"), MISSING_DAY]
    )
    assert churn_label(churn, as_of, 90).tolist() == [0, 1, 0, 0]


def test_lifecycle_stages() -> None:
    tenure = np.array([0.0, 91.0, 92.0, 365.0, 366.0, np.nan])
    codes = lifecycle_stage_codes(tenure)
    assert codes[:5].tolist() == [0, 0, 1, 1, 2] and np.isnan(codes[5])


@pytest.mark.parametrize(
    ("label", "name"),
    [("Month-to-month", "monthly"), ("One year", "annual"), ("TWO_YEAR", "biennial")],
)
def test_contract_aliases(label: str, name: str) -> None:
    assert normalize_contract_type(label) == name


def test_unknown_contract_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown contract type 'lifetime'"):
        normalize_contract_type("lifetime")
