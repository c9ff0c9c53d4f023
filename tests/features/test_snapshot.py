"""Each snapshot field on a hand-computed fixture (see conftest.tiny_frames), with window edges."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features.snapshot import active_points, build_snapshots
from features.tables import Tables, load_tables

AS_OF = "2024-06-30"


def snapshot(tables: Tables, account: str = "a", as_of: str = AS_OF) -> pd.Series:
    points = pd.DataFrame({"account_id": [account], "as_of": [as_of]})
    return build_snapshots(tables, points).iloc[0]


def day(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def test_subscription_history_gives_values_at_as_of_not_export_values(tables: Tables) -> None:
    row = snapshot(tables)
    # accounts says enterprise/4 seats/400 (values at export); at as_of the history says growth.
    assert (row["plan"], row["seats"], row["mrr"]) == ("growth", 8, 800.0)


def test_mrr_90d_ago_is_last_subscription_row_on_or_before_as_of_minus_90(tables: Tables) -> None:
    assert snapshot(tables)["mrr_90d_ago"] == 1000.0  # 2024-04-01 is before the 04-02 change


def test_mrr_90d_ago_is_missing_before_the_first_subscription_row(tables: Tables) -> None:
    assert np.isnan(snapshot(tables, "b")["mrr_90d_ago"])


def test_without_subscriptions_current_columns_are_used_as_static(frames) -> None:
    del frames["subscriptions"]
    row = snapshot(load_tables(None, frames))
    assert (row["plan"], row["seats"], row["mrr"]) == ("enterprise", 4, 400.0)
    assert np.isnan(row["mrr_90d_ago"])


def test_tenure_and_signup(tables: Tables) -> None:
    row = snapshot(tables)
    assert row["signup_date"] == day("2023-11-15")
    assert row["tenure_months"] == pytest.approx(228 / (365.25 / 12))


def test_annual_renewal_is_next_signup_anniversary(tables: Tables) -> None:
    assert snapshot(tables)["renewal_date"] == day("2024-11-15")


def test_monthly_renewal_is_next_monthly_anniversary(tables: Tables) -> None:
    assert snapshot(tables, "b")["renewal_date"] == day("2024-07-01")


def test_exported_renewal_date_is_projected_back_by_whole_terms(frames) -> None:
    frames["accounts"]["renewal_date"] = ["2026-03-01", None]
    assert snapshot(load_tables(None, frames))["renewal_date"] == day("2025-03-01")


def test_mau_windows_count_distinct_users_newest_first(tables: Tables) -> None:
    row = snapshot(tables)
    # window 0 (05-31, 06-30]: u1 (twice on 06-30), u2 on 06-01; 06-30 itself counts.
    # window 1 (05-01, 05-31]: u2 on 05-31, u3 on 05-02, u1 on 05-15.
    # window 5 (01-02, 02-01]: u1 on 01-02 lies on the excluded lower edge.
    assert [row[f"mau_{k}"] for k in range(6)] == [2, 3, 0, 0, 0, 0]


def test_mau_windows_that_ended_before_signup_are_missing(tables: Tables) -> None:
    row = snapshot(tables, "b")  # signup 05-01; window 2 is (04-01, 05-01] and includes signup day
    assert [row[f"mau_{k}"] for k in range(3)] == [1, 0, 0]
    assert all(np.isnan(row[f"mau_{k}"]) for k in range(3, 6))


def test_dau_average_counts_distinct_user_days(tables: Tables) -> None:
    assert snapshot(tables)["dau_avg_30d"] == pytest.approx(2 / 30)


def test_nps_fields_use_answers_on_or_before_as_of(tables: Tables) -> None:
    row = snapshot(tables)
    assert row["nps_last"] == 3 and row["nps_last_date"] == day("2024-06-30")
    # 12-month window (2023-07-01, 2024-06-30]: the 2023-06-30 answer is outside.
    assert row["nps_count_12m"] == 2 and row["nps_avg_12m"] == pytest.approx(5.5)


def test_account_without_answers_has_zero_count_and_unknown_score(tables: Tables) -> None:
    row = snapshot(tables, "b")
    assert row["nps_count_12m"] == 0
    assert (
        np.isnan(row["nps_last"]) and np.isnan(row["nps_avg_12m"]) and pd.isna(row["nps_last_date"])
    )


def test_contacts_last_date_and_90_day_count(tables: Tables) -> None:
    row = snapshot(tables)
    assert row["last_contact_date"] == day("2024-04-02")
    assert row["contacts_90d"] == 1  # 04-01 is on the excluded edge of (04-01, 06-30]


def test_ticket_counts_and_priority(tables: Tables) -> None:
    row = snapshot(tables)
    assert (row["tickets_30d"], row["tickets_90d"], row["tickets_high_90d"]) == (2, 2, 1)


def test_ticket_closed_after_as_of_is_open_and_its_resolution_unknown(tables: Tables) -> None:
    row = snapshot(tables)
    assert row["tickets_open"] == 1  # opened 06-10, closed 07-20
    # closed in the window: 04-02 (24 h) and 06-03 (48 h); the 07-20 closure is not yet known.
    assert row["ticket_hours_to_close_avg_90d"] == pytest.approx(36.0)


def test_stakeholders_left_in_90_days(tables: Tables) -> None:
    assert snapshot(tables)["stakeholders_left_90d"] == 1


def test_static_attributes_come_from_extra_account_columns(tables: Tables) -> None:
    row = snapshot(tables)
    assert row["attributes.industry"] == "retail" and row["attributes.employees"] == 120
    assert "attributes.churn_reason" not in row.index


def test_excluded_columns_never_become_attributes(tables: Tables) -> None:
    points = pd.DataFrame({"account_id": ["a"], "as_of": [AS_OF]})
    frame = build_snapshots(tables, points, exclude_columns=["employees"])
    assert "attributes.employees" not in frame.columns and "attributes.industry" in frame.columns


@pytest.mark.parametrize(
    ("table", "fields"),
    [
        ("usage", ["mau_0", "mau_5", "dau_avg_30d"]),
        ("nps", ["nps_last", "nps_avg_12m", "nps_count_12m"]),
        ("contacts", ["contacts_90d"]),
        ("tickets", ["tickets_30d", "tickets_90d", "tickets_open", "tickets_high_90d"]),
        ("stakeholders", ["stakeholders_left_90d"]),
    ],
)
def test_missing_table_leaves_its_fields_absent_not_zero(
    frames, table: str, fields: list[str]
) -> None:
    del frames[table]
    row = snapshot(load_tables(None, frames), "b")
    assert all(np.isnan(row[f]) for f in fields)


def test_windows_reaching_before_the_data_start_are_missing(tables: Tables) -> None:
    # data starts 2023-06-30 (first NPS answer); a 90-day window at 2023-08-01 reaches before it.
    frame = build_snapshots(tables, pd.DataFrame({"account_id": ["a"], "as_of": ["2023-08-01"]}))
    assert np.isnan(frame.loc[0, "contacts_90d"]) and np.isnan(frame.loc[0, "tickets_90d"])
    assert frame.loc[0, "tickets_30d"] == 0  # (07-02, 08-01] lies inside the data


def test_many_dates_at_once_equal_one_date_at_a_time(tables: Tables) -> None:
    dates = ["2024-02-01", "2024-05-31", "2024-06-30", "2024-07-31"]
    points = pd.DataFrame({"account_id": ["a", "b"] * 4, "as_of": np.repeat(dates, 2)})
    together = build_snapshots(tables, points)
    alone = pd.concat(
        [build_snapshots(tables, points.iloc[[i]]) for i in range(len(points))], ignore_index=True
    )
    pd.testing.assert_frame_equal(together, alone)


def test_active_points_are_signed_up_and_not_yet_churned(frames) -> None:
    frames["accounts"]["churn_date"] = ["2024-06-30", None]
    tables = load_tables(None, frames)
    points = active_points(tables, [dt.date(2024, 4, 1), dt.date(2024, 6, 30)])
    # a churned on 06-30: active on 04-01, not on 06-30; b signed up 05-01.
    assert list(zip(points["account_id"], points["as_of"].dt.date.astype(str), strict=True)) == [
        ("a", "2024-04-01"),
        ("b", "2024-06-30"),
    ]
