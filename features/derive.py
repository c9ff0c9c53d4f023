"""Stage 2: snapshot columns -> the model's feature matrix, under a frozen ``FeatureSpec``.

One pure function over *columns* (field name -> numpy array): a frame's columns in
training, length-1 arrays for one HTTP request. No pandas, so a request pays for a few
numpy operations only, and training and serving cannot drift apart.

What is learnt from training data (category levels, which attributes exist, which
indicators carry any signal) is frozen in a ``FeatureSpec`` and reapplied at scoring.
The indicators themselves, and text -> level codes, are ``features.indicators``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from features.indicators import (
    CATALOGUE,
    FEW_ROWS,
    INDICATORS,
    NPS_CATEGORIES,
    OTHER,
    Indicator,
    View,
    days_between,
    encode_levels,
    nanmax_rows,
    nanmean_rows,
    pct_change,
    ratio,
)
from features.schema import ATTRIBUTE_PREFIX, attribute_column

# The indicator catalogue moved to features.indicators; importers still find it here.
__all__ = [
    "ATTRIBUTE_FEATURE_PREFIX",
    "CATALOGUE",
    "FEATURE_VERSION",
    "FEW_ROWS",
    "IDENTIFIER_SHARE",
    "INDICATORS",
    "MAX_LEVELS",
    "MIN_LEVEL_ROWS",
    "NPS_CATEGORIES",
    "OTHER",
    "PLAN_FEATURE",
    "FeatureSpec",
    "Indicator",
    "SpecEvidence",
    "Spread",
    "View",
    "days_between",
    "encode_levels",
    "feature_matrix",
    "nanmax_rows",
    "nanmean_rows",
    "pct_change",
    "ratio",
]

FEATURE_VERSION = 1
MAX_LEVELS = 50  # categorical levels kept per column; rarer values share "other"
MIN_LEVEL_ROWS = 10
IDENTIFIER_SHARE = 0.5  # a text attribute distinct for over half the accounts is an identifier
PLAN_FEATURE = "plan"
ATTRIBUTE_FEATURE_PREFIX = "attr_"


# --- the frozen spec -------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureSpec:
    """What training learnt about the inputs; reapplied unchanged at scoring."""

    indicators: tuple[str, ...]
    levels: dict[str, tuple[str, ...]] = field(default_factory=dict)  # text column -> levels
    numeric_attributes: tuple[str, ...] = ()
    dropped: dict[str, str] = field(default_factory=dict)  # name -> why it is not a feature
    version: int = FEATURE_VERSION

    @property
    def names(self) -> list[str]:
        """Feature names in matrix order."""
        text = [_feature_name(column) for column in self.levels]
        numeric = [ATTRIBUTE_FEATURE_PREFIX + a for a in self.numeric_attributes]
        return [*self.indicators, *text, *numeric]

    @property
    def categorical(self) -> list[str]:
        fixed = [n for n in self.indicators if INDICATORS[n].categorical]
        return [*fixed, *(_feature_name(column) for column in self.levels)]

    @property
    def inputs(self) -> list[str]:
        """Snapshot fields the model reads (what a request should send)."""
        fields = {f for n in self.indicators for f in INDICATORS[n].inputs}
        fields.update(column for column in self.levels)
        fields.update(attribute_column(a) for a in self.numeric_attributes)
        return sorted(fields)

    @classmethod
    def fit(
        cls, columns: Mapping[str, np.ndarray], account_ids: np.ndarray | None = None
    ) -> FeatureSpec:
        """Learn levels and drop indicators that carry nothing (all missing or constant)."""
        return cls.from_evidence(SpecEvidence.of(columns, account_ids))

    @classmethod
    def from_evidence(cls, evidence: SpecEvidence) -> FeatureSpec:
        """The spec that ``fit`` learns, from the evidence of every training row (which may
        have been gathered partition by partition and merged)."""
        dropped: dict[str, str] = {}
        indicators = []
        for indicator in CATALOGUE:
            if evidence.indicators[indicator.name].constant:
                dropped[indicator.name] = "no variation in training data (missing or constant)"
            else:
                indicators.append(indicator.name)
        levels: dict[str, tuple[str, ...]] = {}
        numeric: list[str] = []
        for column, seen in evidence.columns.items():
            if isinstance(seen, Spread):
                if seen.constant:
                    dropped[column] = "no variation in training data"
                else:
                    numeric.append(column[len(ATTRIBUTE_PREFIX) :])
                continue
            found = _levels(seen, evidence.accounts)
            if isinstance(found, str):
                dropped[column] = found
            else:
                levels[column] = found
        return cls(
            indicators=tuple(indicators),
            levels=levels,
            numeric_attributes=tuple(numeric),
            dropped=dropped,
        )

    @cached_property
    def _text_columns(self) -> dict[str, str]:
        """Text feature -> its column; every driver of every scored account looks one up."""
        found: dict[str, str] = {}
        for column in self.levels:
            found.setdefault(_feature_name(column), column)
        return found

    def matrix(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The float feature matrix, columns in ``names`` order (missing = NaN)."""
        return feature_matrix(columns, self)

    def say(self, feature: str, value: float, raw: object = None) -> str:
        """A feature value in plain words, for reasons."""
        if feature in INDICATORS:
            indicator = INDICATORS[feature]
            if np.isnan(value):
                return f"{feature.replace('_', ' ')} unknown"
            return indicator.say(value)
        label = (
            feature[len(ATTRIBUTE_FEATURE_PREFIX) :]
            if feature.startswith(ATTRIBUTE_FEATURE_PREFIX)
            else feature
        )
        if raw is None or (isinstance(raw, float) and np.isnan(raw)):
            return f"{label} unknown"
        if isinstance(raw, float):
            return f"{label} {raw:g}"
        return f"{label}: {raw}"

    def column_of(self, feature: str) -> str | None:
        """The snapshot column behind a text or attribute feature (None for indicators)."""
        column = self._text_columns.get(feature)
        if column is not None:
            return column
        if feature.startswith(ATTRIBUTE_FEATURE_PREFIX):
            return attribute_column(feature[len(ATTRIBUTE_FEATURE_PREFIX) :])
        return None


