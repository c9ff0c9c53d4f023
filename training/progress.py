"""Progress of long jobs on stderr: a spinner per step, then its duration."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.console import Console

WIDE = 200  # columns for output to a file or pipe, which has no width for tables to fit


def terminal(stderr: bool = False) -> Console:
    """A Rich console for tables and progress: a terminal's own width, or WIDE when the
    output goes to a file or pipe (at Rich's default 80, wide tables drop whole columns)."""
    console = Console(stderr=stderr)
    return console if console.is_terminal else Console(stderr=stderr, width=WIDE)


class Steps:
    """``with steps.step("training LightGBM"): ...`` shows a spinner, then ✓ and the time."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.console = terminal(stderr=True)
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        if not self.enabled:
            yield
            self.timings[name] = time.perf_counter() - started
            return
        with self.console.status(f"{name} ..."):
            try:
                yield
            except BaseException:
                self.console.print(f"[red]✗[/red] {name}")
                raise
        elapsed = time.perf_counter() - started
        self.timings[name] = elapsed
        self.console.print(f"[green]✓[/green] {name} [dim]({elapsed:.1f}s)[/dim]")
