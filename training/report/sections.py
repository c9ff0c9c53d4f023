"""The report's sections: each builder turns the gathered inputs into one ``Section``
(its HTML, its numbers for report.json, its CSV tables and charts).

``SECTIONS`` is the ordered list the report is built from; a new section is one more
builder appended to it (or passed to ``build_report``), nothing else changes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from features.tables import Tables
from training.outcomes import Outcomes
from training.report import html, plots
from training.report.html import COUNT, DATE, MONEY, MONTH, RATE, RATIO, SHARE
from training.report.indicators import MONTHS_BEFORE, SHOWN, indicators_before_churn
from training.report.monthly import annualized, cohort_retention, monthly_figures
from training.report.risk import expected_by_segment
from training.report.segments import (
    churn_by_segment,
    churn_reasons,
    lost_accounts,
    silent_churn,
)

SUMMARY_MONTHS = 12
COHORT_MONTHS_SHOWN = (1, 3, 6, 12, 18, 24)


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


def _at(source: str) -> str:
    return f" in {source}" if source else ""


def _number(value: float, spec: str) -> str:
    return html.cell(value, spec)


# --- data sections ----------------------------------------------------------------------------


def monthly_section(inputs: ReportInputs) -> Section:
    monthly = monthly_figures(inputs.tables, inputs.end)
    recent = monthly.tail(SUMMARY_MONTHS)
    pooled = float(recent["lost"].sum() / max(recent["customers_start"].sum(), 1))
    summary = {
        "months": len(recent),
        "first_month": recent["month"].iloc[0].strftime("%Y-%m"),
        "last_month": recent["month"].iloc[-1].strftime("%Y-%m"),
        "monthly_churn_rate": pooled,
        "annualized_churn_rate": float(annualized(pooled)),
        "customers_at_end": int(monthly["customers_end"].iloc[-1]),
        "net_revenue_retention_mean": float(recent["net_revenue_retention"].mean()),
    }
    body = [
        html.facts(
            {
                f"monthly churn rate, last {len(recent)} months": _number(pooled, RATE),
                "the same, annualized": _number(summary["annualized_churn_rate"], SHARE),
                "customers at the end": _number(summary["customers_at_end"], COUNT),
                "net revenue retention (monthly mean)": _number(
                    summary["net_revenue_retention_mean"], SHARE
                ),
            }
        ),
        html.paragraph(
            "Churn rate = customers lost in the month / customers at its start: new sign-ups "
            "cannot hide losses. Retention rate = (customers at the end - new) / customers at the "
            "start, shown beside gross additions (new / start). Annualized = 1 - (1 - monthly "
            "rate)^12: 5% a month loses about 46% of a book in a year. Gross MRR churn and net "
            "revenue retention weigh the accounts present at the start by their MRR."
        ),
    ]
    image = plots.png(plots.monthly_churn(monthly))
    body.append(html.image(image, "monthly churn and retention", "whole calendar months only"))
    body.append(
        html.table(
            monthly,
            {
                "month": ("month", MONTH),
                "customers_start": ("customers at start", COUNT),
                "new": ("new (gross additions)", COUNT),
                "lost": ("lost", COUNT),
                "churn_rate": ("churn rate", RATE),
                "annualized_churn_rate": ("annualized", SHARE),
                "retention_rate": ("retention", RATE),
                "gross_additions_rate": ("gross additions rate", RATE),
                "gross_mrr_churn_rate": ("gross MRR churn", RATE),
                "net_revenue_retention": ("net revenue retention", SHARE),
            },
        )
    )
    return Section(
        "monthly",
        "Churn and retention by month",
        "\n".join(body),
        {"summary": summary, "months": records(monthly)},
        {"monthly": monthly},
        {"monthly_churn": image},
    )


def cohorts_section(inputs: ReportInputs) -> Section:
    cohorts = cohort_retention(inputs.tables, inputs.end)
    if len(cohorts) == 0:
        return Section(
            "cohorts",
            "Cohort retention",
            html.paragraph("No account signed up inside the recorded history.", note=True),
        )
    image = plots.png(plots.cohort_heatmap(cohorts))
    shown = {m: (f"after {m} mo", SHARE) for m in COHORT_MONTHS_SHOWN if m in cohorts.columns}
    frame = cohorts.reset_index()
    body = [
        html.paragraph(
            "Share of each signup month still a customer k whole months later. Cohorts that signed "
            "up before the recorded history are left out: an export holds only their survivors."
        ),
        html.image(image, "cohort retention heatmap"),
        html.table(
            frame, {"cohort": ("signup month", MONTH), "accounts": ("accounts", COUNT), **shown}
        ),
    ]
    data = {"cohorts": records(frame.rename(columns=str))}
    return Section(
        "cohorts", "Cohort retention", "\n".join(body), data, {"cohorts": frame}, {"cohorts": image}
    )


def segments_section(inputs: ReportInputs) -> Section:
    segments = churn_by_segment(inputs.account_months)
    shown = segments[segments["segment"] != "NPS category"]
    image = plots.png(plots.segment_churn(shown))
    body = [
        html.paragraph(
            "Monthly churn rate by segment, as each account stood at the start of each month "
            "(lifecycle stage: early 0-3 months, mid 3-12, late 12+). The rate is lost "
            "account-months over account-months, so it reads like the monthly churn rate; the "
            "label on each bar is the same rate annualized."
        ),
        html.image(image, "churn rate by lifecycle stage, contract type and plan"),
        html.table(shown, SEGMENT_COLUMNS),
    ]
    return Section(
        "segments",
        "Where churn happens: lifecycle stage, contract, plan",
        "\n".join(body),
        {"segments": records(segments)},
        {"segments": segments},
        {"segment_churn": image},
    )


SEGMENT_COLUMNS = {
    "segment": ("segment", None),
    "value": ("value", None),
    "account_months": ("account-months", COUNT),
    "lost": ("lost", COUNT),
    "churn_rate": ("monthly churn rate", RATE),
    "annualized_churn_rate": ("annualized", SHARE),
    "mrr_lost": ("MRR lost", MONEY),
}


def indicators_section(inputs: ReportInputs) -> Section:
    indicators = indicators_before_churn(inputs.tables, inputs.end)
    nps = churn_by_segment(inputs.account_months)
    nps = nps[nps["segment"] == "NPS category"]
    lost = lost_accounts(inputs.tables, inputs.end)
    silent = silent_churn(inputs.tables, lost, inputs.end)
    body = [
        html.paragraph(
            f"Medians over the {MONTHS_BEFORE} months before churn for accounts lost inside the "
            "data, against retained accounts drawn at the same tenure (young accounts behave "
            "differently, so comparing with everyone would mostly show tenure)."
        )
    ]
    images: dict[str, bytes] = {}
    if len(indicators):
        images["indicators_before_churn"] = plots.png(
            plots.indicators_before_churn(indicators, SHOWN)
        )
        body.append(html.image(images["indicators_before_churn"], "indicators before churn"))
        wide = indicators.assign(indicator=indicators["indicator"].map(SHOWN)).pivot_table(
            index="indicator",
            columns="months_before",
            values=["churned_median", "retained_median"],
            sort=False,
        )
        shown = (
            pd.concat(
                {group: wide[f"{group}_median"] for group in ("churned", "retained")},
                names=["group"],
            )
            .swaplevel()
            .sort_index(level=0, sort_remaining=False)
            .reset_index()
        )
        months = {m: (f"{m} mo before", "{:,.2f}") for m in range(MONTHS_BEFORE, 0, -1)}
        body.append(
            html.table(
                shown, {"indicator": ("indicator", None), "group": ("accounts", None), **months}
            )
        )
    else:
        body.append(
            html.paragraph("No lost account has six months of history before it left.", True)
        )
    body.append(html.heading("Churn rate by NPS category (last answer before the month)"))
    body.append(html.table(nps, SEGMENT_COLUMNS))
    body.append(html.heading("Silent churn"))
    if silent is None:
        body.append(html.paragraph("No tickets table: silent churn cannot be told.", note=True))
    else:
        body.append(
            html.facts(
                {
                    "of lost accounts never opened a ticket": _number(
                        silent["silent_share"], SHARE
                    ),
                    "lost accounts": _number(silent["lost_accounts"], COUNT),
                    "of current customers have no ticket on record": _number(
                        silent["current_without_tickets_share"], SHARE
                    ),
                }
            )
        )
        body.append(
            html.paragraph(
                "A lost account that never opened a support ticket gave no warning through "
                "support: its signals are usage, NPS and contact gaps."
            )
        )
    return Section(
        "indicators",
        "Leading indicators before churn",
        "\n".join(body),
        {
            "indicators_before_churn": records(indicators),
            "churn_by_nps_category": records(nps),
            "silent_churn": silent,
        },
        {"indicators_before_churn": indicators},
        images,
    )


def reasons_section(inputs: ReportInputs) -> Section:
    title = "Why customers leave: stated churn reasons"
    if "churn_reason" not in inputs.tables.accounts:
        return Section(
            "reasons",
            title,
            html.paragraph("accounts has no churn_reason column: nothing to show here.", True),
        )
    lost = lost_accounts(inputs.tables, inputs.end)
    by_reason, by_stage = churn_reasons(lost)
    image = plots.png(plots.reasons(by_reason))
    stage_columns = {"churn_reason": ("reason", None)}
    stage_columns.update(
        {
            c: (c.replace("accounts_", "accounts, ").replace("mrr_lost_", "MRR lost, "), COUNT)
            for c in by_stage.columns
            if c != "churn_reason"
        }
    )
    body = [
        html.paragraph(
            f"{len(lost):,} accounts lost inside the data window; MRR is each account's on its "
            "last day as a customer."
        ),
        html.image(image, "accounts and MRR lost by reason"),
        html.table(
            by_reason,
            {
                "churn_reason": ("reason", None),
                "accounts": ("accounts lost", COUNT),
                "share_of_accounts": ("share of accounts", SHARE),
                "mrr_lost": ("MRR lost", MONEY),
                "share_of_mrr": ("share of MRR", SHARE),
            },
        ),
        html.heading("By reason and lifecycle stage at churn"),
        html.table(by_stage, stage_columns),
    ]
    return Section(
        "reasons",
        title,
        "\n".join(body),
        {"by_reason": records(by_reason), "by_reason_and_stage": records(by_stage)},
        {"churn_reasons": by_reason, "churn_reasons_by_stage": by_stage},
        {"churn_reasons": image},
    )


# --- model sections ---------------------------------------------------------------------------


def at_risk_section(inputs: ReportInputs) -> Section:
    title = "Accounts at risk now"
    if inputs.scored is None:
        return Section("at_risk", title, html.paragraph(NO_MODEL, note=True))
    scored = inputs.scored
    accounts = scored.accounts
    top = accounts.head(inputs.top)
    horizon = f"{scored.horizon_days} days" if scored.horizon_days else "the model's horizon"
    summary = {
        "model": scored.model,
        "as_of": scored.as_of.isoformat(),
        "horizon_days": scored.horizon_days,
        "accounts": len(accounts),
        "expected_churners": float(accounts["churn_probability"].sum()),
        "revenue_at_risk": float(accounts["revenue_at_risk"].sum()),
        "top_revenue_at_risk": float(top["revenue_at_risk"].sum()),
    }
    body = [
        html.facts(
            {
                "accounts scored": _number(len(accounts), COUNT),
                f"expected churners in {horizon}": _number(summary["expected_churners"], COUNT),
                "annual revenue at risk": _number(summary["revenue_at_risk"], MONEY),
                f"of it in the top {len(top)}": _number(summary["top_revenue_at_risk"], MONEY),
            }
        ),
        html.paragraph(
            f"Every account active on {scored.as_of} scored by {scored.model}; ranked by annual "
            "revenue at risk (probability x MRR x 12). Reasons are the features that raise each "
            "account's risk most; actions come from the playbook."
        ),
        html.table(
            top,
            {
                "account_id": ("account", None),
                "lifecycle_stage": ("stage", None),
                "plan": ("plan", None),
                "mrr": ("MRR", MONEY),
                "churn_probability": ("churn probability", SHARE),
                "risk_tier": ("tier", None),
                "revenue_at_risk": ("revenue at risk", MONEY),
                "drivers": ("why", None),
                "actions": ("what to do", None),
            },
            words=("drivers", "actions"),
        ),
    ]
    return Section(
        "at_risk",
        title,
        "\n".join(body),
        {"summary": summary, "top_accounts": records(top)},
        {"at_risk": accounts},
    )


NO_MODEL = "No model given (--model URI or bundle path): model sections are left out."


def expected_section(inputs: ReportInputs) -> Section:
    title = "Expected churners next horizon, by segment"
    if inputs.scored is None:
        return Section("expected", title, html.paragraph(NO_MODEL, note=True))
    expected = expected_by_segment(inputs.scored.accounts)
    image = plots.png(plots.expected_churners(expected))
    body = [
        html.paragraph(
            "Expected churners = the sum of the calibrated probabilities of the segment's "
            "accounts: what the model expects to lose over its horizon if nothing is done."
        ),
        html.image(image, "expected churners by segment"),
        html.table(
            expected,
            {
                "segment": ("segment", None),
                "value": ("value", None),
                "accounts": ("accounts", COUNT),
                "expected_churners": ("expected churners", "{:,.1f}"),
                "mean_probability": ("mean probability", SHARE),
                "revenue_at_risk": ("revenue at risk", MONEY),
            },
        ),
    ]
    return Section(
        "expected",
        title,
        "\n".join(body),
        {"by_segment": records(expected)},
        {"expected_churners": expected},
        {"expected_churners": image},
    )


BACKTEST_COLUMNS = {
    "origin": ("origin", DATE),
    "accounts": ("accounts", COUNT),
    "churners": ("churners", COUNT),
    "roc_auc": ("ROC-AUC", RATIO),
    "baseline_roc_auc": ("baseline ROC-AUC", RATIO),
    "naive_roc_auc": ("naive ROC-AUC", RATIO),
    "pr_auc": ("PR-AUC", RATIO),
    "lift_top10": ("lift top 10%", "{:.2f}"),
    "capture_top10": ("capture top 10%", SHARE),
    "ece": ("ECE", "{:.4f}"),
    "predicted_churners": ("predicted churners", "{:,.1f}"),
    "realized_churners": ("realized churners", COUNT),
    "note": ("note", None),
}


def backtest_section(inputs: ReportInputs) -> Section:
    title = "Backtest: would it have worked, month by month?"
    backtest = inputs.backtest
    if backtest is None or len(backtest) == 0:
        return Section(
            "backtest",
            title,
            html.paragraph(
                f"No backtest found{_at(inputs.backtest_source)}: run `churn backtest --data DIR` "
                "to see the model's realized metrics per origin here.",
                note=True,
            ),
        )
    images = {
        "backtest_metrics": plots.png(plots.backtest_metrics(backtest)),
        "backtest_churners": plots.png(plots.backtest_churners(backtest)),
    }
    body = [
        html.paragraph(
            f"From {inputs.backtest_source}. At each origin the model was trained exactly as "
            "`churn train` would have trained it with only the data known then, scored the "
            "accounts active that day, and was judged on what they did over the next horizon. "
            "The baseline is the logistic regression of the same run; the naive rule predicts "
            "last horizon's churn rate of the account's lifecycle stage and plan."
        ),
        html.image(images["backtest_metrics"], "backtest metrics per origin"),
        html.image(images["backtest_churners"], "predicted vs realized churners per origin"),
        html.table(
            backtest,
            {k: v for k, v in BACKTEST_COLUMNS.items() if k in backtest},
            flag=~backtest["enough_churners"].astype(bool),
            words=("note",),
        ),
    ]
    return Section(
        "backtest",
        title,
        "\n".join(body),
        {"source": inputs.backtest_source, "origins": records(backtest)},
        {},
        images,
    )


def outcomes_section(inputs: ReportInputs) -> Section:
    title = "Were the predictions right? Realized against predicted"
    found = inputs.outcomes
    if found is None or found.empty:
        return Section(
            "outcomes",
            title,
            html.paragraph(
                f"No logged prediction{_at(inputs.outcomes_source)} has reached the end of its "
                "horizon inside the data yet (`churn score` keeps every score it makes).",
                note=True,
            ),
        )
    latest = found.by_version.sort_values("last_as_of").iloc[-1]
    image = plots.png(
        plots.outcome_calibration(found.tiers, found.deciles, str(latest["model_version"]))
    )
    realized = {
        "model_name": ("model", None),
        "model_version": ("version", None),
        "accounts": ("predictions", COUNT),
        "churners": ("churners", COUNT),
        "predicted_churners": ("predicted churners", "{:,.1f}"),
        "realized_roc_auc": ("realized ROC-AUC", RATIO),
        "realized_lift_top10": ("realized lift top 10%", "{:.2f}"),
        "realized_ece": ("realized ECE", "{:.4f}"),
    }
    body = [
        html.paragraph(
            f"Predictions logged in {inputs.outcomes_source} whose horizon has passed, joined "
            "with what happened; set beside each model's own test-window figures."
        ),
        html.image(image, "calibration of matured predictions"),
        html.heading("By model version"),
        html.table(
            found.by_version,
            {
                **realized,
                "model_test_roc_auc": ("test ROC-AUC", RATIO),
                "roc_auc_drop": ("drop", RATIO),
            },
        ),
        html.heading("By score date"),
        html.table(found.by_date, {"as_of": ("scored on", DATE), **realized}),
        html.heading("Per risk tier"),
        html.table(
            found.tiers,
            {
                "model_version": ("version", None),
                "risk_tier": ("tier", None),
                "accounts": ("accounts", COUNT),
                "predicted_rate": ("predicted rate", SHARE),
                "realized_rate": ("realized rate", SHARE),
                "predicted_churners": ("predicted churners", "{:,.1f}"),
                "realized_churners": ("realized churners", COUNT),
            },
        ),
    ]
    return Section(
        "outcomes",
        title,
        "\n".join(body),
        {
            "source": inputs.outcomes_source,
            "by_version": records(found.by_version),
            "by_score_date": records(found.by_date),
            "by_tier": records(found.tiers),
            "by_decile": records(found.deciles),
            "left_out": found.skipped,
        },
        {"outcomes_by_version": found.by_version, "outcomes_by_tier": found.tiers},
        {"outcome_calibration": image},
    )


SECTIONS: list[SectionBuilder] = [
    monthly_section,
    cohorts_section,
    segments_section,
    indicators_section,
    reasons_section,
    at_risk_section,
    expected_section,
    backtest_section,
    outcomes_section,
]
