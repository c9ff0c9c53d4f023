"""The data contract: each bad input gets an error naming table, column and rows."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.errors import DataError
from features.tables import load_tables


def expect_error(frames, table: str, column: str, rows: list[int], words: str) -> None:
    with pytest.raises(DataError) as caught:
        load_tables(None, frames)
    error = caught.value
    assert (error.table, error.column, error.rows) == (table, column, rows)
    assert words in str(error) and str(error).startswith(f"{table}.{column}:")


def test_missing_required_column(frames) -> None:
    frames["usage"] = frames["usage"].drop(columns=["user_id"])
    with pytest.raises(
        DataError, match=r"usage.user_id: missing required column\(s\) \['user_id'\]"
    ):
        load_tables(None, frames)


def test_missing_accounts_table_is_an_error(frames) -> None:
    del frames["accounts"]
    with pytest.raises(DataError, match=r"accounts table .* is required"):
        load_tables(None, frames)


def test_unparseable_date_names_the_row_and_value(frames) -> None:
    frames["contacts"].loc[1, "date"] = "2024-13-45"
    expect_error(frames, "contacts", "date", [2], "'2024-13-45'")


def test_nps_outside_0_to_10(frames) -> None:
    frames["nps"].loc[[0, 2], "score"] = [11, -1]
    expect_error(frames, "nps", "score", [1, 3], "outside 0-10")


def test_non_numeric_score(frames) -> None:
    frames["nps"]["score"] = frames["nps"]["score"].astype(object)
    frames["nps"].loc[3, "score"] = "great"
    expect_error(frames, "nps", "score", [4], "not a number")


def test_negative_seats(frames) -> None:
    frames["accounts"].loc[1, "seats"] = -3
    expect_error(frames, "accounts", "seats", [2], "must not be negative")


def test_negative_mrr_in_subscriptions(frames) -> None:
    frames["subscriptions"].loc[2, "mrr"] = -10.0
    expect_error(frames, "subscriptions", "mrr", [3], "must not be negative")


def test_duplicate_account_id_lists_every_copy(frames) -> None:
    frames["accounts"].loc[1, "account_id"] = "a"
    expect_error(frames, "accounts", "account_id", [1, 2], "duplicated")


def test_churn_before_signup(frames) -> None:
    frames["accounts"]["churn_date"] = [None, "2024-04-30"]
    expect_error(frames, "accounts", "churn_date", [2], "before signup_date")


def test_closed_before_opened(frames) -> None:
    frames["tickets"].loc[0, "closed_date"] = "2024-05-01"
    expect_error(frames, "tickets", "closed_date", [1], "before opened_date")


def test_unknown_contract_type(frames) -> None:
    frames["accounts"].loc[0, "contract_type"] = "lifetime"
    expect_error(frames, "accounts", "contract_type", [1], "not a known contract type")


def test_contract_aliases_are_normalised(frames) -> None:
    frames["accounts"]["contract_type"] = ["One year", " Month-to-month "]
    tables = load_tables(None, frames)
    assert tables.accounts["contract_type"].tolist() == ["annual", "monthly"]


def test_unknown_stakeholder_change(frames) -> None:
    frames["stakeholders"].loc[2, "change"] = "promoted"
    expect_error(frames, "stakeholders", "change", [3], "not one of")


def test_empty_account_id_in_events(frames) -> None:
    frames["contacts"].loc[0, "account_id"] = " "
    expect_error(frames, "contacts", "account_id", [1], "must not be empty")


def test_events_of_unknown_accounts_are_counted_and_reported(frames, caplog) -> None:
    frames["usage"].loc[len(frames["usage"])] = ["ghost", "g1", "2024-06-01"]
    frames["usage"].loc[len(frames["usage"])] = ["ghost", "g2", "2024-06-02"]
    with caplog.at_level(logging.WARNING):
        tables = load_tables(None, frames)
    assert tables.unknown_accounts == {"usage": 2}
    assert "usage: 2 of 11 rows name accounts not in accounts (e.g. ['ghost'])" in caplog.text
    assert "ghost" not in set(tables.usage["account_id"])


def test_optional_tables_may_be_missing(frames) -> None:
    tables = load_tables(None, {"accounts": frames["accounts"]})
    assert tables.event_tables() == {}


def test_reads_csv_and_parquet_and_keeps_leading_zeros(tmp_path: Path, frames) -> None:
    frames["accounts"]["account_id"] = ["007", "008"]
    frames["accounts"].to_csv(tmp_path / "accounts.csv", index=False)
    contacts = pd.DataFrame({"account_id": ["007"], "date": pd.to_datetime(["2024-05-01"])})
    contacts.to_parquet(tmp_path / "contacts.parquet")
    tables = load_tables(tmp_path)
    assert tables.accounts["account_id"].tolist() == ["007", "008"]
    assert tables.contacts["date"].iloc[0] == pd.Timestamp("2024-05-01")
    assert tables.accounts["seats"].dtype == np.float64


def test_timestamps_keep_the_day(frames) -> None:
    frames["contacts"]["date"] = ["2024-04-01T23:59:00", "2024-04-02 08:00", "2024-08-01T00:00:00Z"]
    tables = load_tables(None, frames)
    assert tables.contacts["date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-04-01",
        "2024-04-02",
        "2024-08-01",
    ]


def test_both_csv_and_parquet_of_a_table_is_ambiguous(tmp_path: Path, frames) -> None:
    frames["accounts"].to_csv(tmp_path / "accounts.csv", index=False)
    frames["accounts"].to_parquet(tmp_path / "accounts.parquet")
    with pytest.raises(DataError, match="keep one"):
        load_tables(tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_tables(tmp_path / "nope")


def test_data_start_and_end(tables) -> None:
    assert str(tables.data_start()) == "2023-06-30"  # first NPS answer (signups do not count)
    assert str(tables.data_end()) == "2024-08-01"  # last contact


# --- values no conversion may silently corrupt ------------------------------------------------


def test_never_sentinel_reads_as_no_date_with_a_warning_that_counts(frames, caplog) -> None:
    frames["accounts"]["churn_date"] = ["9999-12-31", "9999-12-31"]
    with caplog.at_level(logging.WARNING):
        tables = load_tables(None, frames)
    assert tables.accounts["churn_date"].isna().all()
    message = "accounts.churn_date: 2 row(s) dated 9999-12-31 read as no date (first: row 1)"
    assert message in tables.warnings and message in caplog.text


def test_sentinel_as_a_typed_date_column_keeps_the_accounts_active(frames, tmp_path) -> None:
    """A Parquet date column holding 9999-12-31 (pandas cannot hold it in nanoseconds)."""
    import datetime as dt

    import pyarrow as pa

    never = [dt.date(9999, 12, 31), None]
    frames["accounts"]["churn_date"] = pd.array(never, dtype=pd.ArrowDtype(pa.date32()))
    for name, frame in frames.items():
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    tables = load_tables(tmp_path)
    assert tables.accounts["churn_date"].isna().all()
    from features.snapshot import active_points

    assert len(active_points(tables, ["2024-06-30"])) == 2


@pytest.mark.parametrize("value", ["1600-01-01", "2262-04-12", "0001-01-01", "9000-01-01"])
def test_dates_outside_the_supported_range_name_table_column_and_rows(frames, value) -> None:
    frames["tickets"].loc[1, "opened_date"] = value
    expect_error(frames, "tickets", "opened_date", [2], "outside the supported dates")


def test_supported_range_ends_are_accepted(frames) -> None:
    frames["accounts"]["renewal_date"] = ["1900-01-01", "2200-12-31"]
    tables = load_tables(None, frames)
    assert tables.accounts["renewal_date"].dt.year.tolist() == [1900, 2200]


def test_infinite_number_is_an_error(frames) -> None:
    frames["subscriptions"].loc[1, "mrr"] = np.inf
    expect_error(frames, "subscriptions", "mrr", [2], "is not a finite number")


def test_infinite_text_number_in_a_csv_is_an_error(frames, tmp_path) -> None:
    for name, frame in frames.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    accounts = (tmp_path / "accounts.csv").read_text().replace("400.0", "inf")
    (tmp_path / "accounts.csv").write_text(accounts)
    with pytest.raises(DataError) as caught:
        load_tables(tmp_path)
    assert (caught.value.table, caught.value.column, caught.value.rows) == ("accounts", "mrr", [1])
    assert "mrr is not a finite number in 1 row(s); first: row 1: inf" in str(caught.value)


def test_infinite_attribute_is_an_error(frames) -> None:
    frames["accounts"]["employees"] = [120.0, -np.inf]
    expect_error(frames, "accounts", "employees", [2], "is not a finite number")


def test_empty_accounts_table_is_an_error(frames) -> None:
    frames["accounts"] = frames["accounts"].head(0)
    with pytest.raises(DataError, match="accounts: the table has no rows") as caught:
        load_tables(None, frames)
    assert caught.value.table == "accounts"


def test_an_empty_event_table_is_kept_with_a_warning(frames) -> None:
    frames["tickets"] = frames["tickets"].head(0)
    tables = load_tables(None, frames)
    assert tables.tickets is not None and len(tables.tickets) == 0
    assert any("table tickets has no rows" in w for w in tables.warnings)


def test_a_long_bad_value_is_quoted_short(frames) -> None:
    frames["accounts"].loc[0, "contract_type"] = "x" * 100_000
    with pytest.raises(DataError) as caught:
        load_tables(None, frames)
    assert len(str(caught.value)) < 200 and "xxx..." in str(caught.value)
