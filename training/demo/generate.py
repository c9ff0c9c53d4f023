"""The front door: run the four random streams in order and write the set whole."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from features.errors import ChurnError
from features.files import atomic_directory
from features.timeline import MISSING_DAY, day_of, observation_dates
from training.demo.emission import emit_events
from training.demo.frames import accounts_frame, event_frames, truth_frame
from training.demo.history import History, draw_population, keep_accounts, simulate
from training.demo.months import month_of
from training.demo.parameters import LEGACY_OVERSAMPLE, LEGACY_SHARE, LEGACY_SPARE
from training.demo.truth import compute_truth, roc_auc


@dataclass(frozen=True)
class DemoSummary:
    """What `generate_demo` wrote, and how hard the data is (truth base rate and AUC)."""

    accounts: int
    churned: int
    rows: Mapping[str, int]
    truth_rows: int
    base_rate: float
    truth_auc: float
    seconds: float

    def __str__(self) -> str:
        tables = ", ".join(f"{name} {count:,}" for name, count in self.rows.items())
        return (
            f"{self.accounts:,} accounts ({self.churned:,} churned); rows: {tables}; "
            f"truth: {self.truth_rows:,} rows, base rate {self.base_rate:.3f}, "
            f"AUC {self.truth_auc:.3f}; {self.seconds:.1f}s"
        )


DEMO_TABLES = ("accounts", "subscriptions", "usage", "nps", "contacts", "tickets", "stakeholders")
DEMO_FILES = frozenset(f"{name}.parquet" for name in (*DEMO_TABLES, "truth"))


def check_replaceable(out: Path) -> None:
    """The demo set replaces its folder whole: refuse a folder that holds anything else."""
    if out.exists() and not out.is_dir():
        raise ChurnError(f"{out} is a file: give a folder for the demo data set")
    others = (
        sorted(p.name for p in out.iterdir() if p.name not in DEMO_FILES) if out.is_dir() else []
    )
    if others:
        raise ChurnError(
            f"{out} holds files that are not demo tables ({', '.join(others[:5])}): the demo "
            "data set replaces its folder whole, so give a new or empty folder"
        )


def write_set(frames: Mapping[str, pd.DataFrame], out: Path) -> None:
    """Every table into a temporary folder, which then replaces ``out`` whole: an interrupted
    run leaves the previous set (or none), never a mix that `make run` would take as done."""
    with atomic_directory(out) as folder:
        for name, frame in frames.items():
            write_table(frame, folder / f"{name}.parquet")


def write_table(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False)


def generate_demo(
    out: Path,
    accounts: int = 5000,
    start: dt.date = dt.date(2023, 1, 1),
    end: dt.date = dt.date(2025, 12, 31),
    seed: int = 0,
    horizon_days: int = 90,
    truth_paths: int = 256,
    progress: bool = True,
) -> DemoSummary:
    """Simulate `accounts` B2B SaaS customers and write every table plus the truth to `out`.

    Same seed, same frames. Four independent random streams (population, dynamics,
    observation, truth) keep what is observed from ever steering what happens.
    """
    if accounts < 1:
        raise ChurnError(f"accounts must be at least 1, got {accounts}")
    if end <= start:
        raise ChurnError(f"end ({end}) must be after start ({start})")
    if horizon_days < 1 or truth_paths < 1:
        raise ChurnError(
            f"horizon_days and truth_paths must be positive, got {horizon_days} and {truth_paths}"
        )
    began = time.perf_counter()
    out = Path(out).resolve()
    check_replaceable(out)
    start_day, end_day = day_of(start), day_of(end)
    population_rng, dynamics_rng, emission_rng, truth_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    n_legacy = round(accounts * LEGACY_SHARE)
    n_candidates = int(np.ceil(n_legacy * LEGACY_OVERSAMPLE)) + LEGACY_SPARE
    population = draw_population(
        population_rng, n_candidates, accounts - n_legacy, start_day, end_day
    )

    n_months = int(month_of(end_day) - population.initial.signup_month.min() + 1)
    n_emitted = int(month_of(end_day) - month_of(start_day) + 1)
    n_dates = len(observation_dates(start, end, horizon_days))
    with tqdm(
        total=n_months + n_emitted + n_dates, unit="month", desc="simulating", disable=not progress
    ) as bar:
        months, states, churn_day, reason = simulate(population, end_day, dynamics_rng, bar)
        kept = keep_accounts(population, churn_day, n_legacy, start_day)
        history = History(months, [s.take(kept) for s in states], churn_day[kept], reason[kept])
        ids = np.array([f"A{i + 1:06d}" for i in range(len(kept))])
        bar.set_description("emitting events")
        tables = emit_events(history, start_day, end_day, emission_rng, bar)
        bar.set_description("computing truth")
        truth = compute_truth(
            history, start_day, end_day, horizon_days, truth_paths, truth_rng, bar
        )

    max_seats = np.max([s.seats for s in history.states], axis=0)
    frames = {"accounts": accounts_frame(population, kept, history, ids, end_day)}
    frames |= event_frames(tables, ids, max_seats, end_day)
    frames["truth"] = truth_frame(truth, ids)
    write_set(frames, out)
    return DemoSummary(
        accounts=len(kept),
        churned=int((history.churn_day != MISSING_DAY).sum()),
        rows={name: len(frame) for name, frame in frames.items() if name != "truth"},
        truth_rows=len(truth.p_true),
        base_rate=float(truth.churned.mean()) if len(truth.churned) else float("nan"),
        truth_auc=roc_auc(truth.p_true, truth.churned),
        seconds=time.perf_counter() - began,
    )
