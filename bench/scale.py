"""Scale benchmark: `churn snapshot` in one process vs on Dask, as the data grows.

The data is the demo data tiled with fresh account ids (``T00042-A000123``): 100k, 1M and
3M accounts, written as Parquet datasets (a directory of files per table, as other tools
write them) under ``--root`` (outside the repository), deleted afterwards. Usage is kept
for the last ``--usage-days`` days before the data's end (30: the newest MAU window), so
that millions of accounts fit this machine's disk and time; every other table is whole.

For each size, the job of `churn snapshot` (read every table, check it, stage 1 for every
account active at the data's end, write Parquet) runs
  * in one process, stopped as soon as its resident memory passes one worker's limit
    ("did not fit"), so the single-process path is measured without exhausting the machine;
  * with ``--engine dask`` on a LocalCluster of 2 single-threaded workers, each capped at
    ``--worker-memory``: wall time, and the peak resident memory of each worker process.

    .venv/bin/python bench/scale.py                         # 100k, 1M and 3M accounts
    .venv/bin/python bench/scale.py --accounts 100000 --worker-memory 4GiB
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.tables import TABLES, load_tables

BASE_ACCOUNTS = 5000
TILES_PER_FILE = 10
POLL_SECONDS = 0.25
GIB = 2**30


def base_demo(root: Path) -> Path:
    """The demo data the tiles copy (generated once, kept under ``root``)."""
    base = root / f"base-{BASE_ACCOUNTS}"
    if not (base / "accounts.parquet").exists():
        from training.demo import generate_demo

        generate_demo(base, accounts=BASE_ACCOUNTS, progress=False)
    return base


def base_tables(base: Path, usage_days: int) -> tuple[dict[str, pa.Table], dt.date]:
    tables = {name: pq.read_table(base / f"{name}.parquet") for name in TABLES}
    end = load_tables(base).data_end()
    usage = tables["usage"]
    first = pa.scalar(dt.datetime.combine(end - dt.timedelta(days=usage_days), dt.time()))
    tables["usage"] = usage.filter(pc.greater(usage["date"], first.cast(usage["date"].type)))
    return tables, end


def tile(tables: dict[str, pa.Table], accounts: int, out: Path) -> dict[str, int]:
    """``accounts`` accounts (rounded up to whole tiles): copies of the base with fresh ids,
    as Parquet directories."""
    tiles = math.ceil(accounts / BASE_ACCOUNTS)
    rows = dict.fromkeys(tables, 0)
    for name, table in tables.items():
        folder = out / f"{name}.parquet"
        folder.mkdir(parents=True)
        for first in range(0, tiles, TILES_PER_FILE):
            parts = []
            for t in range(first, min(first + TILES_PER_FILE, tiles)):
                prefix = pa.scalar(f"T{t:05d}-", type=table["account_id"].type)
                separator = pa.scalar("", type=prefix.type)
                ids = pc.binary_join_element_wise(prefix, table["account_id"], separator)
                parts.append(
                    table.set_column(table.column_names.index("account_id"), "account_id", ids)
                )
            chunk = pa.concat_tables(parts)
            pq.write_table(
                chunk,
                folder / f"part-{first // TILES_PER_FILE:05d}.parquet",
                row_group_size=1_000_000,
            )
            rows[name] += chunk.num_rows
    return rows


@dataclass
class Run:
    seconds: float | None  # None: stopped
    peak_gib: float  # the single process, or the largest worker
    client_gib: float = 0.0  # the Dask client process
    note: str = ""


def watch(command: list[str], env: dict[str, str], limit: float | None, workers: bool) -> Run:
    """Run ``command``; poll the resident memory of it (or of its worker processes)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    main = psutil.Process(process.pid)
    peaks: dict[int, float] = {}
    client = 0.0
    while process.poll() is None:
        try:
            client = max(client, main.memory_info().rss)
            for child in main.children(recursive=True):
                peaks[child.pid] = max(peaks.get(child.pid, 0.0), child.memory_info().rss)
        except psutil.Error:
            pass
        if limit is not None and not workers and client > limit:
            process.kill()
            process.wait()
            return Run(None, client / GIB, note=f"did not fit: passed {limit / GIB:.1f} GiB")
        time.sleep(POLL_SECONDS)
    output = process.stdout.read().decode() if process.stdout else ""
    if process.returncode != 0:
        return Run(None, max(peaks.values(), default=client) / GIB, note=f"failed: {output[-800:]}")
    seconds = time.perf_counter() - started
    if workers:
        worker_peaks = sorted(peaks.values(), reverse=True)[:2]
        return Run(seconds, max(worker_peaks, default=0.0) / GIB, client / GIB)
    return Run(seconds, client / GIB)


