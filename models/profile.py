"""The training feature profile: binned distributions, frozen in the bundle for drift checks.

Later scoring data is compared against it (population stability index per feature)
without ever reloading the training set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

BINS = 10


@dataclass(frozen=True)
class FeatureProfile:
    """Per feature: inner bin edges (deciles), share of rows per bin, and share missing."""

    names: tuple[str, ...]
    edges: tuple[tuple[float, ...], ...]
    shares: tuple[tuple[float, ...], ...]
    missing: tuple[float, ...]
    rows: int

    @classmethod
    def fit(cls, matrix: np.ndarray, names: list[str]) -> FeatureProfile:
        edges, shares, missing = [], [], []
        for j in range(matrix.shape[1]):
            column = matrix[:, j]
            known = column[~np.isnan(column)]
            inner = (
                np.unique(np.quantile(known, np.linspace(0, 1, BINS + 1)[1:-1]))
                if len(known)
                else np.array([])
            )
            edges.append(tuple(float(e) for e in inner))
            shares.append(tuple(float(s) for s in _shares(known, inner)))
            missing.append(float(np.isnan(column).mean()) if len(column) else 0.0)
        return cls(tuple(names), tuple(edges), tuple(shares), tuple(missing), int(matrix.shape[0]))

    def to_state(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "edges": [list(e) for e in self.edges],
            "shares": [list(s) for s in self.shares],
            "missing": list(self.missing),
            "rows": self.rows,
        }

    @classmethod
    def from_state(cls, fields: dict[str, Any]) -> FeatureProfile:
        return cls(
            names=tuple(str(n) for n in fields["names"]),
            edges=tuple(tuple(float(x) for x in e) for e in fields["edges"]),
            shares=tuple(tuple(float(x) for x in s) for s in fields["shares"]),
            missing=tuple(float(x) for x in fields["missing"]),
            rows=int(fields["rows"]),
        )

    def stability(self, matrix: np.ndarray) -> dict[str, float]:
        """Population stability index of each feature of ``matrix`` against training."""
        return self.stability_of(self.tally(matrix))

    def tally(self, matrix: np.ndarray) -> ProfileTally:
        """Rows per training bin and missing rows of each feature: tallies of disjoint row
        sets add up, so a cluster tallies partition by partition and merges."""
        counts = tuple(
            _bin_counts(column[~np.isnan(column)], np.asarray(edges))
            for column, edges in zip(matrix.T, self.edges, strict=True)
        )
        missing = np.isnan(matrix).sum(axis=0) if matrix.shape[1] else np.zeros(0)
        return ProfileTally(counts, np.asarray(missing, dtype=np.int64), int(matrix.shape[0]))

    def stability_of(self, tally: ProfileTally) -> dict[str, float]:
        """Population stability index of each feature of the tallied rows against training."""
        out = {}
        for j, name in enumerate(self.names):
            counts = tally.counts[j]
            known = int(counts.sum())
            expected = np.append(
                np.asarray(self.shares[j]) * (1 - self.missing[j]), self.missing[j]
            )
            actual = np.append(
                counts / max(known, 1) * (known / max(tally.rows, 1)),
                tally.missing[j] / tally.rows if tally.rows else 0.0,
            )
            expected, actual = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
            out[name] = float(np.sum((actual - expected) * np.log(actual / expected)))
        return out


@dataclass(frozen=True)
class ProfileTally:
    """Per feature: rows in each training bin, rows missing; and the rows tallied."""

    counts: tuple[np.ndarray, ...]
    missing: np.ndarray
    rows: int

    def merge(self, other: ProfileTally) -> ProfileTally:
        return ProfileTally(
            tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            self.missing + other.missing,
            self.rows + other.rows,
        )

    def missing_share(self) -> np.ndarray:
        """Share of the tallied rows where each feature is missing (NaN when none were)."""
        return self.missing / self.rows if self.rows else np.full(len(self.missing), np.nan)


def _bin_counts(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    return np.bincount(
        np.searchsorted(inner_edges, values, side="right"), minlength=len(inner_edges) + 1
    )


def _shares(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    counts = _bin_counts(values, inner_edges)
    return counts / max(counts.sum(), 1)
