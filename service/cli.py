"""The `churn` command line (typer): the front door to every capability.

Heavy imports (MLflow, LightGBM, the web stack) happen inside the commands that need
them, so `churn --help` and `churn snapshot` start quickly. Errors raised on purpose
(``ChurnError``) become one red line and an exit code; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
EngineOption = Annotated[
    str | None,
    typer.Option(
        "--engine", help="local: one process (default); dask: account partitions (CHURN_ENGINE)."
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Dask scheduler, tcp://HOST:8786 (CHURN_DASK_SCHEDULER); default a local cluster.",
    ),
]
WorkerMemoryOption = Annotated[
    str | None,
    typer.Option(
        "--worker-memory",
        help="Local cluster: memory per worker, e.g. 4GiB (CHURN_DASK_WORKER_MEMORY).",
    ),
]


def on_engine(engine: str | None, scheduler: str | None, worker_memory: str | None) -> dict:
    """The engine options of a command as settings overrides."""
    if engine not in (None, "local", "dask"):
        raise typer.BadParameter(f"--engine {engine!r}: use local or dask")
    return {"engine": engine, "dask_scheduler": scheduler, "dask_worker_memory": worker_memory}


@contextlib.contextmanager
def engine_client(settings: Any) -> Iterator[Any]:
    """None for the local engine; for dask, a cluster client (its dashboard printed)."""
    if settings.engine != "dask":
        yield None
        return
    from training.cluster import dask_client, describe

    with dask_client(settings) as client:
        typer.secho(describe(client), fg=typer.colors.CYAN, err=True)
        yield client


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
    out: Annotated[
        Path, typer.Option(help="Output file: .parquet, .csv or .jsonl (dask: a directory).")
    ],
    engine: EngineOption = None,
    scheduler: SchedulerOption = None,
    worker_memory: WorkerMemoryOption = None,
) -> None:
    """Point-in-time snapshots of every account active on AS_OF."""
    from features.files import write_frame
    from features.snapshot import active_snapshots
    from features.tables import load_tables

    settings = load_settings(**on_engine(engine, scheduler, worker_memory))
    day = parse_date(as_of)
    if settings.engine == "dask":
        from training.distributed import write_snapshots
        from training.progress import Steps

        with engine_client(settings) as client:
            rows = write_snapshots(client, data, day, out, settings, Steps())
        typer.echo(f"wrote {rows} snapshots at {day} to {out}/ (Parquet, a file per partition)")
        return
    tables = load_tables(data)
    frame = active_snapshots(tables, [day], exclude_columns=settings.exclude_columns)
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
    from features.settings import read_settings

    return read_settings(**{key: value for key, value in overrides.items() if value is not None})


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
    from training.fit import load_params
    from training.pipeline import train_and_record
    from training.progress import Steps

    if (data is None) == (table is None):
        raise DataError(
            "give either --data DIR (event tables) or --table FILE --label COLUMN (one labelled export)"
        )
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
    from training.fit import load_params
    from training.outcomes import champion_outcomes
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


@app.command()
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
    from training.fit import load_params
    from training.progress import Steps
    from training.tune import run_tune

    if (data is None) == (table is None):
        raise DataError(
            "give either --data DIR (event tables) or --table FILE --label COLUMN (one labelled export)"
        )
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


def print_tune_result(result: Any, settings: Any) -> None:
    from rich.console import Console

    console = Console()
    state = "interrupted after" if result.interrupted else "finished"
    console.print(f"tune {state} {result.trials} trials ({result.pruned} pruned)")
    if result.best is None:
        console.print("[yellow]no trial finished: no parameters written[/yellow]")
    else:
        best = result.best
        console.print(
            f"best: trial {best.number}, validation log loss {best.evaluation.loss:.5f} -> {result.out}"
        )
        console.print(f"next: churn train --params {result.out}  (or churn retrain --params ...)")
    console.print(
        f"run {result.run_id} in experiment '{settings.experiment}' at {settings.resolved_tracking_uri}"
    )


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
    search = result.trained.search
    if search is not None:
        chosen = ", ".join(f"{k} {v}" for k, v in search.capacity().items())
        console.print(
            f"chosen on the {search.scored_on}: {search.params.model_form}, {chosen} "
            f"({len(search.candidates)} candidates: tables/search_candidates.csv in the run)"
        )
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
    params = {"horizon_days": horizon_days, "every": every, "last": last or 0}
    run_id = record_model_evaluation(
        loaded, end, dates, label, probability, metrics, params, settings
    )
    typer.echo(
        f"run {run_id} in experiment '{settings.experiment}' at {redact(settings.resolved_tracking_uri)}"
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


def settings_and_model(**overrides: Any) -> tuple[Any, Any]:
    """The settings (flags over CHURN_*) and the model they name, loaded and verified."""
    from models.registry import load_model

    settings = load_settings(**overrides)
    return settings, load_model(settings.resolved_model_uri, settings)


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
    engine: EngineOption = None,
    scheduler: SchedulerOption = None,
    worker_memory: WorkerMemoryOption = None,
) -> None:
    """Drift of today's accounts against the model's training data (PSI per feature).

    PSI below 0.10 is stable, 0.10-0.25 moderate, 0.25 and above major: the features
    the model leans on no longer look like what it learnt from, so retrain or investigate.
    With --engine dask, drift is tallied per account partition and merged.
    """
    from rich.console import Console
    from rich.table import Table

    from features.files import write_frame
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
    console = Console()
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


@app.command()
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


@app.command()
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
    from training.fit import load_params
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


def print_table(title: str, frame: Any, columns: dict[str, tuple[str, str | None]]) -> None:
    """A frame on the terminal: ``columns`` maps a column to (header, format), a number
    format (``{:.2%}``, right-aligned), a date pattern (``%Y-%m``) or None (text as is)."""
    from rich.console import Console
    from rich.table import Table

    shown = Table(title=title)
    for header, spec in columns.values():
        number = spec is not None and spec.startswith("{")
        shown.add_column(header, justify="right" if number else "left", no_wrap=number)
    for row in frame.to_dict(orient="records"):
        shown.add_row(*(_cell(row[name], spec) for name, (_, spec) in columns.items()))
    Console().print(shown)


def _cell(value: Any, spec: str | None) -> str:
    if value is None or value != value:  # missing, NaN
        return "-"
    if spec is None:
        return str(value)
    return value.strftime(spec) if spec.startswith("%") else spec.format(value)


@app.command()
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


@app.command()
@reports_errors
def ui(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 5000,
) -> None:
    """Open the MLflow UI on the configured store (runs, metrics, plots, registry).

    Prints the link to the experiment's training runs: MLflow 3.17's UI opens on its GenAI
    pages unless the link (or its Model training switch) says otherwise.
    """
    import os
    import subprocess

    from features.redact import redact
    from training.describe import runs_page
    from training.track import configure

    settings = load_settings()
    uri = settings.resolved_tracking_uri
    if not uri.startswith(("sqlite:", "file:", "/", "postgresql", "mysql")):
        experiment_id = configure(settings)
        typer.echo(f"the tracking store is a server: open {redact(runs_page(uri, experiment_id))}")
        return
    settings.resolved_home.mkdir(parents=True, exist_ok=True)
    experiment_id = configure(settings)  # marks a store trained before runs were described
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
    typer.echo(f"MLflow UI on http://{host}:{port} (store {redact(uri)}); Ctrl-C to stop")
    typer.echo(f"training runs: {runs_page(f'http://{host}:{port}', experiment_id)}")
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
    only from CHURN_API_KEYS / CHURN_API_KEYS_FILE (admin keys: CHURN_ADMIN_KEYS[_FILE]);
    without any, it serves only on a loopback address unless CHURN_ALLOW_ANONYMOUS=true.
    Docs at /docs.
    """
    from service.serve import run

    settings = load_settings(
        host=host, port=port, workers=workers, model_uri=model, tracking_uri=tracking_uri
    )
    if not run(settings):
        raise ChurnError("the server could not start: see the error logged above")


if __name__ == "__main__":  # `python -m service.cli`
    app()
