"""Commands that run a server: `churn ui` (the MLflow UI on the configured store) and
`churn serve` (the scoring API)."""

from __future__ import annotations

import contextlib
import sys
from typing import Annotated

import typer

from features.errors import ChurnError
from service.cli.errors import reports_errors
from service.cli.options import ModelOption, TrackingOption, load_settings


@reports_errors
def ui(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 5000,
) -> None:
    """Open the MLflow UI on the configured store (runs, metrics, plots, registry).

    Prints the link to the experiment's training runs: MLflow 3.17's UI opens on its GenAI
    pages unless the link (or its Model training switch) says otherwise.
    """

    from features.redact import redact
    from training.describe import runs_page
    from training.track import configure

    settings = load_settings()
    uri = settings.resolved_tracking_uri
    if not uri.startswith(("sqlite:", "file:", "/", "postgresql", "mysql")):
        experiment_id = configure(settings)
        typer.echo(f"the tracking store is a server: open {redact(runs_page(uri, experiment_id))}")
        return
    settings.resolved_home.mkdir(parents=True, exist_ok=True)
    experiment_id = configure(settings)  # marks a store trained before runs were described
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
    ]
    if settings.artifact_location:
        command += ["--default-artifact-root", settings.artifact_location]
    typer.echo(f"MLflow UI on http://{host}:{port} (store {redact(uri)}); Ctrl-C to stop")
    typer.echo(f"training runs: {runs_page(f'http://{host}:{port}', experiment_id)}")
    raise typer.Exit(run_until_stopped(command))


def run_until_stopped(command: list[str]) -> int:
    """Run ``command`` (a server and the workers it starts) in a process group of its own and
    stop the whole group when this process gets SIGTERM or Ctrl-C, so stopping `churn ui`
    never leaves a server holding the port. Its exit code; 0 when it was stopped."""
    import os
    import signal
    import subprocess

    server = subprocess.Popen(command, env=os.environ.copy(), start_new_session=True)

    def stop(*_: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    try:
        code = server.wait()
    except KeyboardInterrupt:
        stop()
        code = server.wait()
    return 0 if code in (-signal.SIGTERM, 128 + signal.SIGTERM) else code


@reports_errors
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default CHURN_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default CHURN_PORT or 8000).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default one per core).")
    ] = None,
    model: ModelOption = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Serve the scoring API: uvicorn, one worker per core, one LightGBM thread each.

    This process resolves the model (CHURN_MODEL_URI, default the champion; MLflow is
    imported here only), keeps a verified copy under CHURN_HOME/model-cache and publishes
    it to the workers, which load that local file (/ready is 503 until they have one). It
    polls the alias every CHURN_MODEL_POLL_SECONDS and answers /admin/reload. API keys come
    only from CHURN_API_KEYS / CHURN_API_KEYS_FILE (admin keys: CHURN_ADMIN_KEYS[_FILE]);
    without any, it serves only on a loopback address unless CHURN_ALLOW_ANONYMOUS=true.
    Docs at /docs.
    """
    from service.serve import run

    settings = load_settings(
        host=host, port=port, workers=workers, model_uri=model, tracking_uri=tracking_uri
    )
    if not run(settings):
        raise ChurnError("the server could not start: see the error logged above")
