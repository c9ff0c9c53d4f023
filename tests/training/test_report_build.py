"""The report folder: every section present (with a note where it has nothing to show),
JSON numbers equal to the CSVs, and a failed write leaving the previous report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pandas as pd
import pytest

from features.tables import validate_tables
from training.report.build import build_report, gather, write_report
from training.report.sections import SECTIONS, Section

END = dt.date(2024, 4, 30)


def tables():
    """Twelve accounts over four whole months, no churn reasons, no tickets, no model."""
    accounts = pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(12)],
            "signup_date": ["2023-06-01"] * 8 + ["2024-02-10"] * 4,
            "churn_date": ["2024-01-15", "2024-02-20", "2024-03-05"] + [None] * 9,
            "plan": ["starter", "growth"] * 6,
            "mrr": 100.0,
        }
    )
    contacts = pd.DataFrame({"account_id": ["a3", "a4"], "date": ["2024-01-01", END]})
    return validate_tables({"accounts": accounts, "contacts": contacts})


@pytest.fixture(scope="module")
def report():
    data = tables()
    return build_report(gather(data, END, "hand-made"))


def test_every_section_is_built_and_says_why_when_it_has_nothing(report) -> None:
    assert [s.key for s in report.sections] == [
        "monthly",
        "cohorts",
        "projection",
        "segments",
        "indicators",
        "reasons",
        "at_risk",
        "expected",
        "backtest",
        "outcomes",
    ]
    notes = {s.key: s.html for s in report.sections}
    assert "no churn_reason column" in notes["reasons"]
    assert "No model given" in notes["at_risk"] and "No model given" in notes["expected"]
    assert "No backtest found" in notes["backtest"]
    assert "observed months a backtest needs" in notes["projection"]
    assert "No tickets table: silent churn cannot be told" in notes["indicators"]
    assert len(SECTIONS) == len(report.sections)


def test_the_folder_holds_html_json_csvs_and_charts(report, tmp_path: Path) -> None:
    written = write_report(report, tmp_path / "report")
    names = {p.relative_to(tmp_path / "report").as_posix() for p in written}
    assert {"report.html", "report.json", "monthly.csv", "plots/monthly_churn.png"} <= names
    document = orjson.loads((tmp_path / "report" / "report.json").read_bytes())
    monthly = pd.read_csv(tmp_path / "report" / "monthly.csv")
    shown = document["sections"]["monthly"]["months"]
    assert [m["lost"] for m in shown] == monthly["lost"].tolist() == [1, 1, 1, 0]
    assert document["data_end"] == "2024-04-30" and document["accounts"] == 12


def test_a_section_added_to_the_list_appears_in_the_page(tmp_path: Path) -> None:
    def ahead(inputs) -> Section:
        return Section("ahead", "Next year", "<p>ahead</p>", {"months": 12})

    built = build_report(gather(tables(), END, "hand-made"), [*SECTIONS[:1], ahead])
    assert [s.key for s in built.sections] == ["monthly", "ahead"]
    assert '<section id="ahead">' in built.html()
    assert built.json()["sections"]["ahead"] == {"months": 12}


def test_a_failed_write_leaves_the_previous_report(report, tmp_path: Path) -> None:
    out = tmp_path / "report"
    write_report(report, out)
    before = (out / "report.html").read_text()
    broken = Section("broken", "Broken", "", tables={"no/such/folder": pd.DataFrame()})
    failing = type(report)(report.title, report.subtitle, [*report.sections, broken], report.header)
    with pytest.raises(OSError):
        write_report(failing, out)
    assert (out / "report.html").read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp folder left"
