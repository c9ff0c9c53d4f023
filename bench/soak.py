"""Soak: a real `churn serve` under mixed load for a bounded time, the model swapped throughout.

    python bench/soak.py [--seconds 600] [--concurrency 32] [--model BUNDLE] [--json FILE]

Starts `churn serve` on 127.0.0.1 (two workers by default) serving a bundle file, and drives
it with ``--concurrency`` keep-alive connections for ``--seconds``: single-account scores,
batches of 100, prioritisations and invalid requests (malformed JSON, values out of range, a
text/plain body, a batch over the limit, now and then a 19 MB body of a million minimal
accounts). Every ``--reload-every`` seconds ``/admin/reload?force=true`` has the answering
worker load the model again and swap it in under the requests in flight. Without
``--model`` it trains one first (``churn demo-data`` + ``churn train``).

It reports requests, errors (a valid request answered anything but 200, an invalid one
anything but its 4xx, or a dropped connection: 0 allowed among valid requests), p50/p99 of
the valid requests per minute, reloads, and the RSS of the server's whole process tree after
the warm-up and at the end (growth under 10% allowed). It exits 1 when a check fails.
`make test` runs a 30-second form (tests/service/test_soak.py), which asserts the two checks
and never a time. The load generator is the raw asyncio HTTP/1.1 client of bench/serve.py.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import re
import shutil
import signal
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

_spec = importlib.util.spec_from_file_location("bench_serve", Path(__file__).with_name("serve.py"))
assert _spec is not None and _spec.loader is not None
serve = importlib.util.module_from_spec(_spec)  # also puts the project root on sys.path
sys.modules[_spec.name] = serve
_spec.loader.exec_module(serve)

HOST = serve.HOST
KEY = "soak-api-key-0123456789"
ADMIN_KEY = "soak-admin-key-0123456789"
BATCH_LIMIT = 10_000
WARMUP_SHARE = 1 / 3  # of the run, at most WARMUP_MAX seconds: RSS is compared from there
WARMUP_MAX = 60.0
RSS_WINDOW = 5  # samples: RSS is the median of this many, after the warm-up and at the end
RSS_GROWTH_LIMIT = 0.10
RSS_EVERY = 1.0  # seconds between RSS samples
QUIET_SECONDS = 2.0  # after a huge body is answered, before RSS is compared again


# --- the requests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of request: what is sent and what must come back."""

    name: str
    payload: bytes  # the whole HTTP request
    expect: int
    weight: int  # how many of every cycle of the plan

    @property
    def valid(self) -> bool:
        return self.expect == 200


def http_request(path: str, body: bytes, content_type: str, key: str = KEY) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nX-API-Key: {key}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def account(i: int, rng: np.random.Generator) -> dict:
    seats = int(rng.integers(2, 60))
    active = int(seats * rng.beta(2, 2))
    return {
        "account_id": f"soak-{i:05d}",
        "as_of": "2025-06-01",
        "signup_date": str(np.datetime64("2025-06-01") - int(rng.integers(20, 1500))),
        "plan": str(rng.choice(["starter", "growth", "enterprise"])),
        "contract_type": str(rng.choice(["monthly", "annual"])),
        "seats": seats,
        "mrr": float(seats * 35),
        "mau": [active, min(seats, active + int(rng.integers(0, 6)))],
        "nps_last": int(rng.integers(0, 11)),
        "contacts_90d": int(rng.integers(0, 4)),
    }


