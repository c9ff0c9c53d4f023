"""Hyperparameters (defaults, TOML files and key=value pairs, all typed) and the fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from features.derive import FeatureSpec
from features.errors import ModelError
from models.linear import LinearBase
from training.evaluate import expected_calibration_error
from training.fit import Part, fit_baseline, fit_chosen_model
from training.params import TrainParams, load_params


def test_pairs_override_the_file_and_are_typed(tmp_path: Path) -> None:
    file = tmp_path / "params.toml"
    file.write_text("[params]\nnum_leaves = 63\nlearning_rate = 0.1\n")
    params = load_params(file, ["learning_rate=0.02", "calibration=isotonic"])
    assert (params.num_leaves, params.learning_rate, params.calibration) == (63, 0.02, "isotonic")


def test_defaults_without_overrides() -> None:
    assert load_params() == TrainParams()


def test_unknown_parameter_is_refused() -> None:
    with pytest.raises(ModelError, match=r"unknown parameter\(s\) \['leaves'\]"):
        load_params(None, ["leaves=3"])


def test_badly_typed_parameter_is_refused() -> None:
    with pytest.raises(ModelError, match="num_leaves='many' is not a int"):
        load_params(None, ["num_leaves=many"])


def test_pair_without_equals_is_refused() -> None:
    with pytest.raises(ModelError, match="is not key=value"):
        load_params(None, ["num_leaves"])


def test_boolean_parameters_read_words() -> None:
    assert load_params(None, ["refit=false"]).refit is False
    assert load_params(None, ["refit=yes"]).refit is True
    with pytest.raises(ModelError, match="refit='maybe' is not a bool"):
        load_params(None, ["refit=maybe"])


def windows(
    seed: int = 0, rows: tuple[int, ...] = (4000, 1000, 1500, 20000)
) -> tuple[FeatureSpec, list[Part]]:
    """Stationary generated snapshots cut into train, validation, calibration and fresh rows."""
    rng = np.random.default_rng(seed)
    n = sum(rows)
    seats = rng.integers(2, 40, n).astype(float)
    active = np.floor(seats * rng.beta(2, 2, n))
    columns = {
        "account_id": np.array([f"acc{i}" for i in range(n)], dtype=object),
        "as_of": np.full(n, 20000.0),
        "signup_date": 20000.0 - rng.integers(10, 900, n),
        "seats": seats,
        "mau_0": active,
        "mau_1": np.minimum(seats, active + rng.integers(0, 5, n)),
    }
    label = (rng.random(n) < 1 / (1 + np.exp(1 + 4 * active / seats))).astype(np.int8)
    spec = FeatureSpec.fit(columns, columns["account_id"])
    features = spec.matrix(columns)
    cuts = np.cumsum(rows)[:-1]
    return spec, [
        Part(f, y) for f, y in zip(np.split(features, cuts), np.split(label, cuts), strict=True)
    ]


def test_refit_sizes_the_booster_for_every_window_before_test() -> None:
    spec, (train, validation, calibration, _) = windows()
    model, _ = fit_chosen_model(
        spec, train, validation, calibration, TrainParams(model_form="trees"), {}
    )
    rows = len(train.label) + len(validation.label) + len(calibration.label)
    assert model.card.trees == round(model.card.early_stopping_trees * rows / len(train.label))


def test_without_refit_the_early_stopped_booster_is_served() -> None:
    spec, (train, validation, calibration, _) = windows()
    model, _ = fit_chosen_model(
        spec, train, validation, calibration, TrainParams(model_form="trees", refit=False), {}
    )
    assert model.card.trees == model.card.early_stopping_trees


def test_refit_model_stays_calibrated_on_unseen_rows() -> None:
    spec, (train, validation, calibration, fresh) = windows()
    model, _ = fit_chosen_model(spec, train, validation, calibration, TrainParams(), {})
    probability = model.calibrator.transform(model.margin(fresh.features))
    assert expected_calibration_error(fresh.label, probability) <= 0.02
    assert abs(probability.mean() - fresh.label.mean()) <= 0.01


def test_baseline_learns_from_the_same_windows_as_the_model() -> None:
    spec, (train, validation, calibration, _) = windows()
    baseline, _ = fit_baseline(spec, train, validation, calibration, TrainParams())
    categorical = [spec.names.index(c) for c in spec.categorical]
    every = LinearBase().fit(
        np.vstack([train.features, validation.features, calibration.features]),
        np.concatenate([train.label, validation.label, calibration.label]),
        categorical,
    )
    np.testing.assert_allclose(baseline.coef_, every.coef_)


def test_values_from_the_file_and_pairs_are_fixed_settings_defaults_are_not(
    tmp_path: Path,
) -> None:
    file = tmp_path / "params.toml"
    file.write_text("[params]\nnum_leaves = 16\n")
    params = load_params(file, ["lambda_l2=3"], {"search_candidates": 2})
    assert params.search_candidates == 2
    assert params.fixed == {"num_leaves", "lambda_l2"}
    assert "fixed" not in params.as_dict()
