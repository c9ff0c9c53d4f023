"""The columns view every indicator reads: each column read once, shared read-only."""

from __future__ import annotations

import numpy as np
import pytest

from features.indicators import INDICATORS, View


def columns() -> dict[str, np.ndarray]:
    return {
        "seats": np.array([10, 4, 0]),
        **{f"mau_{i}": np.array([5.0, np.nan, 2.0 + i]) for i in range(6)},
    }


def test_a_column_is_read_once_and_shared_read_only() -> None:
    view = View(columns())
    seats = view.num("seats")
    assert view.num("seats") is seats
    with pytest.raises(ValueError, match="read-only"):
        seats[0] = 1.0


def test_mau_statistics_skip_unknown_windows_and_are_missing_when_none_is_known() -> None:
    view = View(columns())
    np.testing.assert_array_equal(view.mau("mean", 0, 3), [5.0, np.nan, 3.0])
    np.testing.assert_array_equal(view.mau("max"), [5.0, np.nan, 7.0])


def test_indicators_sharing_a_view_equal_each_on_a_fresh_view() -> None:
    shared = View(columns())
    for name in ("mau_per_seat_90d", "mau_pct_change_90d_vs_prior_90d", "mau_pct_below_6m_peak"):
        np.testing.assert_array_equal(
            INDICATORS[name].compute(shared), INDICATORS[name].compute(View(columns()))
        )
