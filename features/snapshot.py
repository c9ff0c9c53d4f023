"""Stage 1: raw tables + (account_id, as_of) pairs -> point-in-time AccountSnapshot rows.

Vectorized over all accounts and all dates at once. Each event table becomes a
sorted array of integer keys ``account * STRIDE + day`` (features/events.py); every
window count is two binary searches of query keys into it, every "last value on or
before as_of" one search, every windowed sum a difference of prefix sums. Memory stays
O(events + snapshots) — there is no join of events against dates — and a search
bounded by ``key(account, as_of)`` cannot see an event dated after ``as_of``:
the point-in-time rule holds by construction (and is property-tested).

Distinct active users in a window (MAU) use one more identity (features/usage.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.errors import DataError
from features.events import EventIndex, Queries
from features.schema import (
    MAU_COLUMNS,
    SNAPSHOT_COLUMNS,
    TEXT_FIELDS,
    attribute_column,
)
from features.tables import ACCOUNTS, Tables, account_days
from features.timeline import (
    CONTRACT_TERM_MONTHS,
    DAU_WINDOW_DAYS,
    DAYS_PER_MONTH,
    MAU_WINDOW_DAYS,
    MISSING_DAY,
    QUARTER_WINDOW_DAYS,
    SHORT_WINDOW_DAYS,
    YEAR_WINDOW_DAYS,
    active_on,
    day_of,
    days_to_datetime,
    next_term_end,
    to_days,
)
from features.usage import distinct_user_days

NEVER_FEATURES = ("churn_date", "churn_reason")
HIGH_PRIORITIES = ("high", "urgent")


# --- the entry point ----------------------------------------------------------------------


def build_snapshots(
    tables: Tables,
    points: pd.DataFrame,
    exclude_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """Snapshot every (account_id, as_of) row of ``points`` from events on or before as_of."""
    account_ids = tables.accounts["account_id"]
    queries = point_queries(tables, points)
    account, as_of = queries.account, queries.as_of
    columns: dict[str, np.ndarray] = {
        "account_id": account_ids.to_numpy(dtype=object)[account],
        "as_of": days_to_datetime(as_of),
    }
    columns.update(account_columns(tables, queries))
    columns.update(subscription_columns(tables, queries))
    columns["renewal_date"] = days_to_datetime(
        renewal_days(tables.accounts, queries, columns["contract_type"])
    )
    columns.update(usage_columns(tables.usage, queries))
    columns.update(nps_columns(tables.nps, queries))
    columns.update(contact_columns(tables.contacts, queries))
    columns.update(ticket_columns(tables.tickets, queries))
    columns.update(stakeholder_columns(tables.stakeholders, queries))
    frame = pd.DataFrame({name: columns[name] for name in SNAPSHOT_COLUMNS})
    for name in ("account_id", *TEXT_FIELDS):
        frame[name] = frame[name].astype("string")
    attributes = attribute_frame(tables.accounts, exclude_columns)
    if len(attributes.columns):
        frame = pd.concat([frame, attributes.iloc[account].reset_index(drop=True)], axis=1)
    return frame


def active_snapshots(
    tables: Tables, dates: Sequence, exclude_columns: Sequence[str] = ()
) -> pd.DataFrame:
    """Snapshots of every account active on each date (what `churn snapshot` and scoring
    take; a cluster runs it per account partition)."""
    points = active_points(tables, dates)
    return build_snapshots(tables, points, exclude_columns=exclude_columns)


def point_queries(tables: Tables, points: pd.DataFrame) -> Queries:
    """The (account index, as_of day) pairs of ``points``; unknown accounts are an error."""
    known = pd.Index(tables.accounts["account_id"])
    account = known.get_indexer(points["account_id"])
    if (account < 0).any():
        unknown = points.loc[account < 0, "account_id"].head(5).tolist()
        raise DataError(
            f"points name accounts that are not in accounts: {unknown}", table="accounts"
        )
    as_of = to_days(points["as_of"])
    if (as_of == MISSING_DAY).any():
        raise DataError("every point needs an as_of date", column="as_of")
    signup = account_days(tables.accounts, "signup_date")[account]
    return Queries(
        accounts=known,
        account=account,
        as_of=as_of,
        signup=signup,
        data_start=day_of(tables.data_start()),
    )


def revenue_at(tables: Tables, points: pd.DataFrame) -> np.ndarray:
    """MRR of each (account_id, as_of) of ``points``: from the subscription history when
    there is one, else the exported (static) value. Cheap: no event table is read."""
    queries = point_queries(tables, points)
    columns = {**account_columns(tables, queries), **subscription_columns(tables, queries)}
    return columns["mrr"]


def active_points(tables: Tables, dates: Sequence) -> pd.DataFrame:
    """(account_id, as_of) for every account active on each date (signed up, not churned)."""
    accounts = tables.accounts
    signup = account_days(accounts, "signup_date")
    churn = account_days(accounts, "churn_date")
    days = to_days(pd.Series(pd.to_datetime(list(dates))))
    n = len(accounts)
    account = np.tile(np.arange(n), len(days))
    as_of = np.repeat(days, n)
    active = active_on(signup[account], churn[account], as_of)
    return pd.DataFrame(
        {
            "account_id": accounts["account_id"].to_numpy(dtype=object)[account[active]],
            "as_of": days_to_datetime(as_of[active]),
        }
    )


# --- one function per source table -----------------------------------------------------------


def attribute_frame(accounts: pd.DataFrame, exclude_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Extra columns of accounts are static attributes, except churn outcome and excluded ones."""
    contract = {*ACCOUNTS.required, *ACCOUNTS.optional}
    never = {*NEVER_FEATURES, *exclude_columns}
    names = [c for c in accounts.columns if c not in contract and c not in never]
    frame = accounts[names].reset_index(drop=True)
    return frame.rename(columns={c: attribute_column(c) for c in names})


