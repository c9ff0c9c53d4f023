"""The report's sections, in order: each builder turns the gathered inputs into one
``Section`` (its HTML, its numbers for report.json, its CSV tables and charts).

A new section is one more builder in ``SECTIONS`` (or in the list given to
``build_report``); nothing else changes.
"""

from __future__ import annotations

from training.report.data_sections import (
    cohorts_section,
    indicators_section,
    monthly_section,
    projection_section,
    reasons_section,
    segments_section,
)
from training.report.inputs import ReportInputs, ScoredNow, Section, SectionBuilder
from training.report.model_sections import (
    at_risk_section,
    backtest_section,
    expected_section,
    outcomes_section,
)

SECTIONS: list[SectionBuilder] = [
    monthly_section,
    cohorts_section,
    projection_section,
    segments_section,
    indicators_section,
    reasons_section,
    at_risk_section,
    expected_section,
    backtest_section,
    outcomes_section,
]

__all__ = ["SECTIONS", "ReportInputs", "ScoredNow", "Section", "SectionBuilder"]
