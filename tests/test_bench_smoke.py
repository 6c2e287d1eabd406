"""The benchmark still runs (a tiny run, no figure asserted: speed is measured in bench/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "relay_throughput.py"


def test_the_relay_benchmark_runs_end_to_end() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--frames", "200", "--rounds", "1", "--target", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ratio" in result.stdout
    assert "PASS" in result.stdout


def test_the_fault_latency_benchmark_runs_end_to_end() -> None:
    bench = BENCH.parent / "fault_latency.py"
    result = subprocess.run(
        [sys.executable, str(bench), "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "ratio" in result.stdout
    assert "expected" not in result.stdout  # every row saw its outcome


def test_the_cassette_load_benchmark_runs() -> None:
    bench = BENCH.parent / "cassette_load.py"
    result = subprocess.run(
        [sys.executable, str(bench), "--mb", "0.05"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "time ratio (cassette / json.loads)" in result.stdout
    assert "target memory" in result.stdout
