"""Turning a request body into validated events, all or nothing, with errors that name the field.

Batch semantics: a batch is validated whole before anything is applied; one bad event rejects the
batch (4xx, nothing applied). Events whose id was already applied are skipped (idempotent replay).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

E = TypeVar("E", bound=BaseModel)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_EVENTS = 5000
_MAX_REPORTED_ERRORS = 20


class BatchError(Exception):
    """A rejected batch: HTTP status, a sentence, and per-field errors."""

    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "errors": self.errors}


def limit_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return int(raw)


def parse_body(body: bytes, content_type: str | None) -> list[Any]:
    """A JSON array of events, or NDJSON (one event per line)."""
    stripped = body.strip()
    if not stripped:
        raise BatchError(422, "empty body: send a JSON array of events or NDJSON, one per line")
    if stripped.startswith(b"[") and "ndjson" not in (content_type or ""):
        try:
            items = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            raise BatchError(400, f"body is not valid JSON: {exc}") from None
        if not isinstance(items, list):
            raise BatchError(422, "expected a JSON array of events")
        return items
    items = []
    for number, line in enumerate(stripped.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            items.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise BatchError(400, f"NDJSON line {number} is not valid JSON: {exc}") from None
    return items


def _field(location: tuple[int | str, ...]) -> str:
    path = "events"
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


class BatchValidator(Generic[E]):
    """Validates a list of raw events against a (discriminated union) event type."""

    def __init__(self, event_type: Any, max_events: int) -> None:
        self._adapter: TypeAdapter[list[E]] = TypeAdapter(list[event_type])
        self.max_events = max_events

    def validate(self, items: list[Any]) -> list[E]:
        if len(items) > self.max_events:
            raise BatchError(
                413, f"batch has {len(items)} events; at most {self.max_events} per request"
            )
        try:
            return self._adapter.validate_python(items)
        except ValidationError as exc:
            errors = []
            for error in exc.errors()[:_MAX_REPORTED_ERRORS]:
                location = tuple(error["loc"])
                if error["type"] in {"union_tag_invalid", "union_tag_not_found"}:
                    location = (*location, "type")
                # Drop pydantic's union-member segment (e.g. 'order_filled') from the path.
                location = tuple(
                    part for part in location if not (isinstance(part, str) and part in _TAGS)
                )
                errors.append({"field": _field(location), "message": error["msg"]})
            raise BatchError(
                422,
                f"{exc.error_count()} invalid field(s); nothing from this batch was applied",
                errors,
            ) from None


_TAGS: set[str] = set()


def register_tags(tags: Iterable[str]) -> None:
    """Event type names, so error paths read events[3].quantity, not events[3].order_filled..."""
    _TAGS.update(tags)


class SeenIds:
    """The ids of the most recent `capacity` applied events (oldest forgotten first)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)


class LabelBudget:
    """Caps distinct values per label, refusing a batch that would exceed it (4xx, not folding)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: dict[str, set[str]] = {}

    def check(self, values: Iterable[tuple[str, str, str]]) -> None:
        """(label, value, field path) triples of one batch; raises before anything is admitted."""
        pending: dict[str, set[str]] = {}
        for label, value, field in values:
            seen = self._seen.get(label, set())
            if value in seen or value in pending.get(label, set()):
                continue
            new = pending.setdefault(label, set())
            if len(seen) + len(new) >= self.limit:
                raise BatchError(
                    422,
                    "label cardinality cap reached; nothing from this batch was applied",
                    [
                        {
                            "field": field,
                            "message": f"{label} {value!r} would be distinct value "
                            f"{self.limit + 1}; the cap is {self.limit} (WATCHFLOOR_LABEL_"
                            "CARDINALITY_LIMIT)",
                        }
                    ],
                )
            new.add(value)
        for label, new in pending.items():
            self._seen.setdefault(label, set()).update(new)
