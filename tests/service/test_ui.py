"""`churn ui` on a local store: the MLflow server it starts goes away with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_until_up

pytestmark = pytest.mark.quality  # an mlflow server start: half a minute on 2 cores


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_sigterm_stops_churn_ui_and_the_server_it_started(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "CHURN_HOME": str(tmp_path), "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("CHURN_TRACKING_URI", None)
    ui = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "ui", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", ui, timeout=300)
        ui.send_signal(signal.SIGTERM)
        assert ui.wait(timeout=60) == 0
        deadline = time.monotonic() + 30
        while port_open(port) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not port_open(port), "the MLflow server outlived `churn ui`"
    finally:
        if ui.poll() is None:
            ui.kill()
            ui.wait()
