"""The demo data generator: a valid export of a business whose churn we know.

One small data set (300 accounts, two years) is generated once per module; a few tests
generate another with a changed seed or observation parameter to compare.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import training.demo as demo
from features.errors import ChurnError
from features.tables import load_tables
from features.timeline import (
    MISSING_DAY,
    active_on,
    add_months,
    churn_label,
    day_of,
    months_between,
    next_term_end,
    observation_dates,
    to_days,
)
from training.demo import DemoSummary, emission, generate, generate_demo

START, END = dt.date(2024, 1, 1), dt.date(2025, 12, 31)
SMALL = {"accounts": 300, "start": START, "end": END, "truth_paths": 64, "progress": False}
TABLE_NAMES = (
    "accounts",
    "subscriptions",
    "usage",
    "nps",
    "contacts",
    "tickets",
    "stakeholders",
    "truth",
)
EVENT_DATES = {
    "subscriptions": ("date",),
    "usage": ("date",),
    "nps": ("date",),
    "contacts": ("date",),
    "tickets": ("opened_date", "closed_date"),
    "stakeholders": ("date",),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary]:
    out = tmp_path_factory.mktemp("demo")
    return out, generate_demo(out, seed=0, **SMALL)


@pytest.fixture(scope="module")
def frames(generated: tuple[Path, DemoSummary]) -> dict[str, pd.DataFrame]:
    out, _ = generated
    return {name: pd.read_parquet(out / f"{name}.parquet") for name in TABLE_NAMES}


def read_all(out: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(out / f"{name}.parquet") for name in TABLE_NAMES}


def test_same_seed_gives_identical_tables_and_another_seed_does_not(
    generated: tuple[Path, DemoSummary], frames: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    generate_demo(tmp_path / "again", seed=0, **SMALL)
    generate_demo(tmp_path / "other", seed=1, **SMALL)
    again, other = read_all(tmp_path / "again"), read_all(tmp_path / "other")
    for name in TABLE_NAMES:
        pd.testing.assert_frame_equal(again[name], frames[name], check_exact=True)
        assert (tmp_path / "again" / f"{name}.parquet").read_bytes() == (
            generated[0] / f"{name}.parquet"
        ).read_bytes()
    assert not other["accounts"].equals(frames["accounts"])
    assert not other["usage"].equals(frames["usage"])


def test_observation_noise_never_feeds_back_into_churn(
    frames: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Emission has its own random stream: changing how usage and tickets show leaves churn alone."""
    monkeypatch.setattr(emission, "DAU_BASE", 0.1)
    monkeypatch.setattr(emission, "COMPLAINER_SHARE", 0.9)
    generate_demo(tmp_path, seed=0, **SMALL)
    changed = read_all(tmp_path)
    pd.testing.assert_frame_equal(changed["accounts"], frames["accounts"])
    pd.testing.assert_frame_equal(changed["truth"], frames["truth"])
    values = ["account_id", "mrr", "seats", "plan"]  # change dates are observation detail
    pd.testing.assert_frame_equal(changed["subscriptions"][values], frames["subscriptions"][values])
    assert len(changed["usage"]) < len(frames["usage"])
    assert len(changed["tickets"]) > len(frames["tickets"])


def test_every_table_passes_the_data_contract(generated: tuple[Path, DemoSummary]) -> None:
    out, summary = generated
    tables = load_tables(out)
    assert tables.unknown_accounts == {} and tables.warnings == ()
    assert set(tables.event_tables()) == set(EVENT_DATES)
    assert tables.data_start() == START and tables.data_end() <= END
    assert summary.accounts == len(tables.accounts) == 300
    for name, frame in tables.event_tables().items():
        assert summary.rows[name] == len(frame), name
    assert not list(out.glob(".*")), "temporary files left behind"


