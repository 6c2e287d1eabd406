"""The command line, called in-process through ``main`` and as a real process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fakeupstream.cli import main
from fakeupstream.storage.library import CassetteLibrary

from .helpers import TIMEOUT, recv_event, recv_until_closed, start_serve, ws_connect

BUNDLED = CassetteLibrary().names()


def test_list_shows_every_bundled_cassette_with_its_description(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == BUNDLED
    assert any("beta_api_shape_disabled" in line for line in lines)


def test_check_passes_on_the_bundled_cassettes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{len(BUNDLED)} ok, 0 failed"


def test_check_names_file_and_line_of_a_malformed_cassette(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("version: 1\ntimeline: []\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ntimeline:\n  - server: {type: x}\n    dealy: 1\n")
    assert main(["check", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert f"{bad}:4:5: unknown key 'dealy' in a timeline step" in captured.err
    assert captured.out.splitlines()[-1] == "1 ok, 1 failed"


def test_check_rejects_a_yaml_tag_that_would_build_an_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.yaml"
    bad.write_text(
        f"version: 1\ntimeline:\n  - server: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3:13: expected an event" in err
    assert "YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'" in err
    assert not marker.exists()


def test_check_validates_events_against_the_sdk_types(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "drift.yaml"
    bad.write_text(
        "version: 1\ntimeline:\n"
        "  - server: {type: response.output_text.delta, event_id: e, delta: 5}\n"
    )
    assert main(["check", str(bad)]) == 1
    assert f"{bad}:3: server event does not match the openai SDK" in capsys.readouterr().err
    assert main(["check", "--no-sdk", str(bad)]) == 0


def test_check_reads_http_exchanges_and_flags_those_never_replayed_or_holding_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "version: 1\nhttp:\n"
        "  - request: {method: POST, path: /v1/realtime/client_secrets}\n"
        "    response: {status: 200, body: {value: ek_REDACTED, expires_at: 1}}\n"
    )
    odd = tmp_path / "odd.yaml"
    odd.write_text(
        "version: 1\nhttp:\n"
        "  - request: {method: POST, path: /v1/chat/completions}\n"
        "    response: {status: 200}\n"
        "  - request: {method: POST, path: /v1/realtime/client_secrets}\n"
        "    response: {status: 200, body: {value: ek_0123456789abcdef0123456789abcdef}}\n"
        "timeline: []\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nhttp:\n  - request: {method: POST, path: /v1/models}\n"
        "    response: {status: 700}\n"
    )
    assert main(["check", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert f"{bad}:4:24: expected an HTTP status from 200 to 599, got 700" in captured.err
    assert f"{odd}:3: the HTTP exchange POST /v1/chat/completions is never replayed" in captured.err
    assert (
        f"{odd}:5: the HTTP exchange POST /v1/realtime/client_secrets holds an ephemeral "
        "client secret (ek_01…); write keys as ek_REDACTED" in captured.err
    )
    assert "0123456789abcdef0123" not in captured.err
    assert captured.out.splitlines()[-1] == "1 ok, 2 failed"


def test_usage_errors_exit_2_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--speed", "fast"])
    assert info.value.code == 2
    assert "expected a number, zero or more (0: no delays, 1: real time), got 'fast'" in (
        capsys.readouterr().err
    )


def test_serve_refuses_an_unknown_cassette(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0", "--cassette", "nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fakeupstream: error: no cassette named 'nope'")
    assert "Traceback" not in err


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fakeupstream", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 6,
        check=False,
    )


def test_python_dash_m_runs_the_same_cli() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("fakeupstream ")
    result = run("check", "/nonexistent.yaml")
    assert result.returncode == 1
    assert "/nonexistent.yaml: cannot read the cassette" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.asyncio
async def test_serve_as_a_process_prints_where_it_listens_and_stops_on_sigterm() -> None:
    process, url = await start_serve("--cassette", "session")
    try:
        async with ws_connect(f"{url}/v1/realtime?model=gpt-realtime") as ws:
            assert (await recv_event(ws))["type"] == "session.created"
        async with ws_connect(
            f"{url}/cassettes/beta_header_rejected/v1/realtime?model=m",
            {"Authorization": "Bearer k", "OpenAI-Beta": "realtime=v1"},
        ) as ws:
            events, code, _ = await recv_until_closed(ws)
        assert events[0]["error"]["code"] == "beta_api_shape_disabled"
        assert code == 4000
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
        assert process.stderr is not None
        log = (await process.stderr.read()).decode()
        assert "Traceback" not in log
        # Without -v: one line per connection, nothing from asyncio or websockets.
        lines = log.splitlines()
        assert len(lines) == 2, log
        assert lines[0].endswith(
            "connection 1 /v1/realtime?model=gpt-realtime -> cassette 'session', replayed, "
            "1/3 steps played, 0 mismatches, 2 unplayed, closed 1000 by client; "
            f"details: {url.replace('ws:', 'http:')}/__fakeupstream/report"
        )
        assert "cassette 'beta_header_rejected', answered, " in lines[1]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_serve_accepts_fresh_ids() -> None:
    from fakeupstream.cli import _parser

    assert _parser().parse_args(["serve", "--fresh-ids"]).fresh_ids is True
    assert _parser().parse_args(["serve"]).fresh_ids is False


def test_serve_on_a_port_in_use_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"fakeupstream: error: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in err


def test_check_without_the_sdk_is_one_line_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # what `import openai` does without it
    assert main(["check"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "fakeupstream: error: check validates events with the openai SDK, which is not "
        "installed: pip install 'fakeupstream[sdk]', or check the format only with --no-sdk"
    ]
    assert main(["check", "--no-sdk"]) == 0


def test_a_closed_stdout_ends_list_quietly() -> None:
    """`fakeupstream list | head -0`: the reader is gone before the first line."""
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "fakeupstream", "list"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT * 6,
            check=False,
        )
    finally:
        os.close(write)
    assert result.returncode == 1
    assert result.stderr == ""


def test_record_and_serve_default_to_different_ports() -> None:
    from fakeupstream.cli import RECORD_PORT, SERVE_PORT, _parser

    assert _parser().parse_args(["serve"]).port == SERVE_PORT == 8765
    assert _parser().parse_args(["record", "--cassette", "x"]).port == RECORD_PORT == 8766
    assert _parser().parse_args(["record", "--cassette", "x", "-vv"]).verbose == 2
    assert _parser().parse_args(["serve", "-q"]).quiet is True


@pytest.mark.asyncio
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
async def test_a_signal_closes_live_sessions_with_1001_and_exits_0(stop: signal.Signals) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fakeupstream",
        "serve",
        "--port",
        "0",
        "--cassette",
        "session",
        "-q",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        line = (await asyncio.wait_for(process.stdout.readline(), TIMEOUT * 4)).decode()
        async with ws_connect(f"{line.split()[-1]}/v1/realtime?model=gpt-realtime") as ws:
            assert (await recv_event(ws))["type"] == "session.created"
            process.send_signal(stop)
            await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
        assert ws.close_code == 1001
        assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
        assert await process.stderr.read() == b""  # -q: a warning-level line is not an error
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
