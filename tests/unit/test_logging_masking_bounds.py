"""Masking never raises into the writer, bounds its work per value, and handles any Python type."""

from __future__ import annotations

import collections
import datetime
import enum
import json
import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
import pytest

from watchfloor.logging import Masker
from watchfloor.logging.masking import MAX_DEPTH, MAX_ITEMS, MAX_TEXT, UNMASKABLE

N = MAX_TEXT
# Inputs shaped to make a backtracking regex or a per-candidate loop go quadratic.
ADVERSARIAL = {
    "letters": "a" * N,
    "digits": "4" * N,
    "digits and spaces": "4 " * (N // 2),
    "digits and dashes": "41-" * (N // 3),
    "assignments": "password=" * (N // 9),
    "headers": "cookie: " * (N // 8),
    "bare keys": "key=" * (N // 4),
    "pem headers": "-----BEGIN RSA PRIVATE KEY-----" * (N // 31),
    "pem footers": "-----END RSA PRIVATE KEY-----" * (N // 29),
    "schemes": "://" * (N // 3),
    "userinfo": "https://a:b@" * (N // 12),
    "jwt starts": "eyJ" * (N // 3),
    "base64": "Ab1+" * (N // 4),
    "path": "/a" * (N // 2),
    "open quotes": '"password": "' * (N // 13),
    "iban starts": "DE89 " * (N // 5),
    "accounts": "account 1" * (N // 9),
    "fix": "35=D|1=" * (N // 7),
    "schemes and tokens": "Bearer " * (N // 7),
    "markup": "<password>" * (N // 10),
    "flags": "--password " * (N // 11),
}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_pathological_text_is_masked_in_bounded_time(name):
    started = time.monotonic()
    masked = Masker().mask_text(ADVERSARIAL[name])
    # Linear work takes well under a second here; a quadratic pass would take minutes.
    assert time.monotonic() - started < 10
    assert isinstance(masked, str)


def test_text_past_the_bound_is_cut_and_marked():
    text = "password=hunter2 " + "x" * (MAX_TEXT + 5000)
    masked = Masker().mask_text(text)
    assert masked.startswith("password=[REDACTED] ")
    assert masked.endswith(f"…[TRUNCATED {len(text) - MAX_TEXT} characters]")
    assert len(masked) < MAX_TEXT + 100


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class BrokenMapping(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("cannot iterate")

    def __len__(self) -> int:
        return 1


def test_values_that_cannot_be_read_are_replaced_not_raised():
    masker = Masker()
    assert masker.mask_value(Unprintable()) == UNMASKABLE
    assert masker.mask_value(BrokenMapping()) == UNMASKABLE
    assert masker.mask_value({"ok": 1, "bad": Unprintable()}) == UNMASKABLE
    assert masker.mask_key(Unprintable()) == UNMASKABLE
    assert masker.mask_field("x", Unprintable()) == ("x", UNMASKABLE)


def test_cycles_depth_and_size_are_bounded():
    masker = Masker()
    cycle: list[Any] = ["password=hunter2", 7]
    cycle.append(cycle)
    masked = json.dumps(masker.mask_value(cycle))
    assert "hunter2" not in masked and "[TRUNCATED]" in masked
    deep: Any = "token=abc123"
    for _ in range(5000):
        deep = {"next": deep}
    masked = json.dumps(masker.mask_value(deep))
    assert "abc123" not in masked and masked.count("next") == MAX_DEPTH
    big = list(range(MAX_ITEMS * 3))
    assert masker.mask_value(big)[-1] == "[TRUNCATED]"
    assert len(masker.mask_value(big)) == MAX_ITEMS + 1


class Side(enum.Enum):
    BUY = "buy"


class Qty(enum.IntEnum):
    LOT = 100


def test_every_kind_of_value_comes_out_ready_for_json():
    masker = Masker()
    moment = datetime.datetime(2024, 6, 11, 14, 30, tzinfo=datetime.UTC)
    ident = uuid.UUID(int=7)
    value = {
        "when": moment,
        "id": ident,
        "side": Side.BUY,
        "lot": Qty.LOT,
        "raw": b"\xff\xfepassword=hunter2",
        "view": memoryview(b"token: abc123def"),
        "deque": collections.deque(["api_key=k-1"]),
        "set": frozenset({"secret=s3"}),
        "price": 187.25,
        "flag": True,
        "none": None,
        "ts_ns": 1718000000123456789,
        "order_id": 4532015112830366,  # an id by its key, though it passes Luhn in a Visa range
        "note": 4532015112830366,
    }
    masked = masker.mask_value(value)
    assert masked["when"] is moment and masked["id"] is ident
    assert masked["side"] == "buy" and masked["lot"] == 100 and masked["price"] == 187.25
    assert masked["raw"] == "\\xff\\xfepassword=[REDACTED]"
    assert masked["view"] == "token: [REDACTED]"
    assert masked["deque"] == ["api_key=[REDACTED]"]
    assert masked["set"] == ["secret=[REDACTED]"]
    assert masked["ts_ns"] == 1718000000123456789
    assert masked["order_id"] == 4532015112830366
    assert masked["note"] == "[REDACTED:card:0366]"
    orjson.dumps(masked)  # what the writer does, without default=str: nothing left to stringify


def test_a_record_with_unreadable_and_secret_extras_still_ships(ecs_lines):
    log = logging.getLogger("tests.masking.bounds")
    log.info(
        "order %s filled",
        "o-1",
        extra={
            "broken": Unprintable(),
            "order_id": 4532015112830366,
            "card_on_file": 4532015112830366,
            "ghp_" + "a1B2" * 9: "key named after a token",
        },
    )
    (document,) = ecs_lines()
    assert document["message"] == "order o-1 filled"
    assert document["broken"] == UNMASKABLE
    assert document["order_id"] == 4532015112830366
    assert document["card_on_file"] == "[REDACTED:card:0366]"
    assert "a1B2a1B2" not in json.dumps(document)
