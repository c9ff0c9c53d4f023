"""The `churn` command line (typer): the front door to every capability.

Heavy imports (MLflow, LightGBM, the web stack) happen inside the commands that need
them, so `churn --help` and `churn snapshot` start quickly. Errors raised on purpose
(``ChurnError``) become one red line and an exit code; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from features.errors import ChurnError, ConflictError, DataError, ModelError, RegistryError
from features.redact import redact

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Churn prediction for subscription businesses: snapshots, training, scoring, serving.",
)

EXIT_CODES: dict[type[ChurnError], int] = {
    DataError: 2,
    ModelError: 3,
    RegistryError: 5,
    ConflictError: 6,
    ChurnError: 1,
}
F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(command: F) -> F:
    """Turn ChurnError into a clear message and an exit code (the one place that does)."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        logging.basicConfig(
            level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
        )
        try:
            return command(*args, **kwargs)
        except ChurnError as error:
            typer.secho(f"error: {redact(str(error))}", fg=typer.colors.RED, err=True)
            code = next(c for kind, c in EXIT_CODES.items() if isinstance(error, kind))
            raise typer.Exit(code) from None

    return run  # type: ignore[return-value]


def require_training_extra() -> None:
    """Training plots its runs (matplotlib, shap): the `training` extra, which the serving
    image leaves out."""
    from importlib.util import find_spec

    missing = [name for name in ("matplotlib", "shap") if find_spec(name) is None]
    if missing:
        raise ChurnError(
            f"training needs {', '.join(missing)}: install the training extra "
            "(pip install 'churn[training]', or the image built with --target train)"
        )


def parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None


DataOption = Annotated[
    Path, typer.Option("--data", help="Directory of account tables (Parquet or CSV).")
]


@app.command("demo-data")
@reports_errors
def demo_data(
    out: Annotated[Path, typer.Option(help="Directory to write the tables into.")],
    accounts: Annotated[int, typer.Option(min=10, help="Number of accounts.")] = 5000,
    start: Annotated[str, typer.Option(help="First day of event history.")] = "2023-01-01",
    end: Annotated[str, typer.Option(help="Last day of data.")] = "2025-12-31",
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 0,
    horizon: Annotated[int, typer.Option(min=1, help="Horizon of truth.parquet, in days.")] = 90,
) -> None:
    """Write a synthetic B2B SaaS data set (every table of the contract) and its truth."""
    from training.demo import generate_demo

    summary = generate_demo(
        out,
        accounts=accounts,
        start=parse_date(start),
        end=parse_date(end),
        seed=seed,
        horizon_days=horizon,
    )
    typer.echo(f"wrote {out}: {summary}")


@app.command()
@reports_errors
def snapshot(
    data: DataOption,
    as_of: Annotated[str, typer.Option("--as-of", help="Snapshot date (YYYY-MM-DD).")],
    out: Annotated[Path, typer.Option(help="Output file: .parquet, .csv or .jsonl.")],
) -> None:
    """Point-in-time snapshots of every account active on AS_OF."""
    from features.files import write_frame
    from features.settings import get_settings
    from features.snapshot import active_points, build_snapshots
    from features.tables import load_tables

    day = parse_date(as_of)
    tables = load_tables(data)
    points = active_points(tables, [day])
    frame = build_snapshots(tables, points, exclude_columns=get_settings().exclude_columns)
    write_frame(frame, out, snapshots=True)
    typer.echo(f"wrote {len(frame)} snapshots at {day} to {out}")


# --- training, evaluation, scoring -------------------------------------------------------------

TrackingOption = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri", help="MLflow tracking URI (default: CHURN_TRACKING_URI or embedded)."
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="Model URI or bundle path (default: models:/<name>@champion)."),
]


def load_settings(**overrides: Any):
    """The settings object, with CLI flags taking precedence over CHURN_* variables."""
    from features.settings import Settings

    return Settings(**{key: value for key, value in overrides.items() if value is not None})


