"""Benchmark stage 1 (point-in-time snapshots) against an equivalent DuckDB query.

    .venv/bin/python bench/features.py             # 100k accounts, 30M usage rows, 12 dates
    .venv/bin/python bench/features.py --quick     # smoke run, well under a minute

Synthetic raw tables are generated in memory (seeded numpy), validated once with
``features.tables.validate_tables`` (timed and reported, not compared) and handed to
fresh child processes through a pickle file. Each measured step runs in its own
spawned child, so its peak memory is the child's own resident set:

    peak = VmHWM after the step - VmRSS before it,

with the kernel's high-water mark reset (``/proc/self/clear_refs`` <- 5) after the
inputs are loaded. That is real RSS (numpy, pandas, Arrow and DuckDB buffers
alike), which tracemalloc would not see for DuckDB's native allocations.

Compared like for like: our usage windows (``features.snapshot.usage_columns``: MAU in
six trailing 30-day windows and the 30-day DAU average) against one DuckDB query
computing the same columns, with the same half-open windows and the same missing-value
rules; DuckDB uses every core, we use one. Full stage 1 (``build_snapshots``: every
table) is reported beside it. Results are checked equal for every row.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/features.py`, this file's folder comes first on sys.path and
# its name would shadow the `features` package it measures.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import cProfile  # noqa: E402
import datetime as dt  # noqa: E402
import gc  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import pickle  # noqa: E402
import pstats  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from multiprocessing import get_context  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402

from features.events import Queries  # noqa: E402
from features.schema import MAU_COLUMNS  # noqa: E402
from features.snapshot import active_points, build_snapshots, usage_columns  # noqa: E402
from features.tables import Tables, account_days, validate_tables  # noqa: E402
from features.timeline import MISSING_DAY, day_of, to_days  # noqa: E402

USAGE_COLUMNS = (*MAU_COLUMNS, "dau_avg_30d")
FIRST_DAY = day_of("2023-01-01")
SPAN_DAYS = 731  # 2023-01-01 .. 2024-12-31
MIB = 1024 * 1024


# --- synthetic raw tables -----------------------------------------------------------------


def text_column(codes: np.ndarray, names: np.ndarray) -> pd.Series:
    """names[codes] as a string column (what pandas reads from a parquet export)."""
    values = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(names))
    return pd.Series(values.dictionary_decode().to_pandas())


def date_column(days: np.ndarray) -> np.ndarray:
    """Days since epoch -> datetime64[s], NaT where ``MISSING_DAY``."""
    out = days.astype("datetime64[D]").astype("datetime64[s]")
    out[days == MISSING_DAY] = np.datetime64("NaT")
    return out


def pick(
    rng: np.random.Generator, labels: list[str], n: int, p: list[float] | None = None
) -> np.ndarray:
    return np.asarray(labels, dtype=object)[rng.choice(len(labels), size=n, p=p)]


def lifetime_events(
    rng: np.random.Generator, n: int, first: np.ndarray, last: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` events: an account drawn by ``weight``, a day uniform in its [first, last]."""
    cdf = np.cumsum(weight, dtype=np.float64)
    account = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
    account = np.minimum(account, len(first) - 1)
    span = (last - first + 1)[account]
    return account, first[account] + (rng.random(n) * span).astype(np.int64)