def test_columns_and_types_are_those_of_the_contract(frames: dict[str, pd.DataFrame]) -> None:
    expected = {
        "accounts": [
            "account_id",
            "signup_date",
            "churn_date",
            "plan",
            "contract_type",
            "seats",
            "mrr",
            "renewal_date",
            "churn_reason",
            "industry",
            "region",
            "acquisition_channel",
            "employees",
        ],
        "subscriptions": ["account_id", "date", "mrr", "seats", "plan"],
        "usage": ["account_id", "user_id", "date"],
        "nps": ["account_id", "date", "score", "touchpoint"],
        "contacts": ["account_id", "date", "channel"],
        "tickets": ["account_id", "opened_date", "closed_date", "priority"],
        "stakeholders": ["account_id", "date", "change", "role"],
        "truth": ["account_id", "as_of", "p_true", "churned"],
    }
    for name, columns in expected.items():
        frame = frames[name]
        assert list(frame.columns) == columns, name
        for column in columns:
            if column.endswith("date") or column in ("date", "as_of"):
                values = frame[column]
                assert pd.api.types.is_datetime64_any_dtype(values), (name, column)
                assert (values.dropna() == values.dropna().dt.normalize()).all(), (name, column)
    assert frames["accounts"]["account_id"].iloc[0] == "A000001"
    assert set(frames["nps"]["touchpoint"]) == {"onboarding", "qbr", "support", "renewal"}
    assert frames["nps"]["score"].between(0, 10).all()
    assert set(frames["contacts"]["channel"]) <= {"call", "email", "meeting", "qbr"}
    assert set(frames["tickets"]["priority"]) <= {"low", "normal", "high", "urgent"}
    assert set(frames["stakeholders"]["role"]) <= {"champion", "economic_buyer", "admin"}
    assert frames["tickets"]["closed_date"].isna().any(), "some tickets are still open at the end"


def test_no_event_before_start_after_end_or_after_churn(frames: dict[str, pd.DataFrame]) -> None:
    accounts = frames["accounts"].set_index("account_id")
    for name, columns in EVENT_DATES.items():
        frame = frames[name]
        churn = frame["account_id"].map(accounts["churn_date"])
        signup = frame["account_id"].map(accounts["signup_date"])
        for column in columns:
            day = frame[column]
            assert (day.dropna() >= pd.Timestamp(START)).all(), (name, column)
            assert (day.dropna() <= pd.Timestamp(END)).all(), (name, column)
            assert not (day > churn).any(), (name, column)
            assert not (day < signup).any(), (name, column)


def test_the_initial_book_starts_at_start(frames: dict[str, pd.DataFrame]) -> None:
    """About a third signed up before the history; they are alive at start, their first row is at start."""
    accounts, subscriptions = frames["accounts"], frames["subscriptions"]
    legacy = accounts["signup_date"] < pd.Timestamp(START)
    assert 0.25 < legacy.mean() < 0.4
    assert not (accounts.loc[legacy, "churn_date"] <= pd.Timestamp(START)).any()
    first = subscriptions.groupby("account_id")["date"].min().reindex(accounts["account_id"])
    opening = np.maximum(to_days(accounts["signup_date"]), day_of(START))
    assert (to_days(first) == opening).all()


def test_accounts_churn_only_on_contract_anniversaries(frames: dict[str, pd.DataFrame]) -> None:
    accounts = frames["accounts"]
    churned = accounts[accounts["churn_date"].notna()]
    signup, churn = to_days(churned["signup_date"]), to_days(churned["churn_date"])
    months = months_between(signup, churn)
    assert (add_months(signup, months) == churn).all(), "churn falls on a billing anniversary"
    assert (months >= 1).all()
    annual = (churned["contract_type"] == "annual").to_numpy()
    assert annual.any() and (~annual).any()
    assert (months[annual] % 12 == 0).all(), "annual contracts end only at a renewal"


def test_renewal_date_is_the_current_contract_end(frames: dict[str, pd.DataFrame]) -> None:
    accounts = frames["accounts"]
    active = accounts["churn_date"].isna()
    assert accounts.loc[~active, "renewal_date"].isna().all()
    assert (
        accounts.loc[~active, "churn_reason"].notna().all()
        and accounts.loc[active, "churn_reason"].isna().all()
    )
    term = np.where(accounts["contract_type"] == "annual", 12, 1)[active.to_numpy()]
    signup = to_days(accounts.loc[active, "signup_date"])
    expected = next_term_end(signup, np.full(len(signup), day_of(END)), term)
    assert (to_days(accounts.loc[active, "renewal_date"]) == expected).all()


