"""What every section reads and returns: the gathered inputs, the ``Section`` record, and
small helpers for turning frames and figures into JSON and words."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from features.tables import Tables
from training.outcomes import Outcomes
from training.report import html


@dataclass(frozen=True)
class ScoredNow:
    """Every account active at the end of the data, scored by the report's model."""

    accounts: pd.DataFrame  # training.report.risk.scored_accounts
    model: str  # e.g. "models:/churn-model@champion (version 3)"
    horizon_days: int | None
    as_of: dt.date


@dataclass
class ReportInputs:
    """Everything the sections read; computed once, shared by every section."""

    tables: Tables
    end: dt.date
    source: str
    account_months: pd.DataFrame
    scored: ScoredNow | None = None
    backtest: pd.DataFrame | None = None
    backtest_source: str = ""
    outcomes: Outcomes | None = None
    outcomes_source: str = ""
    top: int = 25


@dataclass
class Section:
    """One part of the report: its HTML, its numbers, its CSVs and its charts."""

    key: str  # anchor in the page, key in report.json
    title: str
    html: str
    data: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # CSV name -> frame
    images: dict[str, bytes] = field(default_factory=dict)  # plots/NAME.png


SectionBuilder = Callable[[ReportInputs], Section]


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows for JSON: dates as ISO strings, missing numbers as None."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.strftime("%Y-%m-%d")
    out = out.astype(object).where(out.notna(), None)
    return out.to_dict(orient="records")


def at_source(source: str) -> str:
    """' in SOURCE' for a note, nothing when there is no source."""
    return f" in {source}" if source else ""


def number(value: float, spec: str) -> str:
    """One figure in words, as the tables show it."""
    return html.cell(value, spec)
