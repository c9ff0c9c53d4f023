"""Churn and retention figures as an analyst reads them: per month, per signup cohort.

Churn rate is customers lost in a month over customers at its start; new sign-ups never
enter it, so they cannot mask losses. Retention rate is the usual ``(end - new) / start``
beside it, to show how much the two can differ. Revenue figures weigh each account by
its MRR at the month's start (from the subscription history when there is one): gross
MRR churn, and net revenue retention of the accounts that were there at the start.
Losses are split by lifecycle stage at churn (early 0-3 months, mid 3-12, late 12+),
because they have different causes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import DataError
from features.snapshot import revenue_at
from features.tables import Tables, account_days
from features.timeline import (
    LIFECYCLE_STAGES,
    MISSING_DAY,
    active_on,
    add_months,
    day_of,
    days_to_datetime,
    lifecycle_stage_codes,
)


@dataclass(frozen=True)
class ChurnReport:
    monthly: pd.DataFrame  # one row per calendar month
    cohorts: pd.DataFrame  # signup month x months since signup -> share still active


def month_starts(first: dt.date, last: dt.date) -> np.ndarray:
    """Day numbers of the month starts from ``first``'s month through ``last``'s."""
    months = pd.date_range(
        pd.Timestamp(first).to_period("M").start_time, pd.Timestamp(last), freq="MS"
    )
    return np.array([day_of(m.date()) for m in months], dtype=np.int64)


def monthly_figures(tables: Tables, end: dt.date | None = None) -> pd.DataFrame:
    """Customers, new, lost (by stage), churn and retention rates, MRR churn and net
    revenue retention for every whole month of the recorded history."""
    end = end or tables.data_end()
    starts = month_starts(tables.data_start(), end)
    nexts = add_months(starts, 1)
    starts, nexts = (
        starts[nexts <= day_of(end) + 1],
        nexts[nexts <= day_of(end) + 1],
    )  # whole months only
    if len(starts) == 0:
        raise DataError(f"the data ({tables.data_start()} to {end}) holds no whole calendar month")
    signup = account_days(tables.accounts, "signup_date")
    churn = account_days(tables.accounts, "churn_date")
    at_start = active_on(signup[:, None], churn[:, None], starts[None, :])  # accounts x months
    churned = churn != MISSING_DAY
    lost = at_start & churned[:, None] & (churn[:, None] < nexts[None, :])
    new = (signup[:, None] >= starts[None, :]) & (signup[:, None] < nexts[None, :])
    at_end = active_on(signup[:, None], churn[:, None], nexts[None, :] - 1)
    stage = lifecycle_stage_codes((churn - signup).astype(np.float64))

    mrr = _revenue_matrix(tables, at_start, starts)
    stayed_mrr = _revenue_matrix(tables, at_start & at_end, nexts - 1)

    customers = at_start.sum(axis=0)
    frame = pd.DataFrame(
        {
            "month": days_to_datetime(starts),
            "customers_start": customers,
            "new": new.sum(axis=0),
            "lost": lost.sum(axis=0),
            **{
                f"lost_{name}": (lost & (stage == code)[:, None]).sum(axis=0)
                for code, name in enumerate(LIFECYCLE_STAGES)
            },
            "customers_end": at_end.sum(axis=0),
            "mrr_start": mrr.sum(axis=0),
            "mrr_lost": (mrr * lost).sum(axis=0),
            "mrr_end_of_start_customers": stayed_mrr.sum(axis=0),
        }
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["churn_rate"] = frame["lost"] / frame["customers_start"]
        frame["retention_rate"] = (frame["customers_end"] - frame["new"]) / frame["customers_start"]
        frame["gross_mrr_churn_rate"] = frame["mrr_lost"] / frame["mrr_start"]
        frame["net_revenue_retention"] = frame["mrr_end_of_start_customers"] / frame["mrr_start"]
    return frame


def _revenue_matrix(tables: Tables, present: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Accounts x months: each present account's MRR on that month's day (0 elsewhere)."""
    revenue = np.zeros(present.shape)
    account, month = np.nonzero(present)
    if len(account):
        ids = tables.accounts["account_id"].to_numpy(dtype=object)[account]
        points = pd.DataFrame({"account_id": ids, "as_of": days_to_datetime(days[month])})
        revenue[account, month] = np.nan_to_num(revenue_at(tables, points))
    return revenue


def cohort_retention(
    tables: Tables, end: dt.date | None = None, horizon_months: int = 24
) -> pd.DataFrame:
    """Share of each signup-month cohort still a customer k whole months after signup
    (NaN where k months have not yet passed by the end of the data).

    Cohorts that signed up before the recorded history are left out: an export holds
    only those of them that were still customers when the history starts.
    """
    end_day = day_of(end or tables.data_end())
    signup = account_days(tables.accounts, "signup_date")
    churn = account_days(tables.accounts, "churn_date")
    known = (signup != MISSING_DAY) & (signup >= day_of(tables.data_start()))
    signup, churn = signup[known], churn[known]
    k = np.arange(horizon_months + 1)
    checkpoint = add_months(np.repeat(signup, len(k)), np.tile(k, len(signup))).reshape(
        len(signup), len(k)
    )
    observed = checkpoint <= end_day
    alive = active_on(signup[:, None], churn[:, None], checkpoint) & observed
    cohort = pd.to_datetime(days_to_datetime(signup)).to_period("M").to_timestamp()
    frame = pd.DataFrame(np.where(observed, alive, np.nan), columns=[int(m) for m in k])
    frame.insert(0, "cohort", cohort)
    table = frame.groupby("cohort").mean()
    table.insert(0, "accounts", frame.groupby("cohort").size())
    return table


def churn_report(tables: Tables, end: dt.date | None = None) -> ChurnReport:
    return ChurnReport(monthly_figures(tables, end), cohort_retention(tables, end))


def plot_report(report: ChurnReport, out_dir: Path) -> list[Path]:
    """Monthly churn vs retention rates, and the cohort retention heatmap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    monthly = report.monthly
    figure, axis = plt.subplots(figsize=(9, 4))
    axis.plot(
        monthly["month"],
        monthly["churn_rate"] * 100,
        label="churn rate (lost / customers at start)",
    )
    axis.plot(monthly["month"], monthly["gross_mrr_churn_rate"] * 100, label="gross MRR churn rate")
    axis.plot(
        monthly["month"],
        (1 - monthly["retention_rate"]) * 100,
        label="1 - retention rate ((end - new) / start)",
        linestyle="--",
    )
    axis.set_ylabel("% per month")
    axis.legend(fontsize=8)
    axis.set_title("Monthly churn")
    rates = out_dir / "monthly_churn.png"
    figure.tight_layout()
    figure.savefig(rates, dpi=110)
    plt.close(figure)

    cohorts = report.cohorts.drop(columns="accounts")
    figure, axis = plt.subplots(figsize=(10, max(3, 0.18 * len(cohorts))))
    image = axis.imshow(
        cohorts.to_numpy(dtype=float) * 100, aspect="auto", cmap="viridis", vmin=0, vmax=100
    )
    axis.set_yticks(range(len(cohorts)), [c.strftime("%Y-%m") for c in cohorts.index], fontsize=6)
    axis.set_xlabel("months since signup")
    axis.set_title("Cohort retention (% of the signup month still a customer)")
    figure.colorbar(image, ax=axis)
    heatmap = out_dir / "cohort_retention.png"
    figure.tight_layout()
    figure.savefig(heatmap, dpi=110)
    plt.close(figure)
    return [rates, heatmap]
