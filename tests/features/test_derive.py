"""Stage 2: the same features for a frame of rows, one row, and one HTTP-style record."""

from __future__ import annotations

import datetime as dt
import string

import numpy as np
import pandas as pd
import pytest

from features.derive import (
    INDICATORS,
    OTHER,
    FeatureSpec,
    encode_levels,
    feature_matrix,
)
from features.indicators import _encode_many
from features.schema import AccountSnapshot, frame_to_columns, frame_to_records, records_to_columns
from features.snapshot import build_snapshots
from features.tables import Tables


@pytest.fixture
def snapshots(tables: Tables) -> pd.DataFrame:
    dates = ["2024-05-15", "2024-06-30", "2024-07-31"]
    points = pd.DataFrame({"account_id": ["a", "b"] * 3, "as_of": np.repeat(dates, 2)})
    return build_snapshots(tables, points)


def test_one_row_equals_its_row_in_the_frame(snapshots: pd.DataFrame) -> None:
    columns = frame_to_columns(snapshots)
    spec = FeatureSpec.fit(columns)
    whole = feature_matrix(columns, spec)
    for i in range(len(snapshots)):
        one = feature_matrix(frame_to_columns(snapshots.iloc[[i]]), spec)
        np.testing.assert_array_equal(one, whole[[i]])


def test_request_records_give_the_training_features(snapshots: pd.DataFrame) -> None:
    columns = frame_to_columns(snapshots)
    spec = FeatureSpec.fit(columns)
    records = [AccountSnapshot.model_validate(r) for r in frame_to_records(snapshots)]
    from_requests = feature_matrix(records_to_columns(records, dt.date(2030, 1, 1)), spec)
    np.testing.assert_allclose(from_requests, feature_matrix(columns, spec), equal_nan=True)


def test_features_of_a_hand_made_snapshot() -> None:
    record = AccountSnapshot(
        account_id="x",
        as_of=dt.date(2024, 6, 30),
        signup_date=dt.date(2024, 5, 1),
        contract_type="Month-to-month",
        seats=10,
        mrr=90.0,
        mrr_90d_ago=120.0,
        mau=[5, 8, 10, 9],
        dau_avg_30d=2.0,
        nps_last=6,
        nps_last_date=dt.date(2024, 6, 20),
        contacts_90d=0,
        tickets_30d=3,
        tickets_90d=3,
    )
    columns = records_to_columns([record], dt.date(2030, 1, 1))
    spec = FeatureSpec(indicators=tuple(INDICATORS))
    row = dict(zip(spec.names, feature_matrix(columns, spec)[0], strict=True))
    assert (
        row["tenure_days"] == 60
        and row["lifecycle_stage"] == 0
        and row["contract_term_months"] == 1
    )
    assert row["mrr_pct_change_90d"] == pytest.approx(-0.25)
    assert row["mau_per_seat_30d"] == pytest.approx(0.5)
    assert row["mau_pct_change_vs_prior_60d"] == pytest.approx(5 / 9 - 1)
    assert row["mau_pct_below_6m_peak"] == pytest.approx(0.5)
    assert row["dau_mau_ratio_30d"] == pytest.approx(0.4)
    assert row["nps_category"] == 0 and row["days_since_last_nps"] == 10
    assert row["never_contacted"] == 1 and np.isnan(row["days_since_last_contact"])
    assert row["ticket_burst_30d"] == pytest.approx(2.0)
    assert np.isnan(row["stakeholders_left_90d"])  # not sent: unknown, not zero


def test_tenure_months_stands_in_for_signup_date() -> None:
    record = AccountSnapshot(account_id="x", as_of=dt.date(2024, 6, 30), tenure_months=2)
    columns = records_to_columns([record], dt.date(2030, 1, 1))
    spec = FeatureSpec(indicators=("tenure_days",))
    assert feature_matrix(columns, spec)[0, 0] == pytest.approx(round(2 * 365.25 / 12))


@pytest.mark.parametrize(
    ("signup", "contract", "days"),
    [
        (dt.date(2023, 11, 15), "annual", 138),  # next anniversary 2024-11-15
        (dt.date(2024, 5, 1), "monthly", 1),  # next billing day 2024-07-01
        (dt.date(2024, 5, 31), "monthly", 31),  # 2024-06-30 is as_of itself: the next is 07-31
    ],
)
def test_without_a_renewal_date_the_term_renews_on_signup_anniversaries(
    signup, contract, days
) -> None:
    record = AccountSnapshot(
        account_id="x", as_of=dt.date(2024, 6, 30), signup_date=signup, contract_type=contract
    )
    columns = records_to_columns([record], dt.date(2030, 1, 1))
    assert feature_matrix(columns, FeatureSpec(indicators=("days_to_renewal",)))[0, 0] == days


