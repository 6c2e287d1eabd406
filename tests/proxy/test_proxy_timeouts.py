"""The gateway's keepalive, idle and close timeouts: settings, flags, close reasons."""

from __future__ import annotations

import math
from typing import Any

import pytest
from websockets.frames import Close

from proxy import ConfigError, ProxyConfig
from proxy.__main__ import build_parser, main
from proxy.relay import forwardable_close

UPSTREAM = "http://127.0.0.1:9"


def test_defaults_are_the_websockets_keepalive_and_no_idle_timeout() -> None:
    config = ProxyConfig(upstream=UPSTREAM)
    assert (config.ping_interval, config.ping_timeout) == (20.0, 20.0)
    assert config.idle_timeout is None
    assert config.close_timeout == 10.0


@pytest.mark.parametrize("name", ["ping_interval", "ping_timeout", "idle_timeout", "close_timeout"])
@pytest.mark.parametrize("value", [0.0, -1.0, math.nan, math.inf])
def test_a_timeout_is_a_positive_number_of_seconds(name: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"{name.replace('_', ' ')} must be a positive number"):
        ProxyConfig(upstream=UPSTREAM, **{name: value})


def test_keepalive_and_idle_timeout_can_be_off() -> None:
    config = ProxyConfig(upstream=UPSTREAM, ping_interval=None, ping_timeout=None)
    assert config.ping_interval is None and config.ping_timeout is None


def test_flags_zero_means_off() -> None:
    args = build_parser().parse_args(
        ["--upstream", UPSTREAM, "--ping-interval", "0", "--ping-timeout", "0"]
    )
    assert (args.ping_interval, args.ping_timeout, args.idle_timeout) == (None, None, None)
    args = build_parser().parse_args(
        ["--upstream", UPSTREAM, "--idle-timeout", "30", "--close-timeout", "1.5"]
    )
    assert (args.idle_timeout, args.close_timeout) == (30.0, 1.5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--idle-timeout", "-1"], "idle timeout must be a positive number of seconds"),
        (["--ping-interval", "soon"], "is not a number of seconds"),
        (["--close-timeout", "0"], "close timeout must be a positive number of seconds"),
    ],
)
def test_bad_timeout_flags_print_usage_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--upstream", UPSTREAM, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m proxy")
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (Close(1011, "keepalive ping timeout"), (1011, "upstream keepalive ping timeout")),
        (Close(1011, ""), (1011, "upstream closed without a close frame")),
        (Close(1000, "bye"), (1011, "upstream closed without a close frame")),
        (None, (1011, "upstream closed without a close frame")),
    ],
)
def test_a_side_the_gateway_gave_up_on_is_reported_with_its_reason(
    sent: Close | None, expected: tuple[int, str]
) -> None:
    side: Any = "upstream"
    assert forwardable_close(None, side, sent=sent) == expected
    assert forwardable_close(Close(4000, "x"), side, sent=sent) == (4000, "x")  # theirs wins
