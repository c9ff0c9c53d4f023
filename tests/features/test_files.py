"""Atomic, durable outputs: single files and whole folders."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from features.files import atomic_directory, write_atomic


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_written_file_gets_the_umask_permissions_not_mkstemps_0600(
    tmp_path: Path, umask_022: None
) -> None:
    path = write_atomic(tmp_path / "out.txt", lambda temp: temp.write_text("x"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_failed_write_leaves_the_previous_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")

    def fail(temp: Path) -> None:
        temp.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_atomic(target, fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_directory_replaces_the_old_set_whole(tmp_path: Path, umask_022: None) -> None:
    target = tmp_path / "report"
    target.mkdir()
    (target / "stale.csv").write_text("old")
    with atomic_directory(target) as temp:
        (temp / "monthly.csv").write_text("new")
        (temp / "plots").mkdir()
        (temp / "plots" / "a.png").write_bytes(b"png")
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        "monthly.csv",
        "plots",
        "plots/a.png",
    ]
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_failed_directory_write_leaves_the_old_set_untouched(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    target.mkdir()
    (target / "accounts.parquet").write_text("complete old set")
    with pytest.raises(RuntimeError), atomic_directory(target) as temp:
        (temp / "accounts.parquet").write_text("half")
        raise RuntimeError("interrupted")
    assert [p.name for p in target.iterdir()] == ["accounts.parquet"]
    assert (target / "accounts.parquet").read_text() == "complete old set"
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]
