"""The training pipeline's time rules: the served model refits only on rows whose labels
were settled when the test window starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from features.tables import load_tables
from features.timeline import to_days
from training.params import TrainParams
from training.pipeline import fit_and_evaluate, prepare_events, refit_rows
from training.progress import Steps

BEFORE_TEST = ("train", "validation", "calibration")


@pytest.fixture(scope="module")
def prepared(demo_data: Path):
    return prepare_events(load_tables(demo_data), horizon_days=90)


def test_refit_rows_are_those_settled_on_the_first_test_date(prepared) -> None:
    rows = refit_rows(prepared)
    first_test = int(to_days(prepared.frames["test"]["as_of"]).min())
    for split in BEFORE_TEST:
        as_of = to_days(prepared.frames[split]["as_of"])
        assert (as_of[rows[split]] + 90 <= first_test).all()
        assert (as_of[~rows[split]] + 90 > first_test).all()
    assert not rows["calibration"].all(), "the demo's last calibration dates are unsettled"


def test_labels_unsettled_at_the_test_window_never_reach_the_served_booster(prepared) -> None:
    params = TrainParams(search_candidates=0)
    clean = fit_and_evaluate(prepared, params, Steps(enabled=False))
    unsettled = ~refit_rows(prepared)["calibration"]
    calibration = prepared.frames["calibration"]
    original = calibration["churned"].copy()
    try:
        flipped = np.where(unsettled, 1 - original, original).astype(original.dtype)
        calibration["churned"] = flipped  # every unsettled label wrong
        poisoned = fit_and_evaluate(prepared, params, Steps(enabled=False))
    finally:
        calibration["churned"] = original
    assert poisoned.model.booster.model_to_string() == clean.model.booster.model_to_string()
    assert np.array_equal(
        poisoned.fitted.baseline.margin(poisoned.model.matrix(prepared.columns("test"))),
        clean.fitted.baseline.margin(clean.model.matrix(prepared.columns("test"))),
    )