def feature_matrix(columns: Mapping[str, np.ndarray], spec: FeatureSpec) -> np.ndarray:
    """Snapshot columns -> float matrix (rows x ``spec.names``). The one stage-2 function."""
    view = View(columns)
    blocks = [INDICATORS[name].compute(view) for name in spec.indicators]
    blocks += [encode_levels(view.text(column), levels) for column, levels in spec.levels.items()]
    blocks += [view.num(attribute_column(a)) for a in spec.numeric_attributes]
    if not blocks:
        return np.empty((view.n, 0))
    return np.column_stack(blocks).astype(np.float64, copy=False)


def _feature_name(column: str) -> str:
    if column.startswith(ATTRIBUTE_PREFIX):
        return ATTRIBUTE_FEATURE_PREFIX + column[len(ATTRIBUTE_PREFIX) :]
    return column


def _levels(counts: Mapping[str, int], accounts: int) -> tuple[str, ...] | str:
    """Frequent levels (most common first, ties in text order), or the reason the column
    is not a feature."""
    if not counts:
        return "always missing in training data"
    if len(counts) == 1:
        return "one value in training data"
    if len(counts) > IDENTIFIER_SHARE * accounts and len(counts) > MAX_LEVELS:
        return (
            f"{len(counts)} distinct values for {accounts} accounts: an identifier, not a feature"
        )
    names = sorted(counts)
    rows = np.array([counts[name] for name in names])
    order = np.argsort(-rows, kind="stable")
    keep = [names[i] for i in order[:MAX_LEVELS] if rows[i] >= MIN_LEVEL_ROWS]
    if not keep:
        return f"no value seen in {MIN_LEVEL_ROWS}+ rows"
    if len(keep) < len(names):
        keep.append(OTHER)
    return tuple(keep)


@dataclass(frozen=True)
class Spread:
    """Known and missing counts and the range of one numeric column: enough to tell whether
    it varies, and it adds up across partitions."""

    known: int = 0
    missing: int = 0
    low: float = np.inf
    high: float = -np.inf

    @classmethod
    def of(cls, values: np.ndarray) -> Spread:
        values = np.asarray(values, dtype=np.float64)
        known = values[~np.isnan(values)]
        if len(known) == 0:
            return cls(missing=len(values))
        return cls(len(known), len(values) - len(known), float(known.min()), float(known.max()))

    @property
    def constant(self) -> bool:
        """Nothing to learn: always missing, or one value and never missing."""
        return self.known == 0 or (self.missing == 0 and self.low == self.high)

    def merge(self, other: Spread) -> Spread:
        return Spread(
            self.known + other.known,
            self.missing + other.missing,
            min(self.low, other.low),
            max(self.high, other.high),
        )


@dataclass(frozen=True)
class SpecEvidence:
    """What ``FeatureSpec.fit`` decides from: whether each indicator and numeric attribute
    varies, the value counts of each text column, and the accounts seen. Evidence of
    disjoint sets of accounts merges into the evidence of their union, so a spec learnt
    partition by partition on a cluster is the spec learnt from all rows at once."""

    indicators: dict[str, Spread]
    columns: dict[str, Spread | dict[str, int]]  # plan and attributes, in column order
    accounts: int

    @classmethod
    def of(
        cls, columns: Mapping[str, np.ndarray], account_ids: np.ndarray | None = None
    ) -> SpecEvidence:
        view = View(columns)
        indicators = {i.name: Spread.of(i.compute(view)) for i in CATALOGUE}
        seen: dict[str, Spread | dict[str, int]] = {}
        text_columns = [PLAN_FEATURE] + [c for c in columns if c.startswith(ATTRIBUTE_PREFIX)]
        for column in text_columns:
            values = columns.get(column)
            if values is None:
                continue
            if np.asarray(values).dtype.kind == "f":
                seen[column] = Spread.of(values)
                continue
            values = np.asarray(values, dtype=object)
            present = values[~np.equal(values, None)].astype(str)
            names, counts = np.unique(present, return_counts=True)
            seen[column] = dict(zip(names.tolist(), counts.tolist(), strict=True))
        accounts = len(set(account_ids)) if account_ids is not None else view.n
        return cls(indicators, seen, accounts)

    def merge(self, other: SpecEvidence) -> SpecEvidence:
        """The evidence of both sets of rows (their accounts must not overlap)."""
        columns = dict(self.columns)
        for column, seen in other.columns.items():
            mine = columns.get(column)
            if mine is None:
                columns[column] = seen
            elif isinstance(mine, Spread) and isinstance(seen, Spread):
                columns[column] = mine.merge(seen)
            elif isinstance(mine, dict) and isinstance(seen, dict):
                columns[column] = {k: mine.get(k, 0) + seen.get(k, 0) for k in mine | seen}
            else:  # partitions share one schema: a bug, never the data's fault
                raise ValueError(f"{column} is text in one partition and numbers in another")
        return SpecEvidence(
            {name: s.merge(other.indicators[name]) for name, s in self.indicators.items()},
            columns,
            self.accounts + other.accounts,
        )
