"""The correlation id: one id per business operation, carried across threads, tasks and services.

It lives in a context variable, so it follows asyncio tasks and ``contextvars.copy_context()``
without being passed around. Logs carry it as ``correlation.id`` (ECS has no field for it;
see docs/fields.md), spans as the ``correlation.id`` attribute, HTTP as ``X-Correlation-ID``.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar, Token
from types import TracebackType

HEADER = "X-Correlation-ID"
LOG_FIELD = "correlation.id"
SPAN_ATTRIBUTE = "correlation.id"

_current: ContextVar[str | None] = ContextVar("watchfloor_correlation_id", default=None)


def new_correlation_id() -> str:
    """A fresh id: a UUID4 in hex, the shape other services are expected to send."""
    return uuid.uuid4().hex


def get_correlation_id() -> str | None:
    """The correlation id of the current context, or None outside any scope."""
    return _current.get()


class correlation_scope:
    """Run a block under a correlation id (a new one when none is given).

    Works as ``with`` and ``async with``; scopes nest and restore the outer id on exit.
    """

    __slots__ = ("_token", "correlation_id")

    def __init__(self, correlation_id: str | None = None) -> None:
        self.correlation_id = correlation_id or new_correlation_id()
        self._token: Token[str | None] | None = None

    def __enter__(self) -> str:
        self._token = _current.set(self.correlation_id)
        return self.correlation_id

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None

    async def __aenter__(self) -> str:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