def account_columns(tables: Tables, q: Queries) -> dict[str, np.ndarray]:
    """Signup, tenure and contract; plan/seats/mrr as exported (the static fallback)."""
    accounts = tables.accounts
    out: dict[str, np.ndarray] = {
        "signup_date": days_to_datetime(q.signup),
        "tenure_months": (q.as_of - q.signup) / DAYS_PER_MONTH,
        "plan": _column(accounts, "plan", q.account, object),
        "contract_type": _column(accounts, "contract_type", q.account, object),
        "seats": _column(accounts, "seats", q.account, np.float64),
        "mrr": _column(accounts, "mrr", q.account, np.float64),
        "mrr_90d_ago": np.full(len(q.account), np.nan),
    }
    return out


def renewal_days(accounts: pd.DataFrame, q: Queries, contract_type: np.ndarray) -> np.ndarray:
    """The end of the contract term in force at as_of.

    An exported ``renewal_date`` is the *current* contract end; it is projected back by
    whole terms to ``as_of``. Without it, contracts renew on signup anniversaries.
    """
    term = pd.Series(contract_type).map(CONTRACT_TERM_MONTHS).fillna(0).to_numpy(np.int64)
    anchor = q.signup
    if "renewal_date" in accounts:
        exported = account_days(accounts, "renewal_date")[q.account]
        anchor = np.where(exported != MISSING_DAY, exported, q.signup)
    return next_term_end(anchor, q.as_of, term)


