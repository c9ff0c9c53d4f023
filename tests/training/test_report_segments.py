"""Churn by segment, stated reasons and silent churn, on four hand-made accounts.

History 2024-01-01 .. 2024-03-31 (three whole months):
- a1 monthly starter, signed 2023-12-01, lost 2024-02-15 ("budget"), ticket on 2024-01-05
- a2 annual growth, signed 2023-01-01, stays, NPS 10 on 2024-01-20
- a3 monthly starter, signed 2023-12-20, lost 2024-01-10 ("no value")
- a4 annual growth, signed 2022-06-01, lost 2024-03-05 ("budget"), NPS 3 on 2024-01-15,
  a ticket only after it left
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from features.tables import validate_tables
from training.report.segments import (
    account_months,
    churn_by_segment,
    churn_reasons,
    lost_accounts,
    silent_churn,
)

END = dt.date(2024, 3, 31)


def tables(with_tickets: bool = True):
    accounts = pd.DataFrame(
        {
            "account_id": ["a1", "a2", "a3", "a4"],
            "signup_date": ["2023-12-01", "2023-01-01", "2023-12-20", "2022-06-01"],
            "churn_date": ["2024-02-15", None, "2024-01-10", "2024-03-05"],
            "churn_reason": ["budget", None, "no value", "budget"],
            "plan": ["starter", "growth", "starter", "growth"],
            "contract_type": ["monthly", "annual", "monthly", "annual"],
            "mrr": [100.0, 500.0, 50.0, 1000.0],
        }
    )
    frames = {
        "accounts": accounts,
        "contacts": pd.DataFrame({"account_id": ["a2", "a2"], "date": ["2024-01-01", END]}),
        "nps": pd.DataFrame(
            {"account_id": ["a4", "a2"], "date": ["2024-01-15", "2024-01-20"], "score": [3, 10]}
        ),
    }
    if with_tickets:
        frames["tickets"] = pd.DataFrame(
            {"account_id": ["a1", "a4"], "opened_date": ["2024-01-05", "2024-03-10"]}
        )
    return validate_tables(frames)


@pytest.fixture(scope="module")
def segments() -> pd.DataFrame:
    return churn_by_segment(account_months(tables(), END)).set_index(["segment", "value"])


def test_every_account_active_at_a_month_start_is_one_account_month() -> None:
    months = account_months(tables(), END)
    assert len(months) == 4 + 3 + 2  # January, February, March
    assert months.groupby("month")["lost"].sum().tolist() == [1, 1, 1]


def test_churn_by_lifecycle_stage_at_the_month_start(segments) -> None:
    # early: a1 Jan+Feb, a3 Jan (2 lost); mid: a2 in January (364 days); late: the rest
    assert segments.loc[("lifecycle stage", "early"), ["account_months", "lost"]].tolist() == [3, 2]
    assert segments.loc[("lifecycle stage", "mid"), ["account_months", "lost"]].tolist() == [1, 0]
    assert segments.loc[("lifecycle stage", "late"), "churn_rate"] == pytest.approx(1 / 5)


def test_churn_by_contract_and_plan(segments) -> None:
    assert segments.loc[("contract type", "monthly"), "churn_rate"] == pytest.approx(2 / 3)
    assert segments.loc[("contract type", "annual"), "churn_rate"] == pytest.approx(1 / 6)
    assert segments.loc[("plan", "starter"), "mrr_lost"] == 150.0
    annual = segments.loc[("contract type", "annual")]
    assert annual["annualized_churn_rate"] == pytest.approx(1 - (5 / 6) ** 12)


def test_churn_by_nps_category_uses_the_last_answer_before_the_month(segments) -> None:
    assert segments.loc[("NPS category", "no answer"), ["account_months", "lost"]].tolist() == [
        5,
        2,
    ]
    assert segments.loc[("NPS category", "promoter"), "churn_rate"] == 0.0
    assert segments.loc[("NPS category", "detractor"), "churn_rate"] == pytest.approx(1 / 2)


def test_lost_accounts_and_mrr_by_reason_and_stage() -> None:
    by_reason, by_stage = churn_reasons(lost_accounts(tables(), END))
    budget = by_reason.set_index("churn_reason").loc["budget"]
    assert (budget["accounts"], budget["mrr_lost"]) == (2, 1100.0)
    assert budget["share_of_accounts"] == pytest.approx(2 / 3)
    assert budget["share_of_mrr"] == pytest.approx(1100 / 1150)
    crossed = by_stage.set_index("churn_reason")
    assert crossed.loc["budget", ["accounts_early", "accounts_late"]].tolist() == [1, 1]
    assert crossed.loc["no value", "mrr_lost_early"] == 50.0


def test_silent_churn_is_the_share_of_lost_accounts_without_a_ticket_before_leaving() -> None:
    data = tables()
    silent = silent_churn(data, lost_accounts(data, END), END)
    # a3 never opened one, a4 only after it left; a1 did
    assert (silent["lost_accounts"], silent["silent_lost_accounts"]) == (3, 2)
    assert silent["silent_share"] == pytest.approx(2 / 3)
    assert silent["current_without_tickets_share"] == 1.0  # a2


def test_without_a_tickets_table_silent_churn_is_unknown() -> None:
    data = tables(with_tickets=False)
    assert silent_churn(data, lost_accounts(data, END), END) is None
