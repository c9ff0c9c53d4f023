"""What long jobs and reports print: tables stay whole when the output is not a terminal."""

from __future__ import annotations

import pytest
from rich.table import Table

from training.progress import terminal


def test_a_table_written_to_a_pipe_keeps_every_column(capsys: pytest.CaptureFixture[str]) -> None:
    table = Table(*(f"column {i}" for i in range(9)))
    table.add_row(*["2025-06-01"] * 9)
    terminal().print(table)
    assert capsys.readouterr().out.count("2025-06-01") == 9
