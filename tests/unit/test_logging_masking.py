"""Masking corpus: what must never leave the process, and look-alikes that must survive."""

from __future__ import annotations

import logging

import pytest

from watchfloor.logging import Masker, configure_logging, shutdown_logging
from watchfloor.logging.masking import iban_valid, luhn_valid

MUST_MASK = [
    # (text, secret substring that must be gone)
    ("Authorization: Bearer abc.def-ghi_123", "abc.def-ghi_123"),
    ("sent bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-nature", "eyJzdWIiOiIxIn0"),
    (
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "dozjgNryP4J3jVmNHl0w5N",
    ),
    ("password=hunter2 user=bob", "hunter2"),
    ("db login PASSWORD: 's3cr3t value'", "s3cr3t value"),
    ('{"api_key": "k-123456"}', "k-123456"),
    ("client_secret=abcdef&grant=x", "abcdef"),
    ("aws key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
    (
        "gh token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    ),
    ("slack xoxb-123456789012-abcdefghij", "xoxb-123456789012-abcdefghij"),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("card 4111 1111 1111 1111 charged", "4111 1111 1111"),
    ("card 4111-1111-1111-1111 charged", "4111-1111-1111"),
    ("amex 378282246310005", "378282246310005"),
    ("pay to GB82 WEST 1234 5698 7654 32 today", "WEST 1234 5698"),
    ("iban DE89370400440532013000", "DE89370400440532013000"),
    ("account no: 12345678", "12345678"),
    ("acct#987654321 debited", "987654321"),
]

MUST_SURVIVE = [
    "order 1234567890123 filled",  # 13 digits, fails Luhn
    "qty 100 at 187.25 for AAPL",
    "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
    "GB00 not an iban",
    "tokenizer ready",
    "position 4111111111111112 is not a card",  # fails Luhn
    "account balance is 1200",
]


@pytest.mark.parametrize(("text", "secret"), MUST_MASK)
def test_secret_is_masked(text, secret):
    masked = Masker().mask_text(text)
    assert secret not in masked
    assert "REDACTED" in masked


@pytest.mark.parametrize("text", MUST_SURVIVE)
def test_look_alikes_survive(text):
    assert Masker().mask_text(text) == text


def test_card_mask_keeps_last_four_only():
    assert Masker().mask_text("4111111111111111") == "[REDACTED:card:1111]"


def test_checksums():
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert not iban_valid("GB83 WEST 1234 5698 7654 32")


def test_sensitive_keys_mask_whole_values_recursively():
    masker = Masker()
    masked = masker.mask_value(
        {
            "password": "hunter2",
            "x-api-key": "abc",
            "db.password": "p",
            "broker_api_key": "k",
            "headers": {"Authorization": "Basic dXNlcjpwYXNz", "accept": "json"},
            "notes": ["card 4111111111111111", 7],
            "symbol": "AAPL",
        }
    )
    assert masked == {
        "password": "[REDACTED]",
        "x-api-key": "[REDACTED]",
        "db.password": "[REDACTED]",
        "broker_api_key": "[REDACTED]",
        "headers": {"Authorization": "[REDACTED]", "accept": "json"},
        "notes": ["card [REDACTED:card:1111]", 7],
        "symbol": "AAPL",
    }


def test_extra_keys_and_patterns_are_configurable():
    masker = Masker(extra_keys=["trader_pin"], extra_patterns=[r"\bTRD-\d{4}\b"])
    assert masker.mask_value({"trader_pin": "1234"}) == {"trader_pin": "[REDACTED]"}
    assert masker.mask_text("desk TRD-0042 booked") == "desk [REDACTED] booked"


def test_bad_extra_pattern_is_rejected_at_configuration():
    with pytest.raises(Exception, match=r"unterminated|missing"):
        Masker(extra_patterns=["(unclosed"])


def test_masking_applies_to_message_extras_and_exceptions(ecs_lines):
    log = logging.getLogger("tests.masking")
    log.info(
        "login with password=hunter2",
        extra={"token": "abc", "request": {"headers": {"authorization": "Bearer xyz"}}},
    )
    try:
        raise ValueError("card 4111 1111 1111 1111 declined")
    except ValueError:
        log.exception("payment failed for api_key=k-999")
    first, second = ecs_lines()
    text = str(first) + str(second)
    for secret in ("hunter2", "'abc'", "xyz", "4111 1111 1111", "k-999"):
        assert secret not in text
    assert first["token"] == "[REDACTED]"
    assert second["error"]["message"] == "card [REDACTED:card:1111] declined"


def test_masking_configured_from_environment(monkeypatch):
    import io
    import json

    monkeypatch.setenv("WATCHFLOOR_MASK_KEYS", "desk_code")
    monkeypatch.setenv("WATCHFLOOR_MASK_PATTERNS", '["\\\\bPIN-\\\\d+"]')
    stream = io.StringIO()
    configure_logging("mask-env", stream=stream)
    logging.getLogger("t").info("PIN-1234 used", extra={"desk_code": "D7"})
    shutdown_logging()
    doc = json.loads(stream.getvalue())
    assert doc["message"] == "[REDACTED] used"
    assert doc["desk_code"] == "[REDACTED]"


# Issue 12: the shapes that leaked, one readable example each (the corpora are in
# test_logging_masking_corpus.py).
ISSUE_12_LEAKS = [
    ("postgresql://trader:Tr4d3r!@db:5432/oms", "Tr4d3r!"),
    ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ("DATABASE_PASSWORD=s3cr3t db_password=s3cr3t", "s3cr3t"),
    ('{"dbPassword": "pw1", "clientSecret": "pw2", "accessToken": "pw3"}', "pw"),
    ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg\n-----END EC PRIVATE KEY-----", "MHcCAQEEIBkg"),
    ("posted to https://hooks.slack.com/services/T0/B0/abcdEFGH1234", "abcdEFGH1234"),
    ("verify with whsec_5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH", "5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH"),
    ("Cookie: theme=dark; sessionid=8f14e45fceea167a", "8f14e45fceea167a"),
    ("card 4111111111111111exp", "411111111111"),
    ("card 4111 1111 1111 1111 12/27", "4111 1111 1111"),
    ("order routed to account U1234567", "U1234567"),
]


@pytest.mark.parametrize(("text", "secret"), ISSUE_12_LEAKS)
def test_issue_12_shapes_are_masked(text, secret):
    assert secret not in Masker().mask_text(text)


def test_header_lists_and_non_string_values_are_masked():
    masked = Masker().mask_value(
        {"headers": [("Authorization", "Bearer abc123"), ("Accept", "json")], "n": 4111111111111111}
    )
    assert masked == {
        "headers": [["Authorization", "[REDACTED]"], ["Accept", "json"]],
        "n": "[REDACTED:card:1111]",
    }


@pytest.mark.parametrize(
    "number",
    [
        "1718000000121",  # epoch ms; each of these passes Luhn
        "1718000000123456",  # epoch µs
        "1718000000123456788",  # epoch ns
        "52=20240611-14:30:15.123",  # FIX SendingTime
    ],
)
def test_timestamps_that_pass_luhn_survive(number):
    assert Masker().mask_text(f"ts {number} ok") == f"ts {number} ok"


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("AWS_SECRET_ACCESS_KEY", True),
        ("dbPassword", True),
        ("X-Api-Key", True),
        ("AccountKey", True),
        ("broker_account", True),
        ("accountId", True),
        ("set-cookie", True),
        ("pgpass", True),
        ("token_type", False),
        ("password_length", False),
        ("account_type", False),
        ("idempotency_key", False),
        ("card_last4", False),
        ("bypass", False),
    ],
)
def test_key_names_are_judged_by_their_words(key, sensitive):
    assert Masker().is_sensitive_key(key) is sensitive
