"""Masking of secrets and personal data before a log event leaves the process.

Applied on the background writer thread to the message, the exception text and every value of the
extra fields: strings by what they contain, mappings (and header lists, dataclasses, named tuples)
also by their key names, and dict keys, bytes, ints, exceptions and other objects by their text.
Logs are kept for seven years, so masking fails closed: input it cannot handle is replaced, never
passed through, and it never raises into the writer.

The detectors live in masking_detectors; this module decides which of them a value needs (each
behind a check that costs a substring search) and bounds the work per value.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import re
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from watchfloor.logging.masking_detectors import (
    KEY_TRIGGER,
    NOT_SENSITIVE,
    REDACTED,
    Span,
    classify_key,
    find_accounts,
    find_bare_credentials,
    find_cards,
    find_fix_fields,
    find_flags_and_markup,
    find_ibans,
    find_key_values,
    find_private_keys,
    find_scheme_credentials,
    find_tokens,
    find_urls,
    iban_valid,
    is_card_number,
    is_id_key,
    luhn_valid,
)

__all__ = ["REDACTED", "Masker", "iban_valid", "luhn_valid"]

_CACHE_ENTRIES = 8192
_SCALARS = frozenset({float, bool, type(None)})
_SHORT_TEXT = 64
# Past these bounds a value is cut, and the cut marked: a pathological record costs the writer
# milliseconds, not seconds (about 0.1 µs per character when nothing matches).
MAX_TEXT = 256 * 1024
MAX_ITEMS = 10_000
MAX_DEPTH = 32
MAX_NODES = 100_000
# 13 digits: the shortest card number; smaller ints are never cards.
_SMALLEST_CARD = 10**12
# orjson writes these natively and they cannot hold a secret by their shape.
_PASS_THROUGH = (datetime.datetime, datetime.date, datetime.time, uuid.UUID)
UNMASKABLE = "[REDACTED:unmaskable]"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class _Budget:
    __slots__ = ("nodes",)

    def __init__(self) -> None:
        self.nodes = MAX_NODES


class Masker:
    """Redacts by key name (whole value) and by value shape (the matching part only)."""

    def __init__(self, extra_keys: Iterable[str] = (), extra_patterns: Iterable[str] = ()) -> None:
        self._extra_keys = frozenset(_normalise_key(k) for k in extra_keys)
        parts = []
        for pattern in extra_patterns:
            re.compile(pattern)  # a bad user pattern fails at configuration, naming itself
            parts.append(f"(?:{pattern})")
        self._custom = re.compile("|".join(parts)) if parts else None
        # Field names and short values (symbols, venues, templates) repeat endlessly in logs;
        # remembering their verdicts turns the scan into a dict lookup on the hot path.
        self._key_classes: dict[str, int] = {}
        self._id_keys: dict[str, bool] = {}
        self._short_texts: dict[str, str] = {}

    # --- keys ------------------------------------------------------------------------------------

    def key_class(self, key: str) -> int:
        """0 when the key names nothing secret, else how much of its value to mask."""
        verdict = self._key_classes.get(key)
        if verdict is None:
            verdict = classify_key(key)
            if not verdict and self._extra_keys:
                normalised = _normalise_key(key)
                if any(
                    normalised == k or normalised.endswith(("_" + k, "." + k))
                    for k in self._extra_keys
                ):
                    verdict = 1
            if len(self._key_classes) >= _CACHE_ENTRIES:
                self._key_classes.clear()
            self._key_classes[key] = verdict
        return verdict

    def _id_key(self, key: str) -> bool:
        verdict = self._id_keys.get(key)
        if verdict is None:
            verdict = is_id_key(key)
            if len(self._id_keys) >= _CACHE_ENTRIES:
                self._id_keys.clear()
            self._id_keys[key] = verdict
        return verdict

    def is_sensitive_key(self, key: str) -> bool:
        return self.key_class(key) != NOT_SENSITIVE

    # --- text ------------------------------------------------------------------------------------

    def mask_text(self, text: str) -> str:
        """The text with every secret replaced; never raises."""
        try:
            if len(text) > _SHORT_TEXT:
                return self._mask(text)
            masked = self._short_texts.get(text)
            if masked is None:
                masked = self._mask(text)
                if len(self._short_texts) >= _CACHE_ENTRIES:
                    self._short_texts.clear()
                self._short_texts[text] = masked
            return masked
        except Exception:
            return UNMASKABLE

    def _mask(self, text: str) -> str:
        if type(text) is not str:
            text = str.__str__(text)
        suffix = ""
        if len(text) > MAX_TEXT:
            suffix = f"…[TRUNCATED {len(text) - MAX_TEXT} characters]"
            text = text[:MAX_TEXT]
        spans = self._spans(text)
        return (_replace(text, spans) if spans else text) + suffix

    def _spans(self, text: str) -> list[Span]:
        spans: list[Span] = []
        low = text.lower()
        if len(low) != len(text):  # a few non-ASCII letters lower-case to two characters
            low = text.translate(_ASCII_LOWER)
        if KEY_TRIGGER.search(low) is not None:
            find_key_values(text, low, self.key_class, spans)
        if "35=" in text or "8=FIX" in text:
            find_fix_fields(text, spans)
        if "acc" in low or "a/c" in low:
            find_accounts(low, spans)
        if "--" in text or "</" in text or "identified" in low or "password " in low:
            find_flags_and_markup(text, low, self.key_class, spans)
        if "://" in text:
            find_urls(text, self.key_class, spans)
        if "@" in text and (":" in text or "/" in text):
            find_bare_credentials(text, low, spans)
        if "PRIVATE KEY" in text or "PuTTY-User-Key-File" in text:
            find_private_keys(text, spans)
        find_scheme_credentials(text, low, spans)
        # The shortest vendor token is 16 characters, a card 13 digits, an IBAN 15 upper-case
        # letters and digits: short ids and words skip these scans.
        length = len(text)
        if length >= 16:
            find_tokens(text, spans)
        if length >= 13:
            find_cards(text, spans)
        if length >= 15 and low != text:
            find_ibans(text, spans)
        if self._custom is not None:
            for match in self._custom.finditer(text):
                if match.end() > match.start():
                    spans.append((match.start(), match.end(), REDACTED))
        return spans

    # --- values ----------------------------------------------------------------------------------

    def mask_key(self, key: Any) -> Any:
        """A dict key as it may be written: masked text, a card number int masked."""
        try:
            return self._mask_key(key)
        except Exception:
            return UNMASKABLE

    def _mask_key(self, key: Any) -> Any:
        kind = type(key)
        if kind is str:
            return self.mask_text(key)
        if kind is int:
            return self._mask_int(key)
        if kind in _SCALARS or isinstance(key, _PASS_THROUGH):
            return key
        if isinstance(key, bytes | bytearray):
            return self.mask_text(bytes(key[:MAX_TEXT]).decode("utf-8", "backslashreplace"))
        return self.mask_text(str(key))

    def mask_value(self, value: Any) -> Any:
        """A JSON-ready copy of `value` with every secret masked; never raises."""
        kind = type(value)
        if kind is str:
            return self.mask_text(value)
        if kind is int:
            return value if -_SMALLEST_CARD < value < _SMALLEST_CARD else self._mask_int(value)
        if kind in _SCALARS:
            return value
        try:
            return self._walk(value, 0, _Budget())
        except Exception:
            return UNMASKABLE

    def _mask_int(self, value: int) -> Any:
        digits = str(abs(value))
        return f"[REDACTED:card:{digits[-4:]}]" if is_card_number(digits) else value

    def _walk(self, value: Any, depth: int, budget: _Budget) -> Any:
        budget.nodes -= 1
        kind = type(value)
        if kind is str:
            return self.mask_text(value)
        if kind is int:
            return value if -_SMALLEST_CARD < value < _SMALLEST_CARD else self._mask_int(value)
        if kind in _SCALARS or isinstance(value, _PASS_THROUGH):
            return value
        if isinstance(value, str):
            return self.mask_text(str.__str__(value))
        if isinstance(value, int):  # IntEnum, IntFlag and other int subclasses
            number = int(value)
            return number if -_SMALLEST_CARD < number < _SMALLEST_CARD else self._mask_int(number)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, bytes | bytearray | memoryview):
            return self.mask_text(bytes(value[:MAX_TEXT]).decode("utf-8", "backslashreplace"))
        if depth >= MAX_DEPTH or budget.nodes <= 0:
            return "[TRUNCATED]"
        if isinstance(value, Mapping):
            return self._mapping(value.items(), depth, budget)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = dataclasses.fields(value)
            return self._mapping(((f.name, getattr(value, f.name)) for f in fields), depth, budget)
        if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
            return self._mapping(zip(value._fields, value, strict=False), depth, budget)
        if isinstance(value, list | tuple | set | frozenset | deque):
            return self._sequence(value, depth, budget)
        if isinstance(value, BaseException):
            return self.mask_text(f"{type(value).__qualname__}: {value}")
        if isinstance(value, enum.Enum):
            return self._walk(value.value, depth + 1, budget)
        return self.mask_text(str(value))

    def mask_field(self, key: Any, value: Any) -> tuple[Any, Any]:
        """One field of a record: its key masked as text, its value by key name and shape."""
        try:
            return self._field(key, value, 0, None)
        except Exception:
            return UNMASKABLE, UNMASKABLE

    def _field(self, key: Any, value: Any, depth: int, budget: _Budget | None) -> tuple[Any, Any]:
        name = key if type(key) is str else _key_text(key)
        masked_key = self._mask_key(key)
        if name is not None and self.key_class(name):
            return masked_key, REDACTED
        kind = type(value)
        if kind is str:
            return masked_key, self.mask_text(value)
        if kind is int:
            if -_SMALLEST_CARD < value < _SMALLEST_CARD or (
                name is not None and self._id_key(name)
            ):
                return masked_key, value  # order_id, ts_ns: an id or a time, not a card
            return masked_key, self._mask_int(value)
        if kind in _SCALARS:
            return masked_key, value
        if budget is None:
            return masked_key, self.mask_value(value)
        return masked_key, self._walk(value, depth + 1, budget)

    def _mapping(self, items: Iterable[tuple[Any, Any]], depth: int, budget: _Budget) -> Any:
        masked: dict[Any, Any] = {}
        for count, (key, item) in enumerate(items):
            if count >= MAX_ITEMS or budget.nodes <= 0:
                masked["[TRUNCATED]"] = "items omitted"
                break
            masked_key, masked_item = self._field(key, item, depth, budget)
            masked[masked_key] = masked_item
        return masked

    def _sequence(self, items: Iterable[Any], depth: int, budget: _Budget) -> list[Any]:
        masked: list[Any] = []
        for count, item in enumerate(items):
            if count >= MAX_ITEMS or budget.nodes <= 0:
                masked.append("[TRUNCATED]")
                break
            # A header list: [("Authorization", "Bearer …"), (b"cookie", b"…")].
            if type(item) in (tuple, list) and len(item) == 2:
                name = _key_text(item[0])
                if name is not None and self.key_class(name):
                    masked.append([self._mask_key(item[0]), REDACTED])
                    continue
            masked.append(self._walk(item, depth + 1, budget))
        return masked


def _key_text(key: Any) -> str | None:
    if isinstance(key, str):
        return key
    if isinstance(key, bytes | bytearray) and len(key) <= 256:
        return bytes(key).decode("utf-8", "replace")
    return None


def _replace(text: str, spans: list[Span]) -> str:
    """Replace the spans, overlapping ones merged (their union is masked)."""
    spans.sort()
    pieces = []
    position = 0
    start, end, label = spans[0]
    for next_start, next_end, next_label in spans[1:]:
        if next_start < end:
            if next_end > end:
                end = next_end
                label = next_label if next_start == start else REDACTED
            continue
        pieces.append(text[position:start])
        pieces.append(label)
        position = end
        start, end, label = next_start, next_end, next_label
    pieces.append(text[position:start])
    pieces.append(label)
    pieces.append(text[end:])
    return "".join(pieces)


def _normalise_key(key: str) -> str:
    return key.strip().lower().replace("-", "_")
