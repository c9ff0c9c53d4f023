"""The time-to-churn model: one survival curve per account, probabilities by horizon."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from features.timeline import month_bounds
from models.bundle import ChurnModel
from models.hazard import Survival, interval_columns

HORIZONS = (30, 90, 180, 365)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_probabilities_never_decrease_with_the_horizon_for_any_account(
    timed_model: ChurnModel, data: st.DataObject
) -> None:
    """Any feature values (missing ones too), any horizons within the modelled year."""
    width = len(timed_model.spec.names)
    values = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.just(np.nan))
    features = data.draw(arrays(np.float64, (data.draw(st.integers(1, 8)), width), elements=values))
    horizons = sorted(data.draw(st.lists(st.integers(1, 365), min_size=2, max_size=8)))
    within = timed_model.survival(features).churn_within(horizons)
    assert np.all((within >= 0) & (within <= 1))
    assert np.all(np.diff(within, axis=1) >= -1e-12)


def test_the_trained_model_gives_every_default_horizon(
    timed_model: ChurnModel, make_columns
) -> None:
    columns = make_columns(40, seed=3)
    scores = timed_model.score(columns, explain=False)
    within = timed_model.survival(scores.features).churn_within(timed_model.horizons)
    assert timed_model.horizons == HORIZONS
    assert within.shape == (40, 4)
    assert np.all(np.diff(within, axis=1) >= 0)


def test_risk_that_grows_with_low_usage_shows_in_every_horizon(
    timed_model: ChurnModel, make_columns
) -> None:
    columns = make_columns(400, seed=4)
    features = timed_model.matrix(columns)
    within = timed_model.survival(features).churn_within(HORIZONS)
    usage = columns["mau_0"] / columns["seats"]
    low, high = usage < 0.25, usage > 0.75
    assert np.all(within[low].mean(axis=0) > within[high].mean(axis=0))


def test_one_account_scores_like_its_row_in_a_batch(timed_model: ChurnModel, make_columns) -> None:
    features = timed_model.matrix(make_columns(10, seed=6))
    batch = timed_model.survival(features).hazard
    one = timed_model.survival(features[[4]]).hazard
    np.testing.assert_allclose(one[0], batch[4], rtol=1e-12)


def test_thirty_days_is_the_first_month_and_a_year_the_whole_curve() -> None:
    hazard = np.array([[0.1, 0.2, 0.0, 0.5] + [0.05] * 8])
    survival = Survival(hazard)
    curve = survival.curve()
    assert survival.at_days([0])[0, 0] == 1.0
    assert survival.churn_within([30])[0, 0] == pytest.approx(0.1)
    assert survival.churn_within([365])[0, 0] == pytest.approx(1 - curve[0, -1])
    inside = (90 - month_bounds(3)[2]) / (month_bounds(3)[3] - month_bounds(3)[2])
    assert survival.churn_within([90])[0, 0] == pytest.approx(1 - 0.9 * 0.8 * 1.0**inside)


def test_a_renewal_month_is_found_from_days_to_renewal_and_the_term() -> None:
    names = ["days_to_renewal", "contract_term_months"]
    features = np.array([[45.0, 12.0], [45.0, 1.0], [np.nan, 12.0]])
    rows = np.repeat(features, 14, axis=0)
    month = np.tile(np.arange(14), 3)
    renewal = interval_columns(rows, month, names, renewal=True)[:, 1].reshape(3, 14)
    assert np.flatnonzero(renewal[0]).tolist() == [1, 13]  # day 45, then a year later
    assert renewal[1].sum() == 13  # monthly: one renewal in every month from the second
    assert np.isnan(renewal[2]).all()


def test_the_bundle_keeps_its_time_to_churn_model(
    timed_model: ChurnModel, make_columns, tmp_path: Path
) -> None:
    features = timed_model.matrix(make_columns(20, seed=7))
    loaded = ChurnModel.load(timed_model.save(tmp_path / "bundle.churn"))
    np.testing.assert_allclose(
        loaded.survival(features).hazard, timed_model.survival(features).hazard
    )


def test_a_model_without_horizons_says_why(model: ChurnModel) -> None:
    assert model.horizons == ()
    assert model.survival(np.zeros((1, len(model.spec.names)))) is None
    assert "--horizons none" in (model.horizons_absent_reason or "")


def test_a_table_mode_model_says_it_has_no_time_axis(model: ChurnModel) -> None:
    import dataclasses

    table = dataclasses.replace(model, card=model.card.replace(mode="table", horizon_days=None))
    assert "no time axis" in (table.horizons_absent_reason or "")


def test_a_bundle_whose_hazard_part_reads_other_features_is_refused(
    timed_model: ChurnModel, tmp_path: Path
) -> None:
    import dataclasses

    from features.errors import ModelError

    hazard = dataclasses.replace(
        timed_model.hazard, feature_names=("x", *timed_model.hazard.feature_names[1:])
    )
    path = dataclasses.replace(timed_model, hazard=hazard).save(tmp_path / "bundle.churn")
    with pytest.raises(ModelError, match="hazard model's features are not the feature spec's"):
        ChurnModel.load(path)


def test_the_month_calibrator_recovers_a_known_scale_of_the_cumulative_hazard() -> None:
    from models.hazard import MonthCalibrator

    rng = np.random.default_rng(0)
    margin = rng.normal(-3, 1, 200_000)
    month = rng.integers(0, 12, len(margin))
    booster = 1 / (1 + np.exp(-margin))
    true = 1 - (1 - booster) ** np.exp(0.3 - 0.4 * month / 12)  # too low now, less so later
    label = rng.random(len(margin)) < true
    fitted = MonthCalibrator().fit(margin, month, label).describe()
    assert fitted["log_scale"] == pytest.approx(0.3, abs=0.05)
    assert fitted["log_scale_per_year"] == pytest.approx(-0.4, abs=0.1)


def test_the_month_calibrator_keeps_a_month_without_risk_without_risk() -> None:
    from models.hazard import MonthCalibrator

    calibrator = MonthCalibrator.from_coefficients([0.7, 0.2])
    hazard = calibrator.transform(np.array([-30.0, -2.0, -2.0]), np.array([0, 0, 11]))
    assert hazard[0] < 1e-12
    assert hazard[1] == pytest.approx(1 - (1 - 1 / (1 + np.exp(2))) ** np.exp(0.7))
    assert hazard[2] > hazard[1]
