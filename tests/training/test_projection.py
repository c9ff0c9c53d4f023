"""Cohort retention projected with the shifted-beta-geometric model, and its backtest."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from training.projection import (
    backtest_cohorts,
    backtest_summary,
    exponential,
    fit_sbg,
    observed_months,
    sbg_survival,
    straight_line,
)


def simulated_survivors(alpha: float, beta: float, size: int, months: int, seed: int) -> np.ndarray:
    """Customers with churn probabilities from beta(alpha, beta), followed ``months``."""
    rng = np.random.default_rng(seed)
    lifetime = rng.geometric(rng.beta(alpha, beta, size))  # the month each one churns in
    return np.array([(lifetime > t).sum() for t in range(months + 1)])


def test_survival_of_beta_one_one_is_one_over_t_plus_one() -> None:
    np.testing.assert_allclose(sbg_survival(1.0, 1.0, 4), [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])


@pytest.mark.parametrize(("alpha", "beta"), [(0.7, 3.0), (1.2, 8.0), (0.4, 1.5)])
def test_the_fit_recovers_known_parameters_from_simulated_cohorts(
    alpha: float, beta: float
) -> None:
    fit = fit_sbg(simulated_survivors(alpha, beta, 40_000, 12, seed=1))
    assert fit.alpha == pytest.approx(alpha, rel=0.15)
    assert fit.beta == pytest.approx(beta, rel=0.15)
    assert fit.mean_churn == pytest.approx(alpha / (alpha + beta), rel=0.05)


def test_naive_projections_extend_their_own_fits() -> None:
    shares = np.array([1.0, 0.9, 0.8, 0.7])
    np.testing.assert_allclose(straight_line(shares, 6), [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    geometric = 0.9 ** np.arange(5)
    np.testing.assert_allclose(exponential(geometric, 7), 0.9 ** np.arange(8))


def cohort_table(cohorts: dict[str, np.ndarray]) -> pd.DataFrame:
    width = max(len(s) for s in cohorts.values())
    rows = {
        pd.Timestamp(name): np.pad(s / s[0], (0, width - len(s)), constant_values=np.nan)
        for name, s in cohorts.items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(range(width)))
    table.insert(0, "accounts", [s[0] for s in cohorts.values()])
    return table


def test_on_heterogeneous_cohorts_sbg_projects_better_than_lines_and_exponentials() -> None:
    """The curve flattens as the churn-prone leave: what Fader & Hardie built sBG for."""
    cohorts = {
        f"2023-{m:02d}-01": simulated_survivors(0.6, 2.5, 3000, 24 - m, seed=m) for m in range(1, 7)
    }
    end = dt.date(2024, 12, 31)
    table = cohort_table(cohorts)
    summary = backtest_summary(backtest_cohorts(table, end)).set_index("method")
    assert summary.loc["sbg", "cohorts"] == 6
    assert summary.loc["sbg", "mean_abs_error"] < summary.loc["exponential", "mean_abs_error"]
    assert summary.loc["sbg", "mean_abs_error"] < summary.loc["straight_line", "mean_abs_error"]


def test_a_month_is_observed_only_when_every_member_of_the_cohort_reached_it() -> None:
    table = pd.DataFrame(
        {0: [1.0, 1.0], 1: [0.9, 0.9], 2: [0.8, np.nan]},
        index=pd.to_datetime(["2024-01-01", "2024-02-01"]),
    )
    months = observed_months(table, dt.date(2024, 3, 15))
    assert months.tolist() == [1, 0]  # 2024-01-31 + 2 months > Mar 15; Feb 29 + 1 month too
