"""The TLS benchmark still runs (a tiny run, no figure asserted: speed is measured in bench/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "tls_overhead.py"


def test_the_tls_benchmark_runs_end_to_end() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--frames",
            "50",
            "--connections",
            "2",
            "--rounds",
            "1",
            "--target",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "throughput ratio wss/ws" in result.stdout
    assert "PASS" in result.stdout
