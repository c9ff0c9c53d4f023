"""A small real ChurnModel trained on generated snapshot columns."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from features.derive import FeatureSpec
from models.bundle import ChurnModel
from models.calibration import Calibrator
from models.card import ModelCard


def snapshot_columns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    seats = rng.integers(2, 40, n).astype(float)
    active = np.floor(seats * rng.beta(2, 2, n))
    return {
        "account_id": np.array([f"acc{i}" for i in range(n)], dtype=object),
        "as_of": np.full(n, 20000.0),
        "signup_date": 20000.0 - rng.integers(10, 900, n),
        "plan": rng.choice(np.array(["starter", "growth", "enterprise"], dtype=object), n),
        "seats": seats,
        "mrr": seats * 30.0,
        "mau_0": active,
        "mau_1": np.minimum(seats, active + rng.integers(0, 5, n)),
        "mau_2": np.minimum(seats, active + rng.integers(0, 5, n)),
        "contacts_90d": rng.integers(0, 3, n).astype(float),
        "last_contact_date": np.where(
            rng.random(n) < 0.3, np.nan, 20000.0 - rng.integers(1, 200, n)
        ),
    }


def fit_model(columns: dict[str, np.ndarray], seed: int = 0) -> ChurnModel:
    spec = FeatureSpec.fit(columns, columns["account_id"])
    features = spec.matrix(columns)
    rng = np.random.default_rng(seed)
    usage = columns["mau_0"] / columns["seats"]
    label = (rng.random(len(usage)) < 1 / (1 + np.exp(4 * usage))).astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 7, "seed": seed},
        lgb.Dataset(features, label, feature_name=spec.names, categorical_feature=spec.categorical),
        num_boost_round=40,
    )
    calibrator = Calibrator().fit(booster.predict(features, raw_score=True), label)
    return ChurnModel(
        spec, booster, calibrator, ModelCard(base_rate=float(label.mean()), horizon_days=90)
    )


@pytest.fixture(scope="session")
def model() -> ChurnModel:
    return fit_model(snapshot_columns(2000))


@pytest.fixture
def make_columns():
    return snapshot_columns


@pytest.fixture(scope="session")
def timed_model(model: ChurnModel, with_time_to_churn) -> ChurnModel:
    """The session model with a time-to-churn model beside it."""
    return with_time_to_churn(model, snapshot_columns(3000, seed=5))