ExperimentOption = Annotated[str | None, typer.Option(help="MLflow experiment name.")]
HorizonOption = Annotated[
    int | None, typer.Option(min=1, help="Label horizon in days (default 90).")
]
EveryOption = Annotated[
    str, typer.Option(help="Observation frequency (pandas alias): MS, W-MON, QS.")
]
DataEndOption = Annotated[
    str | None, typer.Option("--data-end", help="Treat data as ending on this date.")
]
ParamOption = Annotated[
    list[str] | None, typer.Option("--param", help="Hyperparameter key=value (repeatable).")
]
ParamsFileOption = Annotated[
    Path | None, typer.Option("--params", help="TOML file of hyperparameters.")
]
PeriodsOption = Annotated[int, typer.Option(min=1, help="Observation dates in this split.")]
HorizonsOption = Annotated[
    str | None,
    typer.Option(
        "--horizons",
        help="Days of the time-to-churn model, e.g. 30,90,180,365 (default CHURN_HORIZONS); "
        "'none' trains without it.",
    ),
]


@app.command()
@reports_errors
def train(
    data: Annotated[
        Path | None, typer.Option("--data", help="Directory of account tables.")
    ] = None,
    tracking_uri: TrackingOption = None,
    experiment: ExperimentOption = None,
    horizon: HorizonOption = None,
    every: EveryOption = "MS",
    data_end: DataEndOption = None,
    param: ParamOption = None,
    params_file: ParamsFileOption = None,
    promote: Annotated[bool, typer.Option(help="Move the champion alias to this version.")] = False,
    validation_periods: PeriodsOption = 2,
    calibration_periods: PeriodsOption = 3,
    test_periods: PeriodsOption = 3,
    run_name: Annotated[str | None, typer.Option(help="MLflow run name.")] = None,
    table: Annotated[
        Path | None,
        typer.Option("--table", help="One labelled export (CSV/Parquet), a row per customer."),
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="Table mode: the churn flag column.")
    ] = None,
    positive: Annotated[
        str | None, typer.Option("--positive", help="Table mode: the label value meaning churned.")
    ] = None,
    id_column: Annotated[
        str | None, typer.Option("--id", help="Table mode: the customer id column.")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="Table mode: YAML/TOML column mapping.")
    ] = None,
    map_pair: Annotated[
        list[str] | None, typer.Option("--map", help="Table mode: source=field (repeatable).")
    ] = None,
    table_as_of: Annotated[
        str | None, typer.Option("--as-of", help="Table mode: date of the export (default today).")
    ] = None,
    horizons: HorizonsOption = None,
) -> None:
    """Train a calibrated churn model, track the run in MLflow and register it.

    Event tables: --data DIR. A single labelled export: --table FILE --label COLUMN.
    """
    require_training_extra()
    from training.fit import load_params
    from training.pipeline import train_and_record
    from training.progress import Steps

    if (data is None) == (table is None):
        raise DataError(
            "give either --data DIR (event tables) or --table FILE --label COLUMN (one labelled export)"
        )
    settings = load_settings(
        tracking_uri=tracking_uri, experiment=experiment, horizon_days=horizon, horizons=horizons
    )
    params = load_params(params_file, param or [])
    steps = Steps()
    if table is not None:
        from training.table import (
            TableMapping,
            clean_table,
            prepare_table,
            read_export,
            read_mapping,
        )

        fields, kinds = read_mapping(mapping, map_pair or [])
        table_mapping = TableMapping(fields, kinds, id_column, label, positive)
        with steps.step(f"reading and cleaning {table}"):
            raw = read_export(table)
            day = parse_date(table_as_of) if table_as_of else dt.date.today()
            clean = clean_table(raw, table_mapping, day, exclude_columns=settings.exclude_columns)
            prepared = prepare_table(clean, source=str(table), seed=params.seed)
        for line in clean.report:
            typer.secho(f"repaired: {line}", fg=typer.colors.YELLOW, err=True)
        if horizons is not None and settings.horizons:
            typer.secho(
                "--horizons ignored: one labelled export has no history, so no time axis to "
                "learn when accounts leave (the model gives the single probability)",
                fg=typer.colors.YELLOW,
                err=True,
            )
    else:
        plan = (validation_periods, calibration_periods, test_periods)
        prepared = prepare_event_data(data, settings, every, data_end, plan, steps)
    print_split(prepared.summary)
    result = train_and_record(
        prepared,
        params,
        settings,
        promote="always" if promote else "first",
        steps=steps,
        run_name=run_name,
    )
    print_training_result(result, settings)


