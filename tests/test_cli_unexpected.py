"""`fakeupstream serve --on-unexpected`: parsed into the server's replay options."""

from __future__ import annotations

import pytest

from fakeupstream.cli import _parser, main
from fakeupstream.unexpected import OnUnexpected


def test_the_flag_is_parsed_into_a_policy() -> None:
    assert _parser().parse_args(["serve", "--on-unexpected", "close"]).on_unexpected is (
        OnUnexpected.CLOSE
    )
    assert _parser().parse_args(["serve"]).on_unexpected is None  # the cassette's, else emulate


def test_a_bad_policy_is_a_usage_error_listing_the_valid_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--on-unexpected", "ignore"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "expected one of: emulate, error, close" in err
    assert "Traceback" not in err