def request_kinds(seed: int = 0) -> tuple[list[Kind], bytes]:
    """The kinds of requests of the plan, and the body of a million minimal accounts."""
    rng = np.random.default_rng(seed)
    accounts = [account(i, rng) for i in range(1_000)]
    json = "application/json"
    single = [http_request("/v1/score", orjson.dumps(a), json) for a in accounts[:50]]
    batch = orjson.dumps({"accounts": accounts[:100]})
    prioritize = orjson.dumps(
        {
            "accounts": accounts[:200],
            "capacity": 20,
            "cost_per_action": 50.0,
            "expected_save_rate": 0.3,
        }
    )
    too_many = orjson.dumps({"accounts": [{"account_id": "x"}] * (BATCH_LIMIT + 1)})
    huge = b'{"accounts":[' + b",".join([b'{"account_id":"a"}'] * 1_000_000) + b"]}"
    one = orjson.dumps(accounts[0])
    kinds = [Kind("single", payload, 200, 1) for payload in single]  # 50 of every cycle
    kinds += [
        Kind("batch of 100", http_request("/v1/score/batch", batch, json), 200, 8),
        Kind("prioritize 200", http_request("/v1/prioritize", prioritize, json), 200, 2),
        Kind("malformed JSON", http_request("/v1/score", b'{"account_id": "a",', json), 422, 2),
        Kind(
            "out of range",
            http_request("/v1/score", b'{"account_id": "a", "seats": 1e400}', json),
            422,
            2,
        ),
        Kind("text/plain", http_request("/v1/score", one, "text/plain"), 415, 1),
        Kind("wrong key", http_request("/v1/score", one, json, "x" * 20), 403, 1),
        Kind("over the limit", http_request("/v1/score/batch", too_many, json), 413, 1),
    ]
    return kinds, http_request("/v1/score/batch", huge, json)


def plan(kinds: Sequence[Kind], seed: int = 0) -> list[Kind]:
    """One cycle of requests, each kind as often as its weight, in a shuffled order."""
    cycle = [kind for kind in kinds for _ in range(kind.weight)]
    order = np.random.default_rng(seed).permutation(len(cycle))
    return [cycle[i] for i in order]


# --- the load --------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the load generator saw, request by request."""

    started: float
    valid: list[tuple[float, float]] = field(default_factory=list)  # (seconds in, latency)
    invalid: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # "kind: status" -> count
    valid_errors: int = 0
    huge: int = 0
    busy: list[tuple[float, float]] = field(default_factory=list)  # huge bodies in flight

    def error(self, kind: Kind | str, what: str) -> None:
        name = kind.name if isinstance(kind, Kind) else kind
        key = f"{name}: {what}"
        self.errors[key] = self.errors.get(key, 0) + 1
        if isinstance(kind, Kind) and kind.valid:
            self.valid_errors += 1


async def connection(
    port: int, cycle: Sequence[Kind], offset: int, deadline: float, tally: Tally
) -> None:
    """One keep-alive client: requests back to back; a fresh connection after a refusal."""
    reader, writer = await asyncio.open_connection(HOST, port)
    i = offset
    try:
        while time.perf_counter() < deadline:
            kind = cycle[i % len(cycle)]
            i += 1
            start = time.perf_counter()
            try:
                writer.write(kind.payload)
                status, _ = await serve.read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                tally.error(kind, type(exc).__name__)
                status = 0
            latency = time.perf_counter() - start
            if kind.valid and status == 200:
                tally.valid.append((start - tally.started, latency))
            elif not kind.valid and status == kind.expect:
                tally.invalid += 1
            elif status:
                tally.error(kind, str(status))
            if status != 200:
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
    finally:
        writer.close()


async def huge_bodies(
    port: int, payload: bytes, every: float, deadline: float, tally: Tally
) -> None:
    """Now and then a body of a million minimal accounts: 413, and its memory handed back.
    The last one ends well before the deadline, so the final RSS sample sees none in flight."""
    while time.perf_counter() + 2 * every < deadline:
        await asyncio.sleep(every)
        sent = time.perf_counter() - tally.started
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(payload)
            status, _ = await serve.read_response(reader)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            tally.error("a million accounts", type(exc).__name__)
            continue
        finally:
            writer.close()
            tally.busy.append((sent, time.perf_counter() - tally.started))
        if status == 413:
            tally.huge += 1
        else:
            tally.error("a million accounts", str(status))


@dataclass
class Reloads:
    ok: int = 0
    failed: list[str] = field(default_factory=list)


