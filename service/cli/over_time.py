"""Commands that look across time: `churn report` (churn and retention per month, one HTML
page), `churn backtest` (would the model have worked?) and `churn outcomes` (were the
logged predictions right?)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from features.errors import DataError
from service.cli.errors import reports_errors
from service.cli.options import (
    DataEndOption,
    DataOption,
    ExperimentOption,
    HorizonOption,
    ParamOption,
    ParamsFileOption,
    PeriodsOption,
    TrackingOption,
    load_settings,
    parse_date,
)
from service.cli.show import print_table


@reports_errors
def report(
    data: DataOption,
    out: Annotated[
        Path, typer.Option(help="Folder for report.html, report.json, the CSVs and plots/.")
    ] = Path("churn-report"),
    model: Annotated[
        str | None,
        typer.Option("--model", help="Model URI or bundle path: adds the at-risk sections."),
    ] = None,
    backtest_dir: Annotated[
        Path | None,
        typer.Option("--backtest", help="A `churn backtest` folder (default CHURN_HOME/backtest)."),
    ] = None,
    tracking_uri: TrackingOption = None,
    data_end: DataEndOption = None,
    months: Annotated[int, typer.Option(min=1, help="Months shown in the terminal.")] = 12,
    top: Annotated[int, typer.Option(min=1, help="Accounts in the at-risk list.")] = 25,
) -> None:
    """One self-contained report.html (and report.json with every number) beside the CSVs.

    Churn and retention per month (churn rate = lost / customers at the start; retention,
    gross additions, gross MRR churn, net revenue retention, annualized rates), cohorts,
    churn by lifecycle stage, contract, plan and NPS, leading indicators before churn,
    silent churn, churn reasons; with --model the accounts at risk now (reasons and
    actions) and expected churners by segment; the backtest and the realized outcomes of
    logged predictions when they exist.
    """
    from features.tables import load_tables
    from training.backtest import BACKTEST_DIR
    from training.predictions import LOG_DIR
    from training.projection import HOLDOUT_MONTHS
    from training.report.build import build_report, gather, score_now, write_report

    settings = load_settings(tracking_uri=tracking_uri, model_uri=model)
    tables = load_tables(data)
    end = parse_date(data_end) if data_end else tables.data_end()
    scored = None
    if model is not None:
        from models.registry import load_model
        from service.actions import Playbook

        loaded = load_model(model, settings)
        recommend = Playbook.load(settings.playbook).recommend
        scored = score_now(tables, end, loaded, recommend)
    inputs = gather(
        tables,
        end,
        str(data),
        scored,
        backtest_dir or settings.resolved_home / BACKTEST_DIR,
        settings.resolved_home / LOG_DIR,
        top,
    )
    built = build_report(inputs)
    write_report(built, out)
    print_table(
        f"Churn by month ({data})",
        built.table("monthly").tail(months),
        {  # column: (header, format); the CSVs have the full names
            "month": ("month", "%Y-%m"),
            "customers_start": ("start", "{:,.0f}"),
            "new": ("new", "{:,.0f}"),
            "lost": ("lost", "{:,.0f}"),
            "lost_early": ("early", "{:.0f}"),
            "lost_mid": ("mid", "{:.0f}"),
            "lost_late": ("late", "{:.0f}"),
            "churn_rate": ("churn", "{:.2%}"),
            "annualized_churn_rate": ("a year", "{:.1%}"),
            "retention_rate": ("retention", "{:.2%}"),
            "gross_mrr_churn_rate": ("MRR churn", "{:.2%}"),
            "net_revenue_retention": ("NRR", "{:.1%}"),
        },
    )
    summary = (
        built.table("cohort_backtest_summary") if built.has("cohort_backtest_summary") else None
    )
    if summary is not None:
        print_table(
            f"Cohort retention projected (backtest: last {HOLDOUT_MONTHS} observed months hidden)",
            summary,
            {
                "method": ("method", None),
                "cohorts": ("cohorts", "{:,.0f}"),
                "mean_abs_error": ("mean abs error", "{:.1%}"),
                "abs_error_last": (f"at month {HOLDOUT_MONTHS}", "{:.1%}"),
                "best_share": ("best on", "{:.0%}"),
            },
        )
    typer.echo(f"wrote {out / 'report.html'}, {out / 'report.json'} and the CSVs in {out}")


@reports_errors
def backtest(
    data: DataOption,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for backtest.csv, scores.parquet, plots (CHURN_HOME/backtest)."),
    ] = None,
    origin_from: Annotated[
        str | None, typer.Option("--from", help="First origin (default: the first possible).")
    ] = None,
    origin_to: Annotated[
        str | None, typer.Option("--to", help="Last origin (default: data end - horizon).")
    ] = None,
    every: Annotated[str, typer.Option(help="Step between origins: 1M, 3M, 2W, 14D.")] = "1M",
    observe_every: Annotated[
        str, typer.Option("--observe-every", help="Training observation frequency, as train.")
    ] = "MS",
    tracking_uri: TrackingOption = None,
    experiment: ExperimentOption = None,
    horizon: HorizonOption = None,
    data_end: DataEndOption = None,
    param: ParamOption = None,
    params_file: ParamsFileOption = None,
    min_churners: Annotated[
        int, typer.Option(min=1, help="Fewer realized churners: the origin is flagged.")
    ] = 20,
    validation_periods: PeriodsOption = 2,
    calibration_periods: PeriodsOption = 3,
    test_periods: PeriodsOption = 3,
) -> None:
    """Would the model have worked? A rolling-origin backtest, month by month.

    At each origin: train exactly as `churn train` would have with only the data known
    then, score the accounts active that day, and measure on what they did over the
    next horizon (ROC-AUC, PR-AUC, lift and capture, ECE,
    predicted vs realized churners, revenue at risk vs lost), beside the logistic
    baseline and a naive rule. One MLflow parent run with a nested run per origin.
    """
    from features.tables import load_tables
    from training.backtest import (
        BACKTEST_DIR,
        BacktestPlan,
        check_origins,
        origin_dates,
        run_backtest,
    )
    from training.backtest_output import save_backtest
    from training.dataset import SplitPlan
    from training.params import load_params
    from training.progress import Steps

    settings = load_settings(tracking_uri=tracking_uri, experiment=experiment, horizon_days=horizon)
    params = load_params(params_file, param or [])
    steps = Steps()
    with steps.step(f"loading tables from {data}"):
        tables = load_tables(data)
    end = parse_date(data_end) if data_end else tables.data_end()
    plan = BacktestPlan(
        horizon_days=settings.horizon_days,
        every=observe_every,
        split=SplitPlan(validation_periods, calibration_periods, test_periods),
        exclude_columns=tuple(settings.exclude_columns),
        min_churners=min_churners,
    )
    first, last = check_origins(
        tables,
        parse_date(origin_from) if origin_from else None,
        parse_date(origin_to) if origin_to else None,
        end,
        plan,
    )
    origins = origin_dates(first, last, every)
    result = run_backtest(tables, origins, plan, params, end, steps)
    folder = out or settings.resolved_home / BACKTEST_DIR
    with steps.step(f"writing {folder} and logging to MLflow at {settings.resolved_tracking_uri}"):
        run_id = save_backtest(result, params, str(data), every, folder, settings)
    print_table(
        f"Backtest: realized over the {settings.horizon_days} days after each origin",
        result.table,
        {
            "origin": ("origin", "%Y-%m-%d"),
            "accounts": ("accounts", "{:,.0f}"),
            "churners": ("churners", "{:,.0f}"),
            "roc_auc": ("ROC-AUC", "{:.3f}"),
            "baseline_roc_auc": ("baseline", "{:.3f}"),
            "naive_roc_auc": ("naive", "{:.3f}"),
            "lift_top10": ("lift@10%", "{:.2f}"),
            "ece": ("ECE", "{:.4f}"),
            "predicted_churners": ("predicted", "{:,.1f}"),
            "realized_churners": ("realized", "{:,.0f}"),
            "note": ("note", None),
        },
    )
    typer.echo(f"wrote {folder}; run {run_id} in experiment '{settings.experiment}'")


@reports_errors
def outcomes(
    data: DataOption,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the outcome tables (default CHURN_HOME/outcomes)."),
    ] = None,
    data_end: DataEndOption = None,
    fail_on_drop: Annotated[
        float | None,
        typer.Option(
            min=0, help="Exit 4 when a version's realized ROC-AUC is this far below its test's."
        ),
    ] = None,
    min_churners: Annotated[
        int, typer.Option(min=1, help="Versions with fewer realized churners are not judged.")
    ] = 20,
) -> None:
    """Were the predictions right? Logged scores against what happened.

    Logged scores whose horizon has passed, joined with what happened: realized ROC-AUC, lift and calibration (per tier and decile) by model version
    and score date, beside each model's own test figures. With --fail-on-drop a scheduler
    can alert or retrain when the model no longer ranks as it did when it was judged.
    """
    from features.files import atomic_directory
    from features.tables import load_tables
    from training.outcomes import OUTCOMES_DIR, drops
    from training.outcomes import outcomes as realized
    from training.predictions import LOG_DIR, read_predictions

    settings = load_settings()
    log_dir = settings.resolved_home / LOG_DIR
    log = read_predictions(log_dir)
    if len(log) == 0:
        raise DataError(f"the prediction log {log_dir} is empty: `churn score --data DIR` fills it")
    tables = load_tables(data)
    found = realized(log, tables, parse_date(data_end) if data_end else None)
    left_out = ", ".join(f"{n:,} {why.replace('_', ' ')}" for why, n in found.skipped.items() if n)
    if found.empty:
        raise DataError(
            f"no logged prediction has reached the end of its horizon inside the data ({left_out})"
        )
    folder = out or settings.resolved_home / OUTCOMES_DIR
    with atomic_directory(folder) as temp:
        for name, frame in (
            ("by_version", found.by_version),
            ("by_score_date", found.by_date),
            ("by_tier", found.tiers),
            ("by_decile", found.deciles),
        ):
            frame.to_csv(temp / f"{name}.csv", index=False)
    print_outcomes(found)
    typer.echo(f"left out: {left_out or 'nothing'}; wrote {folder}")
    if fail_on_drop is not None:
        fallen = drops(found.by_version, fail_on_drop, min_churners)
        for line in fallen:
            typer.secho(f"dropped: {line}", fg=typer.colors.RED, err=True)
        if fallen:
            raise typer.Exit(4)


def print_outcomes(found: Any) -> None:
    figures: dict[str, tuple[str, str | None]] = {
        "model_name": ("model", None),
        "model_version": ("version", None),
        "accounts": ("scored", "{:,.0f}"),
        "churners": ("churned", "{:,.0f}"),
        "predicted_churners": ("predicted", "{:,.1f}"),
        "realized_roc_auc": ("AUC", "{:.3f}"),
        "realized_lift_top10": ("lift@10%", "{:.2f}"),
        "realized_ece": ("ECE", "{:.4f}"),
    }
    print_table(
        "Realized by model version",
        found.by_version,
        {
            **figures,
            "model_test_roc_auc": ("test AUC", "{:.3f}"),
            "roc_auc_drop": ("drop", "{:+.3f}"),
        },
    )
    print_table(
        "Realized by score date", found.by_date, {"as_of": ("scored on", "%Y-%m-%d"), **figures}
    )
