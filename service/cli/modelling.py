"""Commands that make and judge models: `churn train`, `retrain`, `tune`, `rollback` and
`evaluate`, and how they read event tables or one labelled export."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from features.errors import ChurnError, DataError, ModelError
from service.cli.errors import reports_errors
from service.cli.options import (
    DataEndOption,
    DataOption,
    EngineOption,
    EveryOption,
    ExperimentOption,
    HorizonOption,
    HorizonsOption,
    ModelOption,
    ParamOption,
    ParamsFileOption,
    PeriodsOption,
    SchedulerOption,
    TrackingOption,
    WorkerMemoryOption,
    engine_client,
    load_settings,
    on_engine,
    one_source,
    parse_date,
    settings_and_model,
)
from service.cli.show import (
    KEY_METRICS,
    metric_text,
    print_retrain_result,
    print_split,
    print_training_result,
    print_tune_result,
)


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


LABELLED_EXPORT = "--table FILE --label COLUMN (one labelled export)"
TableOption = Annotated[
    Path | None,
    typer.Option("--table", help="One labelled export (CSV/Parquet), a row per customer."),
]
LabelOption = Annotated[
    str | None, typer.Option("--label", help="Table mode: the churn flag column.")
]
PositiveOption = Annotated[
    str | None, typer.Option("--positive", help="Table mode: the label value meaning churned.")
]
IdOption = Annotated[str | None, typer.Option("--id", help="Table mode: the customer id column.")]
MappingOption = Annotated[
    Path | None, typer.Option("--mapping", help="Table mode: YAML/TOML column mapping.")
]
MapOption = Annotated[
    list[str] | None, typer.Option("--map", help="Table mode: source=field (repeatable).")
]
TableAsOfOption = Annotated[
    str | None, typer.Option("--as-of", help="Table mode: date of the export (default today).")
]


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
    run_name: Annotated[
        str | None, typer.Option(help="MLflow run name (default: train <data end> <form>).")
    ] = None,
    horizons: HorizonsOption = None,
    table: TableOption = None,
    label: LabelOption = None,
    positive: PositiveOption = None,
    id_column: IdOption = None,
    mapping: MappingOption = None,
    map_pair: MapOption = None,
    table_as_of: TableAsOfOption = None,
    engine: EngineOption = None,
    scheduler: SchedulerOption = None,
    worker_memory: WorkerMemoryOption = None,
) -> None:
    """Train a calibrated churn model, track the run in MLflow and register it.

    Event tables: --data DIR. A single labelled export: --table FILE --label COLUMN.
    With --engine dask, snapshots and LightGBM run on a Dask cluster (event tables only).
    """
    require_training_extra()
    from training.params import load_params
    from training.pipeline import train_and_record
    from training.progress import Steps

    one_source(data, table, LABELLED_EXPORT)
    settings = load_settings(
        tracking_uri=tracking_uri,
        experiment=experiment,
        horizon_days=horizon,
        horizons=horizons,
        **on_engine(engine, scheduler, worker_memory),
    )
    params = load_params(params_file, param or [], search_defaults(settings))
    steps = Steps()
    if table is not None and settings.engine == "dask":
        raise DataError("table mode (--table) trains in one process: drop --engine dask")
    with engine_client(settings) as client:  # a Dask cluster holds the training window
        if table is not None:
            source = TableSource(table, label, positive, id_column, mapping, map_pair, table_as_of)
            prepared = prepare_table_data(source, settings, params.seed, steps)
            if horizons is not None and settings.horizons:
                typer.secho(
                    "--horizons ignored: one labelled export has no history, so no time axis to "
                    "learn when accounts leave (the model gives the single probability)",
                    fg=typer.colors.YELLOW,
                    err=True,
                )
        else:
            plan = (validation_periods, calibration_periods, test_periods)
            prepared = prepare_event_data(data, settings, every, data_end, plan, steps, client)
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


def search_defaults(settings: Any) -> dict[str, Any]:
    """Training parameters whose defaults are settings (``CHURN_SEARCH_CANDIDATES``)."""
    return {"search_candidates": settings.search_candidates}


@dataclass(frozen=True)
class TableSource:
    """Table mode's options: one labelled export and how to read it."""

    table: Path
    label: str | None
    positive: str | None
    id_column: str | None
    mapping: Path | None
    map_pair: list[str] | None
    as_of: str | None


def prepare_table_data(source: TableSource, settings: Any, seed: int, steps: Any) -> Any:
    """One labelled export -> cleaned snapshot rows and the stratified split (train and tune)."""
    from training.table import TableMapping, clean_table, prepare_table, read_export, read_mapping

    fields, kinds = read_mapping(source.mapping, source.map_pair or [])
    table_mapping = TableMapping(fields, kinds, source.id_column, source.label, source.positive)
    with steps.step(f"reading and cleaning {source.table}"):
        raw = read_export(source.table)
        day = parse_date(source.as_of) if source.as_of else dt.date.today()
        clean = clean_table(raw, table_mapping, day, exclude_columns=settings.exclude_columns)
        prepared = prepare_table(clean, source=str(source.table), seed=seed)
    for line in clean.report:
        typer.secho(f"repaired: {line}", fg=typer.colors.YELLOW, err=True)
    return prepared


