"""The champion alias under faults, with real `churn` processes and real `mlflow server`s.

Each scenario stops a job at a known point with a real mechanism, never a test hook: the
test holds the registry lease of the alias (as another job would), so a `churn train` or
`churn retrain` registers its version and then waits for the lease; there the test kills
it (SIGKILL), pauses it (SIGSTOP), or pauses the tracking server, and then checks what the
registry says. Slow (several trainings): `make quality`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from features.settings import Settings
from models.champion import PROMOTION_TAG, AliasOwner
from models.lease import Lease
from models.registry import Registry
from tests.conftest import running_mlflow

pytestmark = pytest.mark.quality
FAST = ("--param", "num_boost_round=60", "--param", "early_stopping_rounds=10")


def environment(server: str, home: Path, model: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    return {
        **env,
        "CHURN_TRACKING_URI": server,
        "CHURN_HOME": str(home),
        "CHURN_MODEL_NAME": model,
        "CHURN_EXPERIMENT": model,
        "CHURN_LEASE_WAIT_SECONDS": "600",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **extra,
    }


def start(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", *args],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
    )


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "service.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)


def wait_for(check: Callable[[], bool], process: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if check():
            return
        if process.poll() is not None:
            raise AssertionError(
                f"churn exited ({process.returncode}) before {what}:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.5)
    raise TimeoutError(f"{what} not reached:\n{log.read_text()[-3000:]}")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (`mlflow server` serves from a uvicorn child process)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def signal_tree(pid: int, signum: int) -> None:
    for member in process_tree(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signum)


def versions(registry: Registry, model: str) -> list[str]:
    return sorted(
        (str(v.version) for v in registry.client.search_model_versions(f"name = '{model}'")),
        key=int,
    )


def seed_champions(server: str, model: str, count: int, tmp: Path) -> None:
    """``count`` small registered versions, each promoted (cheap: no training run)."""
    from features.schema import columns_to_frame
    from tests.models.conftest import fit_model, snapshot_columns
    from training.track import RunRecord, record_run

    columns = snapshot_columns(30)
    frame = columns_to_frame(columns)
    settings = Settings(tracking_uri=server, home=tmp / "seed", model_name=model, experiment=model)
    for seed in range(count):
        artifacts = tmp / f"artifacts-{seed}"
        artifacts.mkdir()
        record = RunRecord(
            model=fit_model(snapshot_columns(600, seed), seed),
            params={},
            metrics={},
            baseline_params={},
            baseline_metrics={},
            tags={},
            artifacts_dir=artifacts,
            input_frame=frame.assign(churned=[i % 2 for i in range(len(frame))]),
            input_example=frame.head(3),
        )
        record_run(record, settings, promote="always")


@pytest.fixture
def model_name() -> str:
    return f"jobs-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """An `mlflow server` of this test alone (the test pauses it)."""
    with running_mlflow(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}") as server:
        yield server


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The issue's reproduction data: `churn demo-data --accounts 800 --seed 5`."""
    out = tmp_path_factory.mktemp("demo-800")
    done = run(
        "demo-data", "--out", str(out), "--accounts", "800", "--seed", "5", env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_a_challenger_that_fails_its_checks_on_a_fresh_store_leaves_no_champion(
    small_demo: Path, tmp_path: Path, model_name: str
) -> None:
    """The issue's reproduction: the challenger fails its check and nothing takes the alias."""
    store = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = environment(store, tmp_path / "home", model_name, CHURN_RETRAIN_MIN_CHURNERS="1000000")
    done = run("retrain", "--data", str(small_demo), *FAST, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "kept" in done.stdout and "failed its checks" in done.stdout
    registry = Registry(store, store)
    assert versions(registry, model_name) == ["1"]
    assert registry.alias_version(model_name, "champion") is None
    run_tags = registry.client.get_run(registry.client.get_model_version(model_name, "1").run_id)
    assert run_tags.data.tags["retrain.decision"] == "kept champion"


def test_a_retrain_whose_tracking_server_stops_answering_exits_and_moves_nothing(
    private_server, demo_data: Path, tmp_path: Path, model_name: str
) -> None:
    server, process = private_server
    seed_champions(server, model_name, 1, tmp_path)
    registry = Registry(server, server)
    held = Lease(registry, model_name, "alias-champion", 600, holder="the test")
    held.acquire()
    env = environment(
        server,
        tmp_path / "home",
        model_name,
        MLFLOW_HTTP_REQUEST_TIMEOUT="3",
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
    )
    log = tmp_path / "retrain.log"
    job = start("retrain", "--data", str(demo_data), *FAST, env=env, log=log)
    wait_for(lambda: len(versions(registry, model_name)) == 2, job, log, "the challenger")
    signal_tree(process.pid, signal.SIGSTOP)  # the tracking server stops answering
    try:
        code = job.wait(timeout=300)
    finally:
        signal_tree(process.pid, signal.SIGCONT)
    output = log.read_text()
    assert code == 5, output[-3000:]
    assert "cannot" in output and "in the registry at" in output
    assert registry.alias_version(model_name, "champion") == "1"
    held.release()


def test_a_rollback_made_while_a_retrain_runs_is_not_overwritten(
    mlflow_server: str, demo_data: Path, tmp_path: Path, model_name: str
) -> None:
    seed_champions(mlflow_server, model_name, 2, tmp_path)
    registry = Registry(mlflow_server, mlflow_server)
    held = Lease(registry, model_name, "alias-champion", 600, holder="the test")
    held.acquire()
    env = environment(mlflow_server, tmp_path / "home", model_name)
    log = tmp_path / "retrain.log"
    job = start("retrain", "--data", str(demo_data), *FAST, env=env, log=log)

    def promoting() -> bool:
        found = versions(registry, model_name)
        if len(found) < 3:
            return False
        challenger = registry.client.get_model_version(model_name, "3").run_id
        return registry.client.get_run(challenger).data.tags.get("retrain.decision") == "promoting"

    wait_for(promoting, job, log, "the retrain waiting to promote version 3")
    job.send_signal(signal.SIGSTOP)
    try:
        held.release()
        rolled = run("rollback", env=environment(mlflow_server, tmp_path / "ops", model_name))
        assert rolled.returncode == 0, rolled.stderr[-3000:]
        assert registry.alias_version(model_name, "champion") == "1"
    finally:
        job.send_signal(signal.SIGCONT)
    code = job.wait(timeout=300)
    output = log.read_text()
    assert code == 6, output[-3000:]
    assert "names version 1 now, not version 2 that this job judged against" in output
    assert registry.alias_version(model_name, "champion") == "1"
    challenger = registry.client.get_model_version(model_name, "3").run_id
    decided = registry.client.get_run(challenger).data.tags
    assert decided["retrain.decision"] == "kept champion"
    assert "names version 1 now, not version 2" in decided["retrain.reason"]


def test_two_retrains_from_two_homes_one_runs_the_other_refuses(
    mlflow_server: str, demo_data: Path, tmp_path: Path, model_name: str
) -> None:
    registry = Registry(mlflow_server, mlflow_server)
    lease = Lease(registry, model_name, "retrain", 60)
    first_log = tmp_path / "first.log"
    first = start(
        "retrain",
        "--data",
        str(demo_data),
        *FAST,
        env=environment(mlflow_server, tmp_path / "home-a", model_name),
        log=first_log,
    )
    try:
        wait_for(lambda: lease.current() is not None, first, first_log, "the first retrain's lease")
        second = run(
            "retrain",
            "--data",
            str(demo_data),
            *FAST,
            env=environment(mlflow_server, tmp_path / "home-b", model_name),
        )
        assert second.returncode == 6, second.stderr[-3000:]
        assert "another job holds the retrain lease of" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        code = first.wait(timeout=900)
        assert code == 0, first_log.read_text()[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
    assert versions(registry, model_name) == ["1"]  # only the first registered anything
    assert lease.current() is None  # released at the end


def test_a_job_killed_between_registration_and_the_alias_move_leaves_a_consistent_registry(
    mlflow_server: str, demo_data: Path, tmp_path: Path, model_name: str
) -> None:
    seed_champions(mlflow_server, model_name, 1, tmp_path)
    registry = Registry(mlflow_server, mlflow_server)
    held = Lease(registry, model_name, "alias-champion", 600, holder="the test")
    held.acquire()
    log = tmp_path / "train.log"
    job = start(
        "train",
        "--data",
        str(demo_data),
        "--promote",
        *FAST,
        env=environment(mlflow_server, tmp_path / "home", model_name),
        log=log,
    )
    wait_for(lambda: len(versions(registry, model_name)) == 2, job, log, "the registration")
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=60)
    held.release()
    assert registry.alias_version(model_name, "champion") == "1"
    killed = registry.client.get_model_version(model_name, "2").tags
    assert killed[PROMOTION_TAG] == "registered"  # never "promoted" while not champion
    champion = registry.client.get_model_version(model_name, "1").tags
    assert champion[PROMOTION_TAG] == "promoted"
    owner = AliasOwner(registry, model_name, "champion", 60, 0)
    owner.move("2", "after the crash", judged="1")  # the next job finds everything in order
    assert registry.alias_version(model_name, "champion") == "2"
