"""The prediction log and realized outcomes, on hand-made logs with known answers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.settings import Settings
from features.tables import validate_tables
from training.outcomes import champion_outcomes, drops, matured, outcome_figures, outcomes
from training.predictions import COLUMNS, append_predictions, read_predictions

END = dt.date(2024, 3, 31)


def tables():
    accounts = pd.DataFrame(
        {
            "account_id": ["a", "b", "c", "d", "e"],
            "signup_date": "2023-01-01",
            "churn_date": ["2024-01-20", "2024-03-01", None, "2024-01-31", "2023-12-15"],
        }
    )
    contacts = pd.DataFrame({"account_id": ["c"], "date": [END]})
    return validate_tables({"accounts": accounts, "contacts": contacts})


def log(rows: list[tuple], version: str = "1", test_auc: float = 0.9) -> pd.DataFrame:
    """(account, as_of, probability, tier) rows of one model version, horizon 30 days."""
    frame = pd.DataFrame(rows, columns=["account_id", "as_of", "churn_probability", "risk_tier"])
    frame = frame.assign(
        as_of=pd.to_datetime(frame["as_of"]),
        mrr=100.0,
        model_name="churn-model",
        model_version=version,
        horizon_days=30,
        model_test_roc_auc=test_auc,
        model_test_lift_top10=3.0,
        scored_at=pd.Timestamp("2024-01-01", tz="UTC"),
    )
    return frame[list(COLUMNS)].astype(COLUMNS)


SCORED = [
    ("a", "2024-01-01", 0.9, "critical"),  # churned 2024-01-20: inside the horizon
    ("b", "2024-01-01", 0.8, "critical"),  # churned 2024-03-01: after it
    ("c", "2024-01-01", 0.1, "low"),  # stayed
    ("d", "2024-01-01", 0.2, "medium"),  # churned 2024-01-31: the horizon's last day counts
    ("e", "2024-01-01", 0.5, "high"),  # had already left when it was scored
    ("zz", "2024-01-01", 0.5, "high"),  # not in accounts
    ("c", "2024-03-15", 0.1, "low"),  # horizon ends 2024-04-14, after the data
]


def test_only_matured_known_active_predictions_are_judged() -> None:
    rows, skipped = matured(log(SCORED), tables(), END)
    assert rows.set_index("account_id")["churned"].to_dict() == {"a": 1, "b": 0, "c": 0, "d": 1}
    assert skipped == {"not_matured": 1, "unknown_account": 1, "churned_before_score_date": 1}


def test_realized_figures_against_the_model_s_own() -> None:
    found = outcomes(log(SCORED), tables(), END)
    version = found.by_version.iloc[0]
    # churners score 0.9 and 0.2, the others 0.8 and 0.1: 3 of 4 pairs ranked right
    assert version["realized_roc_auc"] == pytest.approx(0.75)
    assert (version["accounts"], version["churners"]) == (4, 2)
    assert version["predicted_churners"] == pytest.approx(2.0)
    assert version["roc_auc_drop"] == pytest.approx(0.9 - 0.75)
    assert found.by_date["as_of"].tolist() == [pd.Timestamp("2024-01-01")]


def test_calibration_per_tier_and_decile() -> None:
    found = outcomes(log(SCORED), tables(), END)
    tiers = found.tiers.set_index("risk_tier")
    assert list(tiers.index) == ["low", "medium", "critical"]
    assert tiers.loc["critical", "predicted_rate"] == pytest.approx(0.85)
    assert tiers.loc["critical", "realized_rate"] == 0.5
    assert tiers.loc["medium", "realized_churners"] == 1
    deciles = found.deciles
    assert deciles["accounts"].sum() == 4
    assert deciles.sort_values("decile")["predicted_rate"].tolist() == [0.1, 0.2, 0.8, 0.9]


def test_versions_are_judged_apart() -> None:
    second = [("a", "2024-01-01", 0.1, "low"), ("c", "2024-01-01", 0.9, "critical")]
    both = pd.concat([log(SCORED), log(second, version="2", test_auc=0.8)], ignore_index=True)
    found = outcomes(both, tables(), END)
    by_version = found.by_version.set_index("model_version")
    assert by_version.loc["2", "realized_roc_auc"] == 0.0
    assert by_version.loc["2", "roc_auc_drop"] == pytest.approx(0.8)


def test_a_drop_past_the_threshold_is_named() -> None:
    by_version = outcome_figures(matured(log(SCORED), tables(), END)[0]).by_version
    [line] = drops(by_version, max_drop=0.1, min_churners=1)
    assert "version 1: realized ROC-AUC 0.7500 is 0.1500 below its test ROC-AUC 0.9000" in line
    assert drops(by_version, max_drop=0.2, min_churners=1) == []
    assert drops(by_version, max_drop=0.1, min_churners=3) == []  # 2 churners: not judged


def test_the_log_grows_by_whole_files_and_keeps_the_latest_score(tmp_path: Path) -> None:
    first = log(SCORED[:3])
    again = log(SCORED[:1]).assign(
        churn_probability=0.3, scored_at=pd.Timestamp("2024-01-02", tz="UTC")
    )
    written = append_predictions(first, tmp_path) + append_predictions(again, tmp_path)
    assert len(written) == 2 and all(p.parent.name == "as_of=2024-01-01" for p in written)
    assert not list(tmp_path.rglob(".*")), "no temp file is left behind"
    kept = read_predictions(tmp_path).set_index("account_id")
    assert len(kept) == 3 and kept.loc["a", "churn_probability"] == 0.3


def test_an_empty_log_reads_as_no_rows(tmp_path: Path) -> None:
    empty = read_predictions(tmp_path / "nothing")
    assert len(empty) == 0 and list(empty.columns) == list(COLUMNS)
    assert outcomes(empty, tables(), END).empty


def test_scores_on_several_dates_go_to_their_own_partitions(tmp_path: Path) -> None:
    written = append_predictions(log(SCORED), tmp_path)
    assert sorted(p.parent.name for p in written) == ["as_of=2024-01-01", "as_of=2024-03-15"]
    assert np.isclose(read_predictions(tmp_path)["churn_probability"].sum(), 3.1)


def test_a_retrain_gets_the_champion_s_latest_realized_figures(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    tables().accounts.to_parquet(data / "accounts.parquet")
    pd.DataFrame({"account_id": ["c"], "date": [pd.Timestamp(END)]}).to_parquet(
        data / "contacts.parquet"
    )
    earlier = log([("a", "2023-12-01", 0.1, "low"), ("c", "2023-12-01", 0.9, "high")])
    append_predictions(
        pd.concat([earlier, log(SCORED)], ignore_index=True), tmp_path / "home" / "predictions"
    )
    settings = Settings(home=tmp_path / "home", model_name="churn-model")
    realized = champion_outcomes(settings, data)
    figures = realized("1")
    assert figures["realized_roc_auc"] == pytest.approx(0.75)  # 2024-01-01, not 2023-12-01
    assert (figures["realized_accounts"], figures["realized_churners"]) == (4, 2)
    assert realized("2") == {}
