"""A batch applied all or nothing: state changes with their undo, metric updates held to the end.

The state's handlers change their dicts through the journal (`put`, `pop`, `undo` for anything
else) and queue metric updates with `later`. If any event of the batch is refused (`Rejected`,
e.g. a derived figure would not be finite) or fails, `rollback` restores the state and the queued
updates are dropped; otherwise `commit` runs them. Metric updates are plain increments and sets of
values the handlers already checked, so they do not fail half-way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, MutableMapping
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")
_ABSENT: Any = object()


class Rejected(Exception):
    """An event the state refuses: the field to name and why (a 422 for the whole batch)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Journal:
    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []
        self._effects: list[tuple[Callable[..., object], tuple[Any, ...], dict[str, Any]]] = []

    def put(self, mapping: MutableMapping[K, V], key: K, value: V) -> None:
        previous = mapping.get(key, _ABSENT)
        mapping[key] = value
        self._undo.append(functools.partial(_restore, mapping, key, previous))

    def pop(self, mapping: MutableMapping[K, V], key: K) -> V:
        value = mapping.pop(key)
        self._undo.append(functools.partial(_restore, mapping, key, value))
        return value

    def undo(self, action: Callable[[], None]) -> None:
        """Register how to revert a change made outside `put`/`pop`."""
        self._undo.append(action)

    def later(self, effect: Callable[..., object], /, *args: Any, **kwargs: Any) -> None:
        """Run `effect(*args, **kwargs)` at commit (metric updates)."""
        self._effects.append((effect, args, kwargs))

    def commit(self) -> None:
        for effect, args, kwargs in self._effects:
            effect(*args, **kwargs)
        self._undo.clear()
        self._effects.clear()

    def rollback(self) -> None:
        for action in reversed(self._undo):
            action()
        self._undo.clear()
        self._effects.clear()


def _restore(mapping: MutableMapping[Any, Any], key: Any, previous: Any) -> None:
    if previous is _ABSENT:
        mapping.pop(key, None)
    else:
        mapping[key] = previous
