"""Cohort retention projected ahead with the shifted-beta-geometric model.

Fader & Hardie ("How to project customer retention", 2007): each customer of a cohort
has her own constant churn probability per period, drawn from a beta(alpha, beta)
distribution across the cohort. The cohort's retention then falls fast at first (the
churn-prone leave) and flattens (the loyal stay), which straight lines and exponentials,
fitted to the same early months, cannot do. Two parameters per cohort are fitted by
maximum likelihood on its observed monthly survivor counts, and the curve is projected
months ahead. A backtest hides each cohort's last observed months, fits on the rest and
compares the projections of sBG, a straight line and an exponential with what happened.

Pure functions over the cohort table of ``training.report.cohort_retention``, and one
plot function.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.timeline import add_months, day_of, months_between, to_days

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from features.tables import Tables

AHEAD_MONTHS = 12
HOLDOUT_MONTHS = 6
MIN_FIT_MONTHS = 6  # observed months a cohort needs beyond the hold-out to be backtested
METHODS = ("sbg", "straight_line", "exponential")


@dataclass(frozen=True)
class SbgFit:
    """A cohort's beta(alpha, beta) of per-month churn probabilities."""

    alpha: float
    beta: float
    log_likelihood: float

    @property
    def mean_churn(self) -> float:
        """Average churn probability of a newly signed-up customer per month."""
        return self.alpha / (self.alpha + self.beta)


def sbg_survival(alpha: float, beta: float, months: int) -> np.ndarray:
    """Share of a cohort still a customer after 0..months months: B(a, b + t) / B(a, b)."""
    from scipy.special import betaln

    t = np.arange(months + 1)
    return np.exp(betaln(alpha, beta + t) - betaln(alpha, beta))


def sbg_log_likelihood(alpha: float, beta: float, survivors: np.ndarray) -> float:
    """Log-likelihood of survivor counts ``n_0..n_T``: those lost in month t churned at t
    (probability B(a + 1, b + t - 1) / B(a, b)); ``n_T`` are still customers."""
    from scipy.special import betaln

    survivors = np.asarray(survivors, dtype=np.float64)
    t = np.arange(1, len(survivors))
    lost = survivors[:-1] - survivors[1:]
    churn_at = betaln(alpha + 1, beta + t - 1) - betaln(alpha, beta)
    still = betaln(alpha, beta + t[-1]) - betaln(alpha, beta) if len(t) else 0.0
    return float(np.sum(lost * churn_at) + survivors[-1] * still)


def fit_sbg(survivors: np.ndarray) -> SbgFit:
    """Maximum-likelihood alpha and beta of a cohort's survivor counts (at least 2 months)."""
    from scipy.optimize import minimize

    survivors = np.asarray(survivors, dtype=np.float64)
    if len(survivors) < 2:
        raise ValueError("an sBG fit needs the cohort size and at least one later month")

    def loss(log_params: np.ndarray) -> float:
        alpha, beta = np.exp(np.clip(log_params, -10, 10))
        return -sbg_log_likelihood(alpha, beta, survivors)

    best = minimize(
        loss,
        x0=np.zeros(2),
        method="Nelder-Mead",
        options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 4000},
    )
    alpha, beta = np.exp(np.clip(best.x, -10, 10))
    return SbgFit(float(alpha), float(beta), -float(best.fun))


def straight_line(shares: np.ndarray, months: int) -> np.ndarray:
    """Least-squares line through the observed shares, extended to ``months`` (within 0-1)."""
    k = np.arange(len(shares))
    slope, intercept = np.polyfit(k, shares, 1)
    return np.clip(intercept + slope * np.arange(months + 1), 0.0, 1.0)


def exponential(shares: np.ndarray, months: int) -> np.ndarray:
    """Least-squares line through the log shares (a constant retention rate), extended."""
    k = np.arange(len(shares))
    slope, intercept = np.polyfit(k, np.log(np.maximum(shares, 1e-6)), 1)
    return np.clip(np.exp(intercept + slope * np.arange(months + 1)), 0.0, 1.0)


def observed_months(cohorts: pd.DataFrame, end: dt.date) -> pd.Series:
    """Months after signup observed for *every* member of each cohort (its latest signup
    day plus k months on or before the end of the data)."""
    last_signup = to_days(pd.Series(pd.DatetimeIndex(cohorts.index) + pd.offsets.MonthEnd(0)))
    k = np.arange(cohorts.shape[1])
    reached = add_months(np.repeat(last_signup, len(k)), np.tile(k, len(last_signup))).reshape(
        len(last_signup), len(k)
    ) <= day_of(end)
    return pd.Series(reached.sum(axis=1) - 1, index=cohorts.index)


def cohort_series(
    cohorts: pd.DataFrame, end: dt.date
) -> list[tuple[pd.Timestamp, int, np.ndarray]]:
    """(cohort, accounts, shares at 0..T) of every cohort, T its fully observed months."""
    shares = cohorts.drop(columns="accounts")
    months = observed_months(shares, end)
    out = []
    for cohort, accounts in cohorts["accounts"].items():
        last = int(months[cohort])
        if last >= 0 and accounts > 0:
            out.append((cohort, int(accounts), shares.loc[cohort].to_numpy(float)[: last + 1]))
    return out


