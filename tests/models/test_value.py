"""Money: expected months and remaining value from a survival curve, saved profit."""

from __future__ import annotations

import numpy as np
import pytest

from models.value import (
    expected_remaining_value,
    expected_saved_profit,
    saved_profit_on_value,
    survival_months,
)


def test_an_account_that_never_churns_stays_every_modelled_month() -> None:
    assert survival_months(np.zeros((1, 12)))[0] == pytest.approx(12.0)


def test_an_account_certain_to_churn_in_its_first_month_has_no_months_left() -> None:
    assert survival_months(np.ones((1, 12)))[0] == pytest.approx(0.0)


def test_a_constant_hazard_gives_the_closed_form() -> None:
    """Survival 0.95^t: the area over 12 months is (1 - 0.95^12) / -ln 0.95."""
    expected = (1 - 0.95**12) / -np.log(0.95)
    assert survival_months(np.full((1, 12), 0.05))[0] == pytest.approx(expected)


def test_two_months_of_half_hazard_by_hand() -> None:
    """Month 0: integral of 0.5^u over [0, 1] = 0.5 / ln 2; month 1 starts at 0.5 survival."""
    first = 0.5 / np.log(2)
    assert survival_months(np.array([[0.5, 0.5]]))[0] == pytest.approx(first * 1.5)


def test_discounting_at_ten_percent_a_year() -> None:
    """No churn, 12 months at 10% a year: integral of 1.1^(-t/12) over [0, 12] months."""
    monthly = 1.1 ** (-1 / 12)
    expected = (monthly**12 - 1) / np.log(monthly)
    assert survival_months(np.zeros((1, 12)), annual_rate=0.10)[0] == pytest.approx(expected)
    assert expected == pytest.approx(12 * (1 - 1 / 1.1) / np.log(1.1))  # about 11.45 months


def test_expected_remaining_value_is_months_times_mrr_times_margin() -> None:
    months = survival_months(np.array([[0.5, 0.5], [0.0, 0.0]]), annual_rate=0.0)
    value = expected_remaining_value(months, np.array([1000.0, np.nan]), gross_margin=0.8)
    assert value[0] == pytest.approx(1000 * 0.8 * 1.5 * 0.5 / np.log(2))
    assert np.isnan(value[1])


def test_saved_profit_on_a_year_of_margin_matches_the_pinned_formula() -> None:
    arr = expected_saved_profit(np.array([0.4]), np.array([500.0]), 0.3, 100.0, 0.8)
    on_value = saved_profit_on_value(np.array([0.4]), np.array([500.0 * 12 * 0.8]), 0.3, 100.0)
    assert arr[0] == pytest.approx(0.4 * 0.3 * 6000 * 0.8 - 100)
    assert on_value[0] == pytest.approx(arr[0])
