"""The 30-second form of bench/soak.py: a real `churn serve` under mixed load and reloads.

Asserts only what must hold on any machine: no valid request failed, every invalid one got
its 4xx, every reload swapped, and the server's memory did not grow by 10% or more after
the warm-up. Never a time: the figures (p50/p99 per minute) are the benchmark's to report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


def test_thirty_seconds_of_mixed_load_and_reloads(bundle: Path, tmp_path: Path) -> None:
    result_file = tmp_path / "soak.json"
    command = [sys.executable, str(SOAK), "--seconds", "30", "--model", str(bundle)]
    done = subprocess.run(
        [*command, "--json", str(result_file)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result_file.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = orjson.loads(result_file.read_bytes())
    assert result["valid_ok"] > 0 and result["invalid_answered_as_expected"] > 0
    assert result["errors"] == {}, done.stdout[-3000:]
    assert result["reloads_failed"] == [] and result["reloads_ok"] > 0
    assert result["rss_growth"] < 0.10, done.stdout[-3000:]
    assert done.returncode == 0
