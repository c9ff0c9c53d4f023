"""What the commands share: option types, dates, settings (flags over ``CHURN_*``), the
engine (local or a Dask cluster) and the model a command names."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer


def parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None


DataOption = Annotated[
    Path, typer.Option("--data", help="Directory of account tables (Parquet or CSV).")
]
# `churn score` and `churn monitor` read either event tables or one export:
EventsOrNoneOption = Annotated[
    Path | None, typer.Option("--data", help="Directory of account tables.")
]
ExportOption = Annotated[
    Path | None, typer.Option("--table", help="One export, for a model trained with --table.")
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


def one_source(
    data: Path | None, table: Path | None, table_form: str = "--table FILE (one export)"
) -> None:
    """Exactly one of event tables (--data) and one export (--table)."""
    if (data is None) == (table is None):
        from features.errors import DataError

        raise DataError(f"give either --data DIR (event tables) or {table_form}")


def load_settings(**overrides: Any):
    """The settings object, with CLI flags taking precedence over CHURN_* variables."""
    from features.settings import read_settings

    return read_settings(**{key: value for key, value in overrides.items() if value is not None})


def settings_and_model(**overrides: Any) -> tuple[Any, Any]:
    """The settings (flags over CHURN_*) and the model they name, loaded and verified."""
    from models.registry import load_model

    settings = load_settings(**overrides)
    return settings, load_model(settings.resolved_model_uri, settings)


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