def test_accounts_hold_the_values_at_the_end_of_the_data(frames: dict[str, pd.DataFrame]) -> None:
    """Like a real export: accounts.seats/mrr/plan are the last subscriptions row, and some
    accounts changed on the way, so reading them for past snapshots is detectably wrong."""
    accounts = frames["accounts"].set_index("account_id").sort_index()
    subscriptions = frames["subscriptions"].sort_values(["account_id", "date"], kind="stable")
    last = subscriptions.groupby("account_id").last().sort_index()
    for column in ("seats", "mrr", "plan"):
        pd.testing.assert_series_equal(last[column], accounts[column], check_dtype=False)
    first = subscriptions.groupby("account_id").first().sort_index()
    differs = (first["seats"] != accounts["seats"]) | (first["plan"] != accounts["plan"])
    assert differs.sum() >= 10
    assert not subscriptions.duplicated(["account_id", "date"]).any(), (
        "change rows have their own date"
    )


def test_usage_rows_name_real_users_of_the_account(frames: dict[str, pd.DataFrame]) -> None:
    usage, subscriptions = frames["usage"], frames["subscriptions"]
    users = usage.groupby("account_id")["user_id"].nunique()
    max_seats = subscriptions.groupby("account_id")["seats"].max()
    assert (users <= max_seats.reindex(users.index)).all()
    assert (usage["user_id"].str.slice(0, 9) == usage["account_id"] + "-U").all()
    assert 0.0 < usage.duplicated().mean() < 0.02, (
        "occasional exact duplicates, as the contract allows"
    )
    weekend = usage["date"].dt.day_of_week >= 5
    assert weekend.mean() < 2 / 7, "less use on weekends"


def test_truth_rows_are_the_active_accounts_at_each_observation_date(
    frames: dict[str, pd.DataFrame],
) -> None:
    accounts, truth = frames["accounts"], frames["truth"]
    signup, churn = to_days(accounts["signup_date"]), to_days(accounts["churn_date"])
    dates = observation_dates(data_start=START, data_end=END, horizon_days=90)
    assert sorted(truth["as_of"].dt.date.unique()) == dates
    for as_of in dates:
        day = np.full(len(accounts), day_of(as_of))
        active = active_on(signup, churn, day)
        rows = truth[truth["as_of"] == pd.Timestamp(as_of)].set_index("account_id")
        assert list(rows.index) == accounts.loc[active, "account_id"].tolist()
        label = churn_label(churn[active], day[active], 90)
        assert (rows["churned"].to_numpy() == label).all()
    assert truth["p_true"].between(0.0, 1.0).all()


def test_p_true_is_zero_without_a_contract_decision_in_the_horizon(
    frames: dict[str, pd.DataFrame],
) -> None:
    """Churn happens only at decision dates, so an annual account with no renewal inside
    (as_of, as_of + 90] has p_true = 0 and never churns there."""
    accounts = frames["accounts"].set_index("account_id")
    truth = frames["truth"]
    annual = truth["account_id"].map(accounts["contract_type"]).eq("annual").to_numpy()
    signup = to_days(truth["account_id"].map(accounts["signup_date"]))
    as_of = to_days(truth["as_of"])
    renewal = next_term_end(signup, as_of, np.full(len(truth), 12))
    no_decision = annual & (renewal > as_of + 90)
    assert no_decision.sum() > 100
    assert (truth["p_true"].to_numpy()[no_decision] == 0.0).all()
    assert (truth["churned"].to_numpy()[no_decision] == 0).all()
    assert (truth["p_true"].to_numpy()[~no_decision] > 0.0).all()


