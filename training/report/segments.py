"""Where customers are lost: churn by segment, by stated reason, and silent churn.

Segment rates are pooled monthly rates: every account active at the start of a whole
month is one account-month, described as it stood on that day (lifecycle stage,
plan, contract, last NPS answer); the rate is lost account-months over account-months,
so a segment's figure reads like the monthly churn rate and can be annualized the same
way. Reasons and silent churn look at the accounts lost inside the data window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from features.derive import INDICATORS, NPS_CATEGORIES, View
from features.snapshot import (
    account_columns,
    nps_columns,
    point_queries,
    revenue_at,
    subscription_columns,
)
from features.tables import Tables, account_days
from features.timeline import (
    LIFECYCLE_STAGES,
    MISSING_DAY,
    active_on,
    day_of,
    days_to_datetime,
    lifecycle_stage_codes,
    to_days,
)
from training.report.monthly import annualized, whole_months

NO_NPS = "no answer"
NOT_GIVEN = "(not given)"
UNKNOWN = "(unknown)"
SEGMENTS = {  # account-month column -> what the report calls it
    "lifecycle_stage": "lifecycle stage",
    "contract_type": "contract type",
    "plan": "plan",
    "nps_category": "NPS category",
}


def account_months(tables: Tables, end: dt.date) -> pd.DataFrame:
    """One row per account active at the start of each whole month, described as it stood
    that day, and whether it churned before the month ended."""
    starts, nexts = whole_months(tables, end)
    signup = account_days(tables.accounts, "signup_date")
    churn = account_days(tables.accounts, "churn_date")
    account, month = np.nonzero(active_on(signup[:, None], churn[:, None], starts[None, :]))
    points = pd.DataFrame(
        {
            "account_id": tables.accounts["account_id"].to_numpy(dtype=object)[account],
            "as_of": days_to_datetime(starts[month]),
        }
    )
    queries = point_queries(tables, points)
    state = {**account_columns(tables, queries), **subscription_columns(tables, queries)}
    nps = INDICATORS["nps_category"].compute(View(nps_columns(tables.nps, queries)))
    stage = lifecycle_stage_codes((queries.as_of - queries.signup).astype(np.float64))
    return pd.DataFrame(
        {
            "account_id": points["account_id"],
            "month": points["as_of"],
            "lifecycle_stage": level_names(stage, LIFECYCLE_STAGES, UNKNOWN),
            "contract_type": text_labels(state["contract_type"]),
            "plan": text_labels(state["plan"]),
            "nps_category": level_names(nps, NPS_CATEGORIES, NO_NPS),
            "mrr": state["mrr"],
            "lost": (churn[account] != MISSING_DAY) & (churn[account] < nexts[month]),
        }
    )


def level_names(codes: np.ndarray, levels: tuple[str, ...], missing: str) -> np.ndarray:
    """Level codes (0..k-1, NaN unknown) -> their names, ``missing`` for NaN."""
    names = np.array([*levels, missing], dtype=object)
    return names[np.where(np.isnan(codes), len(levels), codes).astype(np.int64)]


def text_labels(values: np.ndarray) -> np.ndarray:
    """Text values with a visible label where a value is missing (a group of its own)."""
    labels = pd.Series(values, dtype=object).astype("string").fillna(UNKNOWN)
    return labels.to_numpy(dtype=object)


def by_segment(
    frame: pd.DataFrame,
    segments: Mapping[str, str],
    figures: Callable[[pd.DataFrame, str], pd.DataFrame],
    orders: Mapping[str, Sequence[str]],
    largest_first: str,
) -> pd.DataFrame:
    """One block of rows per segment column (``segments``: column -> its name in words):
    ``figures(frame, column)`` indexed by value, in the natural order ``orders`` gives,
    else largest ``largest_first`` first."""
    parts = []
    for column, label in segments.items():
        part = figures(frame, column)
        order = orders.get(column)
        part = (
            part.reindex([v for v in order if v in part.index])
            if order
            else part.sort_values(largest_first, ascending=False)
        )
        part.insert(0, "value", part.index.astype(str))
        part.insert(0, "segment", label)
        parts.append(part.reset_index(drop=True))
    return pd.concat(parts, ignore_index=True)


def churn_by_segment(months: pd.DataFrame) -> pd.DataFrame:
    """Per segment value: account-months, lost, monthly churn rate and its annualized
    form, MRR lost; stages and NPS categories in their natural order, others by size."""

    def figures(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        grouped = frame.groupby(column, sort=False)
        return pd.DataFrame(
            {
                "account_months": grouped.size(),
                "lost": grouped["lost"].sum(),
                "mrr_lost": frame["mrr"].where(frame["lost"], 0.0).groupby(frame[column]).sum(),
            }
        )

    orders = {
        "lifecycle_stage": [*LIFECYCLE_STAGES, UNKNOWN],
        "nps_category": [*reversed(NPS_CATEGORIES), NO_NPS],
    }
    table = by_segment(months, SEGMENTS, figures, orders, "account_months")
    table["churn_rate"] = table["lost"] / table["account_months"]
    table["annualized_churn_rate"] = annualized(table["churn_rate"])
    return table


def lost_accounts(tables: Tables, end: dt.date) -> pd.DataFrame:
    """Accounts lost inside the data window: churn day, stage at churn, MRR on their last
    day as a customer, reason (when the export has one)."""
    accounts = tables.accounts
    signup = account_days(accounts, "signup_date")
    churn = account_days(accounts, "churn_date")
    inside = (
        (churn != MISSING_DAY) & (churn >= day_of(tables.data_start())) & (churn <= day_of(end))
    )
    rows = np.flatnonzero(inside)
    ids = accounts["account_id"].to_numpy(dtype=object)[rows]
    last_day = pd.DataFrame({"account_id": ids, "as_of": days_to_datetime(churn[rows] - 1)})
    reason = (
        accounts["churn_reason"].to_numpy(dtype=object, na_value=None)[rows]
        if "churn_reason" in accounts
        else np.full(len(rows), None, dtype=object)
    )
    return pd.DataFrame(
        {
            "account_id": ids,
            "churn_date": days_to_datetime(churn[rows]),
            "lifecycle_stage": level_names(
                lifecycle_stage_codes((churn[rows] - signup[rows]).astype(np.float64)),
                LIFECYCLE_STAGES,
                UNKNOWN,
            ),
            "mrr": np.nan_to_num(revenue_at(tables, last_day)) if len(rows) else np.zeros(0),
            "churn_reason": [NOT_GIVEN if r is None else str(r) for r in reason],
        }
    )


def churn_reasons(lost: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(accounts and MRR lost by reason, the same by reason x lifecycle stage at churn)."""
    by_reason = lost.groupby("churn_reason").agg(
        accounts=("account_id", "size"), mrr_lost=("mrr", "sum")
    )
    by_reason["share_of_accounts"] = by_reason["accounts"] / max(len(lost), 1)
    by_reason["share_of_mrr"] = by_reason["mrr_lost"] / max(float(lost["mrr"].sum()), 1e-12)
    by_reason = by_reason.sort_values("accounts", ascending=False).reset_index()
    stages = [s for s in (*LIFECYCLE_STAGES, UNKNOWN) if s in set(lost["lifecycle_stage"])]
    crossed = (
        lost.pivot_table(
            index="churn_reason",
            columns="lifecycle_stage",
            values="mrr",
            aggfunc=["size", "sum"],
            fill_value=0,
        )
        if len(lost)
        else pd.DataFrame()
    )
    by_stage = pd.DataFrame(index=by_reason["churn_reason"])
    for stage in stages:
        by_stage[f"accounts_{stage}"] = crossed[("size", stage)].reindex(by_stage.index).fillna(0)
        by_stage[f"mrr_lost_{stage}"] = crossed[("sum", stage)].reindex(by_stage.index).fillna(0)
    return by_reason, by_stage.reset_index()


