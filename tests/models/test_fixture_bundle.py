"""A bundle written by an earlier Churn, committed: it must keep loading and scoring the same.

A moved module, a renamed class or a library upgrade that would strand registered models
fails here first. Regenerate only on a deliberate format change (and say so in the commit):
``.venv/bin/python tests/models/test_fixture_bundle.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).parent / "fixtures"
BUNDLE = FIXTURES / "bundle-v2.churn"
EXPECTED = FIXTURES / "bundle-v2.expected.json"


def rows_to_columns(rows: dict[str, list]) -> dict[str, np.ndarray]:
    """JSON columns back to arrays: text stays object, numbers become float (null = NaN)."""
    columns = {}
    for name, values in rows.items():
        if any(isinstance(v, str) for v in values):
            columns[name] = np.array(values, dtype=object)
        else:
            columns[name] = np.array([np.nan if v is None else v for v in values], dtype=float)
    return columns


def test_the_committed_bundle_loads_and_scores_as_when_it_was_written() -> None:
    from features.files import file_sha256
    from models.bundle import ChurnModel

    expected = json.loads(EXPECTED.read_text())
    model = ChurnModel.load(BUNDLE, sha256=expected["sha256"])
    columns = rows_to_columns(expected["rows"])
    scores = model.score(columns, explain=True)
    np.testing.assert_allclose(scores.probability, expected["probability"], rtol=0, atol=1e-12)
    assert model.risk_tiers(scores.probability).tolist() == expected["tiers"]
    assert [[d.feature for d in row] for row in model.drivers(columns, scores)] == expected[
        "drivers"
    ]
    assert model.linear is not None and model.profile is not None
    assert model.card.horizon_days == 90 and file_sha256(BUNDLE) == expected["sha256"]


def regenerate() -> None:  # pragma: no cover - run by hand on a deliberate format change
    import dataclasses

    from features.files import file_sha256
    from models.calibration import Calibrator
    from models.linear import LinearBase
    from models.profile import FeatureProfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.models.conftest import fit_model, snapshot_columns

    train = snapshot_columns(600, seed=21)
    model = fit_model(train, seed=21)
    features = model.matrix(train)
    label = (np.random.default_rng(21).random(len(features)) < 0.2).astype(int)
    categorical = [model.spec.names.index(c) for c in model.spec.categorical]
    model = dataclasses.replace(
        model,
        linear=LinearBase().fit(features, label, categorical),
        calibrator=Calibrator("isotonic").fit(model.margin(features), label),
        profile=FeatureProfile.fit(features, model.spec.names),
        card=model.card.replace(window={"data_start": "2023-01-01"}, metrics={"test_roc_auc": 0.7}),
    )
    FIXTURES.mkdir(exist_ok=True)
    model.save(BUNDLE)
    rows = snapshot_columns(6, seed=22)
    rows["mau_1"][2] = np.nan
    scores = model.score(rows, explain=True)
    document = {
        "sha256": file_sha256(BUNDLE),
        "rows": {
            name: [None if isinstance(v, float) and np.isnan(v) else v for v in values.tolist()]
            for name, values in rows.items()
        },
        "probability": scores.probability.tolist(),
        "tiers": model.risk_tiers(scores.probability).tolist(),
        "drivers": [[d.feature for d in row] for row in model.drivers(rows, scores)],
    }
    EXPECTED.write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    regenerate()
