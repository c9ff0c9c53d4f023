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

from features.errors import ChurnError, DataError, ModelError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Churn prediction for subscription businesses: snapshots, training, scoring, serving.",
)

EXIT_CODES: dict[type[ChurnError], int] = {DataError: 2, ModelError: 3, ChurnError: 1}
F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(command: F) -> F:
    """Turn ChurnError into a clear message and an exit code (the one place that does)."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        try:
            return command(*args, **kwargs)
        except ChurnError as error:
            typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
            code = next(c for kind, c in EXIT_CODES.items() if isinstance(error, kind))
            raise typer.Exit(code) from None

    return run  # type: ignore[return-value]


def parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None


DataOption = Annotated[Path, typer.Option("--data", help="Directory of account tables (Parquet or CSV).")]


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
        out, accounts=accounts, start=parse_date(start), end=parse_date(end), seed=seed, horizon_days=horizon
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


def main() -> None:  # pragma: no cover - console script entry
    app()
