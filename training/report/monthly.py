"""Churn and retention figures as an analyst reads them: per month, per signup cohort.

Churn rate is customers lost in a month over customers at its start; new sign-ups never
enter it, so they cannot mask losses. Retention rate is the usual ``(end - new) / start``
beside it, to show how much the two can differ. Revenue figures weigh each account by
its MRR at the month's start (from the subscription history when there is one): gross
MRR churn, and net revenue retention of the accounts that were there at the start.
Losses are split by lifecycle stage at churn (early 0-3 months, mid 3-12, late 12+),
because they have different causes. A monthly rate is also shown annualized,
``1 - (1 - m)^12``: 5% a month loses about 46% of a book in a year, not 60%.
"""

from __future__ import annotations

import datetime as dt

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

MONTHS_PER_YEAR = 12


def annualized(monthly_rate: np.ndarray | pd.Series | float) -> np.ndarray | pd.Series | float:
    """A monthly churn rate compounded over a year: ``1 - (1 - m)^12``."""
    return 1 - (1 - monthly_rate) ** MONTHS_PER_YEAR


def month_starts(first: dt.date, last: dt.date) -> np.ndarray:
    """Day numbers of the month starts from ``first``'s month through ``last``'s."""
    months = pd.date_range(
        pd.Timestamp(first).to_period("M").start_time, pd.Timestamp(last), freq="MS"
    )
    return np.array([day_of(m.date()) for m in months], dtype=np.int64)


def whole_months(tables: Tables, end: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """(first day, first day of the next month) of every calendar month lying wholly
    inside the data, as day numbers."""
    starts = month_starts(tables.data_start(), end)
    nexts = add_months(starts, 1)
    whole = (starts >= day_of(tables.data_start())) & (nexts <= day_of(end) + 1)
    if not whole.any():
        raise DataError(f"the data ({tables.data_start()} to {end}) holds no whole calendar month")
    return starts[whole], nexts[whole]


def monthly_figures(tables: Tables, end: dt.date | None = None) -> pd.DataFrame:
    """Customers, new, lost (by stage), churn and retention rates, MRR churn and net
    revenue retention for every whole month of the recorded history."""
    starts, nexts = whole_months(tables, end or tables.data_end())
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
        frame["annualized_churn_rate"] = annualized(frame["churn_rate"])
        frame["retention_rate"] = (frame["customers_end"] - frame["new"]) / frame["customers_start"]
        frame["gross_additions_rate"] = frame["new"] / frame["customers_start"]
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
    known = (signup != MISSING_DAY) & (signup >= day_of(tables.data_start())) & (signup <= end_day)
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