def test_p_true_matches_the_realised_base_rate(
    generated: tuple[Path, DemoSummary], frames: dict[str, pd.DataFrame]
) -> None:
    """p_true is the exact conditional probability, so its mean estimates the realised base
    rate. Labels are Bernoulli(p_true) but one account's labels at the ~3 observation dates
    its 90-day horizon overlaps move together, so the variance of the mean is at most
    3 * sum p(1-p) / n^2; allow four standard errors (plus Monte Carlo error, far smaller)."""
    _, summary = generated
    truth = frames["truth"]
    p, churned = truth["p_true"].to_numpy(), truth["churned"].to_numpy()
    tolerance = 4 * np.sqrt(3 * np.sum(p * (1 - p))) / len(p)
    assert abs(p.mean() - churned.mean()) < tolerance
    assert summary.truth_rows == len(truth)
    assert summary.base_rate == pytest.approx(churned.mean())
    assert summary.truth_auc == pytest.approx(roc_auc_score(churned, p))
    assert summary.truth_auc > 0.65, "the hidden state carries real signal"
    assert summary.churned == frames["accounts"]["churn_date"].notna().sum()


def test_step_is_a_deterministic_function_of_state_and_generator() -> None:
    rng = np.random.default_rng(0)
    population = demo.draw_population(rng, 20, 30, day_of(START), day_of(END))
    month = int(demo.month_of(day_of(START))) + 3
    one = demo.step(population.initial, month, np.random.default_rng(5))
    two = demo.step(population.initial, month, np.random.default_rng(5))
    for field in dataclasses.fields(one):
        np.testing.assert_array_equal(getattr(one, field.name), getattr(two, field.name))
    q = demo.decision_probability(one, month)
    assert ((q >= 0) & (q <= 1)).all()


def test_decision_days_fall_on_anniversaries() -> None:
    signup = np.array([day_of("2024-01-31"), day_of("2024-01-31"), day_of("2024-03-15")])
    annual = np.array([False, True, True])
    month = int(demo.month_of(day_of("2025-02-01")))
    days = demo.decision_days(signup, demo.month_of(signup), annual, month)
    assert days[0] == day_of("2025-02-28") and days[1] == MISSING_DAY and days[2] == MISSING_DAY
    march = demo.decision_days(signup, demo.month_of(signup), annual, month + 1)
    assert march[2] == day_of("2025-03-15")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"end": START}, "must be after start"),
        ({"accounts": 0}, "at least 1"),
        ({"truth_paths": 0}, "must be positive"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, change: dict[str, object], message: str) -> None:
    with pytest.raises(ChurnError, match=message):
        generate_demo(tmp_path, **{**SMALL, **change})  # type: ignore[arg-type]


# --- the set is written whole or not at all ---------------------------------------------------

TINY = {**SMALL, "accounts": 40, "truth_paths": 4}


def interrupt_after(tables: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next run is killed (Ctrl-C) after writing ``tables`` tables."""
    written: list[Path] = []

    def write_then_die(frame: pd.DataFrame, path: Path) -> None:
        if len(written) == tables:
            raise KeyboardInterrupt
        frame.to_parquet(path, index=False)
        written.append(path)

    monkeypatch.setattr(generate, "write_table", write_then_die)


def test_an_interrupted_run_leaves_the_previous_set_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "demo"
    generate_demo(out, seed=0, **TINY)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    interrupt_after(3, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        generate_demo(out, seed=1, **TINY)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # no temporary folder left


def test_an_interrupted_first_run_leaves_nothing_for_make_to_take_as_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    interrupt_after(3, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        generate_demo(tmp_path / "demo", seed=0, **TINY)
    assert list(tmp_path.iterdir()) == []  # no demo/accounts.parquet: `make run` generates again


def test_a_new_set_replaces_the_old_one_whole(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    generate_demo(out, seed=0, **TINY)
    first = (out / "accounts.parquet").read_bytes()
    generate_demo(out, seed=1, **TINY)
    assert (out / "accounts.parquet").read_bytes() != first
    assert sorted(p.name for p in out.iterdir()) == sorted(demo.DEMO_FILES)


def test_a_folder_holding_other_files_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ChurnError) as refused:
        generate_demo(tmp_path, seed=0, **TINY)
    assert str(refused.value) == (
        f"{tmp_path} holds files that are not demo tables (notes.txt): the demo data set "
        "replaces its folder whole, so give a new or empty folder"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
