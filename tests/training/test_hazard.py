"""Fitting the time-to-churn model: held-out accounts, the long-horizon origin."""

from __future__ import annotations

import datetime as dt

import numpy as np

from features.timeline import MISSING_DAY, day_of
from training.dataset import SplitPlan
from training.hazard import HELD_OUT, account_roles, long_test_origin
from training.survival import Outcomes


def test_held_out_accounts_are_whole_accounts_in_the_stated_shares() -> None:
    ids = np.repeat(np.array([f"a{i}" for i in range(4000)], dtype=object), 5)
    role = account_roles(ids, seed=0)
    per_account = role.reshape(4000, 5)
    assert (per_account == per_account[:, :1]).all()  # every snapshot of an account together
    for name, share in HELD_OUT.items():
        assert abs((per_account[:, 0] == name).mean() - share) < 0.02
    assert (account_roles(ids, seed=0) == role).all()


def test_the_long_test_window_is_the_latest_dates_whose_year_is_observed() -> None:
    months = [dt.date(2023, m, 1) for m in range(1, 13)] + [
        dt.date(2024, m, 1) for m in range(1, 13)
    ]
    as_of = np.repeat([day_of(d) for d in months], 3)
    outcomes = Outcomes(as_of, np.full(len(as_of), MISSING_DAY))
    columns = {"account_id": np.tile(np.array(["a", "b", "c"], dtype=object), len(months))}
    end = day_of("2024-12-31")
    origin = long_test_origin(columns, outcomes, end, SplitPlan(), 365)
    test_dates = sorted({int(d) for d in origin.outcomes["test"].as_of})
    # 2024-01-01 + 365 days is 2024-12-31: the last date whose year lies inside the data
    assert test_dates == [day_of("2023-11-01"), day_of("2023-12-01"), day_of("2024-01-01")]
    assert origin.known_until == day_of("2023-11-01")
    assert origin.outcomes["train"].as_of.max() == day_of("2023-05-01")  # 2 val + 3 calib after
    assert all(
        len(origin.columns[s]["account_id"]) == len(origin.outcomes[s]) for s in origin.outcomes
    )
