"""Training benchmark: time and peak memory of `fit_and_evaluate` at 100k and 1M snapshot rows.

Snapshot rows are generated directly (vectorised numpy, every snapshot field, a churn
label driven by usage, NPS, tickets, contract and tenure), split by observation date
like real training sets, and fitted with the default parameters: feature derivation,
LightGBM for both model forms with early stopping, the refit, the calibrator, the
logistic baseline and the test metrics. Each size runs in a fresh process so its peak
RSS is its own.

    .venv/bin/python bench/train.py            # 100k and 1M rows
    .venv/bin/python bench/train.py --rows 200000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

# Run as a script, this folder would shadow nothing, but keep the repository root first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

DATES = 30  # monthly observation dates


def synthetic_prepared(rows: int, seed: int = 0):
    """A ``Prepared`` training set of ``rows`` snapshots over ``DATES`` month starts."""
    from training.dataset import SPLITS, SplitPlan
    from training.pipeline import Prepared

    rng = np.random.default_rng(seed)
    accounts = max(rows // DATES * 2, 1)
    account = rng.integers(0, accounts, rows)
    months = np.sort(rng.integers(0, DATES, rows))
    as_of = pd.Timestamp("2023-04-01") + pd.to_timedelta(months * 30.44, unit="D").round("D")
    tenure = rng.gamma(2.0, 250.0, rows)
    seats = np.maximum(1, rng.lognormal(2.3, 0.8, rows)).round()
    health = rng.normal(0, 1, rows)
    active = np.clip(0.6 + 0.15 * health, 0.05, 1.0) * seats
    mau = np.clip(active[:, None] + rng.normal(0, 1.5, (rows, 6)), 0, None).round()
    nps = np.where(
        rng.random(rows) < 0.5,
        np.clip(np.round(7 + 1.5 * health + rng.normal(0, 1.3, rows)), 0, 10),
        np.nan,
    )
    tickets = rng.poisson(np.exp(-1.5 - 0.5 * health))
    annual = rng.random(rows) < 0.45
    logit = -3.2 - 1.1 * health - 0.0015 * tenure + 0.6 * (tickets > 1) - 0.8 * annual
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    frame = pd.DataFrame(
        {
            "account_id": pd.Series(np.char.add("A", account.astype(str)), dtype="string"),
            "as_of": as_of.astype("datetime64[s]"),
            "signup_date": (as_of - pd.to_timedelta(tenure.round(), unit="D")).astype(
                "datetime64[s]"
            ),
            "plan": pd.Series(
                rng.choice(["starter", "growth", "enterprise"], rows), dtype="string"
            ),
            "contract_type": pd.Series(np.where(annual, "annual", "monthly"), dtype="string"),
            "renewal_date": (as_of + pd.to_timedelta(rng.integers(1, 365, rows), unit="D")).astype(
                "datetime64[s]"
            ),
            "seats": seats,
            "mrr": seats * rng.uniform(20, 70, rows),
            "mrr_90d_ago": seats * rng.uniform(20, 70, rows),
            **{f"mau_{k}": mau[:, k] for k in range(6)},
            "dau_avg_30d": mau[:, 0] * rng.uniform(0.1, 0.5, rows),
            "nps_last": nps,
            "nps_last_date": (as_of - pd.to_timedelta(rng.integers(1, 300, rows), unit="D")).astype(
                "datetime64[s]"
            ),
            "nps_avg_12m": nps,
            "nps_count_12m": np.where(np.isnan(nps), 0.0, 1.0),
            "last_contact_date": (
                as_of - pd.to_timedelta(rng.integers(1, 200, rows), unit="D")
            ).astype("datetime64[s]"),
            "contacts_90d": rng.poisson(1.0, rows).astype(float),
            "tickets_30d": tickets.astype(float),
            "tickets_90d": (tickets + rng.poisson(0.5, rows)).astype(float),
            "tickets_open": rng.poisson(0.3, rows).astype(float),
            "tickets_high_90d": rng.poisson(0.1, rows).astype(float),
            "ticket_hours_to_close_avg_90d": rng.gamma(2.0, 20.0, rows),
            "stakeholders_left_90d": rng.poisson(0.05, rows).astype(float),
            "tenure_months": tenure / 30.44,
            "attributes.industry": pd.Series(
                rng.choice(["retail", "media", "software", "finance"], rows), dtype="string"
            ),
            "attributes.employees": rng.lognormal(5, 1.2, rows).round(),
            "churned": label,
        }
    )
    dates = sorted(frame["as_of"].unique())
    assignment = SplitPlan().assign([pd.Timestamp(d).date() for d in dates])
    frame["split"] = frame["as_of"].dt.date.map(assignment)
    frames = {split: frame.loc[frame["split"] == split].reset_index(drop=True) for split in SPLITS}
    summary = frame.groupby("split").size().to_frame("rows")
    return Prepared(
        frames=frames, summary=summary, metadata={"mode": "events", "horizon_days": 90}, tags={}
    )


def measure(rows: int, queue: mp.Queue) -> None:
    from training.params import TrainParams
    from training.pipeline import fit_and_evaluate
    from training.progress import Steps

    prepared = synthetic_prepared(rows)
    started = time.perf_counter()
    steps = Steps(enabled=False)
    trained = fit_and_evaluate(prepared, TrainParams(), steps)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(
        {
            "rows": rows,
            "seconds": seconds,
            "peak_mib": peak_mib,
            "auc": trained.metrics["test_roc_auc"],
            "form": trained.model.card.model_form,
            "trees": trained.model.booster.num_trees(),
            "steps": {k: round(v, 1) for k, v in steps.timings.items()},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000])
    args = parser.parse_args()
    context = mp.get_context("spawn")
    results = []
    for rows in args.rows:
        queue = context.Queue()
        process = context.Process(target=measure, args=(rows, queue))
        process.start()
        process.join()
        if process.exitcode != 0:
            raise SystemExit(f"the {rows:,}-row run failed (exit code {process.exitcode})")
        results.append(queue.get())
    print(
        f"{'rows':>10}  {'fit+evaluate (s)':>16}  {'peak RSS (MiB)':>14}  {'form':>13}  {'trees':>5}  {'test AUC':>8}"
    )
    for r in results:
        print(
            f"{r['rows']:>10,}  {r['seconds']:>16.1f}  {r['peak_mib']:>14,.0f}  {r['form']:>13}  {r['trees']:>5}  {r['auc']:>8.3f}"
        )
    for r in results:
        print(f"{r['rows']:,} rows, seconds per step: {r['steps']}")
    print(
        f"load average at end: {' '.join(f'{x:.2f}' for x in __import__('os').getloadavg())} (2 cores, shared)"
    )


if __name__ == "__main__":
    main()
