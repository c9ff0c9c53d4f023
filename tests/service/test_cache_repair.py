"""A real `churn serve`: a damaged cached bundle is repaired without a person.

The worker is killed and restarted by the supervisor on a cached copy that no longer
matches its SHA-256 (as after a disk error or a restore gone wrong); it asks the parent,
which downloads the bundle again, and the new worker serves. The same repair runs in
`make test` in-process (tests/service/test_publisher.py); this real-process check is
slower (a worker restart): `make quality`.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from features.files import file_sha256
from models.bundle import ChurnModel

from .conftest import KEY, register, start_server

AUTH = {"X-API-Key": KEY}
pytestmark = pytest.mark.quality


def test_a_corrupted_cached_bundle_is_repaired_after_a_worker_restart(
    model: ChurnModel, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    register(model, home, promote=True)
    server = start_server(
        tmp_path, "--workers", "1", env={"CHURN_API_KEYS": KEY, "CHURN_MODEL_POLL_SECONDS": "0"}
    )
    try:
        server.wait(lambda: server.get("/ready").status_code == 200, what="the first model")
        sha = server.get("/v1/model", headers=AUTH).json()["sha256"]
        cached = home / "model-cache" / f"{sha}.churn"
        cached.write_bytes(b"damaged on disk")
        (worker,) = server.worker_pids()
        os.kill(worker, signal.SIGKILL)
        server.wait(
            lambda: (
                server.worker_pids() not in ([], [worker])
                and server.get("/ready").status_code == 200
            ),
            timeout=300,
            what="a restarted worker serving again",
        )
        assert file_sha256(cached) == sha
        assert server.get("/v1/model", headers=AUTH).json()["version"] == "1"
    finally:
        server.stop()
