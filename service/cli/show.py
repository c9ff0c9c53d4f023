"""What the commands print on the terminal: rich tables of splits, metrics, verdicts and
frames (rich is imported when a table is printed)."""

from __future__ import annotations

from typing import Any

from features.redact import redact

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


def print_tune_result(result: Any, settings: Any) -> None:
    from training.progress import terminal

    console = terminal()
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


def print_retrain_result(result: Any, settings: Any) -> None:
    from rich.table import Table

    from training.progress import terminal

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
            metric_text(result.trained.trained.metrics.get(name)),
            metric_text(result.champion_metrics.get(name)),
        )
    console = terminal()
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
    from rich.table import Table

    from training.progress import terminal

    table = Table(title="Split")
    table.add_column("split")
    for column in summary.columns:
        table.add_column(str(column), justify="right")
    for split, row in summary.iterrows():
        table.add_row(str(split), *(str(v) for v in row.tolist()))
    terminal(stderr=True).print(table)


def print_training_result(result: Any, settings: Any) -> None:
    from rich.table import Table

    from training.progress import terminal

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
                table.add_row(name, metric_text(model), metric_text(baseline))
    console = terminal()
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
                key,
                *(metric_text(metrics.get(f"{window}_{model}_{key}")) for model in SURVIVAL_MODELS),
            )
        console.print(table)


SURVIVAL_KEYS = ("concordance", "integrated_brier")


def _survival_order(key: str) -> tuple[int, int, str]:
    if key in SURVIVAL_KEYS:
        return (1, SURVIVAL_KEYS.index(key), key)
    return (0, int(key.rsplit("_", 1)[1].rstrip("d")), key)


def metric_text(value: float | None) -> str:
    """A metric as the tables show it: four decimals, "-" when there is none."""
    return "-" if value is None else f"{value:.4f}"


def print_table(title: str, frame: Any, columns: dict[str, tuple[str, str | None]]) -> None:
    """A frame on the terminal: ``columns`` maps a column to (header, format), a number
    format (``{:.2%}``, right-aligned), a date pattern (``%Y-%m``) or None (text as is)."""
    from rich.table import Table

    from training.progress import terminal

    shown = Table(title=title)
    for header, spec in columns.values():
        number = spec is not None and spec.startswith("{")
        shown.add_column(header, justify="right" if number else "left", no_wrap=number)
    for row in frame.to_dict(orient="records"):
        shown.add_row(*(_cell(row[name], spec) for name, (_, spec) in columns.items()))
    terminal().print(shown)


def _cell(value: Any, spec: str | None) -> str:
    if value is None or value != value:  # missing, NaN
        return "-"
    if spec is None:
        return str(value)
    return value.strftime(spec) if spec.startswith("%") else spec.format(value)
