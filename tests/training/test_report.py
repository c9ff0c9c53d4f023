"""Monthly churn figures and cohort retention, checked by hand on a few accounts."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features.errors import DataError
from features.tables import validate_tables
from training.report.monthly import annualized, cohort_retention, monthly_figures

END = dt.date(2024, 3, 31)


def tables():
    """History from 2024-01-01 (first subscription row) to 2024-03-31 (last contact)."""
    accounts = pd.DataFrame(
        {
            "account_id": ["old", "jan", "early_leaver", "feb", "late_leaver"],
            "signup_date": ["2023-06-01", "2024-01-10", "2024-01-15", "2024-02-05", "2023-09-01"],
            "churn_date": [None, None, "2024-02-10", None, "2024-01-20"],
            "mrr": [100.0, 50.0, 30.0, 40.0, 200.0],
        }
    )
    subscriptions = pd.DataFrame(
        {
            "account_id": ["old", "late_leaver", "jan", "early_leaver", "feb", "old"],
            "date": [
                "2024-01-01",
                "2024-01-01",
                "2024-01-10",
                "2024-01-15",
                "2024-02-05",
                "2024-02-15",
            ],
            "mrr": [100.0, 200.0, 50.0, 30.0, 40.0, 150.0],
            "seats": [10, 20, 5, 3, 4, 15],
        }
    )
    contacts = pd.DataFrame({"account_id": ["old"], "date": ["2024-03-31"], "channel": ["email"]})
    return validate_tables(
        {"accounts": accounts, "subscriptions": subscriptions, "contacts": contacts}
    )


@pytest.fixture(scope="module")
def monthly() -> pd.DataFrame:
    return monthly_figures(tables(), END).set_index("month")


def test_churn_rate_counts_only_customers_at_the_start_of_the_month(monthly) -> None:
    january = monthly.loc["2024-01-01"]
    # old and late_leaver at the start; late_leaver leaves; jan and early_leaver sign up.
    assert (january["customers_start"], january["new"], january["lost"]) == (2, 2, 1)
    assert january["churn_rate"] == 0.5
    february = monthly.loc["2024-02-01"]
    # old, jan, early_leaver at the start; early_leaver leaves; feb signs up.
    assert (february["customers_start"], february["new"], february["lost"]) == (3, 1, 1)
    assert february["churn_rate"] == pytest.approx(1 / 3)


def test_retention_rate_is_end_minus_new_over_start(monthly) -> None:
    january = monthly.loc["2024-01-01"]
    assert january["customers_end"] == 3  # old, jan, early_leaver
    assert january["retention_rate"] == pytest.approx((3 - 2) / 2)


def test_losses_are_split_by_lifecycle_stage_at_churn(monthly) -> None:
    assert monthly.loc["2024-01-01", ["lost_early", "lost_mid", "lost_late"]].tolist() == [
        0,
        1,
        0,
    ]  # 4.6 months
    assert monthly.loc["2024-02-01", ["lost_early", "lost_mid", "lost_late"]].tolist() == [
        1,
        0,
        0,
    ]  # 26 days


def test_revenue_figures_weigh_accounts_by_mrr_at_the_month_start(monthly) -> None:
    february = monthly.loc["2024-02-01"]
    assert february["mrr_start"] == 100 + 50 + 30
    assert february["mrr_lost"] == 30
    assert february["gross_mrr_churn_rate"] == pytest.approx(30 / 180)
    # old expanded to 150 in February; jan kept 50: (150 + 50) / 180
    assert february["net_revenue_retention"] == pytest.approx(200 / 180)


def test_only_whole_months_are_reported(monthly) -> None:
    assert list(monthly.index.strftime("%Y-%m")) == ["2024-01", "2024-02", "2024-03"]
    partial = monthly_figures(tables(), dt.date(2024, 3, 30))
    assert list(partial["month"].dt.strftime("%Y-%m")) == ["2024-01", "2024-02"]


def test_data_shorter_than_a_month_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="holds no whole calendar month"):
        monthly_figures(tables(), dt.date(2024, 1, 20))


def test_cohorts_show_the_share_still_active_after_k_months() -> None:
    cohorts = cohort_retention(tables(), END, horizon_months=3)
    january = cohorts.loc["2024-01-01"]
    assert january["accounts"] == 2  # jan, early_leaver
    assert january[0] == 1.0 and january[1] == 0.5  # early_leaver gone by 2024-02-15
    assert np.isnan(january[3])  # 2024-04-10 / 04-15 are after the end of the data
    assert "2023-06-01" not in cohorts.index.strftime(
        "%Y-%m-%d"
    )  # before the history: survivors only


def test_a_thousand_customers_losing_75_is_a_7_5_percent_month() -> None:
    churn = [None] * 925 + ["2024-02-10"] * 75
    accounts = pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(1000)],
            "signup_date": "2023-11-01",
            "churn_date": churn,
        }
    )
    monthly = monthly_figures(validate_tables({"accounts": accounts}), dt.date(2024, 2, 29))
    february = monthly.set_index("month").loc["2024-02-01"]
    assert (february["customers_start"], february["lost"]) == (1000, 75)
    assert february["churn_rate"] == 0.075
    assert february["annualized_churn_rate"] == pytest.approx(1 - 0.925**12)


def test_five_percent_a_month_is_about_46_percent_a_year() -> None:
    assert annualized(0.05) == pytest.approx(0.4596, abs=1e-4)
    assert annualized(0.0) == 0.0 and annualized(1.0) == 1.0


def test_gross_additions_are_new_customers_over_customers_at_the_start(monthly) -> None:
    january = monthly.loc["2024-01-01"]
    assert january["gross_additions_rate"] == pytest.approx(2 / 2)


def test_a_month_the_history_starts_inside_is_not_whole() -> None:
    later = tables()
    contacts = pd.DataFrame({"account_id": ["old"], "date": ["2024-01-15"]})
    accounts = later.accounts.assign(signup_date=pd.Timestamp("2023-06-01"), churn_date=pd.NaT)
    mid_month = validate_tables({"accounts": accounts, "contacts": contacts})
    months = monthly_figures(mid_month, END)["month"].dt.strftime("%Y-%m")
    assert list(months) == ["2024-02", "2024-03"]


def test_cohort_shares_are_exact_on_a_hand_made_cohort() -> None:
    accounts = pd.DataFrame(
        {
            "account_id": ["a", "b", "c", "d"],
            "signup_date": ["2024-01-05", "2024-01-10", "2024-01-20", "2024-01-25"],
            "churn_date": ["2024-01-30", "2024-03-01", None, None],
        }
    )
    contacts = pd.DataFrame({"account_id": ["a"], "date": ["2024-01-01"]})
    data = validate_tables({"accounts": accounts, "contacts": contacts})
    january = cohort_retention(data, dt.date(2024, 6, 30), horizon_months=3).loc["2024-01-01"]
    assert january["accounts"] == 4
    assert list(january[[0, 1, 2, 3]]) == [1.0, 0.75, 0.5, 0.5]