def project_cohorts(cohorts: pd.DataFrame, end: dt.date, ahead: int = AHEAD_MONTHS) -> pd.DataFrame:
    """Every cohort with at least one observed month after signup: observed shares and its
    sBG projection ``ahead`` months past the last observed one (long format)."""
    rows = []
    for cohort, accounts, shares in cohort_series(cohorts, end):
        if len(shares) < 2:
            continue
        fit = fit_sbg(np.round(shares * accounts))
        curve = sbg_survival(fit.alpha, fit.beta, len(shares) - 1 + ahead)
        for k, value in enumerate(curve):
            rows.append(
                {
                    "cohort": cohort,
                    "accounts": accounts,
                    "months_since_signup": k,
                    "observed": shares[k] if k < len(shares) else np.nan,
                    "projected": value,
                    "alpha": fit.alpha,
                    "beta": fit.beta,
                }
            )
    return pd.DataFrame(rows)


def backtest_cohorts(
    cohorts: pd.DataFrame,
    end: dt.date,
    holdout: int = HOLDOUT_MONTHS,
    min_fit: int = MIN_FIT_MONTHS,
) -> pd.DataFrame:
    """Per cohort and method: fitted on all but the last ``holdout`` observed months, the
    mean absolute error (share points) over those months and at the last of them."""
    rows = []
    for cohort, accounts, shares in cohort_series(cohorts, end):
        fit_months = len(shares) - holdout
        if fit_months < min_fit + 1:
            continue
        seen, actual = shares[:fit_months], shares[fit_months:]
        fit = fit_sbg(np.round(seen * accounts))
        last = len(shares) - 1
        projected = {
            "sbg": sbg_survival(fit.alpha, fit.beta, last),
            "straight_line": straight_line(seen, last),
            "exponential": exponential(seen, last),
        }
        for method, curve in projected.items():
            error = np.abs(curve[fit_months:] - actual)
            rows.append(
                {
                    "cohort": cohort,
                    "accounts": accounts,
                    "fit_months": fit_months - 1,
                    "method": method,
                    "mean_abs_error": float(error.mean()),
                    "abs_error_last": float(error[-1]),
                }
            )
    return pd.DataFrame(rows)


def backtest_summary(backtest: pd.DataFrame) -> pd.DataFrame:
    """Per method: cohorts, mean absolute error (all held-out months and the last one, share
    points, cohorts weighted by size) and how often it was the best of the three."""
    if backtest.empty:
        return pd.DataFrame(
            columns=["method", "cohorts", "mean_abs_error", "abs_error_last", "best_share"]
        )
    best = backtest.loc[backtest.groupby("cohort")["mean_abs_error"].idxmin(), "method"]
    out = []
    for method in METHODS:
        part = backtest[backtest["method"] == method]
        weights = part["accounts"].to_numpy(float)
        out.append(
            {
                "method": method,
                "cohorts": len(part),
                "mean_abs_error": float(np.average(part["mean_abs_error"], weights=weights)),
                "abs_error_last": float(np.average(part["abs_error_last"], weights=weights)),
                "best_share": float((best == method).mean()),
            }
        )
    return pd.DataFrame(out)


@dataclass(frozen=True)
class CohortProjection:
    """Every cohort's observed and projected retention, and the backtest against naive
    projections (per cohort and summed up per method)."""

    projection: pd.DataFrame
    backtest: pd.DataFrame
    summary: pd.DataFrame


def project_retention(
    tables: Tables, end: dt.date | None = None, ahead: int = AHEAD_MONTHS
) -> CohortProjection:
    """sBG projections of every signup cohort of the recorded history, and their backtest."""
    from training.report.monthly import cohort_retention

    end = end or tables.data_end()
    span = months_between(np.array([day_of(tables.data_start())]), np.array([day_of(end)]))
    cohorts = cohort_retention(tables, end, horizon_months=int(span[0]) + 1)
    backtest = backtest_cohorts(cohorts, end)
    return CohortProjection(
        project_cohorts(cohorts, end, ahead), backtest, backtest_summary(backtest)
    )


def projection_figure(projection: pd.DataFrame, summary: pd.DataFrame, shown: int = 6) -> Figure:
    """Observed retention of a few cohorts with their sBG projections, and the backtest
    error of each method."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 4.5), layout="constrained")
    curves, errors = figure.subplots(1, 2)
    cohorts = projection["cohort"].drop_duplicates().tolist()
    picked = cohorts[:: max(1, len(cohorts) // shown)][:shown]
    for i, cohort in enumerate(picked):
        part = projection[projection["cohort"] == cohort]
        color = f"C{i}"
        label = pd.Timestamp(cohort).strftime("%Y-%m")
        curves.plot(part["months_since_signup"], part["observed"] * 100, color=color, label=label)
        curves.plot(
            part["months_since_signup"], part["projected"] * 100, color=color, linestyle="--"
        )
    curves.set_xlabel("months since signup")
    curves.set_ylabel("% of the cohort still a customer")
    curves.set_title("Cohort retention: observed (solid), sBG projection (dashed)")
    curves.grid(alpha=0.3)
    curves.legend(fontsize=8, title="cohort")
    if not summary.empty:
        errors.bar(summary["method"], summary["mean_abs_error"] * 100, color=["C0", "C1", "C2"])
        for x, value in enumerate(summary["mean_abs_error"] * 100):
            errors.annotate(f"{value:.1f}", (x, value), ha="center", va="bottom")
    errors.set_ylabel("mean absolute error (% points)")
    errors.set_title(f"Backtest: last {HOLDOUT_MONTHS} observed months hidden")
    errors.grid(alpha=0.3, axis="y")
    return figure
