"""Small hand-made data sets: every number in the snapshot tests can be checked by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from features.tables import Tables, load_tables


def tiny_frames() -> dict[str, pd.DataFrame]:
    """Two accounts; events placed on window edges around as_of 2024-06-30."""
    return {
        "accounts": pd.DataFrame(
            {
                "account_id": ["a", "b"],
                "signup_date": ["2023-11-15", "2024-05-01"],
                "churn_date": [None, None],
                "plan": ["enterprise", "starter"],  # current (export-time) values
                "contract_type": ["annual", "monthly"],
                "seats": [4, 2],
                "mrr": [400.0, 20.0],
                "industry": ["retail", "media"],
                "employees": [120, 8],
                "churn_reason": [None, None],
            }
        ),
        "subscriptions": pd.DataFrame(
            {
                "account_id": ["a", "a", "a", "b"],
                "date": ["2024-01-01", "2024-04-02", "2024-07-10", "2024-05-01"],
                "mrr": [1000.0, 800.0, 400.0, 20.0],
                "seats": [10, 8, 4, 2],
                "plan": ["enterprise", "growth", "enterprise", "starter"],
            }
        ),
        "usage": pd.DataFrame(
            {
                "account_id": ["a"] * 8 + ["b"],
                "user_id": ["u1", "u1", "u2", "u2", "u3", "u1", "u4", "u1", "v1"],
                # as_of 2024-06-30: window 0 is (05-31, 06-30], window 1 (05-01, 05-31]
                "date": [
                    "2024-06-30",  # counts (edge: as_of itself)
                    "2024-06-30",  # duplicate row
                    "2024-06-01",  # counts (first day inside window 0)
                    "2024-05-31",  # window 1 (edge: as_of - 30 is outside window 0)
                    "2024-05-02",  # window 1
                    "2024-05-15",  # window 1
                    "2024-07-01",  # after as_of: never counts
                    "2024-01-02",  # as_of - 180 days: just outside window 5
                    "2024-06-15",
                ],
            }
        ),
        "nps": pd.DataFrame(
            {
                "account_id": ["a", "a", "a", "a"],
                "date": ["2023-06-30", "2024-01-10", "2024-06-30", "2024-07-02"],
                "score": [10, 8, 3, 10],
                "touchpoint": ["other", "onboarding", "qbr", "support"],
            }
        ),
        "contacts": pd.DataFrame(
            {
                "account_id": ["a", "a", "a"],
                "date": ["2024-04-01", "2024-04-02", "2024-08-01"],
                "channel": ["call"] * 3,
            }
        ),
        "tickets": pd.DataFrame(
            {
                "account_id": ["a", "a", "a", "a"],
                "opened_date": ["2024-06-01", "2024-06-10", "2024-04-01", "2024-07-05"],
                "closed_date": ["2024-06-03", "2024-07-20", "2024-04-02", None],
                "priority": ["urgent", "low", "high", "high"],
            }
        ),
        "stakeholders": pd.DataFrame(
            {
                "account_id": ["a", "a", "a"],
                "date": ["2024-04-01", "2024-04-02", "2024-07-01"],
                "change": ["left", "left", "left"],
                "role": ["champion", "champion", "admin"],
            }
        ),
    }


@pytest.fixture
def frames() -> dict[str, pd.DataFrame]:
    return tiny_frames()


@pytest.fixture
def tables(frames: dict[str, pd.DataFrame]) -> Tables:
    return load_tables(None, frames)
