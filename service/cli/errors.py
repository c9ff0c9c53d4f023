"""Errors raised on purpose (``ChurnError``) as one red line and an exit code: the one place
the command line maps them; anything else is a bug and keeps its traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer

from features.errors import ChurnError, ConflictError, DataError, ModelError, RegistryError
from features.redact import redact

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
