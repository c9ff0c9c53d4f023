"""Leading indicators before churn: what lost accounts looked like in their last months,
against accounts that stayed, compared at the same tenure.

Every account lost inside the data (with six months of recorded history before it left)
is paired with one retained account drawn at random among those that reached the same
tenure inside the history; both are snapshotted 1..6 months before that tenure. Pairing
at equal tenure matters: young accounts use less and talk to their CSM more, so a plain
"churned vs everyone" comparison would mostly show tenure. The draw is seeded, so the
report is reproducible.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from features.derive import INDICATORS, View
from features.schema import frame_to_columns
from features.snapshot import build_snapshots
from features.tables import Tables, account_days
from features.timeline import MISSING_DAY, add_months, day_of, days_to_datetime

MONTHS_BEFORE = 6
SEED = 0
SHOWN = {  # stage-2 indicator -> what the report calls it
    "mau_per_seat_30d": "active users per seat (30 days)",
    "dau_mau_ratio_30d": "DAU/MAU (30 days)",
    "nps_last_score": "last NPS answer",
    "days_since_last_contact": "days since last contact",
}
GROUPS = ("churned", "retained")


def matched_references(tables: Tables, end: dt.date) -> pd.DataFrame:
    """(account_id, reference day, group): lost accounts at their churn day and, for each,
    a retained account at the same tenure (none where no retained account qualifies)."""
    accounts = tables.accounts
    ids = accounts["account_id"].to_numpy(dtype=object)
    signup = account_days(accounts, "signup_date")
    churn = account_days(accounts, "churn_date")
    first, last = day_of(tables.data_start()), day_of(end)
    lookback = add_months(np.array([last]), -MONTHS_BEFORE)[0] - last  # about -183 days
    lost = (churn != MISSING_DAY) & (churn <= last) & (churn + lookback >= first)
    tenure = (churn - signup)[lost]
    stayed = np.flatnonzero((signup != MISSING_DAY) & ((churn == MISSING_DAY) | (churn > last)))
    stayed = stayed[np.argsort(signup[stayed], kind="stable")]
    ordered = signup[stayed]
    # a retained account qualifies if its reference (signup + tenure) and the six months
    # before it lie inside the history
    low = np.searchsorted(ordered, first - lookback - tenure, side="left")
    high = np.searchsorted(ordered, last - tenure, side="right")
    count = np.maximum(high - low, 0)
    draw = np.random.default_rng(SEED).random(len(tenure))
    pick = low + np.floor(draw * count).astype(np.int64)
    matched = count > 0
    partner = stayed[pick[matched]]
    return pd.DataFrame(
        {
            "account_id": np.concatenate([ids[lost], ids[partner]]),
            "reference": np.concatenate([churn[lost], signup[partner] + tenure[matched]]),
            "group": np.repeat(list(GROUPS), [int(lost.sum()), int(matched.sum())]),
        }
    )


def indicators_before_churn(tables: Tables, end: dt.date) -> pd.DataFrame:
    """Median of each shown indicator 1..6 months before churn, churned vs retained at the
    same tenure, with the number of accounts behind each median."""
    references = matched_references(tables, end)
    months = np.arange(1, MONTHS_BEFORE + 1)
    reference = np.repeat(references["reference"].to_numpy(), len(months))
    before = np.tile(months, len(references))
    points = pd.DataFrame(
        {
            "account_id": np.repeat(references["account_id"].to_numpy(), len(months)),
            "as_of": days_to_datetime(add_months(reference, -before)),
        }
    )
    if len(points) == 0:
        return _empty()
    view = View(frame_to_columns(build_snapshots(tables, points)))
    long = pd.concat(
        [
            pd.DataFrame(
                {
                    "indicator": name,
                    "months_before": before,
                    "group": np.repeat(references["group"].to_numpy(), len(months)),
                    "value": INDICATORS[name].compute(view),
                }
            )
            for name in SHOWN
        ],
        ignore_index=True,
    )
    grouped = long.groupby(["indicator", "months_before", "group"], sort=False)["value"]
    table = grouped.agg(["median", "count"]).unstack("group")
    table.columns = [f"{group}_{stat}" for stat, group in table.columns]
    table = table.reindex(columns=[f"{g}_{s}" for g in GROUPS for s in ("median", "count")])
    table = table.rename(columns=lambda c: c.replace("_count", "_accounts"))
    table = table.reset_index()
    table["indicator"] = pd.Categorical(table["indicator"], categories=list(SHOWN))
    return table.sort_values(["indicator", "months_before"], ignore_index=True).astype(
        {"indicator": str}
    )


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        columns=[
            "indicator",
            "months_before",
            *(f"{g}_{s}" for g in GROUPS for s in ("median", "accounts")),
        ]
    )
