"""Turning a request body into validated events, all or nothing, with errors that name the field.

Batch semantics: a batch is validated whole before anything is applied; one bad event rejects the
batch (4xx, nothing applied). Events whose id was already applied are skipped (idempotent replay,
within the window `SeenIds` describes).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
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
    """Ids of applied events, for spotting replays, bounded in count and in age.

    Guarantee: a replayed id is recognised if it arrives less than `max_age` seconds after the
    original was applied AND fewer than `capacity` other ids were applied in between. As new ids
    arrive, older ones are forgotten within 1/8 past either bound: memory stays under 1.25 x
    `capacity` ids.

    Ids are kept as 16-byte BLAKE2b digests (a 128-character id would cost ten times more) in
    generations of at most capacity/8 ids or max_age/8 seconds; a whole generation is dropped
    once newer ones hold `capacity` ids or it closed more than `max_age` ago. Nothing in the
    standard library or the locked dependencies bounds a set by both count and age.
    """

    _SLICES = 8

    def __init__(self, capacity: int, max_age: float, clock: Callable[[], float] = time.monotonic):
        self.capacity = capacity
        self.max_age = max_age
        self._clock = clock
        self._per_generation = max(1, capacity // self._SLICES)
        # Oldest first: (digests, time the generation closed; the open one is last, closed=inf).
        self._generations: deque[tuple[set[bytes], float]] = deque([(set(), math.inf)])
        self._opened = clock()

    @staticmethod
    def digest(event_id: str) -> bytes:
        return hashlib.blake2b(event_id.encode(), digest_size=16).digest()

    def __contains__(self, digest: bytes) -> bool:
        return any(digest in ids for ids, _ in self._generations)

    def __len__(self) -> int:
        return sum(len(ids) for ids, _ in self._generations)

    def add_all(self, digests: Iterable[bytes]) -> None:
        for digest in digests:
            current, _ = self._generations[-1]
            now = self._clock()
            if len(current) >= self._per_generation or now - self._opened >= (
                self.max_age / self._SLICES
            ):
                self._generations[-1] = (current, now)
                self._generations.append((set(), math.inf))
                self._opened = now
                self._forget(now)
            self._generations[-1][0].add(digest)

    def _forget(self, now: float) -> None:
        newer = 0
        for index in range(len(self._generations) - 1, -1, -1):
            ids, closed = self._generations[index]
            if newer >= self.capacity or closed < now - self.max_age:
                for _ in range(index + 1):
                    self._generations.popleft()
                return
            newer += len(ids)
