"""Property: nothing dated after as_of can change a snapshot (the point-in-time invariant)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.snapshot import build_snapshots
from features.tables import load_tables

START = dt.date(2024, 1, 1)
SPAN_DAYS = 400
ACCOUNTS = ["a", "b", "c"]


def on(offset: int) -> str:
    return (START + dt.timedelta(days=offset)).isoformat()


@st.composite
def event_rows(draw, kind: str, size: int, as_of: int) -> list[dict]:
    """Events clustered around as_of, where off-by-one and look-ahead bugs live."""
    rows = []
    for _ in range(draw(st.integers(0, size))):
        account = draw(st.sampled_from(ACCOUNTS))
        when = min(max(as_of + draw(st.integers(-100, 10)), 0), SPAN_DAYS)
        if kind == "usage":
            rows.append(
                {
                    "account_id": account,
                    "user_id": draw(st.sampled_from(["u1", "u2", "u3"])),
                    "date": on(when),
                }
            )
        elif kind == "nps":
            rows.append(
                {"account_id": account, "date": on(when), "score": draw(st.integers(0, 10))}
            )
        elif kind == "contacts":
            rows.append({"account_id": account, "date": on(when)})
        elif kind == "tickets":
            closed = draw(st.one_of(st.none(), st.integers(0, 15)))
            rows.append(
                {
                    "account_id": account,
                    "opened_date": on(when),
                    "closed_date": None if closed is None else on(when + closed),
                    "priority": draw(st.sampled_from(["low", "high", "urgent"])),
                }
            )
        elif kind == "stakeholders":
            rows.append(
                {
                    "account_id": account,
                    "date": on(when),
                    "change": draw(st.sampled_from(["left", "joined"])),
                }
            )
        elif kind == "subscriptions":
            rows.append(
                {
                    "account_id": account,
                    "date": on(when),
                    "mrr": draw(st.integers(0, 900)),
                    "seats": draw(st.integers(0, 30)),
                }
            )
    return rows


KINDS = ("usage", "nps", "contacts", "tickets", "stakeholders", "subscriptions")
COLUMNS = {
    "usage": ["account_id", "user_id", "date"],
    "nps": ["account_id", "date", "score"],
    "contacts": ["account_id", "date"],
    "tickets": ["account_id", "opened_date", "closed_date", "priority"],
    "stakeholders": ["account_id", "date", "change"],
    "subscriptions": ["account_id", "date", "mrr", "seats"],
}


def event_date_column(kind: str) -> str:
    return "opened_date" if kind == "tickets" else "date"


@st.composite
def data_and_future(draw):
    """A data set, an as_of, and the same data set with its future rewritten."""
    as_of = draw(st.integers(30, SPAN_DAYS - 30))
    accounts = pd.DataFrame(
        {
            "account_id": ACCOUNTS,
            "signup_date": [on(draw(st.integers(0, as_of))) for _ in ACCOUNTS],
            "contract_type": [draw(st.sampled_from(["monthly", "annual"])) for _ in ACCOUNTS],
            "seats": [5, 10, 1],
            "mrr": [50.0, 100.0, 10.0],
        }
    )
    anchor = pd.DataFrame(
        {"account_id": ["a"], "user_id": ["u1"], "date": [on(0)]}
    )  # fixes the data start
    past, future = {"accounts": accounts}, {"accounts": accounts}
    for kind in KINDS:
        rows = pd.DataFrame(draw(event_rows(kind, 16, as_of)), columns=COLUMNS[kind])
        if kind == "usage":
            rows = pd.concat([anchor, rows], ignore_index=True)
        dated = pd.to_datetime(rows[event_date_column(kind)])
        later = dated > pd.Timestamp(on(as_of))
        rewritten = rows.loc[~later].copy()
        if kind == "tickets":
            # a ticket opened by as_of but closed after it may close at any other later date
            closed = pd.to_datetime(rewritten["closed_date"])
            open_then = closed > pd.Timestamp(on(as_of))
            shift = draw(st.integers(1, 30))
            rewritten.loc[open_then, "closed_date"] = on(as_of + shift)
        extra = pd.DataFrame(draw(event_rows(kind, 6, as_of)), columns=COLUMNS[kind])
        extra = extra.loc[pd.to_datetime(extra[event_date_column(kind)]) > pd.Timestamp(on(as_of))]
        # Rows keep their file order (on one day, the last subscription row wins).
        past[kind] = rows
        future[kind] = pd.concat([rewritten, extra], ignore_index=True)
    return past, future, on(as_of)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data_and_future())
def test_events_after_as_of_never_change_a_snapshot(case) -> None:
    past, future, as_of = case
    points = pd.DataFrame({"account_id": ACCOUNTS, "as_of": [as_of] * len(ACCOUNTS)})
    before = build_snapshots(load_tables(None, past), points)
    after = build_snapshots(load_tables(None, future), points)
    pd.testing.assert_frame_equal(before, after)


@settings(max_examples=40, deadline=None)
@given(data_and_future(), st.integers(0, 2))
def test_one_snapshot_equals_its_row_among_many(case, pick: int) -> None:
    past, _, as_of = case
    tables = load_tables(None, past)
    dates = [as_of, on(SPAN_DAYS // 2), on(SPAN_DAYS)]
    points = pd.DataFrame({"account_id": np.repeat(ACCOUNTS, 3), "as_of": dates * 3})
    many = build_snapshots(tables, points)
    one = build_snapshots(tables, points.iloc[[pick * 3]])
    pd.testing.assert_frame_equal(one, many.iloc[[pick * 3]].reset_index(drop=True))
