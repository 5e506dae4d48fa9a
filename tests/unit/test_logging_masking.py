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
