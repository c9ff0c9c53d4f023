"""The registry behind authentication and on PostgreSQL: real `mlflow server` processes.

A refused request (401) is an error that stops a job, never "no champion". The
PostgreSQL test runs a cluster from Debian's server binaries (`make postgres` installs
them) and skips with the reason where they are missing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from features.errors import ConflictError, RegistryError
from models.champion import AliasOwner
from models.lease import Lease
from models.registry import Registry
from tests.conftest import ADMIN, free_port, running_mlflow


@pytest.mark.quality  # the basic-auth server (20 s to start) is shared with test_credentials
def test_an_unauthenticated_client_is_refused_and_that_is_not_no_champion(
    basic_auth_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    search = f"{basic_auth_server}/api/2.0/mlflow/registered-models/search"
    assert httpx.get(search, timeout=30).status_code == 401
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    with pytest.raises(RegistryError, match="cannot read churn-model@champion in the registry"):
        Registry(basic_auth_server, basic_auth_server).alias_version("churn-model", "champion")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "a wrong password")
    with pytest.raises(RegistryError) as refused:
        Registry(basic_auth_server, basic_auth_server).alias_version("churn-model", "champion")
    assert "a wrong password" not in str(refused.value)


@pytest.mark.quality  # shares the basic-auth server with test_credentials
def test_with_credentials_the_alias_owner_works(
    basic_auth_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
    registry = Registry(basic_auth_server, basic_auth_server)
    name = f"auth-{uuid.uuid4().hex[:8]}"
    registry.client.create_registered_model(name)
    registry.client.create_model_version(name, source="s3://churn-tests/nowhere")
    owner = AliasOwner(registry, name, "champion", 60, 0)
    assert owner.current() is None
    owner.move("1", "first", judged=None)
    assert owner.current() == "1"


# --- PostgreSQL ---------------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the `postgres` user there."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throwaway cluster on a free port; yields the URI of its `mlflow` database."""
    binaries = postgres_bin()
    if binaries is None:
        pytest.skip("PostgreSQL server binaries not found (`make postgres` installs them)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: PostgreSQL cannot be started")
    root = Path(tempfile.mkdtemp(prefix="churn-pg-"))
    os.chmod(root, 0o755)
    data, port = root / "data", free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    try:
        subprocess.run(
            as_postgres([str(binaries / "initdb"), "-D", str(data), "-U", "mlflow", "-A", "trust"]),
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
        subprocess.run(
            as_postgres(
                [
                    str(binaries / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(root / "log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=port, user="mlflow", dbname="postgres")
        connection.autocommit = True
        connection.cursor().execute("CREATE DATABASE mlflow")
        connection.close()
        yield f"postgresql+psycopg2://mlflow@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(
            as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.quality  # a PostgreSQL cluster and a server: half a minute
def test_the_alias_owner_and_the_lease_on_a_postgresql_backed_registry(tmp_path: Path) -> None:
    with postgres_cluster() as database, running_mlflow(tmp_path, database) as (url, _):
        registry = Registry(url, url)
        registry.client.create_registered_model("pg-model")
        for _ in range(2):
            registry.client.create_model_version("pg-model", source="s3://churn-tests/nowhere")
        owner = AliasOwner(registry, "pg-model", "champion", 60, 0)
        owner.move("1", "first", judged=None)
        other = Lease(registry, "pg-model", "alias-champion", 60, holder="another job")
        with other.hold(), pytest.raises(ConflictError, match=r"\(another job, for"):
            owner.move("2", "blocked", judged="1")
        owner.move("2", "after the other job", judged="1")
        assert owner.current() == "2"
        assert registry.client.get_model_version("pg-model", "2").tags["previous_champion"] == "1"


def test_a_registry_that_does_not_answer_stops_rollback_with_exit_5_and_no_password(
    tmp_path: Path,
) -> None:
    import sys

    uri = f"http://churn:s3cret-pass@127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    env.update({"CHURN_HOME": str(tmp_path), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "rollback", "--tracking-uri", uri],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 5, done.stderr[-2000:]
    assert "cannot read churn-model@champion in the registry at http://127.0.0.1:" in done.stderr
    assert "s3cret-pass" not in done.stderr + done.stdout
