"""`churn retrain`: the verdict rules, the lock, and whole retrains against a real `mlflow server`."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from features.errors import ConflictError, ModelError
from models.champion import AliasOwner
from models.registry import Registry
from training.pipeline import Prepared
from training.retrain import LOCK_FILE, champion_metrics, check_challenger, judge, retrain_lock

MODEL = "retrain-model"  # its own registered model, apart from the tracking tests'
GOOD = {"test_roc_auc": 0.80, "test_rows": 3000.0, "test_base_rate": 0.05, "test_ece": 0.01}


def test_without_a_champion_a_sound_challenger_is_promoted() -> None:
    assert judge(GOOD, None, 0.0, []).promote


def test_a_challenger_must_beat_the_champion_by_the_margin() -> None:
    assert judge(GOOD, {"test_roc_auc": 0.79}, 0.005, []).promote
    kept = judge(GOOD, {"test_roc_auc": 0.797}, 0.005, [])
    assert not kept.promote and "does not beat the champion's 0.7970" in kept.reason


def test_an_equal_challenger_does_not_replace_the_champion() -> None:
    assert not judge(GOOD, {"test_roc_auc": 0.80}, 0.0, []).promote


def test_a_challenger_failing_its_checks_is_never_promoted() -> None:
    verdict = judge(GOOD, None, 0.0, ["the test window holds 3 churners"])
    assert (
        not verdict.promote
        and "failed its checks: the test window holds 3 churners" in verdict.reason
    )


def test_checks_name_too_few_churners_and_poor_calibration() -> None:
    failures = check_challenger(
        {**GOOD, "test_rows": 100.0, "test_ece": 0.09}, min_churners=20, max_ece=0.05
    )
    assert failures == [
        "the test window holds 5 churners, fewer than 20 to judge by",
        "the challenger's test ECE 0.0900 is above 0.05",
    ]
    assert check_challenger(GOOD, min_churners=20, max_ece=0.05) == []


def test_a_champion_of_another_horizon_is_not_compared(model_of_horizon) -> None:
    prepared = Prepared(frames={}, summary=None, metadata={"horizon_days": 90}, tags={})
    with pytest.raises(ModelError, match="predicts 30 days ahead and this retrain 90"):
        champion_metrics(model_of_horizon(30), prepared)


@pytest.fixture
def model_of_horizon():
    from types import SimpleNamespace

    return lambda days: SimpleNamespace(model=SimpleNamespace(horizon_days=days), version="7")


def test_a_second_retrain_is_refused_while_the_lock_is_held(tmp_path: Path) -> None:
    held = pytest.raises(
        ConflictError, match=f"another retrain is running \\(pid {os.getpid()} holds"
    )
    with retrain_lock(tmp_path / LOCK_FILE), held, retrain_lock(tmp_path / LOCK_FILE):
        pass
    with retrain_lock(tmp_path / LOCK_FILE):  # released once the first ends
        pass


def churn(*args: str, tracking_uri: str, home: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CHURN_TRACKING_URI": tracking_uri,
        "CHURN_HOME": str(home),
        "CHURN_MODEL_NAME": MODEL,
        "CHURN_EXPERIMENT": "retrain",
        "CHURN_HORIZONS": "none",  # the time-to-churn model has its own tests (test_commands)
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    command = [sys.executable, "-m", "service.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def retrained(mlflow_server: str, demo_data: Path, tmp_path_factory) -> dict:
    """Two retrains on the same data: the first has no champion, the second equals it."""
    home = tmp_path_factory.mktemp("home")
    first = churn("retrain", "--data", str(demo_data), tracking_uri=mlflow_server, home=home)
    assert first.returncode == 0, first.stderr[-3000:]
    scores = ("--as-of", "2025-01-01", "--out", str(home / "scores.csv"))  # logs the champion
    scored = churn(
        "score", "--data", str(demo_data), *scores, tracking_uri=mlflow_server, home=home
    )
    assert scored.returncode == 0, scored.stderr[-3000:]
    second = churn("retrain", "--data", str(demo_data), tracking_uri=mlflow_server, home=home)
    assert second.returncode == 0, second.stderr[-3000:]
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    runs = {
        v.version: client.get_run(v.run_id) for v in client.search_model_versions(f"name='{MODEL}'")
    }
    return {"client": client, "home": home, "runs": runs, "second": second}


def test_first_retrain_promotes_and_says_why(retrained) -> None:
    tags = retrained["runs"]["1"].data.tags
    assert tags["retrain.decision"] == "promoted"
    assert tags["retrain.reason"] == "there is no champion yet"


def test_an_equal_challenger_is_registered_but_the_champion_stays(retrained) -> None:
    assert retrained["client"].get_model_version_by_alias(MODEL, "champion").version == "1"
    run = retrained["runs"]["2"].data
    assert run.tags["retrain.decision"] == "kept champion"
    assert run.tags["retrain.champion_version"] == "1"
    assert "does not beat the champion's" in run.tags["retrain.reason"]
    assert run.metrics["champion_test_roc_auc"] == pytest.approx(run.metrics["test_roc_auc"])
    assert "kept the champion (version 1)" in retrained["second"].stdout


def test_retrain_runs_are_named_by_data_end_and_model_form(retrained) -> None:
    for run in retrained["runs"].values():
        tags = run.data.tags
        assert run.info.run_name == f"retrain {tags['window.data_end']} {tags['model_form']}"


def test_a_retrain_note_and_version_description_give_the_decision(retrained) -> None:
    client = retrained["client"]
    for version, decision in (
        ("1", "Decision: promoted to @champion: there is no champion yet."),
        ("2", "Decision: kept the champion (version 1): test_roc_auc"),
    ):
        note = retrained["runs"][version].data.tags["mlflow.note.content"]
        assert note.startswith("Retrained LightGBM") and decision in note
        assert client.get_model_version(MODEL, version).description == note


def test_a_retrain_records_the_champion_s_realized_figures(retrained) -> None:
    metrics = retrained["runs"]["2"].data.metrics
    assert 0 < metrics["champion_realized_roc_auc"] <= 1
    assert metrics["champion_realized_churners"] > 0 and metrics["champion_realized_accounts"] > 0


def test_a_retrain_that_fails_leaves_the_champion_and_registers_nothing(
    retrained, mlflow_server: str, demo_data: Path
) -> None:
    client = retrained["client"]
    before = len(client.search_model_versions(f"name='{MODEL}'"))
    failed = churn(
        "retrain",
        "--data",
        str(demo_data),
        "--param",
        "model_form=bogus",
        tracking_uri=mlflow_server,
        home=retrained["home"],
    )
    assert failed.returncode == 3 and "model_form 'bogus' is not one of" in failed.stderr
    assert len(client.search_model_versions(f"name='{MODEL}'")) == before
    assert client.get_model_version_by_alias(MODEL, "champion").version == "1"


def test_a_retrain_waits_for_no_one_while_another_holds_the_lock(
    retrained, mlflow_server: str, demo_data: Path
) -> None:
    client = retrained["client"]
    before = len(client.search_model_versions(f"name='{MODEL}'"))
    with (retrained["home"] / LOCK_FILE).open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        refused = churn(
            "retrain", "--data", str(demo_data), tracking_uri=mlflow_server, home=retrained["home"]
        )
    assert refused.returncode == 6 and "another retrain is running" in refused.stderr
    assert len(client.search_model_versions(f"name='{MODEL}'")) == before


def test_rollback_without_a_recorded_predecessor_asks_for_a_version(
    retrained, mlflow_server: str
) -> None:
    refused = churn("rollback", tracking_uri=mlflow_server, home=retrained["home"])
    assert (
        refused.returncode == 3
        and "records no previous champion; give the version" in refused.stderr
    )


def test_rollback_returns_to_the_version_the_champion_replaced(
    retrained, mlflow_server: str
) -> None:
    client = retrained["client"]
    owner = AliasOwner(Registry(mlflow_server, mlflow_server), MODEL, "champion")
    assert owner.move("2", "by hand", judged="1").previous == "1"
    done = churn("rollback", tracking_uri=mlflow_server, home=retrained["home"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "version 2 -> 1" in done.stdout
    assert client.get_model_version_by_alias(MODEL, "champion").version == "1"
    assert client.get_model_version(MODEL, "2").tags["rolled_back_to"] == "1"