def test_the_stage_two_renewal_fallback_equals_stage_one(snapshots: pd.DataFrame) -> None:
    spec = FeatureSpec(indicators=("days_to_renewal",))
    with_date = feature_matrix(frame_to_columns(snapshots), spec)
    without = feature_matrix(frame_to_columns(snapshots.drop(columns=["renewal_date"])), spec)
    assert not np.isnan(with_date).any()
    np.testing.assert_array_equal(without, with_date)


def test_a_given_renewal_date_wins_and_an_unknown_term_stays_unknown() -> None:
    given = AccountSnapshot(
        account_id="x",
        as_of=dt.date(2024, 6, 30),
        signup_date=dt.date(2024, 5, 1),
        contract_type="annual",
        renewal_date=dt.date(2024, 7, 10),
    )
    unknown = AccountSnapshot(
        account_id="y", as_of=dt.date(2024, 6, 30), signup_date=dt.date(2024, 5, 1)
    )
    columns = records_to_columns([given, unknown], dt.date(2030, 1, 1))
    days = feature_matrix(columns, FeatureSpec(indicators=("days_to_renewal",)))[:, 0]
    assert days[0] == 10 and np.isnan(days[1])


def test_as_of_defaults_to_the_given_day() -> None:
    columns = records_to_columns(
        [AccountSnapshot(account_id="x", signup_date=dt.date(2024, 1, 1))], dt.date(2024, 1, 31)
    )
    assert columns["as_of"][0] == (dt.date(2024, 1, 31) - dt.date(1970, 1, 1)).days
    assert columns["tenure_months"][0] == pytest.approx(30 / (365.25 / 12))


def test_levels_keep_frequent_values_and_map_the_rest_to_other() -> None:
    values = np.array(["a"] * 20 + ["b"] * 12 + ["rare"] * 2 + [None], dtype=object)
    spec = FeatureSpec.fit({"plan": values})
    assert spec.levels["plan"] == ("a", "b", OTHER)
    codes = encode_levels(np.array(["b", "rare", "new", None], dtype=object), spec.levels["plan"])
    assert codes[:3].tolist() == [1, 2, 2] and np.isnan(codes[3])


def test_identifier_like_attributes_are_not_features() -> None:
    ids = np.array([f"id{i}" for i in range(200)], dtype=object)
    spec = FeatureSpec.fit({"attributes.crm_id": ids}, account_ids=ids)
    assert (
        "attributes.crm_id" not in spec.levels and "identifier" in spec.dropped["attributes.crm_id"]
    )


def test_indicators_without_any_data_are_dropped() -> None:
    spec = FeatureSpec.fit(
        {"as_of": np.array([19000.0, 19001.0]), "seats": np.array([np.nan, np.nan])}
    )
    assert "seats" not in spec.indicators and "seats" in spec.dropped


def test_reasons_are_plain_words() -> None:
    spec = FeatureSpec(indicators=tuple(INDICATORS))
    assert (
        spec.say("mau_pct_change_vs_prior_60d", -0.45) == "active users down 45% vs prior 2 months"
    )
    assert spec.say("contract_term_months", 1) == "month-to-month contract"
    assert spec.say("tenure_days", 61) == "tenure 2 months"
    assert spec.say("days_since_last_contact", 140) == "no contact for 140 days"


def test_level_matching_ignores_case_and_spaces() -> None:
    codes = encode_levels(np.array(["yes", " No ", "Yes", "maybe"], dtype=object), ("Yes", "No"))
    assert codes[:3].tolist() == [0, 1, 0] and np.isnan(codes[3])


LEVELS = [
    ("growth", "starter", "enterprise"),
    ("Yes", "No", OTHER),
    ("yes", "Yes", "YES ", ""),  # levels that fold alike: the first one wins
    (),
]


def variants(rng: np.random.Generator, levels: tuple[str, ...]) -> list[object]:
    """Exact levels, case and space variants, unknown text, None and the empty string."""
    pool: list[object] = [None, "", " ", "unknown", OTHER, "\tgrowth\n", "\x1cno\x1f"]
    for level in levels:
        pool += [level, level.upper(), level.lower(), f"  {level} ", level.title()]
    pool += ["".join(rng.choice(list(string.ascii_letters + " "), 5)) for _ in range(5)]
    return pool


@pytest.mark.parametrize("levels", LEVELS)
def test_few_rows_encode_exactly_as_the_vectorised_path(levels) -> None:
    rng = np.random.default_rng(0)
    pool = variants(rng, levels)
    for size in (1, 2, 7, 32):
        for _ in range(50):
            values = np.array([pool[i] for i in rng.integers(0, len(pool), size)], dtype=object)
            np.testing.assert_array_equal(
                encode_levels(values, levels), _encode_many(values, levels)
            )


def test_non_ascii_text_takes_the_vectorised_path() -> None:
    levels = ("istanbul", "i̇stanbul", "straße")
    for text in ("İstanbul", "STRASSE", "Straße", " straße "):
        values = np.array([text], dtype=object)
        np.testing.assert_array_equal(encode_levels(values, levels), _encode_many(values, levels))
