"""Serving benchmark: `churn serve` vs `mlflow models serve`, same model, same load, one run.

    python bench/serve.py [--data DIR] [--accounts 2000] [--seconds 8] [--home DIR]

Registers one model (``churn train`` on demo data, in a temp CHURN_HOME unless --home
names one that already has a champion), serves it with ``mlflow models serve
--env-manager local`` (the registered pyfunc, models/pyfunc.py) and with ``churn serve``
on 127.0.0.1, one server at a time, and drives both with the same bounded load
generator: a raw asyncio HTTP/1.1 keep-alive client (httpx tops out below 1,000 req/s
here and would measure itself). Measured per server:

* single-account requests at concurrency 1 and 16 (ours with and without explanations,
  so their cost is reported separately; mlflow's pyfunc has none);
* one 10,000-account batch POST (median of 3);
* cold start: process start to the first successful prediction (``churn serve`` with its
  model cache under CHURN_HOME emptied first, so the parent downloads the bundle as on a
  first start), and for ``churn serve`` also a restart with the bundle already cached;
* resident memory of the whole process tree (RSS of the server and its children, summed),
  after the load levels.

The load generator shares the machine's cores with the server, as a co-located client
would; every run is bounded in requests and seconds and only talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ comes first on sys.path and bench/features.py would shadow the
# `features` package: put the project root there instead.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
BATCH = 10_000
MAX_REQUESTS = 200_000  # per load level, on top of the time bound


# --- the load generator ----------------------------------------------------------------------


@dataclass
class Load:
    """Latencies (seconds) of the requests one load level completed, and its wall time."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        return (
            float(np.percentile(np.asarray(self.latencies), q) * 1000)
            if self.latencies
            else float("nan")
        )


def request_bytes(path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked = None, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if length is not None:
        return status, await reader.readexactly(length)
    if not chunked:
        return status, b""
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return status, bytes(body)
        body += chunk[:-2]


async def drive(
    port: int,
    requests: Sequence[bytes],
    concurrency: int,
    seconds: float,
    limit: int = MAX_REQUESTS,
) -> Load:
    """``concurrency`` keep-alive connections sending back to back until time or count runs out."""
    load = Load()
    deadline = time.perf_counter() + seconds
    counter = iter(range(limit))

    async def connection(offset: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for i in counter:
                if time.perf_counter() > deadline:
                    break
                payload = requests[(i + offset) % len(requests)]
                start = time.perf_counter()
                writer.write(payload)
                status, _ = await read_response(reader)
                elapsed = time.perf_counter() - start
                load.statuses[status] = load.statuses.get(status, 0) + 1
                if status == 200:
                    load.latencies.append(elapsed)
                else:
                    load.errors += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection(k * 7919) for k in range(concurrency)))
    load.seconds = time.perf_counter() - start
    return load


