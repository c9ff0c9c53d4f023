"""Tables on Dask: read in pieces, checked across pieces, partitioned by account; stage 1 per
partition equals the single-process snapshots row for row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("distributed", reason="the dask extra is not installed")

from distributed import Client, LocalCluster

from features.errors import DataError
from features.partitioned import load_partitioned, snapshots, table_pieces
from features.snapshot import active_snapshots
from features.tables import TABLES, load_tables

AS_OF = dt.date(2025, 3, 1)
PARTITIONS = 3
ACCOUNTS = 400


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Two single-threaded workers in this process: no LightGBM here, so threads will do."""
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def by_account(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["account_id", "as_of"], ignore_index=True)


def demo_tables(demo_data: Path) -> dict[str, pd.DataFrame]:
    """The first ``ACCOUNTS`` accounts of the demo data, every table."""
    tables = {name: pd.read_parquet(demo_data / f"{name}.parquet") for name in TABLES}
    kept = tables["accounts"]["account_id"].iloc[:ACCOUNTS]
    return {name: frame.loc[frame["account_id"].isin(kept)] for name, frame in tables.items()}


@pytest.fixture(scope="module")
def demo(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo-part")
    for name, frame in demo_tables(demo_data).items():
        frame.to_parquet(out / f"{name}.parquet", index=False)
    return out


@pytest.fixture(scope="module")
def single(demo: Path) -> pd.DataFrame:
    """The single-process snapshots at AS_OF, every partitioned result is held against."""
    return by_account(active_snapshots(load_tables(demo), [AS_OF]))


@pytest.fixture(scope="module")
def reshaped(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo data as other tools write it: accounts as CSV, usage as a directory of
    files with small row groups, contacts hive-partitioned by channel, NPS as a glob."""
    out = tmp_path_factory.mktemp("reshaped")
    tables = demo_tables(demo_data)
    tables["accounts"].to_csv(out / "accounts.csv", index=False)
    usage = out / "usage.parquet"
    usage.mkdir()
    for i, part in enumerate(range(0, len(tables["usage"]), 200_000)):
        rows = tables["usage"].iloc[part : part + 200_000]
        rows.to_parquet(usage / f"part-{i}.parquet", index=False, row_group_size=50_000)
    for channel, rows in tables["contacts"].groupby("channel"):
        folder = out / "contacts.parquet" / f"channel={channel}"
        folder.mkdir(parents=True)
        rows.drop(columns=["channel"]).to_parquet(folder / "part-0.parquet", index=False)
    years = pd.to_datetime(tables["nps"]["date"]).dt.year
    for year, rows in tables["nps"].groupby(years):
        rows.to_parquet(out / f"nps-{year}.parquet", index=False)
    for name in ("subscriptions", "tickets", "stakeholders"):
        tables[name].to_parquet(out / f"{name}.parquet", index=False)
    return out


def test_dask_snapshots_equal_single_process_row_for_row(
    client: Client, reshaped: Path, single: pd.DataFrame
) -> None:
    data = load_partitioned(reshaped, partitions=PARTITIONS, piece_rows=50_000)
    assert data.npartitions == PARTITIONS
    assert len(table_pieces(reshaped, "usage", piece_rows=50_000)) > 3  # row-group pieces
    on_dask = snapshots(data, [AS_OF]).compute()
    pd.testing.assert_frame_equal(by_account(on_dask), single)


def test_hidden_truncation_every_partition_ignores_events_after_as_of(
    client: Client, demo: Path, single: pd.DataFrame, tmp_path: Path
) -> None:
    """Held against the single-process snapshots of the whole data (which the partitioned
    snapshots of the whole data equal, above)."""
    cut = pd.Timestamp(AS_OF)
    for name, spec in TABLES.items():
        frame = pd.read_parquet(demo / f"{name}.parquet")
        if spec.event_date is not None:
            frame = frame.loc[pd.to_datetime(frame[spec.event_date]) <= cut].copy()
        if name == "tickets":  # closed after as_of: still open then, as with no close date
            frame.loc[pd.to_datetime(frame["closed_date"]) > cut, "closed_date"] = pd.NaT
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    truncated = snapshots(load_partitioned(tmp_path, partitions=PARTITIONS), [AS_OF])
    pd.testing.assert_frame_equal(by_account(truncated.compute()), single)


def test_problems_of_every_piece_are_reported_together_with_file_rows(
    client: Client, frames: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    frames["accounts"].to_parquet(tmp_path / "accounts.parquet", index=False)
    usage = frames["usage"].astype({"date": "string"})
    first, second = usage.iloc[:4].copy(), usage.iloc[4:].copy()
    first.iloc[1, first.columns.get_loc("date")] = "2024-13-45"
    second.iloc[3, second.columns.get_loc("date")] = "yesterday"
    first.to_parquet(tmp_path / "usage-1.parquet", index=False, row_group_size=2)
    second.to_parquet(tmp_path / "usage-2.parquet", index=False, row_group_size=2)
    with pytest.raises(DataError) as raised:
        load_partitioned(tmp_path, piece_rows=2)
    message = str(raised.value)
    assert "2 of 6 pieces break the data contract" in message
    assert "usage-1.parquet: usage.date: date is not an ISO date" in message
    assert "row 2: '2024-13-45'" in message
    assert "usage-2.parquet" in message and "row 4: 'yesterday'" in message  # of the file


def test_an_account_in_two_files_is_a_duplicate(
    client: Client, frames: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    folder = tmp_path / "accounts.parquet"
    folder.mkdir()
    frames["accounts"].to_parquet(folder / "part-0.parquet", index=False)
    frames["accounts"].iloc[:1].to_parquet(folder / "part-1.parquet", index=False)
    data = load_partitioned(tmp_path, partitions=2)
    with pytest.raises(DataError, match=r"account_id is duplicated in 2 row\(s\); first: .*'a'"):
        snapshots(data, [dt.date(2024, 6, 30)]).compute()


def test_event_rows_of_unknown_accounts_are_counted_across_partitions(
    client: Client, frames: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    frames["accounts"].to_parquet(tmp_path / "accounts.parquet", index=False)
    strays = pd.DataFrame({"account_id": ["x", "y", "z"], "date": ["2024-06-01"] * 3})
    pd.concat([frames["contacts"], strays]).to_parquet(tmp_path / "contacts.parquet")
    data = load_partitioned(tmp_path, partitions=PARTITIONS)
    counted = [part for part in client.compute(data.unknown_accounts(), sync=True) if part]
    assert sum(part["contacts"] for part in counted) == 3
