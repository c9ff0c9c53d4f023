"""Progress of long jobs on stderr: a spinner per step, then its duration."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.console import Console


class Steps:
    """``with steps.step("training LightGBM"): ...`` shows a spinner, then ✓ and the time."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)
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
