"""The array types and vectorized random draws every stage of the simulation shares."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.int8]


def sigmoid(x: Floats) -> Floats:
    return 1.0 / (1.0 + np.exp(-x))


def uniform(u: Floats, bounds: tuple[float, float]) -> Floats:
    return bounds[0] + (bounds[1] - bounds[0]) * u


def choice(u: Floats, mix: tuple[float, ...] | Floats) -> Codes:
    """Categorical draw from uniforms (vectorized inverse CDF); `mix` may be per row (n, k)."""
    cdf = np.cumsum(np.asarray(mix, dtype=np.float64), axis=-1)
    cdf = cdf / cdf[..., -1:]
    if cdf.ndim == 1:
        return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1).astype(np.int8)
    return np.minimum((u[:, None] >= cdf).sum(axis=1), cdf.shape[1] - 1).astype(np.int8)


def details(rng: np.random.Generator, happened: Bools, count: int) -> Floats:
    """`count` uniforms per account, drawn only where an event happened (0.5 elsewhere)."""
    out = np.full((count, len(happened)), 0.5)
    where = np.flatnonzero(happened)
    out[:, where] = rng.random((count, len(where)))
    return out
