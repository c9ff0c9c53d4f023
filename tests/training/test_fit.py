"""Hyperparameters: defaults, TOML files and key=value pairs, all typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.errors import ModelError
from training.fit import TrainParams, load_params


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
