"""Over time, as users run it: `churn score` keeps what it scored, `churn outcomes` judges
it once the horizon has passed, `churn report` puts everything in one HTML page, which
headless Chromium renders with no error, no network request and every image loaded."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from service.cli import app
from tests.chromium import Chromium, executable, is_blank
from training.backtest import BacktestPlan, OriginResult, origin_metrics
from training.predictions import append_predictions, read_predictions

SCORE_DATES = ("2025-01-01",)  # its 90-day horizon ends inside the demo data
SECTIONS = (
    "monthly",
    "cohorts",
    "projection",
    "segments",
    "indicators",
    "reasons",
    "at_risk",
    "expected",
    "backtest",
    "outcomes",
)


def churn(home: Path, *args: str) -> object:
    env = {"CHURN_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true", "COLUMNS": "160"}
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """LightGBM and BLAS on one thread: on a shared machine, busy-waiting threads cost more
    than they bring (results do not depend on it)."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def home(tmp_path_factory, demo_data: Path, bundle: Path) -> Path:
    """A CHURN_HOME whose prediction log holds the bundle's scores, and the same scores
    again as version 9 of a model that claimed a perfect test ROC-AUC."""
    home = tmp_path_factory.mktemp("home")
    for day in SCORE_DATES:
        done = churn(
            home, "score", "--data", str(demo_data), "--as-of", day, "--model", str(bundle),
            "--out", str(home / f"scores-{day}.csv"),
        )  # fmt: skip
        assert done.exit_code == 0, done.output
    scored = read_predictions(home / "predictions")
    boastful = scored.assign(model_version="9", model_test_roc_auc=1.0)
    append_predictions(boastful, home / "predictions")
    return home


def test_score_appends_what_it_scored_to_the_prediction_log(home: Path) -> None:
    log = read_predictions(home / "predictions")
    log = log[log["model_version"] != "9"]
    assert sorted(p.name for p in (home / "predictions").iterdir()) == [
        f"as_of={day}" for day in SCORE_DATES
    ]
    scored = pd.read_csv(home / f"scores-{SCORE_DATES[0]}.csv")
    logged = log[log["as_of"] == pd.Timestamp(SCORE_DATES[0])].set_index("account_id")
    assert len(logged) == len(scored)
    np.testing.assert_allclose(
        logged.loc[scored["account_id"], "churn_probability"], scored["churn_probability"]
    )
    assert set(log["horizon_days"]) == {90} and log["model_version"].str.startswith("sha256:").all()
    assert log["model_test_roc_auc"].eq(0.81).all()  # the bundle's own test figure
    assert log["mrr"].notna().all()


def test_outcomes_judges_matured_predictions_and_exits_4_past_the_drop(
    home: Path, demo_data: Path
) -> None:
    done = churn(home, "outcomes", "--data", str(demo_data), "--fail-on-drop", "0.0")
    by_date = pd.read_csv(home / "outcomes" / "by_score_date.csv", dtype={"model_version": str})
    ours = by_date[by_date["model_version"] != "9"]
    assert ours["as_of"].tolist() == list(SCORE_DATES)
    assert (ours["churners"] > 0).all() and ours["realized_roc_auc"].between(0, 1).all()
    tiers = pd.read_csv(home / "outcomes" / "by_tier.csv")
    assert tiers["accounts"].sum() == by_date["accounts"].sum()
    assert (home / "outcomes" / "by_decile.csv").is_file()
    assert "Realized by model version" in done.output
    # version 9 claimed a perfect test ROC-AUC: any realized figure is a drop
    assert done.exit_code == 4
    assert "dropped: bundle version 9: realized ROC-AUC" in done.output
    assert "below its test ROC-AUC 1.0000" in done.output


def test_outcomes_without_a_log_says_how_to_fill_it(tmp_path: Path, demo_data: Path) -> None:
    done = CliRunner().invoke(
        app, ["outcomes", "--data", str(demo_data)], env={"CHURN_HOME": str(tmp_path)}
    )
    assert done.exit_code == 2 and "is empty: `churn score --data DIR` fills it" in done.output