def generate(n_accounts: int, n_usage: int, seed: int) -> dict[str, pd.DataFrame]:
    """Raw tables of a B2B product over two years, as a CRM/warehouse export would hold them."""
    rng = np.random.default_rng(seed)
    end = FIRST_DAY + SPAN_DAYS - 1
    n = n_accounts
    signup = FIRST_DAY + rng.integers(0, SPAN_DAYS - 30, n)
    churn_day = signup + 30 + rng.exponential(400, n).astype(np.int64)
    churned = (rng.random(n) < 0.4) & (churn_day <= end)
    churn = np.where(churned, churn_day, MISSING_DAY)
    last = np.where(churned, churn_day - 1, end)  # active up to the day before churn
    lifetime = last - signup + 1
    seats = np.clip(np.round(rng.lognormal(np.log(8), 0.9, n)), 1, 500).astype(np.int64)
    plan = pick(rng, ["starter", "growth", "enterprise"], n, [0.5, 0.35, 0.15])
    price = pd.Series(plan).map({"starter": 10.0, "growth": 25.0, "enterprise": 60.0}).to_numpy()
    account_names = np.array([f"A{i:07d}" for i in range(n)])
    account_id = text_column(np.arange(n), account_names)
    accounts = pd.DataFrame(
        {
            "account_id": account_id,
            "signup_date": date_column(signup),
            "churn_date": date_column(churn),
            "plan": plan,
            "contract_type": pick(rng, ["monthly", "annual"], n, [0.6, 0.4]),
            "seats": seats,
            "mrr": seats * price,
            "industry": pick(rng, ["retail", "media", "finance", "health", "software"], n),
            "churn_reason": np.where(churned, pick(rng, ["price", "product", "service"], n), None),
        }
    )

    # usage: rows per account ~ seats x lifetime; a few heavy users per account, duplicates allowed
    account, day = lifetime_events(rng, n_usage, signup, last, seats * lifetime)
    first_user = np.concatenate([[0], np.cumsum(seats)[:-1]])
    user = first_user[account] + (seats[account] * rng.random(n_usage) ** 2).astype(np.int64)
    order = np.argsort((day - FIRST_DAY).astype(np.int16), kind="stable")  # exports come by date
    user_names = np.array([f"U{j:08d}" for j in range(int(seats.sum()))])
    usage = pd.DataFrame(
        {
            "account_id": text_column(account[order], account_names),
            "user_id": text_column(user[order], user_names),
            "date": date_column(day[order]),
        }
    )
    del account, day, user, order

    def events(per_account: float) -> tuple[np.ndarray, np.ndarray, pd.Series]:
        a, d = lifetime_events(rng, int(per_account * n), signup, last, lifetime)
        return a, d, text_column(a, account_names)

    # subscriptions: a row at signup and changes of seats along the way
    a, d, ids = events(1.0)
    sub_account = np.concatenate([np.arange(n), a])
    sub_seats = np.concatenate([seats, np.maximum(1, seats[a] + rng.integers(-3, 4, len(a)))])
    subscriptions = pd.DataFrame(
        {
            "account_id": pd.concat([account_id, ids], ignore_index=True),
            "date": date_column(np.concatenate([signup, d])),
            "mrr": sub_seats * price[sub_account],
            "seats": sub_seats,
            "plan": plan[sub_account],
        }
    )
    a, d, ids = events(1.5)
    nps = pd.DataFrame(
        {
            "account_id": ids,
            "date": date_column(d),
            "score": np.clip(np.round(rng.normal(7.5, 2.2, len(a))), 0, 10),
            "touchpoint": pick(rng, ["onboarding", "qbr", "support", "renewal", "other"], len(a)),
        }
    )
    a, d, ids = events(5.0)
    contacts = pd.DataFrame(
        {
            "account_id": ids,
            "date": date_column(d),
            "channel": pick(rng, ["call", "email", "meeting", "qbr"], len(a)),
        }
    )
    a, d, ids = events(3.0)
    closed = d + rng.exponential(4.0, len(a)).astype(np.int64)
    closed = np.where((closed > end) | (rng.random(len(a)) < 0.03), MISSING_DAY, closed)
    tickets = pd.DataFrame(
        {
            "account_id": ids,
            "opened_date": date_column(d),
            "closed_date": date_column(closed),
            "priority": pick(
                rng, ["low", "normal", "high", "urgent"], len(a), [0.4, 0.4, 0.15, 0.05]
            ),
        }
    )
    a, d, ids = events(0.5)
    stakeholders = pd.DataFrame(
        {
            "account_id": ids,
            "date": date_column(d),
            "change": pick(rng, ["left", "joined"], len(a)),
            "role": pick(rng, ["champion", "admin", "economic buyer"], len(a)),
        }
    )
    return {
        "accounts": accounts,
        "subscriptions": subscriptions,
        "usage": usage,
        "nps": nps,
        "contacts": contacts,
        "tickets": tickets,
        "stakeholders": stakeholders,
    }


# --- the measured steps -------------------------------------------------------------------