def prepare_event_data(
    data: Path,
    settings: Any,
    every: str,
    data_end: str | None,
    plan: tuple[int, int, int],
    steps: Any,
) -> Any:
    """Event tables -> labelled, temporally split snapshots (shared by train and retrain)."""
    from features.tables import load_tables
    from training.dataset import SplitPlan
    from training.pipeline import prepare_events

    with steps.step(f"loading tables from {data}"):
        tables = load_tables(data)
    end = parse_date(data_end) if data_end else None
    with steps.step("building point-in-time snapshots and labels"):
        return prepare_events(
            tables,
            settings.horizon_days,
            every,
            end,
            SplitPlan(*plan),
            settings.exclude_columns,
            settings.horizons,
        )


@app.command()
@reports_errors
def retrain(
    data: DataOption,
    tracking_uri: TrackingOption = None,
    experiment: ExperimentOption = None,
    horizon: HorizonOption = None,
    every: EveryOption = "MS",
    data_end: DataEndOption = None,
    param: ParamOption = None,
    params_file: ParamsFileOption = None,
    min_gain: Annotated[
        float | None,
        typer.Option(min=0, help="ROC-AUC the challenger must add (CHURN_RETRAIN_MIN_GAIN)."),
    ] = None,
    validation_periods: PeriodsOption = 2,
    calibration_periods: PeriodsOption = 3,
    test_periods: PeriodsOption = 3,
    run_name: Annotated[str | None, typer.Option(help="MLflow run name.")] = "retrain",
    horizons: HorizonsOption = None,
) -> None:
    """Train a challenger on the latest data; it replaces the champion only if it beats it.

    Both are scored on the challenger's test window (the latest labelled dates). The
    verdict and the champion's figures are recorded on the challenger's run. Meant for
    a scheduler (cron, Kubernetes CronJob); a lock keeps two runs from overlapping.
    """
    require_training_extra()
    from training.fit import load_params
    from training.progress import Steps
    from training.retrain import retrain as run_retrain
    from training.retrain import retrain_guard

    settings = load_settings(
        tracking_uri=tracking_uri,
        experiment=experiment,
        horizon_days=horizon,
        retrain_min_gain=min_gain,
        horizons=horizons,
    )
    params = load_params(params_file, param or [])
    steps = Steps()
    plan = (validation_periods, calibration_periods, test_periods)
    with retrain_guard(settings) as lease:
        prepared = prepare_event_data(data, settings, every, data_end, plan, steps)
        print_split(prepared.summary)
        result = run_retrain(prepared, params, settings, steps, run_name, lease)
    print_retrain_result(result, settings)


