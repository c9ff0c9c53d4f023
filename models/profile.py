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
        out = {}
        for j, name in enumerate(self.names):
            column = matrix[:, j]
            known = column[~np.isnan(column)]
            expected = np.append(
                np.asarray(self.shares[j]) * (1 - self.missing[j]), self.missing[j]
            )
            actual = np.append(
                _shares(known, np.asarray(self.edges[j])) * (len(known) / max(len(column), 1)),
                np.isnan(column).mean() if len(column) else 0.0,
            )
            expected, actual = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
            out[name] = float(np.sum((actual - expected) * np.log(actual / expected)))
        return out


def _shares(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(
        np.searchsorted(inner_edges, values, side="right"), minlength=len(inner_edges) + 1
    )
    return counts / max(counts.sum(), 1)
