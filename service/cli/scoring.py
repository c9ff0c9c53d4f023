"""Scoring commands: `churn score` (probabilities, tiers, drivers, the prediction log) and
`churn monitor` (drift of today's accounts against the training data)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from features.errors import DataError
from service.cli.errors import reports_errors
from service.cli.options import (
    EngineOption,
    EventsOrNoneOption,
    ExportOption,
    ModelOption,
    SchedulerOption,
    TrackingOption,
    WorkerMemoryOption,
    engine_client,
    on_engine,
    one_source,
    parse_date,
    settings_and_model,
)


@reports_errors
def score(
    out: Annotated[Path, typer.Option(help="Output file: .csv, .parquet or .jsonl.")],
    data: EventsOrNoneOption = None,
    table: ExportOption = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Score date (default: end of data; today for --table)."),
    ] = None,
    model: ModelOption = None,
    tracking_uri: TrackingOption = None,
    drivers: Annotated[int, typer.Option(min=0, max=10, help="Top drivers per account.")] = 3,
    engine: EngineOption = None,
    scheduler: SchedulerOption = None,
    worker_memory: WorkerMemoryOption = None,
    log: Annotated[
        bool | None,
        typer.Option(
            "--log/--no-log",
            help="Keep the scores in the prediction log (default CHURN_PREDICTION_LOG, on).",
        ),
    ] = None,
) -> None:
    """Score every account active at AS_OF: probability, tier, revenue at risk, drivers.

    Event tables: --data DIR. A whole export, with the mapping the model was trained with: --table FILE.
    With --engine dask, OUT is a Parquet directory (a file per account partition).
    With event tables the scores are also appended to CHURN_HOME/predictions (`churn outcomes`).
    """
    from features.files import write_frame
    from training.scoring import score_frame

    one_source(data, table)
    settings, loaded = settings_and_model(
        tracking_uri=tracking_uri,
        model_uri=model,
        prediction_log=log,
        **on_engine(engine, scheduler, worker_memory),
    )
    if settings.engine == "dask":
        from training.distributed import write_scores
        from training.progress import Steps

        events_only(data)
        with engine_client(settings) as client:
            day = parse_date(as_of) if as_of else None
            rows, day, top = write_scores(
                client, loaded.model, data, day, drivers, out, settings, Steps()
            )
        if settings.prediction_log:
            typer.echo("not logged: the dask engine writes its scores to OUT only")
    else:
        columns, day = snapshot_columns(loaded.model, data, table, as_of)
        scored = score_frame(
            loaded.model, columns, drivers, settings.gross_margin, settings.discount_rate
        )
        write_frame(scored, out)
        if settings.prediction_log:
            log_predictions(scored, columns, loaded, settings, from_events=data is not None)
        rows, top = len(scored), scored.sort_values("churn_probability", ascending=False).head(5)
    typer.echo(
        f"scored {rows} accounts at {day} with {loaded.uri} (version {loaded.version}) -> {out}"
    )
    shown = ["account_id", "churn_probability", "risk_tier", "revenue_at_risk"]
    horizons = loaded.model.horizons
    shown += [f"churn_probability_{h}d" for h in horizons[-1:]]
    shown += ["expected_months_remaining"] if horizons else []
    typer.echo(top[shown].to_string(index=False))
    if loaded.model.horizons_absent_reason:
        typer.echo(
            f"no probabilities by horizon: the model was {loaded.model.horizons_absent_reason}"
        )


def events_only(data: Path | None) -> None:
    if data is None:
        raise DataError("the dask engine reads event tables (--data DIR); --table runs locally")


def log_predictions(
    scored: Any, columns: Any, loaded: Any, settings: Any, from_events: bool
) -> None:
    """Append what was scored to the prediction log (event-table models only: a horizon
    and churn dates are what make an outcome checkable later)."""
    from training.predictions import LOG_DIR, append_predictions, prediction_records

    if not from_events or loaded.model.horizon_days is None:
        typer.echo("not logged: only scores of event tables with a horizon can be checked later")
        return
    records = prediction_records(scored, columns.get("mrr"), loaded, dt.datetime.now(dt.UTC))
    append_predictions(records, settings.resolved_home / LOG_DIR)
    typer.echo(f"logged {len(records)} predictions in {settings.resolved_home / LOG_DIR}")


def snapshot_columns(
    model: Any, data: Path | None, table: Path | None, as_of: str | None
) -> tuple[Any, dt.date]:
    """Snapshot columns of every account to score: event tables at AS_OF (default: end of
    data) or a whole export read with the model's mapping (AS_OF default: today)."""
    from training.scoring import event_columns, table_columns

    if table is not None:
        day = parse_date(as_of) if as_of else dt.date.today()
        return table_columns(model, table, day), day
    return event_columns(model, data, parse_date(as_of) if as_of else None)


