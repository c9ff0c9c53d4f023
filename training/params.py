"""Model hyperparameters: one typed object, filled from defaults, a TOML file and
``--param key=value`` pairs, and every value is logged so tuned runs can be compared.

The defaults are generic for tabular churn data (shallow trees, strong leaf minimums,
subsampling); nothing here is tuned to the demo data.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features.errors import ModelError


@dataclass(frozen=True)
class TrainParams:
    """Model settings; every field is logged as an MLflow param."""

    learning_rate: float = 0.03
    num_leaves: int = 4
    max_depth: int = -1
    min_data_in_leaf: int = 300
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    cat_smooth: float = 10.0
    min_data_per_group: int = 50
    linear_tree: bool = False
    linear_lambda: float = 0.0
    extra_trees: bool = False
    path_smooth: float = 0.0
    num_boost_round: int = 3000
    early_stopping_rounds: int = 100
    refit: bool = True  # after early stopping and calibration, refit on every window before test
    model_form: str = "auto"  # auto | trees | linear+trees (chosen on the validation window)
    search_candidates: int = 8  # capacity candidates tried on held-out data (0: the values above)
    search_folds: int = 3  # table mode: inner folds the search scores candidates on
    calibration: str = "platt"
    baseline_c: float = 1.0
    seed: int = 0
    num_threads: int = 0
    fixed: frozenset[str] = frozenset()  # fields set by the user: the search leaves them alone

    def lightgbm(self) -> dict[str, Any]:
        return {
            "objective": "binary",
            "metric": "binary_logloss",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": self.bagging_freq,
            "lambda_l2": self.lambda_l2,
            "cat_smooth": self.cat_smooth,
            "min_data_per_group": self.min_data_per_group,
            "linear_tree": self.linear_tree,
            "linear_lambda": self.linear_lambda,
            "extra_trees": self.extra_trees,
            "path_smooth": self.path_smooth,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        del values["fixed"]
        return values

    def with_values(self, **values: Any) -> TrainParams:
        """A copy with other values; what was fixed stays fixed."""
        return dataclasses.replace(self, **values)


def load_params(
    file: Path | None = None, pairs: Sequence[str] = (), defaults: Mapping[str, Any] | None = None
) -> TrainParams:
    """Defaults <- ``defaults`` (settings) <- TOML file (top level or [params]) <- ``key=value``
    pairs. Values from the file or the pairs are fixed: the capacity search keeps them."""
    values: dict[str, Any] = {}
    if file is not None:
        try:
            document = tomllib.loads(Path(file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ModelError(f"cannot read parameter file {file}: {exc}") from exc
        values.update(document.get("params", document))
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise ModelError(f"--param {pair!r} is not key=value")
        values[key.strip()] = raw.strip()
    params = coerce_params(values)
    unset = {k: v for k, v in (defaults or {}).items() if k not in values and v is not None}
    if unset:
        typed = coerce_params(unset)
        params = dataclasses.replace(params, **{key: getattr(typed, key) for key in unset})
    return params


def coerce_params(values: Mapping[str, Any]) -> TrainParams:
    """Typed parameters from text or TOML values; every one given is fixed."""
    fields = {f.name: f for f in dataclasses.fields(TrainParams) if f.name != "fixed"}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ModelError(f"unknown parameter(s) {unknown}; known: {sorted(fields)}")
    typed: dict[str, Any] = {}
    for key, raw in values.items():
        kind = type(getattr(TrainParams(), key))
        try:
            typed[key] = _as_bool(raw) if kind is bool else kind(raw)
        except (TypeError, ValueError):
            raise ModelError(f"parameter {key}={raw!r} is not a {kind.__name__}") from None
    return TrainParams(**typed, fixed=frozenset(typed))


def _as_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(raw)