def prepare_event_data(
    data: Path,
    settings: Any,
    every: str,
    data_end: str | None,
    plan: tuple[int, int, int],
    steps: Any,
    client: Any = None,
) -> Any:
    """Event tables -> labelled, temporally split snapshots (shared by train and retrain),
    on a Dask cluster when given its client."""
    from features.tables import load_tables
    from training.dataset import SplitPlan
    from training.pipeline import prepare_events

    if client is not None:
        from training.distributed import prepare_partitioned

        end = parse_date(data_end) if data_end else None
        return prepare_partitioned(client, data, settings, every, end, SplitPlan(*plan), steps)
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
    run_name: Annotated[
        str | None, typer.Option(help="MLflow run name (default: retrain <data end> <form>).")
    ] = None,
    engine: EngineOption = None,
    scheduler: SchedulerOption = None,
    worker_memory: WorkerMemoryOption = None,
    horizons: HorizonsOption = None,
) -> None:
    """Train a challenger on the latest data; it replaces the champion only if it beats it.

    Both are scored on the challenger's test window (the latest labelled dates). The
    verdict and the champion's figures are recorded on the challenger's run. Meant for
    a scheduler (cron, Kubernetes CronJob); a lock keeps two runs from overlapping.
    """
    require_training_extra()
    from training.outcomes import champion_outcomes
    from training.params import load_params
    from training.progress import Steps
    from training.retrain import retrain as run_retrain
    from training.retrain import retrain_guard

    settings = load_settings(
        tracking_uri=tracking_uri,
        experiment=experiment,
        horizon_days=horizon,
        retrain_min_gain=min_gain,
        horizons=horizons,
        **on_engine(engine, scheduler, worker_memory),
    )
    params = load_params(params_file, param or [], search_defaults(settings))
    steps = Steps()
    plan = (validation_periods, calibration_periods, test_periods)
    with retrain_guard(settings) as lease, engine_client(settings) as client:
        prepared = prepare_event_data(data, settings, every, data_end, plan, steps, client)
        print_split(prepared.summary)
        realized = champion_outcomes(settings, data, parse_date(data_end) if data_end else None)
        result = run_retrain(prepared, params, settings, steps, run_name, lease, realized=realized)
    print_retrain_result(result, settings)


@reports_errors
def tune(
    data: Annotated[
        Path | None, typer.Option("--data", help="Directory of account tables.")
    ] = None,
    trials: Annotated[
        int | None, typer.Option(min=1, help="Trials to run (default 50 without --timeout).")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(min=1, help="Stop starting trials after this many seconds.")
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Where the best parameters go (a --params file).")
    ] = Path("params.toml"),
    tracking_uri: TrackingOption = None,
    experiment: ExperimentOption = None,
    horizon: HorizonOption = None,
    every: EveryOption = "MS",
    data_end: DataEndOption = None,
    param: ParamOption = None,
    params_file: ParamsFileOption = None,
    validation_periods: PeriodsOption = 2,
    calibration_periods: PeriodsOption = 3,
    test_periods: PeriodsOption = 3,
    table: TableOption = None,
    label: LabelOption = None,
    positive: PositiveOption = None,
    id_column: IdOption = None,
    mapping: MappingOption = None,
    map_pair: MapOption = None,
    table_as_of: TableAsOfOption = None,
) -> None:
    """Search model form and capacity longer than `churn train` does (Optuna, TPE, pruning).

    Trials are scored on the rows `churn train` chooses on (never the test window); each is
    a nested MLflow run under a `tune <data end>` run. The best parameters are written to
    --out after every improvement, so Ctrl-C keeps what was found. Then:
    `churn train --params params.toml` (or `churn retrain --params params.toml`).
    """
    from training.params import load_params
    from training.progress import Steps
    from training.tune import run_tune

    one_source(data, table, LABELLED_EXPORT)
    settings = load_settings(tracking_uri=tracking_uri, experiment=experiment, horizon_days=horizon)
    params = load_params(params_file, param or [])
    steps = Steps()
    if table is not None:
        source = TableSource(table, label, positive, id_column, mapping, map_pair, table_as_of)
        prepared = prepare_table_data(source, settings, params.seed, steps)
    else:
        plan = (validation_periods, calibration_periods, test_periods)
        prepared = prepare_event_data(data, settings, every, data_end, plan, steps)
    print_split(prepared.summary)
    result = run_tune(prepared, params, settings, trials, timeout, out)
    print_tune_result(result, settings)
    if result.interrupted:
        raise typer.Exit(130)


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


@reports_errors
def evaluate(
    data: DataOption,
    model: ModelOption = None,
    tracking_uri: TrackingOption = None,
    experiment: ExperimentOption = None,
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
    """Evaluate any model on any labelled data with the training metrics.

    Recorded as an `evaluate <data end> ...` run in the experiment (figures, plots, a
    note); it registers no model and moves no alias.
    """
    import orjson

    from features.files import write_atomic
    from features.redact import redact
    from features.schema import frame_to_columns
    from features.snapshot import active_points, build_snapshots
    from features.tables import load_tables
    from features.timeline import observation_dates
    from training.dataset import label_snapshots
    from training.evaluate import evaluate as evaluate_metrics
    from training.evaluate import finite
    from training.pipeline import lifecycle_stage, record_model_evaluation

    settings, loaded = settings_and_model(
        tracking_uri=tracking_uri, model_uri=model, experiment=experiment
    )
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
    from rich.table import Table

    from training.progress import terminal

    table = Table(
        title=f"{loaded.uri} on {data} ({len(label):,} snapshots, {dates[0]}..{dates[-1]})"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("rows", "base_rate", *KEY_METRICS):
        table.add_row(key, metric_text(metrics.get(f"eval_{key}")))
    terminal().print(table)
    if out is not None:
        write_atomic(
            out, lambda temp: temp.write_bytes(orjson.dumps(metrics, option=orjson.OPT_INDENT_2))
        )
    params = {"horizon_days": horizon_days, "every": every, "last": last or 0}
    run_id = record_model_evaluation(
        loaded, end, dates, label, probability, metrics, params, settings
    )
    typer.echo(
        f"run {run_id} in experiment '{settings.experiment}' at {redact(settings.resolved_tracking_uri)}"
    )