def queries_for(tables: Tables, points: pd.DataFrame) -> Queries:
    """The Queries object exactly as build_snapshots constructs it."""
    known = pd.Index(tables.accounts["account_id"])
    account = known.get_indexer(points["account_id"])
    as_of = to_days(points["as_of"])
    signup = account_days(tables.accounts, "signup_date")[account]
    return Queries(
        accounts=known,
        account=account,
        as_of=as_of,
        signup=signup,
        data_start=day_of(tables.data_start()),
    )


def ours_usage(tables: Tables, points: pd.DataFrame) -> dict[str, np.ndarray]:
    """Our usage windows alone: what the DuckDB query computes."""
    columns = usage_columns(tables.usage, queries_for(tables, points))
    return {name: columns[name] for name in USAGE_COLUMNS}


def ours_stage1(tables: Tables, points: pd.DataFrame) -> dict[str, np.ndarray]:
    """Full stage 1: every snapshot field from every table."""
    frame = build_snapshots(tables, points)
    return {name: frame[name].to_numpy(np.float64) for name in USAGE_COLUMNS}


# Same semantics as features.snapshot.usage_columns. For window k (0 = newest) the days
# counted are (as_of - 30(k+1), as_of - 30k]. A window is NULL when it reaches before the
# first day of data (its first day, as_of - 30(k+1) + 1, is before $data_start) or when it
# ended before the account signed up; otherwise an account without usage counts 0.
USAGE_WINDOWS_SQL = """
WITH user_days AS (          -- usage may repeat a row: one row per (account, user, day)
    SELECT DISTINCT account_id, user_id, CAST(date AS DATE) AS day
    FROM usage
),
recent AS (                  -- each point's user-days of its last 180 days, and their window k
    SELECT
        p.row_id,
        d.user_id,
        date_diff('day', d.day, p.as_of) // 30 AS k
    FROM points AS p
    JOIN user_days AS d
      ON d.account_id = p.account_id
     AND d.day > p.as_of - 180
     AND d.day <= p.as_of
),
counts AS (
    SELECT
        row_id,
        count(DISTINCT user_id) FILTER (WHERE k = 0) AS mau_0,
        count(DISTINCT user_id) FILTER (WHERE k = 1) AS mau_1,
        count(DISTINCT user_id) FILTER (WHERE k = 2) AS mau_2,
        count(DISTINCT user_id) FILTER (WHERE k = 3) AS mau_3,
        count(DISTINCT user_id) FILTER (WHERE k = 4) AS mau_4,
        count(DISTINCT user_id) FILTER (WHERE k = 5) AS mau_5,
        count(*) FILTER (WHERE k = 0) AS user_days_30d
    FROM recent
    GROUP BY row_id
)
SELECT
    p.row_id,
    CASE WHEN p.as_of -  29 >= $data_start AND p.as_of       >= a.signup THEN coalesce(c.mau_0, 0) END::DOUBLE AS mau_0,
    CASE WHEN p.as_of -  59 >= $data_start AND p.as_of -  30 >= a.signup THEN coalesce(c.mau_1, 0) END::DOUBLE AS mau_1,
    CASE WHEN p.as_of -  89 >= $data_start AND p.as_of -  60 >= a.signup THEN coalesce(c.mau_2, 0) END::DOUBLE AS mau_2,
    CASE WHEN p.as_of - 119 >= $data_start AND p.as_of -  90 >= a.signup THEN coalesce(c.mau_3, 0) END::DOUBLE AS mau_3,
    CASE WHEN p.as_of - 149 >= $data_start AND p.as_of - 120 >= a.signup THEN coalesce(c.mau_4, 0) END::DOUBLE AS mau_4,
    CASE WHEN p.as_of - 179 >= $data_start AND p.as_of - 150 >= a.signup THEN coalesce(c.mau_5, 0) END::DOUBLE AS mau_5,
    CASE WHEN p.as_of -  29 >= $data_start THEN coalesce(c.user_days_30d, 0) / 30.0 END AS dau_avg_30d
FROM points AS p
JOIN accounts AS a USING (account_id)
LEFT JOIN counts AS c USING (row_id)
ORDER BY p.row_id
"""


