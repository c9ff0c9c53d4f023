"""Sections about the recorded history: churn and retention per month and cohort, where
customers are lost, what they looked like before, and why they said they left."""

from __future__ import annotations

import pandas as pd

from training.projection import (
    HOLDOUT_MONTHS,
    MIN_FIT_MONTHS,
    project_retention,
    projection_figure,
)
from training.report import html, plots
from training.report.html import COUNT, MONEY, MONTH, RATE, SHARE
from training.report.indicators import MONTHS_BEFORE, SHOWN, indicators_before_churn
from training.report.inputs import ReportInputs, Section, number, records
from training.report.monthly import annualized, cohort_retention, monthly_figures
from training.report.segments import (
    churn_by_segment,
    churn_reasons,
    lost_accounts,
    silent_churn,
)

SUMMARY_MONTHS = 12
COHORT_MONTHS_SHOWN = (1, 3, 6, 12, 18, 24)


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
                f"monthly churn rate, last {len(recent)} months": number(pooled, RATE),
                "the same, annualized": number(summary["annualized_churn_rate"], SHARE),
                "customers at the end": number(summary["customers_at_end"], COUNT),
                "net revenue retention (monthly mean)": number(
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
        "cohorts",
        "Cohort retention",
        "\n".join(body),
        data,
        {"cohorts": frame},
        {"cohort_retention": image},
    )


def projection_section(inputs: ReportInputs) -> Section:
    """Where each signup cohort is heading (shifted-beta-geometric), and how well that
    projection did on months hidden from it, beside two naive projections."""
    projected = project_retention(inputs.tables, inputs.end)
    title = "Cohort retention projected"
    if projected.projection.empty:
        return Section(
            "projection",
            title,
            html.paragraph("Too few months of cohort history to project retention.", note=True),
        )
    image = plots.png(projection_figure(projected.projection, projected.summary))
    summary = projected.summary
    body = [
        html.paragraph(
            "Each signup cohort's retention projected a year past the data with a "
            "shifted-beta-geometric model (customers differ in how likely they are to leave, so a "
            "cohort's churn rate falls as the likeliest leavers go). Backtest: the last "
            f"{HOLDOUT_MONTHS} observed months of each cohort hidden, projected, then compared "
            "with what happened, beside a straight line and a constant-rate projection."
        ),
        html.image(image, "cohort retention, observed and projected; backtest error by method"),
        html.paragraph(
            f"No cohort has the {HOLDOUT_MONTHS + MIN_FIT_MONTHS + 1} observed months a backtest "
            "needs yet.",
            note=True,
        )
        if summary.empty
        else html.table(
            summary,
            {
                "method": ("method", None),
                "cohorts": ("cohorts", COUNT),
                "mean_abs_error": ("mean abs error", SHARE),
                "abs_error_last": (f"at month {HOLDOUT_MONTHS}", SHARE),
                "best_share": ("best on", SHARE),
            },
        ),
    ]
    return Section(
        "projection",
        title,
        "\n".join(body),
        {"backtest": records(summary)},
        {
            "cohort_projection": projected.projection,
            "cohort_backtest": projected.backtest,
            "cohort_backtest_summary": summary,
        },
        {"cohort_projection": image},
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
        long = indicators.melt(
            id_vars=["indicator", "months_before"],
            value_vars=["churned_median", "retained_median"],
            var_name="group",
        )
        long["group"] = long["group"].str.removesuffix("_median")
        long["indicator"] = pd.Categorical(long["indicator"], categories=list(SHOWN))
        shown = long.pivot_table(
            index=["indicator", "group"], columns="months_before", values="value", observed=True
        ).reset_index()
        shown["indicator"] = shown["indicator"].map(SHOWN).astype(str)
        months = {m: (f"{m} mo before", "{:,.2f}") for m in range(MONTHS_BEFORE, 0, -1)}
        body.append(
            html.table(
                shown,
                {"indicator": ("indicator", None), "group": ("accounts", None), **months},
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
                    "of lost accounts never opened a ticket": number(silent["silent_share"], SHARE),
                    "lost accounts": number(silent["lost_accounts"], COUNT),
                    "of current customers have no ticket on record": number(
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
