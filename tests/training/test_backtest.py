"""`churn backtest`: origins, what was known at each, the naive rule, the judged rows, the
MLflow runs, and the property that nothing after an origin changes what it scored."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow import MlflowClient
from threadpoolctl import threadpool_limits

from features.errors import DataError
from features.tables import TABLES, Tables, load_tables, validate_tables
from training.backtest import (
    FIRST_COLUMNS,
    BacktestPlan,
    OriginResult,
    check_origins,
    first_possible_origin,
    known_at,
    naive_rule,
    origin_accounts,
    origin_dates,
    origin_metrics,
    parse_step,
    score_origin,
)
from training.dataset import SplitPlan
from training.params import TrainParams
from training.pipeline import prepare_events

FIRST, SECOND = dt.date(2024, 4, 1), dt.date(2024, 5, 1)  # the demo data's first origins
SMALL = {  # few rounds, one thread: the test's machine is shared (results do not depend on it)
    "num_boost_round": "40",
    "early_stopping_rounds": "10",
    "model_form": "trees",
    "num_threads": "1",
}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
EXPERIMENT = "backtest"


# --- origins and the data known at them --------------------------------------------------------


def test_steps_between_origins() -> None:
    assert parse_step("1M") == (1, "M") and parse_step("2w") == (2, "W")
    assert origin_dates(dt.date(2024, 1, 31), dt.date(2024, 4, 30), "1M") == [
        dt.date(2024, 1, 31),
        dt.date(2024, 2, 29),
        dt.date(2024, 3, 31),
        dt.date(2024, 4, 30),
    ]
    assert origin_dates(dt.date(2024, 1, 1), dt.date(2024, 1, 20), "1W")[-1] == dt.date(2024, 1, 15)
    with pytest.raises(DataError, match="--every '1Y': use a count and a unit"):
        parse_step("1Y")


def test_the_first_origin_leaves_churn_train_the_dates_its_split_needs() -> None:
    contacts = pd.DataFrame({"account_id": ["a"], "date": ["2023-01-01"]})
    accounts = pd.DataFrame({"account_id": ["a"], "signup_date": ["2022-01-01"]})
    data = validate_tables({"accounts": accounts, "contacts": contacts})
    # first observation 2023-04-01; 2 train + 8 held-out dates end on 2024-01-01, whose
    # 90-day horizon ends 2024-03-31: the next month start is the first origin
    assert first_possible_origin(data, BacktestPlan()) == dt.date(2024, 4, 1)
    one_held_out = BacktestPlan(split=SplitPlan(1, 1, 1))  # 5 dates: 2023-04-01 .. 08-01
    assert first_possible_origin(data, one_held_out) == dt.date(2023, 11, 1)


def test_origins_need_their_whole_horizon_inside_the_data() -> None:
    contacts = pd.DataFrame({"account_id": ["a"], "date": ["2023-01-01"]})
    accounts = pd.DataFrame({"account_id": ["a"], "signup_date": ["2022-01-01"]})
    data = validate_tables({"accounts": accounts, "contacts": contacts})
    with pytest.raises(DataError, match="the last possible origin is 2024-10-02"):
        check_origins(data, None, dt.date(2024, 11, 1), dt.date(2024, 12, 31), BacktestPlan())
    with pytest.raises(DataError, match="too short for `churn train`'s split"):
        check_origins(data, None, None, dt.date(2024, 5, 31), BacktestPlan())


def hand_made() -> Tables:
    accounts = pd.DataFrame(
        {
            "account_id": ["old", "gone", "leaves", "new"],
            "signup_date": ["2023-01-01", "2023-02-01", "2023-03-01", "2024-03-01"],
            "churn_date": [None, "2024-01-15", "2024-03-10", None],
            "churn_reason": [None, "budget", "competitor", None],
            "plan": ["a", "a", "b", "b"],
        }
    )
    tickets = pd.DataFrame(
        {
            "account_id": ["old", "old", "leaves"],
            "opened_date": ["2024-01-20", "2024-02-20", "2024-03-05"],
            "closed_date": ["2024-01-25", "2024-03-02", None],
        }
    )
    usage = pd.DataFrame(
        {"account_id": ["old", "old"], "user_id": ["u", "u"], "date": ["2024-02-29", "2024-03-01"]}
    )
    return validate_tables({"accounts": accounts, "tickets": tickets, "usage": usage})


def test_known_at_keeps_only_what_had_happened_by_the_end_of_the_day() -> None:
    known = known_at(hand_made(), dt.date(2024, 2, 29))
    accounts = known.accounts.set_index("account_id")
    assert list(accounts.index) == ["old", "gone", "leaves"]  # "new" signed up later
    assert pd.isna(accounts.loc["leaves", "churn_date"])  # leaves after the day
    assert pd.isna(accounts.loc["leaves", "churn_reason"])
    assert accounts.loc["gone", "churn_reason"] == "budget"
    assert known.usage["date"].max() == pd.Timestamp("2024-02-29")
    tickets = known.tickets.set_index("opened_date")
    assert pd.isna(tickets.loc["2024-02-20", "closed_date"])  # closed later: still open
    assert tickets.loc["2024-01-20", "closed_date"] == pd.Timestamp("2024-01-25")


def naive_tables() -> Tables:
    """One horizon (30 days) before the origin 2024-03-01: 4 early accounts on plan a, one
    of which left; 2 late accounts on plan a, both stayed; 2 late on plan b, one left. x8
    (plan c) signs up after that day; x9 has no plan."""
    signup = ["2024-01-20"] * 4 + ["2022-01-01"] * 4 + ["2024-02-10", "2022-06-01"]
    churn = ["2024-02-10", None, None, None, None, None, "2024-02-20", None, None, None]
    accounts = pd.DataFrame(
        {
            "account_id": [f"x{i}" for i in range(10)],
            "signup_date": signup,
            "churn_date": churn,
            "plan": ["a"] * 6 + ["b", "b", "c", None],
        }
    )
    contacts = pd.DataFrame({"account_id": ["x0"], "date": ["2023-06-01"]})
    return validate_tables({"accounts": accounts, "contacts": contacts})


def test_the_naive_rule_is_last_horizon_s_churn_rate_of_stage_and_plan() -> None:
    origin = dt.date(2024, 3, 1)
    data = naive_tables()
    plan = BacktestPlan(horizon_days=30)
    accounts = origin_accounts(data, known_at(data, origin), origin, plan)
    rates = dict(zip(accounts.columns["account_id"], accounts.naive, strict=True))
    assert rates["x1"] == pytest.approx(1 / 4)  # early, plan a
    assert rates["x4"] == 0.0  # late, plan a
    assert rates["x7"] == pytest.approx(1 / 2)  # late, plan b
    assert rates["x8"] == pytest.approx(1 / 4)  # plan c never seen: its stage's (early) rate
    assert rates["x9"] == 0.0  # no plan is a group of its own: x9 itself, which stayed
    assert naive_rule(data, dt.date(2021, 1, 1), accounts.columns, plan).shape == (8,)


def test_an_origin_with_few_churners_is_flagged_not_hidden() -> None:
    scores = pd.DataFrame(
        {
            "account_id": ["a", "b", "c", "d"],
            "mrr": [100.0, 100.0, 100.0, 100.0],
            "churned": [1, 0, 0, 0],
            "probability": [0.9, 0.1, 0.2, 0.3],
            "baseline_probability": [0.5, 0.6, 0.1, 0.2],
            "naive_probability": [0.25] * 4,
        }
    )
    row = origin_metrics(OriginResult(FIRST, scores, {}), BacktestPlan(min_churners=5))
    assert row["churners"] == row["realized_churners"] == 1
    assert row["roc_auc"] == 1.0 and row["baseline_roc_auc"] == pytest.approx(2 / 3)
    assert row["predicted_churners"] == pytest.approx(1.5)
    assert row["revenue_at_risk"] == pytest.approx(1.5 * 1200) and row["revenue_lost"] == 1200.0
    assert not row["enough_churners"]
    assert row["note"] == "only 1 churners (< 5): read with care"


def test_an_origin_too_early_to_train_is_reported_with_its_reason() -> None:
    result = score_origin(naive_tables(), dt.date(2024, 3, 1), BacktestPlan(30), TrainParams())
    assert result.note.startswith("not trained: ") and "observation dates" in result.note
    row = origin_metrics(result, BacktestPlan(30))
    assert np.isnan(row["roc_auc"]) and not np.isnan(row["naive_predicted_churners"])


# --- the command, against a real mlflow server -------------------------------------------------


def churn(*args: str, tracking_uri: str, home: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CHURN_TRACKING_URI": tracking_uri,
        "CHURN_HOME": str(home),
        "CHURN_EXPERIMENT": EXPERIMENT,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **ONE_THREAD,
    }
    command = [sys.executable, "-m", "service.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def backtested(mlflow_server: str, demo_data: Path, tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("home")
    params = [arg for key, value in SMALL.items() for arg in ("--param", f"{key}={value}")]
    done = churn(
        "backtest",
        "--data",
        str(demo_data),
        "--from",
        FIRST.isoformat(),
        "--to",
        SECOND.isoformat(),
        *params,
        tracking_uri=mlflow_server,
        home=home,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    folder = home / "backtest"
    return {
        "folder": folder,
        "table": pd.read_csv(folder / "backtest.csv", parse_dates=["origin"]),
        "scores": pd.read_parquet(folder / "scores.parquet"),
        "client": MlflowClient(tracking_uri=mlflow_server),
        "stdout": done.stdout,
    }


def test_one_row_per_origin_with_the_model_baseline_and_naive_rule(backtested) -> None:
    table = backtested["table"]
    assert table["origin"].dt.date.tolist() == [FIRST, SECOND]
    assert list(table.columns[: len(FIRST_COLUMNS)]) == list(FIRST_COLUMNS)
    for prefix in ("", "baseline_", "naive_"):
        assert table[f"{prefix}roc_auc"].between(0, 1).all()
        assert (table[f"{prefix}predicted_churners"] > 0).all()
    assert (table["roc_auc"] > 0.6).all(), "the model ranks churners on the demo data"
    assert (table["churners"] == table["realized_churners"]).all()
    scores = backtested["scores"]
    assert len(scores) == table["accounts"].sum()
    assert scores.groupby("origin")["churned"].sum().tolist() == table["churners"].tolist()
    assert {p.name for p in (backtested["folder"] / "plots").iterdir()} == {
        "backtest_metrics.png",
        "backtest_churners.png",
    }


def test_mlflow_has_a_parent_run_and_a_nested_run_per_origin(backtested) -> None:
    client = backtested["client"]
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    [parent] = parents
    assert parent.info.run_name == "backtest 2025-06-30 trees"
    assert "Rolling-origin backtest" in parent.data.tags["mlflow.note.content"]
    assert parent.data.metrics["origins"] == 2 and "mean_roc_auc" in parent.data.metrics
    history = client.get_metric_history(parent.info.run_id, "roc_auc")
    assert sorted(m.step for m in history) == [0, 1]
    nested = {r.info.run_name: r for r in runs if r is not parent}
    assert set(nested) == {FIRST.isoformat(), SECOND.isoformat()}
    first = nested[FIRST.isoformat()]
    assert first.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert first.data.tags["mlflow.note.content"].startswith(f"Origin {FIRST}: trained on")
    row = backtested["table"].iloc[0]
    assert first.data.metrics["roc_auc"] == pytest.approx(row["roc_auc"])
    assert "backtest.csv" in {a.path for a in client.list_artifacts(parent.info.run_id)}


def truncated(tables: Tables, day: dt.date) -> Tables:
    """The data as if exported at the end of ``day``, cut by hand (not by known_at)."""
    cut = pd.Timestamp(day)
    accounts = tables.accounts[tables.accounts["signup_date"] <= cut].copy()
    accounts["churn_date"] = accounts["churn_date"].where(accounts["churn_date"] <= cut)
    accounts["churn_reason"] = accounts["churn_reason"].where(accounts["churn_date"].notna())
    raw = {"accounts": accounts}
    for name, frame in tables.event_tables().items():
        frame = frame[frame[TABLES[name].event_date] <= cut].copy()
        if name == "tickets":
            frame["closed_date"] = frame["closed_date"].where(frame["closed_date"] <= cut)
        raw[name] = frame
    return validate_tables(raw)


def test_truncating_the_data_after_an_origin_leaves_its_scores_identical(
    backtested, demo_data: Path
) -> None:
    cut = truncated(load_tables(demo_data), FIRST)
    with threadpool_limits(1):
        alone = score_origin(cut, FIRST, BacktestPlan(), TrainParams(**_typed(SMALL)))
    before = backtested["scores"]
    before = before[before["origin"] == pd.Timestamp(FIRST)].reset_index(drop=True)
    columns = ["account_id", "probability", "baseline_probability", "naive_probability"]
    pd.testing.assert_frame_equal(
        alone.scores[columns].reset_index(drop=True), before[columns], check_dtype=False
    )


def _typed(values: dict[str, str]) -> dict[str, object]:
    from training.params import coerce_params

    return {k: getattr(coerce_params(values), k) for k in values}


# --- property: nothing after an origin changes what the backtest sees at it ---------------------


@st.composite
def futures(draw) -> dict:
    return {
        "seed": draw(st.integers(0, 2**16)),
        "drop_share": draw(st.floats(0, 1)),
        "shift_days": draw(st.integers(0, 45)),
        "churn": draw(st.sampled_from(["keep", "clear", "shift"])),
        "new_accounts": draw(st.integers(0, 30)),
    }


def rewrite_future(tables: Tables, origin: dt.date, future: dict) -> Tables:
    """Drop, move and add anything dated after the origin; change churn that happens later."""
    rng = np.random.default_rng(future["seed"])
    cut, shift = pd.Timestamp(origin), pd.Timedelta(days=future["shift_days"])
    events = {}
    for name, frame in tables.event_tables().items():
        column = TABLES[name].event_date
        after = frame[column] > cut
        frame = frame[~(after & (rng.random(len(frame)) < future["drop_share"]))].copy()
        frame.loc[frame[column] > cut, column] += shift
        if name == "tickets":
            frame.loc[frame["closed_date"] > cut, "closed_date"] += shift
        events[name] = frame
    accounts = tables.accounts.copy()
    later = accounts["churn_date"] > cut
    if future["churn"] == "clear":
        accounts.loc[later, "churn_date"] = pd.NaT
    elif future["churn"] == "shift":
        accounts.loc[later, "churn_date"] += shift
    newcomers = accounts.sample(future["new_accounts"], random_state=future["seed"]).assign(
        account_id=[f"new{i}" for i in range(future["new_accounts"])],
        signup_date=cut + pd.Timedelta(days=1) + shift,
        churn_date=pd.NaT,
    )
    usage = pd.DataFrame(
        {"account_id": newcomers["account_id"], "user_id": "n", "date": cut + pd.Timedelta(days=2)}
    ).astype(events["usage"].dtypes.to_dict())
    events["usage"] = pd.concat([events["usage"], usage], ignore_index=True)
    return dataclasses.replace(
        tables, accounts=pd.concat([accounts, newcomers], ignore_index=True), **events
    )


def seen_at(tables: Tables, origin: dt.date) -> tuple[dict, pd.DataFrame, np.ndarray]:
    """What the backtest uses at an origin: churn train's splits, the snapshots it scores
    and the naive rule's probabilities (not the outcome, which is read from the future)."""
    plan = BacktestPlan()
    known = known_at(tables, origin)
    prepared = prepare_events(known, plan.horizon_days, plan.every, origin, plan.split)
    accounts = origin_accounts(tables, known, origin, plan)
    return prepared.frames, pd.DataFrame(accounts.columns), accounts.naive


@pytest.fixture(scope="module")
def recent(demo_data: Path) -> tuple[Tables, tuple]:
    """The demo data up to 2024-07-31, and what the backtest sees at its first origin."""
    tables = known_at(load_tables(demo_data), dt.date(2024, 7, 31))
    return tables, seen_at(tables, FIRST)


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(future=futures())
def test_nothing_after_an_origin_changes_what_the_backtest_sees_at_it(recent, future) -> None:
    tables, (frames, snapshots, naive) = recent
    rewritten = seen_at(rewrite_future(tables, FIRST, future), FIRST)
    for split, frame in frames.items():
        pd.testing.assert_frame_equal(rewritten[0][split], frame)
    pd.testing.assert_frame_equal(rewritten[1], snapshots)
    np.testing.assert_array_equal(rewritten[2], naive)