def duckdb_usage(tables: Tables, points: pd.DataFrame) -> dict[str, np.ndarray]:
    """The same usage windows as one DuckDB query over the in-memory frames (zero-copy Arrow)."""
    import duckdb

    connection = duckdb.connect(config={"threads": os.cpu_count() or 1})
    try:
        connection.register(
            "usage",
            pa.Table.from_pandas(
                tables.usage[["account_id", "user_id", "date"]], preserve_index=False
            ),
        )
        accounts = pa.table(
            {
                "account_id": pa.array(
                    tables.accounts["account_id"].to_numpy(dtype=object), pa.string()
                ),
                "signup": pa.array(tables.accounts["signup_date"].to_numpy("datetime64[D]")),
            }
        )
        connection.register("accounts", accounts)
        points_arrow = pa.table(
            {
                "row_id": np.arange(len(points)),
                "account_id": pa.array(points["account_id"].to_numpy(dtype=object), pa.string()),
                "as_of": pa.array(points["as_of"].to_numpy("datetime64[D]")),
            }
        )
        connection.register("points", points_arrow)
        result = connection.execute(
            USAGE_WINDOWS_SQL, {"data_start": tables.data_start()}
        ).fetchnumpy()
    finally:
        connection.close()
    # fetchnumpy gives masked arrays where a column has NULLs: NULL -> NaN, as ours
    return {
        name: np.ma.filled(np.ma.asarray(result[name], dtype=np.float64), np.nan)
        for name in USAGE_COLUMNS
    }


STEPS: dict[str, Callable[[Tables, pd.DataFrame], dict[str, np.ndarray]]] = {
    "ours_usage": ours_usage,
    "duckdb_usage": duckdb_usage,
    "ours_stage1": ours_stage1,
}


# --- measuring in a fresh process ---------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return int(re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE).group(1))


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


@dataclass
class Measurement:
    step: str
    rows: int
    seconds: list[float]
    peak_bytes: int  # peak RSS over the step(s) minus RSS before, inputs already loaded
    inputs_bytes: int  # RSS of the child with the tables and points loaded
    result: dict[str, np.ndarray]
    profile: str = ""


def measure(
    step: str, tables_path: str, dates: list[dt.date], repeat: int, profile: bool
) -> Measurement:
    """Runs in a spawned child: load the tables, build the points, time ``step`` repeat times."""
    with open(tables_path, "rb") as file:
        tables: Tables = pickle.load(file)
    points = active_points(tables, dates)
    run = STEPS[step]
    gc.collect()
    if not reset_peak_rss():
        raise RuntimeError(
            "cannot reset the peak RSS mark (/proc/self/clear_refs); Linux >= 4.0 needed"
        )
    before = _status_kib("VmRSS")
    seconds, result = [], {}
    for _ in range(repeat):
        result = {}
        gc.collect()
        start = time.perf_counter()
        result = run(tables, points)
        seconds.append(time.perf_counter() - start)
    peak = _status_kib("VmHWM") - before
    report = ""
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(run, tables, points)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        report = out.getvalue()
    return Measurement(step, len(points), seconds, peak * 1024, before * 1024, result, report)


def in_fresh_process(*args: object) -> Measurement:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(measure, *args).result()


# --- checking and reporting ---------------------------------------------------------------


def check_equal(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray], what: str) -> None:
    """Every usage column equal on every row (NaN where the other is NULL)."""
    bad = []
    for name in USAGE_COLUMNS:
        a, b = ours[name], theirs[name]
        if a.shape != b.shape:
            bad.append(f"{name}: {a.shape} rows vs {b.shape}")
            continue
        differ = ~((a == b) | (np.isnan(a) & np.isnan(b)))
        if differ.any():
            rows = np.flatnonzero(differ)
            shown = ", ".join(f"row {r}: {a[r]} vs {b[r]}" for r in rows[:5])
            bad.append(f"{name}: {len(rows)} rows differ; first {shown}")
    if bad:
        print(f"MISMATCH {what}:\n  " + "\n  ".join(bad))
    assert not bad, f"{what}: results differ"


def scenario_dates(tables: Tables, n_dates: int) -> dict[str, list[dt.date]]:
    end = tables.data_end()
    months = pd.date_range(
        end=pd.Timestamp(end).to_period("M").to_timestamp(), periods=n_dates, freq="MS"
    )
    return {"A: 1 date": [end], f"B: {n_dates} monthly dates": [d.date() for d in months]}


