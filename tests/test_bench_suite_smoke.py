"""Every benchmark script still runs end to end, at a tiny size (speed is measured in bench/,
never asserted here: the targets are printed, not checked, with --target 0)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each script once, tiny, writing its JSON results."""
    directory = tmp_path_factory.mktemp("bench")
    paths = {name: directory / f"{name}.json" for name in ("replay", "setup", "concurrent")}
    out = run("replay_throughput.py", "--frames", "50", "--rounds", "1", "--target", "0",
              "--json", str(paths["replay"]))  # fmt: skip
    assert "fake/bare" in out
    out = run("session_setup.py", "--sessions", "3", "--rounds", "1", "--target", "0",
              "--json", str(paths["setup"]))  # fmt: skip
    assert "fake/bare" in out
    out = run("concurrent_sessions.py", "--sessions", "2", "3", "--rounds", "1",
              "--target-rate", "0", "--target-p99", "1000", "--workers", "2", "--clients", "2",
              "--client", "lean", "--proxy", "--json", str(paths["concurrent"]))  # fmt: skip
    assert "all causal" in out
    assert "(client " in out  # the client's CPU per session, next to the server's
    assert "fake-2w/fake sessions/s" in out
    assert "proxy/direct sessions/s" in out
    assert "memory per open idle session" in out
    return paths


def test_each_benchmark_writes_its_results(results: dict[str, Path]) -> None:
    replay = json.loads(results["replay"].read_text())
    assert set(replay["frames_per_s"]) == {"bare", "fake"}
    assert replay["machine"]["cpus"] >= 1
    assert len(replay["first_frame_s"]["fake"]) == replay["rounds"]
    setup = json.loads(results["setup"].read_text())
    assert set(setup["sessions_per_s"]) == {"bare", "fake"}
    assert len(setup["open_then_first_s"]["fake"]) == setup["sessions"] * setup["rounds"]
    concurrent = json.loads(results["concurrent"].read_text())
    assert set(concurrent["runs"]) == {"2", "3"}
    assert set(concurrent["runs"]["3"]) == {"bare", "fake", "fake-2w", "proxy"}
    assert concurrent["client"] == "lean"
    assert set(concurrent["runs"]["3"]["fake"]) == {"rate", "p50", "p99", "cpu_ms", "client_cpu_ms"}
    assert set(concurrent["idle_bytes"]) == {"bare", "fake"}


def test_the_concurrent_benchmark_still_runs_with_the_websockets_client() -> None:
    out = run("concurrent_sessions.py", "--sessions", "2", "--rounds", "1", "--client",
              "websockets", "--target-rate", "0", "--target-p99", "1000")  # fmt: skip
    assert "all causal" in out
    assert "fake/bare sessions/s" in out


def test_the_chart_is_a_png(results: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "chart.png"
    out = run("chart.py", *(str(path) for path in results.values()), "--output", str(output))
    assert out.startswith("wrote ")
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_that_misses_its_target_says_fail_and_exits_1() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "session_setup.py"), "--sessions", "2", "--rounds", "1",
         "--target", "1000"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL" in result.stdout


def test_the_bytecode_count_runs_and_counts_every_server(tmp_path: Path) -> None:
    output = tmp_path / "opcodes.json"
    out = run("opcodes.py", "--sessions", "3", "--json", str(output))
    assert "bare server" in out
    counts = json.loads(output.read_text())["per_session"]
    assert set(counts) == {"bare", "fake"}
    assert all(count > 1000 for count in counts.values())  # a setup runs thousands
