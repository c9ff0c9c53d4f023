"""Typed errors, mapped to exit codes (CLI) and HTTP statuses (service) in one place each."""

from __future__ import annotations


class ChurnError(Exception):
    """Base of every error Churn raises on purpose; the message is meant for the user."""


class DataError(ChurnError):
    """Input data breaks the contract. Names the table, column and first offending rows."""

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        column: str | None = None,
        rows: list[int] | None = None,
    ) -> None:
        self.table = table
        self.column = column
        self.rows = rows or []
        where = ".".join(p for p in (table, column) if p)
        super().__init__(f"{where}: {message}" if where else message)


class ModelError(ChurnError):
    """A model cannot be trained, loaded or used (wrong format, checksum, too little data)."""


class RegistryError(ChurnError):
    """The model registry did not answer, or refused: nothing that depends on it may proceed."""


class ConflictError(ChurnError):
    """Another job holds the registry lease, or the champion changed since it was judged."""


QUOTED_CHARACTERS = 40


def quoted(value: object, limit: int = QUOTED_CHARACTERS) -> str:
    """``repr(value)`` cut to ``limit`` characters: a message names what it refuses without
    echoing a client's megabyte back (or filling a log with it)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