@app.command()
@reports_errors
def rollback(
    to: Annotated[
        str | None,
        typer.Option("--to", help="Version to return to (default: the one the champion replaced)."),
    ] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Move the champion alias back to the version it replaced (or --to N).

    The target is downloaded and verified first (checksum, and signature with a signing
    key), so a rollback never points servers at a model they cannot load; they follow
    within CHURN_MODEL_POLL_SECONDS. Takes the alias's registry lease, and refuses if the
    champion changed since it was read.
    """
    from models.champion import AliasOwner
    from models.registry import load_model

    settings = load_settings(tracking_uri=tracking_uri)
    owner = AliasOwner.of(settings)
    current, target = owner.rollback_target(to)
    load_model(f"models:/{owner.name}/{target}", settings)
    # The target keeps its own history, so a second rollback goes further back.
    owner.move(target, f"churn rollback from version {current}", judged=current, rollback=True)
    typer.echo(f"{owner.name}@{owner.alias}: version {current} -> {target}")


def print_retrain_result(result: Any, settings: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Challenger vs champion on the test window ({result.trained.summary.loc['test', 'rows']} rows)"
    )
    table.add_column("metric")
    table.add_column("challenger", justify="right")
    table.add_column(
        f"champion (v{result.champion_version})" if result.champion_version else "champion (none)",
        justify="right",
    )
    for key in KEY_METRICS:
        name = f"test_{key}"
        table.add_row(
            name,
            _fmt(result.trained.trained.metrics.get(name)),
            _fmt(result.champion_metrics.get(name)),
        )
    console = Console()
    console.print(table)
    version = result.trained.registered.version
    if result.verdict.promote:
        console.print(
            f"[bold green]promoted[/bold green] {settings.model_name} version {version} -> @{settings.champion_alias}: {result.verdict.reason}"
        )
    else:
        kept = result.champion_version or "none"
        console.print(
            f"[bold yellow]kept[/bold yellow] the champion (version {kept}); version {version} registered, not promoted: {result.verdict.reason}"
        )
    console.print(
        f"run {result.trained.registered.run_id} in experiment '{settings.experiment}' at {redact(settings.resolved_tracking_uri)}"
    )


def print_split(summary: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Split")
    table.add_column("split")
    for column in summary.columns:
        table.add_column(str(column), justify="right")
    for split, row in summary.iterrows():
        table.add_row(str(split), *(str(v) for v in row.tolist()))
    Console(stderr=True).print(table)


KEY_METRICS = (
    "roc_auc",
    "pr_auc",
    "brier",
    "log_loss",
    "ece",
    "lift_top10",
    "capture_top10",
    "lift_top20",
    "capture_top20",
)


def print_training_result(result: Any, settings: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Test window ({result.summary.loc['test', 'rows'] if 'test' in result.summary.index else '?'} rows)"
    )
    table.add_column("metric")
    table.add_column("LightGBM", justify="right")
    table.add_column("logistic baseline", justify="right")
    for prefix in ("test", "cv"):
        for key in KEY_METRICS:
            name = f"{prefix}_{key}"
            model, baseline = (
                result.trained.metrics.get(name),
                result.trained.baseline_metrics.get(name),
            )
            if model is not None or baseline is not None:
                table.add_row(name, _fmt(model), _fmt(baseline))
    console = Console()
    console.print(table)
    print_survival(result.trained.metrics, console)
    registered = result.registered
    alias = (
        f" -> @{settings.champion_alias}"
        if registered.promoted
        else " (champion unchanged; --promote to move it)"
    )
    console.print(
        f"model [bold]{settings.model_name}[/bold] version [bold]{registered.version}[/bold]{alias}"
    )
    console.print(
        f"run {registered.run_id} in experiment '{settings.experiment}' at {redact(settings.resolved_tracking_uri)}"
    )


SURVIVAL_MODELS = {"hazard": "hazard model", "cox": "Cox", "km": "Kaplan-Meier"}


def print_survival(metrics: dict[str, float], console: Any) -> None:
    """The time-to-churn model against Cox and Kaplan-Meier, per window and horizon."""
    from rich.table import Table

    for window in ("test", "long_test"):
        keys = [k[len(f"{window}_hazard_") :] for k in metrics if k.startswith(f"{window}_hazard_")]
        shown = [k for k in keys if k.startswith(("roc_auc", "ece")) or k in SURVIVAL_KEYS]
        if not shown:
            continue
        table = Table(title=f"Time to churn, {window.replace('_', ' ')} window")
        table.add_column("metric")
        for name in SURVIVAL_MODELS.values():
            table.add_column(name, justify="right")
        for key in sorted(shown, key=_survival_order):
            table.add_row(
                key, *(_fmt(metrics.get(f"{window}_{model}_{key}")) for model in SURVIVAL_MODELS)
            )
        console.print(table)


SURVIVAL_KEYS = ("concordance", "integrated_brier")


def _survival_order(key: str) -> tuple[int, int, str]:
    if key in SURVIVAL_KEYS:
        return (1, SURVIVAL_KEYS.index(key), key)
    return (0, int(key.rsplit("_", 1)[1].rstrip("d")), key)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


@app.command()
@reports_errors
def evaluate(
    data: DataOption,
    model: ModelOption = None,
    tracking_uri: TrackingOption = None,
    horizon: Annotated[
        int | None, typer.Option(min=1, help="Label horizon (default: the model's).")
    ] = None,
    every: Annotated[str, typer.Option(help="Observation frequency.")] = "MS",
    last: Annotated[
        int | None, typer.Option(min=1, help="Only the last N observation dates.")
    ] = None,
    data_end: Annotated[str | None, typer.Option("--data-end")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the metrics as JSON here.")] = None,
) -> None:
    """Evaluate any model on any labelled data with the training metrics."""
    import orjson

    from features.files import write_atomic
    from features.schema import frame_to_columns
    from features.snapshot import active_points, build_snapshots
    from features.tables import load_tables
    from features.timeline import observation_dates
    from models.registry import load_model
    from training.dataset import label_snapshots
    from training.evaluate import evaluate as evaluate_metrics
    from training.evaluate import finite
    from training.pipeline import lifecycle_stage

    settings = load_settings(tracking_uri=tracking_uri, model_uri=model)
    loaded = load_model(settings.resolved_model_uri, settings)
    horizon_days = horizon or loaded.model.horizon_days
    if horizon_days is None:
        raise ModelError(
            "this model was trained on one labelled export (no horizon): give --horizon DAYS"
        )
    tables = load_tables(data)
    end = parse_date(data_end) if data_end else tables.data_end()
    dates = observation_dates(tables.data_start(), end, horizon_days=horizon_days, every=every)
    if last:
        dates = dates[-last:]
    if not dates:
        raise DataError("no observation date has a complete horizon inside the data")
    points = active_points(tables, dates)
    snapshots = build_snapshots(
        tables, points, exclude_columns=list(loaded.model.card.exclude_columns)
    )
    label = label_snapshots(tables, points, horizon_days)
    columns = frame_to_columns(snapshots)
    probability = loaded.model.predict_proba(columns)
    metrics = finite(evaluate_metrics(label, probability, lifecycle_stage(columns), prefix="eval"))
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{loaded.uri} on {data} ({len(label):,} snapshots, {dates[0]}..{dates[-1]})"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("rows", "base_rate", *KEY_METRICS):
        table.add_row(key, _fmt(metrics.get(f"eval_{key}")))
    Console().print(table)
    if out is not None:
        write_atomic(
            out, lambda temp: temp.write_bytes(orjson.dumps(metrics, option=orjson.OPT_INDENT_2))
        )


@app.command()
@reports_errors
def score(
    out: Annotated[Path, typer.Option(help="Output file: .csv, .parquet or .jsonl.")],
    data: Annotated[
        Path | None, typer.Option("--data", help="Directory of account tables.")
    ] = None,
    table: Annotated[
        Path | None, typer.Option("--table", help="One export, for a model trained with --table.")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Score date (default: end of data; today for --table)."),
    ] = None,
    model: ModelOption = None,
    tracking_uri: TrackingOption = None,
    drivers: Annotated[int, typer.Option(min=0, max=10, help="Top drivers per account.")] = 3,
) -> None:
    """Score every account active at AS_OF: probability, tier, revenue at risk, drivers.

    Event tables: --data DIR. A whole export, with the mapping the model was trained with: --table FILE.
    """
    from features.files import write_frame
    from models.registry import load_model
    from training.scoring import score_frame

    one_source(data, table)
    settings = load_settings(tracking_uri=tracking_uri, model_uri=model)
    loaded = load_model(settings.resolved_model_uri, settings)
    columns, day = snapshot_columns(loaded.model, data, table, as_of)
    scored = score_frame(
        loaded.model, columns, drivers, settings.gross_margin, settings.discount_rate
    )
    write_frame(scored, out)
    top = scored.sort_values("churn_probability", ascending=False).head(5)
    typer.echo(
        f"scored {len(scored)} accounts at {day} with {loaded.uri} (version {loaded.version}) -> {out}"
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


def one_source(data: Path | None, table: Path | None) -> None:
    if (data is None) == (table is None):
        raise DataError("give either --data DIR (event tables) or --table FILE (one export)")


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


@app.command()
@reports_errors
def monitor(
    data: Annotated[
        Path | None, typer.Option("--data", help="Directory of account tables.")
    ] = None,
    table: Annotated[
        Path | None, typer.Option("--table", help="One export, for a model trained with --table.")
    ] = None,
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
) -> None:
    """Drift of today's accounts against the model's training data (PSI per feature).

    PSI below 0.10 is stable, 0.10-0.25 moderate, 0.25 and above major: the features
    the model leans on no longer look like what it learnt from, so retrain or investigate.
    """
    from rich.console import Console
    from rich.table import Table

    from features.files import write_frame
    from models.registry import load_model
    from training.scoring import DRIFT_LEVELS, drift_frame

    if fail_on not in ("major", "moderate", "never"):
        raise typer.BadParameter(f"--fail-on {fail_on!r}: use major, moderate or never")
    one_source(data, table)
    settings = load_settings(tracking_uri=tracking_uri, model_uri=model)
    loaded = load_model(settings.resolved_model_uri, settings)
    columns, day = snapshot_columns(loaded.model, data, table, as_of)
    report = drift_frame(loaded.model, columns)
    probability = loaded.model.predict_proba(columns)
    base_rate = loaded.model.base_rate
    shown = Table(
        title=f"Drift at {day}: {len(probability):,} accounts vs {loaded.uri} (version {loaded.version})"
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
    console = Console()
    console.print(shown)
    console.print(
        f"mean churn probability {probability.mean():.4f} (training base rate {base_rate:.4f}); "
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


@app.command()
@reports_errors
def report(
    data: DataOption,
    out: Annotated[
        Path, typer.Option(help="Directory for monthly.csv, cohorts.csv and the plots.")
    ] = Path("churn-report"),
    data_end: DataEndOption = None,
    months: Annotated[int, typer.Option(min=1, help="Months shown in the terminal.")] = 12,
) -> None:
    """Churn and retention figures per month and per signup cohort, with plots.

    Churn rate = customers lost in the month / customers at its start (new sign-ups
    cannot hide losses); retention, gross MRR churn and net revenue retention beside it.
    """
    from rich.console import Console
    from rich.table import Table

    from features.files import write_frame
    from features.tables import load_tables
    from training.projection import plot_projection, project_retention
    from training.report import churn_report, plot_report

    tables = load_tables(data)
    end = parse_date(data_end) if data_end else None
    figures = churn_report(tables, end)
    projected = project_retention(tables, end)
    out.mkdir(parents=True, exist_ok=True)
    write_frame(figures.monthly, out / "monthly.csv")
    write_frame(figures.cohorts.reset_index(), out / "cohorts.csv")
    write_frame(projected.projection, out / "cohort_projection.csv")
    write_frame(projected.backtest, out / "cohort_backtest.csv")
    plots = plot_report(figures, out / "plots")
    plots.append(plot_projection(projected.projection, projected.summary, out / "plots"))
    shown = Table(title=f"Churn by month ({data})")
    columns = {  # column: (header, format); the CSV has the full names
        "customers_start": ("start", "{:,.0f}"),
        "new": ("new", "{:,.0f}"),
        "lost": ("lost", "{:,.0f}"),
        "lost_early": ("early", "{:.0f}"),
        "lost_mid": ("mid", "{:.0f}"),
        "lost_late": ("late", "{:.0f}"),
        "churn_rate": ("churn", "{:.2%}"),
        "retention_rate": ("retention", "{:.2%}"),
        "gross_mrr_churn_rate": ("MRR churn", "{:.2%}"),
        "net_revenue_retention": ("NRR", "{:.1%}"),
    }
    shown.add_column("month", no_wrap=True)
    for header, _ in columns.values():
        shown.add_column(header, justify="right", no_wrap=True)
    for row in figures.monthly.tail(months).itertuples():
        shown.add_row(
            row.month.strftime("%Y-%m"),
            *(fmt.format(getattr(row, n)) for n, (_, fmt) in columns.items()),
        )
    Console().print(shown)
    print_backtest(projected.summary)
    typer.echo(
        f"wrote {out / 'monthly.csv'}, {out / 'cohorts.csv'}, {out / 'cohort_projection.csv'}, "
        f"{out / 'cohort_backtest.csv'}, " + ", ".join(str(p) for p in plots)
    )


def print_backtest(summary: Any) -> None:
    """The cohort projection backtest: error of sBG against the naive projections."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title="Cohort retention projected (backtest: last 6 observed months hidden, then compared)"
    )
    for name in ("method", "cohorts", "mean abs error", "at the 6th month", "best on"):
        table.add_column(name, justify="left" if name == "method" else "right")
    for row in summary.itertuples():
        table.add_row(
            row.method,
            str(row.cohorts),
            f"{row.mean_abs_error * 100:.1f} pts",
            f"{row.abs_error_last * 100:.1f} pts",
            f"{row.best_share:.0%} of cohorts",
        )
    Console().print(table)


