"""The calibrator fixes a mis-scaled margin and needs both classes."""

from __future__ import annotations

import numpy as np
import pytest

from features.errors import ModelError
from models.calibration import Calibrator, sigmoid
from training.evaluate import expected_calibration_error


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_repairs_an_overconfident_margin(method: str) -> None:
    rng = np.random.default_rng(0)
    true_margin = rng.normal(-2.5, 1.2, 20_000)
    label = (rng.random(20_000) < sigmoid(true_margin)).astype(int)
    overconfident = 3.0 * true_margin + 2.0
    fit, check = slice(0, 10_000), slice(10_000, None)
    calibrator = Calibrator(method).fit(overconfident[fit], label[fit])
    before = expected_calibration_error(label[check], sigmoid(overconfident[check]))
    after = expected_calibration_error(label[check], calibrator.transform(overconfident[check]))
    assert before > 0.05 and after < 0.01


def test_single_class_is_refused() -> None:
    with pytest.raises(ModelError, match="single class"):
        Calibrator().fit(np.array([0.1, 0.2]), np.array([0, 0]))


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ModelError, match="not one of"):
        Calibrator("magic").fit(np.array([0.1, 0.2]), np.array([0, 1]))
