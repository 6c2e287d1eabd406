"""The leak guard against a corpus of real-shaped keys, and of near-misses it must let pass.

The keys are made up, in the documented shapes (prefix, alphabet, length) of each vendor.
"""

from __future__ import annotations

import base64
import random

import pytest

from fakeupstream.redaction import find_leaks, find_leaks_in_bytes

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def token(length: int, alphabet: str = ALNUM, seed: int = 0) -> str:
    pick = random.Random(seed)
    return "".join(pick.choice(alphabet) for _ in range(length))


KEYS = [
    ("sk-" + token(48), "an OpenAI API key"),
    ("sk-proj-" + token(40, ALNUM + "_-", 1), "an OpenAI API key"),
    ("sk-svcacct-" + token(40, seed=2), "an OpenAI API key"),
    ("ek_" + token(32, seed=3), "an ephemeral client secret"),
    ("AKIA" + token(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 4), "an AWS access key"),
    ("ASIA" + token(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 5), "an AWS access key"),
    ("ghp_" + token(36, seed=6), "a GitHub token"),
    ("gho_" + token(36, seed=7), "a GitHub token"),
    ("github_pat_" + token(22, seed=8) + "_" + token(59, seed=9), "a GitHub token"),
    ("AIza" + token(35, ALNUM + "_-", 10), "a Google API key"),
    ("sk-ant-api03-" + token(93, ALNUM + "_-", 11), "an Anthropic API key"),
    ("xoxb-" + token(11, "0123456789", 12) + "-" + token(24, seed=13), "a Slack token"),
    ("xoxp-" + token(11, "0123456789", 14) + "-" + token(32, seed=15), "a Slack token"),
    ("sk_live_" + token(24, seed=16), "a Stripe live key"),
    ("rk_live_" + token(24, seed=17), "a Stripe live key"),
    ("glpat-" + token(20, seed=18), "a GitLab token"),
    (
        "hf_" + token(34, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 19),
        "a Hugging Face token",
    ),
    ("npm_" + token(36, seed=20), "an npm token"),
    ("gsk_" + token(52, seed=21), "a Groq API key"),
    ("-----BEGIN RSA PRIVATE KEY-----", "a private key"),
]


@pytest.mark.parametrize(("key", "what"), KEYS)
def test_every_key_shape_is_found_in_text_and_in_bytes(key: str, what: str) -> None:
    text = f'version: 1\ntimeline:\n- server: {{type: x, note: "the key is {key}."}}\n'
    [finding] = find_leaks(text)
    assert finding.startswith(f"line 3: {what} (")
    assert key not in finding
    [found] = find_leaks_in_bytes(b"\x00\xff" + key.encode() + b"\n\x00")
    assert found.startswith(f"byte 2: {what} (")


def test_an_aws_secret_key_is_found_next_to_its_name() -> None:
    secret = token(40, ALNUM + "/+", 30)
    [finding] = find_leaks(f"aws_secret_access_key = {secret}\n")
    assert finding.startswith("line 1: an AWS secret key (")
    assert secret not in finding


NEAR_MISSES = [
    "Ask-me-anything is a task-oriented desk-lamp-controller-v2-production line.",
    "sess_C9ZkL3x7bQ2mN8pR4tY6w and item_C9ZkL3x7bQ2mN8pR4tY6w, resp_C9ZkL3x7bQ2mN8pR4tY6",
    "event_DAu0d1SlHHgrisLwinhhf conv_C9ZkL3x7bQ2mN8pR4tY6w call_a1b2c3d4e5f6g7h8i9",
    "AKIA is not a key, nor AKIAshort, nor ghp_short, nor xoxb, nor AIza alone.",
    "sk-short and sk_test_" + token(24, seed=40) + " (a Stripe test key is not live)",
    "The model said: my GitHub handle is github_user and my api key is in the vault.",
    "-----BEGIN PUBLIC KEY----- is not a secret",
    "A base64 sample: " + token(64, ALNUM + "+/", 41) + "==",
]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_ordinary_text_and_ids_are_not_refused(text: str) -> None:
    assert find_leaks(text) == []
    assert find_leaks_in_bytes(text.encode()) == []


def test_base64_audio_is_not_refused() -> None:
    # Thirty seconds of 24 kHz 16-bit noise, as the cassette stores it and as the sidecar does.
    audio = random.Random(42).randbytes(24_000 * 2 * 30)
    assert find_leaks_in_bytes(audio) == []
    encoded = base64.b64encode(audio).decode()
    assert find_leaks(f"- server: {{type: response.output_audio.delta, delta: {encoded}}}\n") == []