def subscription_columns(tables: Tables, q: Queries) -> dict[str, np.ndarray]:
    """mrr/seats/plan at as_of from the subscription history, when there is one."""
    subs = tables.subscriptions
    if subs is None:
        return {}
    account, day = q.locate(subs, "date")
    out: dict[str, np.ndarray] = {}
    index = EventIndex.build(account, day, np.arange(len(subs)))
    row = index.last_value(q.account, q.as_of, fill=-1).astype(np.int64)
    for name, dtype in (
        ("mrr", np.float64),
        ("seats", np.float64),
        ("plan", object),
        ("contract_type", object),
    ):
        if name in subs:
            out[name] = _gather(subs[name], row, dtype)
    row_90d_ago = index.last_value(q.account, q.as_of - QUARTER_WINDOW_DAYS, fill=-1).astype(
        np.int64
    )
    out["mrr_90d_ago"] = _gather(subs["mrr"], row_90d_ago, np.float64)
    return out


def _gather(column: pd.Series, rows: np.ndarray, dtype: type) -> np.ndarray:
    """column[rows] with a missing value where rows is -1."""
    missing = np.nan if dtype is np.float64 else None
    values = np.append(
        column.to_numpy(dtype=dtype, na_value=missing), np.array([missing], dtype=dtype)
    )
    return values[np.where(rows >= 0, rows, len(column))]


def usage_columns(usage: pd.DataFrame | None, q: Queries) -> dict[str, np.ndarray]:
    """MAU in 6 trailing 30-day windows (newest first) and average daily active users."""
    n = len(q.account)
    if usage is None:
        return {name: np.full(n, np.nan) for name in (*MAU_COLUMNS, "dau_avg_30d")}
    active_days = distinct_user_days(usage, q)
    out: dict[str, np.ndarray] = {}
    for k, name in enumerate(MAU_COLUMNS):
        hi = q.as_of - k * MAU_WINDOW_DAYS
        mau = active_days.distinct_users(q.account, hi, MAU_WINDOW_DAYS).astype(np.float64)
        reach = (k + 1) * MAU_WINDOW_DAYS
        # A window that ended before signup is not zero usage: the account did not exist.
        applicable = q.covered(reach) & ~(hi < q.signup)
        out[name] = np.where(applicable, mau, np.nan)
    dau = active_days.days.count(q.account, q.as_of, DAU_WINDOW_DAYS) / DAU_WINDOW_DAYS
    out["dau_avg_30d"] = np.where(q.covered(DAU_WINDOW_DAYS), dau, np.nan)
    return out


def nps_columns(nps: pd.DataFrame | None, q: Queries) -> dict[str, np.ndarray]:
    """Last answer and its date; mean and count of answers in the last 12 months."""
    names = ("nps_last", "nps_last_date", "nps_avg_12m", "nps_count_12m")
    if nps is None:
        return _absent(names, q, dates=("nps_last_date",))
    account, day = q.locate(nps, "date")
    index = EventIndex.build(account, day, nps["score"].to_numpy(np.float64))
    count = index.count(q.account, q.as_of, YEAR_WINDOW_DAYS).astype(np.float64)
    total = index.total(q.account, q.as_of, YEAR_WINDOW_DAYS)
    return {
        "nps_last": index.last_value(q.account, q.as_of),
        "nps_last_date": days_to_datetime(index.last_day(q.account, q.as_of)),
        "nps_avg_12m": np.where(count > 0, total / np.maximum(count, 1), np.nan),
        "nps_count_12m": np.where(q.covered(YEAR_WINDOW_DAYS), count, np.nan),
    }


def contact_columns(contacts: pd.DataFrame | None, q: Queries) -> dict[str, np.ndarray]:
    """When someone last talked to the account, and how often in the last 90 days."""
    if contacts is None:
        return _absent(("last_contact_date", "contacts_90d"), q, dates=("last_contact_date",))
    account, day = q.locate(contacts, "date")
    index = EventIndex.build(account, day)
    count = index.count(q.account, q.as_of, QUARTER_WINDOW_DAYS).astype(np.float64)
    return {
        "last_contact_date": days_to_datetime(index.last_day(q.account, q.as_of)),
        "contacts_90d": np.where(q.covered(QUARTER_WINDOW_DAYS), count, np.nan),
    }


