"""Leading indicators before churn: a lost account against a retained one at equal tenure."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features.tables import validate_tables
from training.report.indicators import indicators_before_churn, matched_references

END = dt.date(2024, 6, 30)


def daily_users(account: str, users: int, first: str, last: str) -> pd.DataFrame:
    days = pd.date_range(first, last, freq="D")
    return pd.DataFrame(
        {
            "account_id": account,
            "user_id": np.tile([f"{account}-u{i}" for i in range(users)], len(days)),
            "date": np.repeat(days, users),
        }
    )


def tables():
    """lost: 10 seats, 2 active users until it leaves on 2023-12-01 (tenure 334 days);
    kept: 10 seats, 8 active users, reaches 334 days on 2024-01-29; late: signed up too
    late to reach that tenure inside the data, so it is never the comparison."""
    accounts = pd.DataFrame(
        {
            "account_id": ["lost", "kept", "late"],
            "signup_date": ["2023-01-01", "2023-03-01", "2024-05-01"],
            "churn_date": ["2023-12-01", None, None],
        }
    )
    subscriptions = pd.DataFrame(
        {
            "account_id": ["lost", "kept", "late"],
            "date": ["2023-01-01", "2023-03-01", "2024-05-01"],
            "mrr": 100.0,
            "seats": 10,
        }
    )
    usage = pd.concat(
        [
            daily_users("lost", 2, "2023-01-01", "2023-11-30"),
            daily_users("kept", 8, "2023-03-01", "2024-06-30"),
            daily_users("late", 5, "2024-05-01", "2024-06-30"),
        ]
    )
    return validate_tables({"accounts": accounts, "subscriptions": subscriptions, "usage": usage})


def test_each_lost_account_is_paired_with_a_retained_one_at_the_same_tenure() -> None:
    references = matched_references(tables(), END).set_index("account_id")
    assert references.loc["lost", "group"] == "churned"
    assert references.loc["kept", "group"] == "retained"
    tenure = pd.Timestamp("2023-12-01") - pd.Timestamp("2023-01-01")
    kept = pd.Timestamp("1970-01-01") + pd.Timedelta(days=int(references.loc["kept", "reference"]))
    assert kept == pd.Timestamp("2023-03-01") + tenure
    assert "late" not in references.index


def test_medians_over_the_six_months_before_churn() -> None:
    table = indicators_before_churn(tables(), END)
    per_seat = table[table["indicator"] == "mau_per_seat_30d"]
    assert per_seat["months_before"].tolist() == [1, 2, 3, 4, 5, 6]
    assert per_seat["churned_median"].tolist() == pytest.approx([0.2] * 6)
    assert per_seat["retained_median"].tolist() == pytest.approx([0.8] * 6)
    assert (per_seat[["churned_accounts", "retained_accounts"]] == 1).all().all()
    stickiness = table[table["indicator"] == "dau_mau_ratio_30d"]
    assert stickiness["churned_median"].tolist() == pytest.approx([1.0] * 6)  # every user daily


def test_without_lost_accounts_there_is_nothing_to_compare() -> None:
    data = tables()
    kept_only = validate_tables(
        {"accounts": data.accounts.iloc[1:], "subscriptions": data.subscriptions.iloc[1:]}
    )
    assert indicators_before_churn(kept_only, END).empty
