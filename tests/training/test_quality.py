"""Quality floors on demo data: the model against the Bayes limit (truth.parquet) and against
what a data scientist tries first (LightGBM's defaults, a logistic regression).

`make quality` runs seeds 0-2 at full size (5,000 accounts, 3 years); every seed must
reach the floor on its own. The demo generator's noise is fixed (docs/demo-data.md): these floors are
met by features and modelling, never by changing the generator. bench/quality.py prints
the same comparison side by side.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from features.tables import load_tables
from training.compare import references_on_test_window, short_of_references, truth_roc_auc
from training.demo import generate_demo
from training.params import TrainParams
from training.pipeline import fit_and_evaluate, prepare_events
from training.progress import Steps

ACCOUNTS, START, END = 5000, dt.date(2023, 1, 1), dt.date(2025, 12, 31)
# Model AUC at most this far below the truth's AUC on the same rows: on average over the
# seeds, and for each seed with room for a test window of ~500 churners (one standard error
# of the AUC is about 0.01). Honest test windows since the refit is purged
# (training.prepare.refit_rows): seeds 0-2 at 0.039, 0.040, 0.034.
FLOOR, SEED_FLOOR = 0.04, 0.045
LEAK = 0.01  # a model above the truth by more than this can only be seeing the future
MAX_ECE = 0.02
SEED_NOISE = 0.002  # one changed parameter moves one seed's test AUC by about this much


@dataclass(frozen=True)
class Outcome:
    seed: int
    model_auc: float
    model_pr_auc: float
    truth_auc: float
    baseline_auc: float
    ece: float
    references: dict[str, dict[str, float]]

    @property
    def gap(self) -> float:
        return self.truth_auc - self.model_auc


def train_on_demo(
    seed: int, out: Path, references: bool = False, params: TrainParams | None = None
) -> Outcome:
    if not (out / "truth.parquet").is_file():
        generate_demo(out, accounts=ACCOUNTS, start=START, end=END, seed=seed, progress=False)
    prepared = prepare_events(load_tables(out), horizon_days=90)
    trained = fit_and_evaluate(prepared, params or TrainParams(), Steps(enabled=False))
    return Outcome(
        seed=seed,
        model_auc=trained.metrics["test_roc_auc"],
        model_pr_auc=trained.metrics["test_pr_auc"],
        truth_auc=truth_roc_auc(prepared.frames["test"], pd.read_parquet(out / "truth.parquet")),
        baseline_auc=trained.baseline_metrics["test_roc_auc"],
        ece=trained.metrics["test_ece"],
        references=references_on_test_window(prepared) if references else {},
    )


def check_outcome(outcome: Outcome) -> None:
    assert outcome.model_auc <= outcome.truth_auc + LEAK, (
        f"AUC above the Bayes limit: leakage? {outcome}"
    )
    assert outcome.gap <= SEED_FLOOR, (
        f"seed {outcome.seed}: {outcome.gap:.4f} below the truth's AUC: {outcome}"
    )
    assert outcome.ece <= MAX_ECE, outcome
    assert outcome.model_auc > outcome.baseline_auc, outcome


@pytest.mark.quality
def test_seeds_reach_the_floor_and_the_references_no_worse_than_the_fixed_capacity(
    tmp_path: Path,
) -> None:
    """Seeds 0-2: each reaches the floor and LightGBM's defaults / a logistic regression
    (learnt from the rows settled before the test window: training/compare.py); each gap to
    the truth, and their mean, no worse than the fixed capacity's, trained side by side.

    The fixed capacity is trained here rather than read from the figures published before
    the search (0.031-0.034): those came from a refit that learnt the last calibration
    dates, whose labels are churn inside the test window (training.prepare.refit_rows).
    """
    shipped, fixed = [], []
    for seed in (0, 1, 2):
        out = tmp_path / f"seed{seed}"
        outcome = train_on_demo(seed, out, references=True)
        before = train_on_demo(seed, out, params=TrainParams(search_candidates=0))
        print(
            f"seed {seed}: model {outcome.model_auc:.4f} truth {outcome.truth_auc:.4f} "
            f"gap {outcome.gap:.4f} (fixed capacity {before.gap:.4f}) baseline "
            f"{outcome.baseline_auc:.4f} ece {outcome.ece:.4f} references {outcome.references}"
        )
        check_outcome(outcome)
        assert outcome.gap <= before.gap + SEED_NOISE, (outcome, before)
        scores = {"roc_auc": outcome.model_auc, "pr_auc": outcome.model_pr_auc}
        assert not short_of_references(scores, outcome.references), outcome
        shipped.append(outcome.gap)
        fixed.append(before.gap)
    assert sum(shipped) / 3 <= FLOOR, shipped
    assert sum(shipped) / 3 <= sum(fixed) / 3 + SEED_NOISE / 2, (shipped, fixed)