@reports_errors
def monitor(
    data: EventsOrNoneOption = None,
    table: ExportOption = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Snapshot date (default: end of data; today for --table)."),
    ] = None,
    model: ModelOption = None,
    tracking_uri: TrackingOption = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the per-feature report here (.csv, .parquet, .jsonl)."),
    ] = None,
    fail_on: Annotated[
        str, typer.Option(help="Exit 4 when a feature drifts this much: major, moderate or never.")
    ] = "never",
    engine: EngineOption = None,
    scheduler: SchedulerOption = None,
    worker_memory: WorkerMemoryOption = None,
) -> None:
    """Drift of today's accounts against the model's training data (PSI per feature).

    PSI below 0.10 is stable, 0.10-0.25 moderate, 0.25 and above major: the features
    the model leans on no longer look like what it learnt from, so retrain or investigate.
    With --engine dask, drift is tallied per account partition and merged.
    """
    from rich.table import Table

    from features.files import write_frame
    from training.progress import terminal
    from training.scoring import DRIFT_LEVELS, drift_frame

    if fail_on not in ("major", "moderate", "never"):
        raise typer.BadParameter(f"--fail-on {fail_on!r}: use major, moderate or never")
    one_source(data, table)
    settings, loaded = settings_and_model(
        tracking_uri=tracking_uri, model_uri=model, **on_engine(engine, scheduler, worker_memory)
    )
    if settings.engine == "dask":
        from training.distributed import drift
        from training.progress import Steps

        events_only(data)
        with engine_client(settings) as client:
            day = parse_date(as_of) if as_of else None
            found = drift(client, loaded.model, data, day, settings, Steps())
        report, accounts, mean, day = (
            found.report,
            found.accounts,
            found.mean_probability,
            found.day,
        )
    else:
        columns, day = snapshot_columns(loaded.model, data, table, as_of)
        report = drift_frame(loaded.model, columns)
        probability = loaded.model.predict_proba(columns)
        accounts, mean = len(probability), probability.mean()
    base_rate = loaded.model.base_rate
    shown = Table(
        title=f"Drift at {day}: {accounts:,} accounts vs {loaded.uri} (version {loaded.version})"
    )
    for name in ("feature", "psi", "level", "missing_in_training", "missing_now"):
        shown.add_column(name, justify="left" if name in ("feature", "level") else "right")
    for row in report.head(15).itertuples():
        shown.add_row(
            row.feature,
            f"{row.psi:.3f}",
            row.level,
            f"{row.missing_in_training:.0%}",
            f"{row.missing_now:.0%}",
        )
    console = terminal()
    console.print(shown)
    console.print(
        f"mean churn probability {mean:.4f} (training base rate {base_rate:.4f}); "
        f"{(report['level'] == 'major').sum()} major, {(report['level'] == 'moderate').sum()} moderate"
    )
    if out is not None:
        write_frame(report, out)
    if (
        fail_on != "never"
        and (report["level"].map(DRIFT_LEVELS.index) >= DRIFT_LEVELS.index(fail_on)).any()
    ):
        typer.secho(f"drift at or above {fail_on}", fg=typer.colors.RED, err=True)
        raise typer.Exit(4)
