"""The `churn` command line (typer): the front door to every capability.

This module makes the app and registers every command, in the order `churn --help` lists
them; the commands live in modules by subject. Heavy imports (MLflow, LightGBM, the web
stack) happen inside the commands that need them, so `churn --help` and `churn snapshot`
start quickly. Errors raised on purpose (``ChurnError``) become one red line and an exit
code (service/cli/errors.py); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import typer

from service.cli import data, modelling, over_time, scoring, serving

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Churn prediction for subscription businesses: snapshots, training, scoring, serving.",
)

app.command("demo-data")(data.demo_data)
app.command()(data.snapshot)
app.command()(modelling.train)
app.command()(modelling.retrain)
app.command()(modelling.tune)
app.command()(modelling.rollback)
app.command()(modelling.evaluate)
app.command()(scoring.score)
app.command()(scoring.monitor)
app.command()(over_time.report)
app.command()(over_time.backtest)
app.command()(over_time.outcomes)
app.command()(serving.ui)
app.command()(serving.serve)

__all__ = ["app"]
