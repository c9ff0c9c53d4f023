"""Integer-coded simulation output -> the contract's tables (and truth) as data frames."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.timeline import MISSING_DAY, days_to_datetime, next_term_end
from training.demo.draws import Ints
from training.demo.emission import Events
from training.demo.history import History, Population, last_event_day
from training.demo.months import month_of
from training.demo.parameters import (
    ACQUISITION_EFFECT,
    CHURN_REASONS,
    CONTACT_CHANNELS,
    INDUSTRY_EFFECT,
    PLANS,
    PRIORITIES,
    REGIONS,
    ROLES,
    STAKEHOLDER_CHANGES,
    TOUCHPOINTS,
)
from training.demo.truth import Truth


def labels(names: tuple[str, ...] | npt.NDArray[np.str_], codes: np.ndarray) -> pd.Series:
    """Text column from integer codes, built once per distinct value (fast for millions)."""
    return (
        pd.Series(np.asarray(names), dtype="str")
        .take(np.asarray(codes, dtype=np.int64))
        .reset_index(drop=True)
    )


def dates(days: np.ndarray) -> np.ndarray:
    """Days since epoch -> datetime64[s] at midnight, NaT for ``MISSING_DAY``."""
    return days_to_datetime(np.asarray(days, dtype=np.int64))


def user_names(ids: npt.NDArray[np.str_], max_seats: Ints) -> npt.NDArray[np.str_]:
    """'A000001-U001' ... for every user slot an account ever had."""
    return np.array(
        [
            f"{account}-U{slot + 1:03d}"
            for account, seats in zip(ids, max_seats, strict=True)
            for slot in range(seats)
        ]
    )


def accounts_frame(
    population: Population, kept: Ints, history: History, ids: npt.NDArray[np.str_], end: int
) -> pd.DataFrame:
    """One row per account with the values AT THE END of the data (like a real export)."""
    first = history.states[0]
    last_day = last_event_day(history, end)
    row = month_of(last_day) - history.months[0]
    column = np.arange(len(kept))
    final = {
        name: np.stack([getattr(s, name) for s in history.states])[row, column]
        for name in ("plan", "seats", "mrr")
    }
    term = np.where(first.annual, 12, 1)
    active = history.churn_day == MISSING_DAY
    renewal = np.where(
        active, next_term_end(first.signup_day, np.full(len(kept), end), term), MISSING_DAY
    )
    reason = pd.Series(
        np.array(CHURN_REASONS, dtype=object)[np.maximum(history.churn_reason, 0)], dtype="str"
    )
    return pd.DataFrame(
        {
            "account_id": pd.Series(ids, dtype="str"),
            "signup_date": dates(first.signup_day),
            "churn_date": dates(history.churn_day),
            "plan": labels(PLANS, final["plan"]),
            "contract_type": labels(("monthly", "annual"), first.annual.astype(np.int64)),
            "seats": final["seats"].astype(np.int64),
            "mrr": final["mrr"].astype(np.float64),
            "renewal_date": dates(renewal),
            "churn_reason": reason.where(~active, None),
            "industry": labels(tuple(INDUSTRY_EFFECT), population.industry[kept]),
            "region": labels(REGIONS, population.region[kept]),
            "acquisition_channel": labels(tuple(ACQUISITION_EFFECT), population.channel[kept]),
            "employees": population.employees[kept].astype(np.int64),
        }
    )


def by_date(frame: pd.DataFrame, day: np.ndarray, account: np.ndarray) -> pd.DataFrame:
    """Rows in date order (then account), as an export sorted by time would have them."""
    return frame.iloc[np.lexsort((account, day))].reset_index(drop=True)


def subscriptions_frame(events: Events, ids: npt.NDArray[np.str_]) -> pd.DataFrame:
    account, day = events.column("account"), events.column("day")
    frame = pd.DataFrame(
        {
            "account_id": labels(ids, account),
            "date": dates(day),
            "mrr": events.column("mrr").astype(np.float64),
            "seats": events.column("seats").astype(np.int64),
            "plan": labels(PLANS, events.column("plan")),
        }
    )
    return frame.iloc[np.lexsort((day, account))].reset_index(drop=True)  # account, then time


def usage_frame(events: Events, ids: npt.NDArray[np.str_], max_seats: Ints) -> pd.DataFrame:
    """Left in emission order (month, account, user): sorting millions of rows buys nothing."""
    return pd.DataFrame(
        {
            "account_id": labels(ids, events.column("account")),
            "user_id": labels(user_names(ids, max_seats), events.column("user")),
            "date": dates(events.column("day")),
        }
    )


def nps_frame(events: Events, ids: npt.NDArray[np.str_]) -> pd.DataFrame:
    account, day = events.column("account"), events.column("day")
    frame = pd.DataFrame(
        {
            "account_id": labels(ids, account),
            "date": dates(day),
            "score": events.column("score").astype(np.int64),
            "touchpoint": labels(TOUCHPOINTS, events.column("touchpoint")),
        }
    )
    return by_date(frame, day, account)


def contacts_frame(events: Events, ids: npt.NDArray[np.str_]) -> pd.DataFrame:
    account, day = events.column("account"), events.column("day")
    frame = pd.DataFrame(
        {
            "account_id": labels(ids, account),
            "date": dates(day),
            "channel": labels(CONTACT_CHANNELS, events.column("channel")),
        }
    )
    return by_date(frame, day, account)


def tickets_frame(events: Events, ids: npt.NDArray[np.str_], end: int) -> pd.DataFrame:
    """A ticket closed after the end of data is still open in the export (NaT)."""
    account, day, closed = events.column("account"), events.column("day"), events.column("closed")
    frame = pd.DataFrame(
        {
            "account_id": labels(ids, account),
            "opened_date": dates(day),
            "closed_date": dates(np.where(closed > end, MISSING_DAY, closed)),
            "priority": labels(PRIORITIES, events.column("priority")),
        }
    )
    return by_date(frame, day, account)


def stakeholders_frame(events: Events, ids: npt.NDArray[np.str_]) -> pd.DataFrame:
    account, day = events.column("account"), events.column("day")
    frame = pd.DataFrame(
        {
            "account_id": labels(ids, account),
            "date": dates(day),
            "change": labels(STAKEHOLDER_CHANGES, events.column("change")),
            "role": labels(ROLES, events.column("role")),
        }
    )
    return by_date(frame, day, account)


def event_frames(
    tables: dict[str, Events], ids: npt.NDArray[np.str_], max_seats: Ints, end: int
) -> dict[str, pd.DataFrame]:
    """Integer-coded event columns -> the contract's tables."""
    return {
        "subscriptions": subscriptions_frame(tables["subscriptions"], ids),
        "usage": usage_frame(tables["usage"], ids, max_seats),
        "nps": nps_frame(tables["nps"], ids),
        "contacts": contacts_frame(tables["contacts"], ids),
        "tickets": tickets_frame(tables["tickets"], ids, end),
        "stakeholders": stakeholders_frame(tables["stakeholders"], ids),
    }


def truth_frame(truth: Truth, ids: npt.NDArray[np.str_]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": labels(ids, truth.account),
            "as_of": dates(truth.as_of),
            "p_true": truth.p_true,
            "churned": truth.churned.astype(np.int64),
        }
    )