def ticket_columns(tickets: pd.DataFrame | None, q: Queries) -> dict[str, np.ndarray]:
    """Ticket volume, backlog, urgency and resolution time, as known at as_of.

    A ticket closed after as_of is open at as_of and its resolution time is not yet
    known; resolution time averages the tickets *closed* in the last 90 days.
    """
    names = (
        "tickets_30d",
        "tickets_90d",
        "tickets_open",
        "tickets_high_90d",
        "ticket_hours_to_close_avg_90d",
    )
    if tickets is None:
        return _absent(names, q)
    account, opened = q.locate(tickets, "opened_date")
    opened_index = EventIndex.build(account, opened)
    closed = (
        to_days(tickets["closed_date"])
        if "closed_date" in tickets
        else np.full(len(tickets), MISSING_DAY)
    )
    is_closed = closed != MISSING_DAY
    hours = (closed - opened)[is_closed].astype(np.float64) * 24.0
    closed_index = EventIndex.build(account[is_closed], closed[is_closed], hours)
    if "priority" in tickets:
        high = tickets["priority"].isin(HIGH_PRIORITIES).to_numpy(dtype=bool, na_value=False)
    else:
        high = np.zeros(len(tickets), dtype=bool)
    high_index = EventIndex.build(account[high], opened[high])

    open_now = opened_index.count_upto(q.account, q.as_of) - closed_index.count_upto(
        q.account, q.as_of
    )
    closed_90d = closed_index.count(q.account, q.as_of, QUARTER_WINDOW_DAYS)
    hours_90d = closed_index.total(q.account, q.as_of, QUARTER_WINDOW_DAYS)
    covered_30, covered_90 = q.covered(SHORT_WINDOW_DAYS), q.covered(QUARTER_WINDOW_DAYS)
    out = {
        "tickets_30d": np.where(
            covered_30, opened_index.count(q.account, q.as_of, SHORT_WINDOW_DAYS), np.nan
        ),
        "tickets_90d": np.where(
            covered_90, opened_index.count(q.account, q.as_of, QUARTER_WINDOW_DAYS), np.nan
        ),
        "tickets_open": np.where(q.covered(1), open_now, np.nan),
        "tickets_high_90d": np.where(
            covered_90, high_index.count(q.account, q.as_of, QUARTER_WINDOW_DAYS), np.nan
        ),
        "ticket_hours_to_close_avg_90d": np.where(
            closed_90d > 0, hours_90d / np.maximum(closed_90d, 1), np.nan
        ),
    }
    if "priority" not in tickets:
        out["tickets_high_90d"] = np.full(len(q.account), np.nan)
    return out


def stakeholder_columns(stakeholders: pd.DataFrame | None, q: Queries) -> dict[str, np.ndarray]:
    """Key contacts who left in the last 90 days."""
    if stakeholders is None:
        return _absent(("stakeholders_left_90d",), q)
    left = (stakeholders["change"] == "left").to_numpy(dtype=bool, na_value=False)
    account, day = q.locate(stakeholders, "date")
    index = EventIndex.build(account[left], day[left])
    count = index.count(q.account, q.as_of, QUARTER_WINDOW_DAYS).astype(np.float64)
    return {"stakeholders_left_90d": np.where(q.covered(QUARTER_WINDOW_DAYS), count, np.nan)}


def _absent(names: Sequence[str], q: Queries, dates: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """A missing table: its fields are absent (NaN / NaT), never zero."""
    n = len(q.account)
    return {
        name: days_to_datetime(np.full(n, MISSING_DAY)) if name in dates else np.full(n, np.nan)
        for name in names
    }


def _column(frame: pd.DataFrame, name: str, rows: np.ndarray, dtype: type) -> np.ndarray:
    if name not in frame:
        return np.full(len(rows), np.nan if dtype is np.float64 else None, dtype=dtype)
    values = frame[name].to_numpy(dtype=dtype, na_value=np.nan if dtype is np.float64 else None)
    return values[rows]
