"""Data commands: a synthetic data set (`churn demo-data`) and point-in-time snapshots
(`churn snapshot`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.cli.errors import reports_errors
from service.cli.options import (
    DataOption,
    EngineOption,
    SchedulerOption,
    WorkerMemoryOption,
    engine_client,
    load_settings,
    on_engine,
    parse_date,
)


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