@app.command()
@reports_errors
def ui(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 5000,
) -> None:
    """Open the MLflow UI on the configured store (runs, metrics, plots, registry)."""
    import os
    import subprocess

    settings = load_settings()
    uri = settings.resolved_tracking_uri
    if not uri.startswith(("sqlite:", "file:", "/", "postgresql", "mysql")):
        typer.echo(f"the tracking store is a server: open {uri} in a browser")
        return
    settings.resolved_home.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
    ]
    if settings.artifact_location:
        command += ["--default-artifact-root", settings.artifact_location]
    typer.echo(f"MLflow UI on http://{host}:{port} (store {uri}); Ctrl-C to stop")
    raise typer.Exit(subprocess.call(command, env=os.environ.copy()))


# --- serving -----------------------------------------------------------------------------------


@app.command()
@reports_errors
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default CHURN_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default CHURN_PORT or 8000).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default one per core).")
    ] = None,
    model: ModelOption = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Serve the scoring API: uvicorn, one worker per core, one LightGBM thread each.

    This process resolves the model (CHURN_MODEL_URI, default the champion; MLflow is
    imported here only), keeps a verified copy under CHURN_HOME/model-cache and publishes
    it to the workers, which load that local file (/ready is 503 until they have one). It
    polls the alias every CHURN_MODEL_POLL_SECONDS and answers /admin/reload. API keys come
    only from CHURN_API_KEYS / CHURN_API_KEYS_FILE. Docs at /docs.
    """
    from pydantic import ValidationError

    from service.serve import run

    try:
        settings = load_settings(
            host=host, port=port, workers=workers, model_uri=model, tracking_uri=tracking_uri
        )
    except ValidationError as exc:
        raise ChurnError(f"invalid settings: {exc}") from None
    if not run(settings):
        raise ChurnError("the server could not start: see the error logged above")


if __name__ == "__main__":  # `python -m service.cli`
    app()