def backtest_folder(folder: Path) -> Path:
    """A backtest.csv of two origins, each judged by the real `origin_metrics`."""
    rng = np.random.default_rng(0)
    rows = []
    for origin in (dt.date(2025, 1, 1), dt.date(2025, 2, 1)):
        churned = (rng.random(400) < 0.1).astype(np.int64)
        scores = pd.DataFrame(
            {
                "account_id": [f"a{i}" for i in range(400)],
                "mrr": 100.0,
                "churned": churned,
                "probability": np.clip(0.1 + 0.3 * churned + rng.normal(0, 0.1, 400), 0, 1),
                "baseline_probability": np.clip(0.1 + rng.normal(0, 0.1, 400), 0, 1),
                "naive_probability": 0.1,
            }
        )
        rows.append(origin_metrics(OriginResult(origin, scores, {}), BacktestPlan()))
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "backtest.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def report(home: Path, demo_data: Path, bundle: Path, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("report") / "report"
    backtest = backtest_folder(tmp_path_factory.mktemp("backtest") / "backtest")
    done = churn(
        home, "report", "--data", str(demo_data), "--model", str(bundle),
        "--backtest", str(backtest), "--out", str(out),
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    return {"out": out, "json": orjson.loads((out / "report.json").read_bytes())}


def test_report_has_every_section_in_html_and_json(report) -> None:
    page = (report["out"] / "report.html").read_text()
    for key in SECTIONS:
        assert f'<section id="{key}">' in page
        assert key in report["json"]["sections"]
    assert "No model given" not in page and "No backtest" not in page
    assert "No logged prediction" not in page


def test_report_writes_whole_months_of_the_data(report) -> None:
    monthly = pd.read_csv(report["out"] / "monthly.csv")
    assert len(monthly) == 30  # 2023-01 .. 2025-06, whole months of the demo data
    assert (monthly["lost"] == monthly[["lost_early", "lost_mid", "lost_late"]].sum(axis=1)).all()
    assert monthly["churn_rate"].between(0, 1).all()
    assert (report["out"] / "cohorts.csv").is_file()
    assert {"monthly_churn.png", "cohort_retention.png"} <= {
        p.name for p in (report["out"] / "plots").iterdir()
    }


def test_report_projects_cohort_retention_and_backtests_the_projection(report) -> None:
    projection = pd.read_csv(report["out"] / "cohort_projection.csv")
    backtest = pd.read_csv(report["out"] / "cohort_backtest.csv")
    assert projection["projected"].between(0, 1).all()
    assert set(backtest["method"]) == {"sbg", "straight_line", "exponential"}
    shown = report["json"]["sections"]["projection"]["backtest"]
    assert {row["method"] for row in shown} == {"sbg", "straight_line", "exponential"}
    assert (report["out"] / "plots" / "cohort_projection.png").is_file()


def test_report_json_holds_the_numbers_of_the_csvs(report) -> None:
    monthly = pd.read_csv(report["out"] / "monthly.csv")
    months = report["json"]["sections"]["monthly"]["months"]
    assert [m["churn_rate"] for m in months] == pytest.approx(monthly["churn_rate"].tolist())
    at_risk = report["json"]["sections"]["at_risk"]
    assert len(at_risk["top_accounts"]) == 25
    assert at_risk["top_accounts"][0]["drivers"]
    revenue = [a["revenue_at_risk"] for a in at_risk["top_accounts"]]
    assert revenue == sorted(revenue, reverse=True)
    outcomes = report["json"]["sections"]["outcomes"]["by_score_date"]
    assert sorted({o["as_of"] for o in outcomes}) == list(SCORE_DATES)
    versions = {o["model_version"] for o in outcomes}
    assert len(versions) == 2 and "9" in versions


def test_report_is_self_contained(report) -> None:
    page = (report["out"] / "report.html").read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page
    charts = list((report["out"] / "plots").glob("*.png"))
    assert len(charts) >= 9  # every section with a chart: monthly .. outcomes
    assert page.count('<img src="data:image/png;base64,') == len(charts)


def test_report_renders_in_headless_chromium(report, tmp_path: Path) -> None:
    if executable() is None:
        pytest.skip("chromium is not installed (`make browser` installs Debian's chromium)")
    with Chromium() as browser:
        visit = browser.visit((report["out"] / "report.html").as_uri(), full_page=True)
    assert visit.errors == []
    assert visit.network_requests == []
    assert len(visit.images) == len(list((report["out"] / "plots").glob("*.png")))
    assert all(image["complete"] and image["width"] > 0 for image in visit.images)
    assert not is_blank(visit.screenshot)