def mib(n: float) -> str:
    return f"{n / MIB:,.0f} MiB"


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = (
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded)

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--usage-rows", type=int, default=30_000_000)
    parser.add_argument("--dates", type=int, default=12, help="monthly as_of dates of scenario B")
    parser.add_argument(
        "--repeat", type=int, default=2, help="timed runs per step; the best is reported"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--quick", action="store_true", help="5,000 accounts and 300,000 usage rows"
    )
    parser.add_argument("--profile", action="store_true", help="print a cProfile of our usage step")
    args = parser.parse_args(argv)
    if args.quick:
        args.accounts, args.usage_rows = 5_000, 300_000

    import duckdb

    print(
        f"pandas {pd.__version__}, numpy {np.__version__}, pyarrow {pa.__version__}, duckdb {duckdb.__version__}"
    )
    print(
        f"{os.cpu_count()} cores; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start"
    )
    start = time.perf_counter()
    raw = generate(args.accounts, args.usage_rows, args.seed)
    generated = time.perf_counter() - start
    start = time.perf_counter()
    tables = validate_tables(raw)
    validated = time.perf_counter() - start
    del raw
    print(
        f"\ninputs (seed {args.seed}), generated in {generated:.1f} s, validated in {validated:.1f} s:"
    )
    for name, frame in {"accounts": tables.accounts, **tables.event_tables()}.items():
        size = frame.memory_usage(deep=True).sum()
        print(f"  {name:<13} {len(frame):>12,} rows  {mib(size):>10}")
    print(f"  history {tables.data_start()} .. {tables.data_end()}")
    dates = scenario_dates(tables, args.dates)

    rows, failures = [], []
    with tempfile.TemporaryDirectory(prefix="churn-bench-") as folder:
        path = str(Path(folder) / "tables.pkl")
        with open(path, "wb") as file:
            pickle.dump(tables, file, protocol=pickle.HIGHEST_PROTOCOL)
        del tables
        gc.collect()
        for scenario, as_of in dates.items():
            results = {}
            for step in STEPS:
                profile = args.profile and step == "ours_usage"
                results[step] = in_fresh_process(step, path, as_of, args.repeat, profile)
                m = results[step]
                print(
                    f"  {scenario:<22} {step:<13} best {min(m.seconds):7.2f} s of "
                    f"{', '.join(f'{s:.2f}' for s in m.seconds)}; peak +{mib(m.peak_bytes)} "
                    f"(inputs {mib(m.inputs_bytes)})",
                    flush=True,
                )
                if m.profile:
                    print(m.profile)
            ours, duck, full = (
                results["ours_usage"],
                results["duckdb_usage"],
                results["ours_stage1"],
            )
            check_equal(ours.result, duck.result, f"{scenario}: ours vs DuckDB")
            check_equal(ours.result, full.result, f"{scenario}: usage_columns vs build_snapshots")
            ratio = min(ours.seconds) / min(duck.seconds)
            if ratio > 2:
                failures.append(scenario)
            rows.append(
                [
                    scenario,
                    f"{ours.rows:,}",
                    f"{min(ours.seconds):.2f}",
                    f"{min(duck.seconds):.2f}",
                    f"{ratio:.2f}x",
                    mib(ours.peak_bytes),
                    mib(duck.peak_bytes),
                    f"{min(full.seconds):.2f}",
                    mib(full.peak_bytes),
                ]
            )
    print(
        f"\nstage 1 vs DuckDB: {args.accounts:,} accounts, {args.usage_rows:,} usage rows; "
        f"best of {args.repeat}; peak = RSS growth of a fresh process over its loaded inputs"
    )
    print("results equal for every row (MAU x 6, DAU average): yes\n")
    header = [
        "scenario",
        "snapshots",
        "ours usage (s)",
        "DuckDB (s)",
        "ours/DuckDB",
        "ours peak",
        "DuckDB peak",
        "stage 1 (s)",
        "stage 1 peak",
    ]
    print_table(header, rows)
    print(f"\nload + validation (validate_tables): {validated:.1f} s (not compared)")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end (shared machine)")
    verdict = "FAIL: " + ", ".join(failures) if failures else "met"
    print(f"target (our usage windows within 2x of DuckDB): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