SINGLE = """
import sys
from features.files import write_frame
from features.snapshot import active_snapshots
from features.tables import load_tables
tables = load_tables(sys.argv[1])
frame = active_snapshots(tables, [tables.data_end()])
write_frame(frame, sys.argv[2])
"""


def run_size(accounts: int, root: Path, tables, end: dt.date, memory: str, single: bool) -> dict:
    data = root / f"data-{accounts}"
    shutil.rmtree(data, ignore_errors=True)
    began = time.perf_counter()
    rows = tile(tables, accounts, data)
    written = time.perf_counter() - began
    limit = parse_gib(memory) * GIB
    env = {**os.environ, "CHURN_HOME": str(root / "home"), "CHURN_DASK_WORKERS": "2"}
    result = {"accounts": accounts, "rows": rows, "write_seconds": written}
    if single:
        out = root / f"single-{accounts}.parquet"
        result["single"] = watch(
            [sys.executable, "-c", SINGLE, str(data), str(out)], env, limit, workers=False
        )
        out.unlink(missing_ok=True)
    out = root / f"dask-{accounts}"
    command = ["snapshot", "--engine", "dask", "--worker-memory", memory]
    command += ["--data", str(data), "--as-of", end.isoformat(), "--out", str(out)]
    result["dask"] = watch([sys.executable, "-m", "service.cli", *command], env, None, workers=True)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
    return result


def parse_gib(text: str) -> float:
    from dask.utils import parse_bytes

    return parse_bytes(text) / GIB


def show(results: list[dict], memory: str) -> None:
    print(
        f"\n| accounts | event rows | one process | peak | Dask (2 x {memory}) | peak worker | Dask s per M rows |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        events = sum(v for k, v in r["rows"].items() if k != "accounts")
        single = r.get("single")
        if single is None:
            one, peak = "not run", "-"
        elif single.seconds is None:
            one, peak = single.note, f"> {single.peak_gib:.1f} GiB"
        else:
            one, peak = f"{single.seconds:.0f} s", f"{single.peak_gib:.2f} GiB"
        on_dask = r["dask"]
        if on_dask.seconds is None:
            shown, per = on_dask.note, "-"
        else:
            shown = f"{on_dask.seconds:.0f} s"
            per = f"{on_dask.seconds / (events / 1e6):.2f}"
        print(
            f"| {r['accounts']:,} | {events / 1e6:.1f}M | {one} | {peak} | {shown} "
            f"| {on_dask.peak_gib:.2f} GiB | {per} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[100_000, 1_000_000, 3_000_000])
    parser.add_argument("--worker-memory", default="4GiB")
    parser.add_argument("--usage-days", type=int, default=30)
    parser.add_argument("--root", type=Path, default=Path("/work/scale-data"))
    parser.add_argument(
        "--single-up-to", type=int, default=10**9, help="Skip the one-process run above this size."
    )
    args = parser.parse_args()
    needed = 2 * parse_gib(args.worker_memory) + 2
    available = psutil.virtual_memory().available / GIB
    if available < needed:
        sys.exit(
            f"{available:.1f} GiB available, {needed:.1f} GiB needed: run when the machine is quieter"
        )
    args.root.mkdir(parents=True, exist_ok=True)
    tables, end = base_tables(base_demo(args.root), args.usage_days)
    print(
        f"base: {BASE_ACCOUNTS} accounts, usage of the last {args.usage_days} days to {end}",
        flush=True,
    )
    results = []
    for accounts in args.accounts:
        result = run_size(
            accounts, args.root, tables, end, args.worker_memory, accounts <= args.single_up_to
        )
        results.append(result)
        show([result], args.worker_memory)
        sys.stdout.flush()
    show(results, args.worker_memory)


if __name__ == "__main__":
    main()
