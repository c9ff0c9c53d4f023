"""Sections that look ahead or back at predictions: who is at risk now and how many to
expect to lose (with a model), the backtest, and logged predictions against what happened."""

from __future__ import annotations

from training.report import html, plots
from training.report.html import COUNT, DATE, MONEY, RATIO, SHARE
from training.report.inputs import ReportInputs, Section, at_source, number, records
from training.report.risk import expected_by_segment


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
                "accounts scored": number(len(accounts), COUNT),
                f"expected churners in {horizon}": number(summary["expected_churners"], COUNT),
                "annual revenue at risk": number(summary["revenue_at_risk"], MONEY),
                f"of it in the top {len(top)}": number(summary["top_revenue_at_risk"], MONEY),
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
                f"No backtest found{at_source(inputs.backtest_source)}: run `churn backtest --data DIR` "
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
                f"No logged prediction{at_source(inputs.outcomes_source)} has reached the end of its "
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