def silent_churn(tables: Tables, lost: pd.DataFrame, end: dt.date) -> dict[str, float] | None:
    """The share of lost accounts with no support ticket on record before they left, and
    for contrast the share of current customers with none up to the end of the data.
    None without a tickets table."""
    tickets = tables.tickets
    if tickets is None:
        return None
    opened = to_days(tickets["opened_date"]).astype(np.float64)
    first = pd.Series(opened).groupby(tickets["account_id"].astype(object).to_numpy()).min()
    first_lost = first.reindex(lost["account_id"].astype(object)).to_numpy()
    silent = np.isnan(first_lost) | (first_lost > to_days(lost["churn_date"]))
    accounts = tables.accounts
    signup = account_days(accounts, "signup_date")
    churn = account_days(accounts, "churn_date")
    current = active_on(signup, churn, np.full(len(accounts), day_of(end)))
    current_ids = accounts["account_id"].to_numpy(dtype=object)[current]
    first_current = first.reindex(current_ids).to_numpy()
    quiet = np.isnan(first_current) | (first_current > day_of(end))
    return {
        "lost_accounts": float(len(lost)),
        "silent_lost_accounts": float(silent.sum()),
        "silent_share": float(silent.mean()) if len(lost) else float("nan"),
        "current_accounts": float(len(current_ids)),
        "current_without_tickets": float(quiet.sum()),
        "current_without_tickets_share": float(quiet.mean()) if len(current_ids) else float("nan"),
    }
