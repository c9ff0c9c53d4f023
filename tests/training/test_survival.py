"""Time-to-churn data and metrics: person-months with censoring, follow-up, C and IBS."""

from __future__ import annotations

import numpy as np
import pytest

from features.timeline import MISSING_DAY, month_bounds
from training.survival import (
    Followup,
    Outcomes,
    concordance,
    expand_intervals,
    followup,
    integrated_brier,
    survival_metrics,
)

NONE = MISSING_DAY


def outcomes(as_of: list[int], churn: list[int]) -> Outcomes:
    return Outcomes(np.array(as_of, dtype=np.int64), np.array(churn, dtype=np.int64))


def life_table(intervals, months: int) -> np.ndarray:
    """P(churn within k+1 months) from the observed person-months (the discrete-time MLE)."""
    at_risk = np.bincount(intervals.month, minlength=months)
    churned = np.bincount(intervals.month, weights=intervals.churned, minlength=months)
    return 1 - np.cumprod(1 - churned / at_risk)


def test_each_snapshot_is_followed_until_its_churn_month() -> None:
    bounds = month_bounds(12)
    found = expand_intervals(outcomes([0, 0], [bounds[2] + 1, NONE]), known_until=10_000, months=4)
    assert found.row.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert found.month.tolist() == [0, 1, 2, 0, 1, 2, 3]
    assert found.churned.tolist() == [0, 0, 1, 0, 0, 0, 0]


def test_months_not_ended_by_the_cutoff_are_left_out_even_with_a_churn_in_them() -> None:
    bounds = month_bounds(12)
    cutoff = bounds[2] + 5  # months 0 and 1 ended, month 2 has not
    found = expand_intervals(outcomes([0, 0], [bounds[2] + 2, cutoff + 100]), cutoff, months=12)
    assert found.month.tolist() == [0, 1, 0, 1]
    assert found.churned.sum() == 0  # both churns fall in censored months


def test_censoring_is_never_counted_as_staying() -> None:
    """Known answer: 3-month churn 0.30. Counting censored months as stayed gives 0.20."""
    bounds = month_bounds(3)
    known_until = 100  # months 0-2 of as_of 0 end on days 30, 61, 91
    early = [0] * 100  # followed 3 months: 10 churn in each month
    churn_early = [bounds[0] + 5] * 10 + [bounds[1] + 5] * 10 + [bounds[2] + 5] * 10 + [NONE] * 70
    late = [61] * 100  # only month 0 (days 61-91) has ended: 10 churn in it
    churn_late = [61 + 5] * 10 + [NONE] * 90
    data = outcomes(early + late, churn_early + churn_late)

    found = expand_intervals(data, known_until, months=3)
    assert life_table(found, 3)[-1] == pytest.approx(0.30)  # 1 - 0.9 * (80/90) * (70/80)

    stayed = expand_intervals(data, known_until=10_000, months=3)  # censored months as stayed
    assert life_table(stayed, 3)[-1] == pytest.approx(0.20)  # 1 - 0.9 * (170/180) * (160/170)


def test_followup_is_censored_at_the_cutoff_and_the_cap() -> None:
    follow = followup(outcomes([0, 0, 0, 10], [50, 150, NONE, 40]), known_until=100, cap_days=35)
    assert follow.days.tolist() == [35, 35, 35, 30]
    assert follow.event.tolist() == [False, False, False, True]


def test_concordance_of_a_perfect_ordering_is_one_and_of_the_reverse_zero() -> None:
    follow = Followup(np.array([10.0, 20, 30, 40]), np.array([True, True, True, False]))
    assert concordance(follow, np.array([1.0, 2, 3, 4])) == 1.0
    assert concordance(follow, np.array([4.0, 3, 2, 1])) == 0.0


def test_integrated_brier_without_censoring_is_the_plain_mean_squared_error() -> None:
    grid = np.array([0.0, 10, 20])
    follow = Followup(np.array([5.0, 15, 30]), np.array([True, True, False]))
    survival = np.array([[1.0, 0.2, 0.1], [1.0, 0.9, 0.3], [1.0, 0.8, 0.7]])
    at_10 = ((0.2 - 0) ** 2 + (0.9 - 1) ** 2 + (0.8 - 1) ** 2) / 3
    at_20 = ((0.1 - 0) ** 2 + (0.3 - 0) ** 2 + (0.7 - 1) ** 2) / 3
    area = (0 + at_10) / 2 * 10 + (at_10 + at_20) / 2 * 10  # the error is 0 at day 0
    assert integrated_brier(follow, survival, grid) == pytest.approx(area / 20)


def test_horizon_metrics_use_only_snapshots_whose_horizon_lies_inside_the_data() -> None:
    data = outcomes([0, 0, 0, 0, 200, 200], [20, NONE, 25, NONE, 210, NONE])
    grid = np.array([0.0, 7, 30, 90])
    survival = np.tile([1.0, 0.9, 0.6, 0.5], (6, 1))
    survival[[1, 3, 5]] = [1.0, 0.99, 0.95, 0.9]
    found = survival_metrics(data, 220, survival, grid, horizons=(30, 90), tau=30)
    assert found["rows_30d"] == 4  # as_of 200 + 30 reaches past the end of the data (220)
    assert found["roc_auc_30d"] == 1.0
    assert found["rows_90d"] == 4
    assert found["concordance"] > 0.5