def run_load(
    port: int,
    requests: Sequence[bytes],
    concurrency: int,
    seconds: float,
    limit: int = MAX_REQUESTS,
) -> Load:
    import uvloop

    return uvloop.run(drive(port, requests, concurrency, seconds, limit))


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and all its descendants, summed, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def tree_pids(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def post(
    port: int, path: str, body: bytes, timeout: float = 120.0, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"http://{HOST}:{port}{path}", body, {"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for_prediction(
    process: subprocess.Popen,
    port: int,
    path: str,
    body: bytes,
    started: float,
    log: Path,
    headers: dict[str, str] | None = None,
) -> float:
    """Seconds from ``started`` to the first 200 answer to a scoring request."""
    deadline = started + 180
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"server exited with {process.returncode}:\n{tail}")
        try:
            status, _ = post(port, path, body, timeout=5, headers=headers)
            if status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"no prediction within 180 s; see {log}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- the model and the requests ----------------------------------------------------------------


def prepare_model(
    work: Path, data: Path | None, accounts: int, home: Path | None
) -> tuple[Path, Path]:
    """(CHURN_HOME with a champion, demo data directory)."""
    data = data or work / "demo"
    if not (data / "accounts.parquet").exists():
        print(f"generating demo data ({accounts} accounts) in {data}", flush=True)
        subprocess.run(
            [BIN / "churn", "demo-data", "--out", str(data), "--accounts", str(accounts)],
            check=True,
            capture_output=True,
        )
    if home is not None and (home / "mlflow.db").exists():
        return home, data
    home = home or work / "home"
    print(f"training and registering the model in {home}", flush=True)
    env = {**os.environ, "CHURN_HOME": str(home)}
    subprocess.run(
        [BIN / "churn", "train", "--data", str(data)], check=True, env=env, capture_output=True
    )
    return home, data


def snapshot_requests(data: Path, limit: int = BATCH) -> tuple[list[dict], list[dict]]:
    """(AccountSnapshot records for churn, flat dataframe records for mlflow), same accounts."""
    import pandas as pd

    from features.schema import frame_to_records
    from features.snapshot import active_points, build_snapshots
    from features.tables import load_tables

    tables = load_tables(data)
    points = active_points(tables, [tables.data_end()])
    frame = build_snapshots(tables, points).head(limit)
    records = frame_to_records(frame)
    flat = frame.copy()
    for column in flat.columns:
        if pd.api.types.is_datetime64_any_dtype(flat[column]):
            flat[column] = flat[column].dt.strftime("%Y-%m-%d")
    flat = flat.astype(object).where(flat.notna(), None)
    return records, flat.to_dict("records")


def repeat_to(items: list[dict], n: int) -> list[dict]:
    out = [dict(item) for item in (items * (n // len(items) + 1))[:n]]
    for i, item in enumerate(out):
        item["account_id"] = f"{item['account_id']}-{i}"
    return out


# --- one server ------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    single_path: str
    single_bodies: list[bytes]
    batch_path: str
    batch_body: bytes
    explain_variants: dict[str, str] = field(default_factory=dict)  # label -> query string
    restart: bool = False  # measure a second start (warm caches) after the first


def measure(server: Server, port: int, seconds: float, work: Path) -> dict[str, float]:
    log = work / f"{server.name.replace(' ', '-')}.log"
    results: dict[str, float] = {}
    with log.open("w") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            server.command, env=server.env, stdout=out, stderr=subprocess.STDOUT, cwd=work
        )
        try:
            results["cold_start_s"] = wait_for_prediction(
                process, port, server.single_path, server.single_bodies[0], started, log
            )
            variants = server.explain_variants or {"": ""}
            for label, query in variants.items():
                requests = [
                    request_bytes(server.single_path + query, b) for b in server.single_bodies
                ]
                run_load(port, requests, 4, 1.5)  # warm up every worker and code path
                for concurrency in (1, 16):
                    pids = tree_pids(process.pid)
                    before = (machine_busy_seconds(), cpu_seconds(pids), cpu_seconds([os.getpid()]))
                    load = run_load(port, requests, concurrency, seconds)
                    busy, server_cpu, client_cpu = (
                        machine_busy_seconds() - before[0],
                        cpu_seconds(pids) - before[1],
                        cpu_seconds([os.getpid()]) - before[2],
                    )
                    others = max(0.0, busy - server_cpu - client_cpu) / load.seconds
                    if load.errors:
                        print(
                            f"  {server.name} c{concurrency}{label}: {load.errors} errors {load.statuses}",
                            flush=True,
                        )
                    key = f"c{concurrency}{label}"
                    results[f"{key}_rps"] = load.rate
                    results[f"{key}_p50_ms"] = load.pct(50)
                    results[f"{key}_p99_ms"] = load.pct(99)
                    results[f"{key}_others_cores"] = others
                    print(
                        f"  {server.name} {key}: {load.rate:,.0f} req/s p50 {load.pct(50):.2f} ms "
                        f"p99 {load.pct(99):.2f} ms; server {server_cpu / load.seconds:.2f} cores, "
                        f"load generator {client_cpu / load.seconds:.2f}, other processes {others:.2f}",
                        flush=True,
                    )
                timings = []
                for _ in range(3):
                    start = time.perf_counter()
                    status, body = post(
                        port, server.batch_path + query, server.batch_body, timeout=300
                    )
                    timings.append(time.perf_counter() - start)
                    if status != 200:
                        raise RuntimeError(f"{server.name} batch answered {status}: {body[:300]!r}")
                results[f"batch{label}_s"] = statistics.median(timings)
                print(
                    f"  {server.name} batch{label}: {results[f'batch{label}_s']:.3f} s", flush=True
                )
            results["rss_mb"] = tree_rss_mb(process.pid)
        finally:
            stop(process)
    if server.restart:
        with log.open("a") as out:
            started = time.perf_counter()
            process = subprocess.Popen(
                server.command, env=server.env, stdout=out, stderr=subprocess.STDOUT, cwd=work
            )
            try:
                results["restart_s"] = wait_for_prediction(
                    process, port, server.single_path, server.single_bodies[0], started, log
                )
            finally:
                stop(process)
        print(f"  {server.name} restart: {results['restart_s']:.2f} s", flush=True)
    results["loadavg"] = os.getloadavg()[0]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, help="Demo data directory (default: generate one).")
    parser.add_argument("--accounts", type=int, default=2000, help="Demo accounts when generating.")
    parser.add_argument(
        "--home", type=Path, help="CHURN_HOME to reuse (or create) with a champion."
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="Duration of each load level.")
    parser.add_argument(
        "--workers", type=int, default=None, help="churn serve workers (default: one per core)."
    )
    parser.add_argument("--skip-mlflow", action="store_true", help="Only measure churn serve.")
    parser.add_argument(
        "--horizons-cost",
        action="store_true",
        help="Instead: churn serve with and without the model's time-to-churn parts, side by side.",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop servers

    work = Path(tempfile.mkdtemp(prefix="churn-bench-serve-"))
    try:
        home, data = prepare_model(work, args.data, args.accounts, args.home)
        records, flat = snapshot_requests(data)
        singles = records[:1000]
        print(
            f"{len(records)} snapshots at the end of the data; single requests rotate over {len(singles)}",
            flush=True,
        )
        tracking = f"sqlite:///{home / 'mlflow.db'}"
        base_env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # mlflow execs `uvicorn`
            "MLFLOW_TRACKING_URI": tracking,
            "MLFLOW_REGISTRY_URI": tracking,
        }
        base_env.pop("PROMETHEUS_MULTIPROC_DIR", None)

        churn_port = free_port()
        churn_cmd = [str(BIN / "churn"), "serve", "--host", HOST, "--port", str(churn_port)]
        if args.workers:
            churn_cmd += ["--workers", str(args.workers)]
        churn = Server(
            name="churn serve",
            command=churn_cmd,
            env={
                **base_env,
                "CHURN_HOME": str(home),
                "CHURN_MODEL_POLL_SECONDS": "0",
            },
            single_path="/v1/score",
            single_bodies=[orjson.dumps(r) for r in singles],
            batch_path="/v1/score/batch",
            batch_body=orjson.dumps({"accounts": repeat_to(records, BATCH)}),
            explain_variants={"": "", "_noexplain": "?explain=false"},
            restart=True,
        )
        mlflow_port = free_port()
        mlflow = Server(
            name="mlflow models serve",
            command=[
                str(BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                "models:/churn-model@champion",
                "--env-manager",
                "local",
                "-h",
                HOST,
                "-p",
                str(mlflow_port),
            ],
            env={**base_env, "MLFLOW_DISABLE_TELEMETRY": "true"},
            single_path="/invocations",
            single_bodies=[orjson.dumps({"dataframe_records": [r]}) for r in flat[:1000]],
            batch_path="/invocations",
            batch_body=orjson.dumps({"dataframe_records": repeat_to(flat, BATCH)}),
        )
        print(f"machine: {os.cpu_count()} cores; each load level {args.seconds:.0f} s", flush=True)
        if args.horizons_cost:
            print(horizons_cost(churn, home, work, args.seconds))
            return
        measured = {}
        if not args.skip_mlflow:
            print("measuring mlflow models serve", flush=True)
            measured["mlflow"] = measure(mlflow, mlflow_port, args.seconds, work)
        print("measuring churn serve", flush=True)
        shutil.rmtree(
            home / "model-cache", ignore_errors=True
        )  # a first start: download the bundle
        measured["churn"] = measure(churn, churn_port, args.seconds, work)
        print()
        print(table(measured.get("mlflow", {}), measured["churn"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def horizons_cost(churn: Server, home: Path, work: Path, seconds: float) -> str:
    """The champion served as trained (probabilities by horizon, months and value left) and
    the same bundle without its time-to-churn parts, one after the other, same load."""
    import dataclasses

    from features.settings import Settings
    from models.registry import load_model

    model = load_model("models:/churn-model@champion", Settings(home=home)).model
    if model.hazard is None:
        raise SystemExit("the champion has no time-to-churn model: train it with --horizons")
    bundles = {
        "with horizons": model.save(work / "with-horizons.churn"),
        "without": dataclasses.replace(model, hazard=None).save(work / "without.churn"),
    }
    measured = {}
    for name, bundle in bundles.items():
        command = [*churn.command, "--model", str(bundle)]
        server = dataclasses.replace(
            churn, name=f"churn serve {name}", command=command, restart=False
        )
        print(f"measuring churn serve {name}", flush=True)
        measured[name] = measure(server, int(command[command.index("--port") + 1]), seconds, work)
    rows = [
        ("c1 p50 (single, explained)", "c1_p50_ms", "ms"),
        ("c1 p50 without explanations", "c1_noexplain_p50_ms", "ms"),
        ("c16 req/s (single, explained)", "c16_rps", "req/s"),
        ("c16 p99 (single, explained)", "c16_p99_ms", "ms"),
        ("10k-account batch (explained)", "batch_s", "s"),
        ("10k-account batch without explanations", "batch_noexplain_s", "s"),
    ]
    lines = [
        "| measure | without horizons | with horizons | with / without |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, key, unit in rows:
        before, after = measured["without"].get(key), measured["with horizons"].get(key)
        ratio = f"{after / before:.2f}x" if before and after else ""
        lines.append(f"| {label} | {before:,.2f} {unit} | {after:,.2f} {unit} | {ratio} |")
    return "\n".join(lines)


def table(mlflow: dict[str, float], churn: dict[str, float]) -> str:
    def fmt(value: float | None, unit: str) -> str:
        if value is None or value != value:
            return "-"
        return (
            f"{value:,.0f} {unit}"
            if unit == "req/s"
            else f"{value:,.2f} {unit}"
            if unit in ("ms", "s")
            else f"{value:,.0f} {unit}"
        )

    rows: list[tuple[str, float | None, float | None, str, str]] = []

    def add(label: str, m_key: str | None, c_key: str, unit: str, target: str = "") -> None:
        rows.append((label, mlflow.get(m_key) if m_key else None, churn.get(c_key), unit, target))

    add("c1 req/s (single, explained)", "c1_rps", "c1_rps", "req/s")
    add("c1 p50", "c1_p50_ms", "c1_p50_ms", "ms", "<= 1 ms")
    add("c1 p99", "c1_p99_ms", "c1_p99_ms", "ms")
    add("c16 req/s (single, explained)", "c16_rps", "c16_rps", "req/s", ">= 30x mlflow, > c1")
    add("c16 p50", "c16_p50_ms", "c16_p50_ms", "ms")
    add("c16 p99", "c16_p99_ms", "c16_p99_ms", "ms", "<= 20 ms")
    add("c1 p50 without explanations", None, "c1_noexplain_p50_ms", "ms")
    add("c16 req/s without explanations", None, "c16_noexplain_rps", "req/s")
    add("c16 p99 without explanations", None, "c16_noexplain_p99_ms", "ms")
    add("10k-account batch (explained)", "batch_s", "batch_s", "s", "<= 1 s")
    add("10k-account batch without explanations", None, "batch_noexplain_s", "s")
    add("cold start to first prediction", "cold_start_s", "cold_start_s", "s", "<= 1/2 mlflow")
    add("restart, bundle already cached", None, "restart_s", "s")
    add("RSS, whole process tree", "rss_mb", "rss_mb", "MB", "<= mlflow")
    lines = [
        "| measure | mlflow models serve | churn serve | churn / mlflow | target |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for label, m, c, unit, target in rows:
        ratio = f"{c / m:.2f}x" if m and c and m == m and c == c else ""
        lines.append(f"| {label} | {fmt(m, unit)} | {fmt(c, unit)} | {ratio} | {target} |")
    others = [v for k, v in {**mlflow, **churn}.items() if k.endswith("_others_cores")]
    if others:
        lines.append("")
        lines.append(
            f"Other processes on the machine used {min(others):.2f}-{max(others):.2f} cores during the load levels "
            f"(of {os.cpu_count()}): figures under contention are lower bounds. 1-minute load average after "
            f"each server: mlflow {mlflow.get('loadavg', float('nan')):.2f}, churn {churn.get('loadavg', float('nan')):.2f}."
        )
    explain_c1 = _diff(churn.get("c1_p50_ms"), churn.get("c1_noexplain_p50_ms"))
    explain_batch = _diff(churn.get("batch_s"), churn.get("batch_noexplain_s"))
    lines.append("")
    lines.append(
        f"Cost of explanations (churn serve): {explain_c1} ms at c1 p50; {explain_batch} s for the 10k batch. "
        "mlflow's pyfunc returns no explanations (its rows are probability and tier only)."
    )
    lines.append(
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores; the load generator shares them."
    )
    return "\n".join(lines)


def _diff(a: float | None, b: float | None) -> str:
    return f"{a - b:.2f}" if a is not None and b is not None else "-"


if __name__ == "__main__":
    main()
