"""The model bundle: scores, tiers, drivers, and safe save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from features.errors import ModelError
from features.files import file_sha256
from models.bundle import ChurnModel


def test_score_margin_is_the_sum_of_contributions(model: ChurnModel, make_columns) -> None:
    columns = make_columns(50, seed=1)
    explained = model.score(columns, explain=True)
    plain = model.score(columns, explain=False)
    np.testing.assert_allclose(explained.margin, plain.margin, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(explained.probability, plain.probability)


def test_one_row_scores_like_its_row_in_a_batch(model: ChurnModel, make_columns) -> None:
    columns = make_columns(20, seed=2)
    batch = model.predict_proba(columns)
    one = model.predict_proba({k: v[[7]] for k, v in columns.items()})
    assert one[0] == pytest.approx(batch[7], abs=1e-12)


def test_risk_tiers_follow_multiples_of_the_base_rate(model: ChurnModel) -> None:
    b = model.base_rate
    tiers = model.risk_tiers(np.array([b * 0.5, b, b * 2.5, b * 4, 1.0]))
    assert tiers.tolist() == ["low", "medium", "high", "critical", "critical"]


def test_custom_tier_cutoffs_override(model: ChurnModel) -> None:
    custom = ChurnModel(
        model.spec,
        model.booster,
        model.calibrator,
        model.card.replace(tier_cutoffs=(0.1, 0.2, 0.3)),
    )
    assert custom.risk_tiers(np.array([0.05, 0.15, 0.25, 0.35])).tolist() == [
        "low",
        "medium",
        "high",
        "critical",
    ]


def test_drivers_raise_risk_and_are_in_words(model: ChurnModel, make_columns) -> None:
    columns = make_columns(200, seed=3)
    probability = model.predict_proba(columns)
    riskiest = int(np.argmax(probability))
    drivers = model.explain({k: v[[riskiest]] for k, v in columns.items()}, k=3)[0]
    assert 1 <= len(drivers) <= 3
    assert all(d.contribution > 0 for d in drivers)
    assert [d.contribution for d in drivers] == sorted(
        (d.contribution for d in drivers), reverse=True
    )
    assert all(isinstance(d.reason, str) and d.reason for d in drivers)


def test_missing_inputs_lists_fields_the_model_reads(model: ChurnModel, make_columns) -> None:
    columns = make_columns(2)
    columns["seats"] = np.array([np.nan, 3.0])
    del columns["plan"]
    missing = model.missing_inputs(columns)
    assert "seats" in missing[0] and "seats" not in missing[1]
    assert "plan" in missing[0] and "plan" in missing[1]


def test_missing_inputs_of_a_few_rows_equal_those_of_many(model: ChurnModel, make_columns) -> None:
    columns = make_columns(80, seed=5)
    columns["seats"][::3] = np.nan
    columns["plan"][1::4] = None
    del columns["mau_1"]
    many = model.missing_inputs(columns)  # column by column
    few = [
        row
        for start in range(0, 80, 20)
        for row in model.missing_inputs({k: v[start : start + 20] for k, v in columns.items()})
    ]
    assert few == many
    assert any("seats" in row for row in many) and not all("seats" in row for row in many)


def test_save_and_load_round_trip(model: ChurnModel, make_columns, tmp_path: Path) -> None:
    path = model.save(tmp_path / "bundle.churn")
    loaded = ChurnModel.load(path, sha256=file_sha256(path))
    columns = make_columns(30, seed=4)
    np.testing.assert_array_equal(loaded.predict_proba(columns), model.predict_proba(columns))
    assert not list(tmp_path.glob(".*.tmp"))  # the temp file was renamed into place


def test_load_refuses_a_checksum_mismatch(model: ChurnModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "bundle.churn")
    with pytest.raises(ModelError, match="refusing to load"):
        ChurnModel.load(path, sha256="0" * 64)


def test_load_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        ChurnModel.load(tmp_path / "nope.churn")
