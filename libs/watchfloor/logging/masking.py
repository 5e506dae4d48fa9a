"""Masking of secrets and personal data before a log event leaves the process.

Applied on the background writer thread to the message and to every string inside extra fields.
Candidates for card numbers and IBANs are confirmed by their checksums (Luhn, ISO 7064 mod 97)
so that order ids and prices that merely look numeric survive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"
_CACHE_ENTRIES = 8192
_SCALARS = frozenset({int, float, bool, type(None)})
_SHORT_TEXT = 64

DEFAULT_SENSITIVE_KEYS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "api_key",
        "apikey",
        "api_secret",
        "access_key",
        "secret_key",
        "private_key",
        "authorization",
        "auth",
        "cookie",
        "set_cookie",
        "session",
        "credentials",
        "card_number",
        "pan",
        "cvv",
        "cvc",
        "iban",
        "account_number",
        "bank_account",
    }
)

_KEY_WORDS = (
    r"password|passwd|pwd|secret|client[_-]?secret|token|access[_-]?token|api[_-]?key|apikey"
    r"|access[_-]?key|secret[_-]?key|private[_-]?key|authorization"
)

# Ordered: the more specific shapes first, so a JWT inside "Bearer ..." is reported as bearer.
_DEFAULT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("bearer", r"(?i:\bbearer)\s+[A-Za-z0-9\-._~+/]+=*"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    (
        "kv",
        rf"(?P<kv_key>\b(?i:{_KEY_WORDS})\b[\"']?\s*[:=]\s*)"
        r"(?P<kv_val>\"[^\"]*\"|'[^']*'|(?:(?i:bearer|basic|digest|token)\s+)?[^\s,;&]+)",
    ),
    ("aws_key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b"),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("stripe_key", r"\b[rsp]k_(?:live|test)_[A-Za-z0-9]{16,}\b"),
    ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    ("iban", r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"),
    ("card", r"\b\d(?:[ -]?\d){12,18}\b"),
    (
        "account",
        r"(?P<acct_key>\b(?i:account|acct|a/c)(?i:[ _-]?(?:no\.?|number|num|#))?\s*[:#=]?\s*)"
        r"(?P<acct_val>\d[\d-]{5,}\d)",
    ),
)


def luhn_valid(digits: str) -> bool:
    """True when a string of digits passes the Luhn checksum used by payment cards."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """True when a string is an IBAN by ISO 13616 (length bounds and mod-97 check)."""
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


class Masker:
    """Redacts by key name (whole value) and by value shape (the matching part only)."""

    def __init__(self, extra_keys: Iterable[str] = (), extra_patterns: Iterable[str] = ()) -> None:
        self._keys = DEFAULT_SENSITIVE_KEYS | {_normalise_key(k) for k in extra_keys}
        parts = [f"(?P<{name}>{pattern})" for name, pattern in _DEFAULT_PATTERNS]
        for index, pattern in enumerate(extra_patterns):
            re.compile(pattern)  # a bad user pattern fails at configuration, naming itself
            parts.append(f"(?P<custom{index}>{pattern})")
        self._regex = re.compile("|".join(parts))
        # Field names and short values (symbols, venues, templates) repeat endlessly in logs;
        # remembering their verdicts turns the regex scan into a dict lookup on the hot path.
        self._key_verdicts: dict[str, bool] = {}
        self._short_texts: dict[str, str] = {}

    def is_sensitive_key(self, key: str) -> bool:
        verdict = self._key_verdicts.get(key)
        if verdict is None:
            normalised = _normalise_key(key)
            # "x_api_key", "db.password": judge the last word of a compound key.
            tail = normalised.rsplit(".", 1)[-1]
            verdict = (
                normalised in self._keys
                or tail in self._keys
                or any(tail.endswith("_" + k) for k in self._keys)
            )
            if len(self._key_verdicts) >= _CACHE_ENTRIES:
                self._key_verdicts.clear()
            self._key_verdicts[key] = verdict
        return verdict

    def mask_text(self, text: str) -> str:
        if len(text) > _SHORT_TEXT:
            return self._regex.sub(self._replace, text)
        masked = self._short_texts.get(text)
        if masked is None:
            masked = self._regex.sub(self._replace, text)
            if len(self._short_texts) >= _CACHE_ENTRIES:
                self._short_texts.clear()
            self._short_texts[text] = masked
        return masked

    def mask_value(self, value: Any) -> Any:
        """Mask a JSON-like value: strings by shape, mappings also by key, recursively."""
        kind = type(value)
        if kind is str:
            return self.mask_text(value)
        if kind in _SCALARS:
            return value
        if isinstance(value, str):
            return self.mask_text(value)
        if isinstance(value, Mapping):
            return {
                key: REDACTED
                if isinstance(key, str) and self.is_sensitive_key(key)
                else self.mask_value(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self.mask_value(item) for item in value]
        return value

    @staticmethod
    def _replace(match: re.Match[str]) -> str:
        kind = match.lastgroup or ""
        text = match.group(0)
        if kind == "card":
            digits = text.replace(" ", "").replace("-", "")
            if not (13 <= len(digits) <= 19 and luhn_valid(digits)):
                return text
            return f"[REDACTED:card:{digits[-4:]}]"
        if kind == "iban":
            return "[REDACTED:iban]" if iban_valid(text) else text
        if kind == "kv":
            return f"{match.group('kv_key')}{REDACTED}"
        if kind == "account":
            return f"{match.group('acct_key')}{REDACTED}"
        if kind == "bearer":
            return f"Bearer {REDACTED}"
        if kind.startswith("custom"):
            return REDACTED
        return f"[REDACTED:{kind}]"


def _normalise_key(key: str) -> str:
    return key.strip().lower().replace("-", "_")