def reload_loop(port: int, every: float, deadline: float) -> Reloads:
    """``/admin/reload?force=true`` every ``every`` seconds: the answering worker loads the
    model again, scores the canary and swaps it in under the requests in flight."""
    done = Reloads()
    while time.perf_counter() + every < deadline:
        time.sleep(every)
        request = urllib.request.Request(
            f"http://{HOST}:{port}/admin/reload?force=true",
            b"",
            {"X-API-Key": ADMIN_KEY},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                body = orjson.loads(response.read())
            if body["reloaded"]:
                done.ok += 1
            else:
                done.failed.append("the model was not loaded again")
        except urllib.error.HTTPError as exc:
            done.failed.append(f"{exc.code}: {exc.read()[:200]!r}")
    return done


Sample = tuple[float, dict[int, float]]  # (seconds in, RSS in MB of each process of the tree)


def sample_rss(
    pid: int, every: float, started: float, deadline: float, samples: list[Sample]
) -> None:
    while True:
        samples.append((time.perf_counter() - started, process_rss(pid)))
        if time.perf_counter() >= deadline:
            return
        time.sleep(every)


def process_rss(pid: int) -> dict[int, float]:
    """RSS of each process of the server's tree (the parent and its workers), in MB."""
    found = {}
    for member in serve.tree_pids(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        kb = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        found[member] = int(kb) / 1024
    return found


async def drive(
    port: int, pid: int, kinds: list[Kind], huge: bytes, args: argparse.Namespace, work: Path
) -> tuple[Tally, Reloads, list[tuple[float, float]]]:
    cycle = plan(kinds)
    deadline = time.perf_counter() + args.seconds
    tally = Tally(started=time.perf_counter())
    samples: list[tuple[float, float]] = []
    loop = asyncio.get_running_loop()
    reloads = loop.run_in_executor(None, reload_loop, port, args.reload_every, deadline)
    rss = loop.run_in_executor(None, sample_rss, pid, RSS_EVERY, tally.started, deadline, samples)
    clients = [connection(port, cycle, k * 7919, deadline, tally) for k in range(args.concurrency)]
    await asyncio.gather(*clients, huge_bodies(port, huge, args.huge_every, deadline, tally))
    done = await reloads
    await rss
    return tally, done, samples


# --- the server and the model --------------------------------------------------------------------


def served_model(model: Path | None, work: Path, accounts: int) -> None:
    """The bundle to serve, copied to work/served.churn (trained first without ``model``)."""
    shutil.copyfile(model or train(work, accounts), work / "served.churn")


def train(work: Path, accounts: int) -> Path:
    from features.settings import Settings
    from models.registry import load_model

    home, data = work / "home", work / "demo"
    env = {**os.environ, "CHURN_HOME": str(home)}
    print(f"training a model on {accounts} demo accounts in {home}", flush=True)
    for command in (
        ["demo-data", "--out", str(data), "--accounts", str(accounts)],
        ["train", "--data", str(data)],
    ):
        subprocess.run([serve.BIN / "churn", *command], check=True, env=env, capture_output=True)
    loaded = load_model("models:/churn-model@champion", Settings(home=home))
    return loaded.model.save(work / "trained.churn")


def start(work: Path, port: int, workers: int) -> subprocess.Popen:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CHURN_", "PROMETHEUS_"))},
        "CHURN_HOME": str(work / "serve-home"),
        "CHURN_API_KEYS": KEY,
        "CHURN_ADMIN_KEYS": ADMIN_KEY,
        "CHURN_MODEL_POLL_SECONDS": "0",
        "CHURN_RELOAD_MIN_SECONDS": "0",
        "CHURN_BATCH_LIMIT": str(BATCH_LIMIT),
        "CHURN_LOG_LEVEL": "warning",  # no access line per request: the soak measures the service
    }
    command = [
        str(serve.BIN / "churn"),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--model",
        str(work / "served.churn"),
    ]
    log = (work / "serve.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    body = orjson.dumps(account(0, np.random.default_rng(0)))
    try:
        serve.wait_for_prediction(
            process,
            port,
            "/v1/score",
            body,
            time.perf_counter(),
            work / "serve.log",
            {"X-API-Key": KEY},
        )
        wait_for_every_worker(port, workers)
    except BaseException:
        serve.stop(process)
        raise
    return process


def wait_for_every_worker(port: int, workers: int, timeout: float = 180.0) -> None:
    """Until every worker serves a model (one answering says nothing of the others, which
    would answer 503 meanwhile): ``churn_model_info`` in the aggregated /metrics, per pid."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        ready = set(re.findall(r'^churn_model_info\{[^}]*pid="(\d+)"[^}]*\} 1\.0$', text, re.M))
        if len(ready) >= workers:
            return
        time.sleep(0.2)
    raise TimeoutError(f"not every one of {workers} workers had a model within {timeout:.0f} s")


# --- the report --------------------------------------------------------------------------------


def per_minute(valid: list[tuple[float, float]]) -> list[dict[str, float]]:
    if not valid:
        return []
    at = np.array([t for t, _ in valid])
    latency = np.array([s for _, s in valid]) * 1000
    rows = []
    for minute in range(int(at.max() // 60) + 1):
        inside = (at >= minute * 60) & (at < (minute + 1) * 60)
        if inside.any():
            rows.append(
                {
                    "minute": minute + 1,
                    "requests": int(inside.sum()),
                    "p50_ms": float(np.percentile(latency[inside], 50)),
                    "p99_ms": float(np.percentile(latency[inside], 99)),
                }
            )
    return rows


def summary(
    tally: Tally, reloads: Reloads, samples: list[Sample], args: argparse.Namespace
) -> dict:
    """Counts, latencies and the RSS growth from the end of the warm-up (which includes the
    first huge body, if any) to the end. RSS is the median of RSS_WINDOW samples (one request
    in flight more or less is not growth), and samples taken while a huge body was in flight
    (a transient peak, reported apart) are left out."""
    warmup = min(WARMUP_MAX, args.seconds * WARMUP_SHARE)
    if tally.busy:
        warmup = max(warmup, tally.busy[0][1] + QUIET_SECONDS)
    quiet = [
        (t, rss)
        for t, rss in samples
        if not any(sent - RSS_EVERY <= t <= done + QUIET_SECONDS for sent, done in tally.busy)
    ]
    later = [rss for t, rss in quiet if t >= warmup] or [quiet[-1][1]]
    after_warmup = _median(later[:RSS_WINDOW])
    at_end = _median([rss for _, rss in quiet[-RSS_WINDOW:]])
    growth = sum(at_end.values()) / sum(after_warmup.values()) - 1
    return {
        "seconds": args.seconds,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "requests": len(tally.valid) + tally.invalid + tally.huge + sum(tally.errors.values()),
        "valid_ok": len(tally.valid),
        "invalid_answered_as_expected": tally.invalid + tally.huge,
        "huge_bodies": tally.huge,
        "errors": tally.errors,
        "valid_errors": tally.valid_errors,
        "reloads_ok": reloads.ok,
        "reloads_failed": reloads.failed,
        "per_minute": per_minute(tally.valid),
        "rss_after_warmup_mb": sum(after_warmup.values()),
        "rss_at_end_mb": sum(at_end.values()),
        "rss_max_mb": max(sum(rss.values()) for _, rss in samples),
        "rss_growth": growth,
        "rss_processes": {
            "after_warmup": {str(pid): mb for pid, mb in after_warmup.items()},
            "at_end": {str(pid): mb for pid, mb in at_end.items()},
        },
        "processes_replaced": sorted(set(after_warmup) ^ set(at_end)),
        "warmup_seconds": warmup,
        "ok": not tally.errors and growth < RSS_GROWTH_LIMIT and not reloads.failed,
        "loadavg": os.getloadavg()[0],
    }


def show(result: dict) -> str:
    lines = [
        f"{result['requests']:,} requests in {result['seconds']:.0f} s at concurrency "
        f"{result['concurrency']} ({result['workers']} workers): {result['valid_ok']:,} valid "
        f"answered 200, {result['invalid_answered_as_expected']:,} invalid answered their 4xx "
        f"({result['huge_bodies']} bodies of a million accounts); errors: {result['errors'] or 0}",
        f"reloads: {result['reloads_ok']} swapped, {len(result['reloads_failed'])} failed "
        f"{result['reloads_failed'][:3] or ''}",
        f"RSS of the process tree: {result['rss_after_warmup_mb']:.0f} MB after "
        f"{result['warmup_seconds']:.0f} s of warm-up, {result['rss_at_end_mb']:.0f} MB at the end "
        f"({result['rss_growth']:+.1%}; peak {result['rss_max_mb']:.0f} MB); per process "
        f"{_mb(result['rss_processes']['after_warmup'])} -> {_mb(result['rss_processes']['at_end'])}",
        "",
        "| minute | valid requests | p50 | p99 |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for row in result["per_minute"]:
        lines.append(
            f"| {row['minute']} | {row['requests']:,} | {row['p50_ms']:.1f} ms | {row['p99_ms']:.1f} ms |"
        )
    lines.append("")
    lines.append(
        f"1-minute load average at the end: {result['loadavg']:.1f} ({os.cpu_count()} cores)"
    )
    if not result["ok"]:
        lines += ["", "the server's last log lines:", *result["server_log"]]
    lines.append("PASS" if result["ok"] else "FAIL")
    return "\n".join(lines)


def _median(samples: list[dict[int, float]]) -> dict[int, float]:
    """Per process, the median RSS of the samples that saw it."""
    pids = {pid for sample in samples for pid in sample}
    return {
        pid: float(np.median([sample[pid] for sample in samples if pid in sample])) for pid in pids
    }


def _mb(by_process: dict[str, float]) -> str:
    return ", ".join(f"{pid}: {mb:.0f}" for pid, mb in by_process.items())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=600.0, help="How long to drive the server."
    )
    parser.add_argument("--concurrency", type=int, default=32, help="Keep-alive connections.")
    parser.add_argument("--workers", type=int, default=2, help="churn serve workers.")
    parser.add_argument("--model", type=Path, help="A model bundle (default: train one).")
    parser.add_argument("--accounts", type=int, default=2000, help="Demo accounts when training.")
    parser.add_argument("--reload-every", type=float, default=3.0, help="Seconds between reloads.")
    parser.add_argument(
        "--huge-every", type=float, default=10.0, help="Seconds between 19 MB bodies."
    )
    parser.add_argument("--json", type=Path, help="Also write the result here.")
    args = parser.parse_args()
    signal.signal(
        signal.SIGTERM, lambda *_: sys.exit(143)
    )  # run the finally blocks: stop the server

    work = Path(tempfile.mkdtemp(prefix="churn-soak-"))
    process = None
    try:
        served_model(args.model, work, args.accounts)
        kinds, huge = request_kinds()
        port = serve.free_port()
        process = start(work, port, args.workers)
        print(
            f"soaking churn serve (pid {process.pid}) for {args.seconds:.0f} s at concurrency "
            f"{args.concurrency}; a reload every {args.reload_every:g} s",
            flush=True,
        )
        import uvloop

        tally, reloads, samples = uvloop.run(drive(port, process.pid, kinds, huge, args, work))
        result = summary(tally, reloads, samples, args)
        if process.poll() is not None:
            result["ok"] = False
            result["errors"]["server"] = process.returncode
        result["server_log"] = (work / "serve.log").read_text(errors="replace").splitlines()[-40:]
    finally:
        if process is not None:
            serve.stop(process)
        shutil.rmtree(work, ignore_errors=True)
    print(show(result), flush=True)
    if args.json:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
