"""`traced`: one name for spans as decorator and context manager, sync and async."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from opentelemetry import trace
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

import watchfloor
from watchfloor.correlation import SPAN_ATTRIBUTE, get_correlation_id

P = ParamSpec("P")
R = TypeVar("R")

# A proxy until a provider is installed, then the real tracer: safe to create at import time.
TRACER = trace.get_tracer("watchfloor", watchfloor.__version__)


def start_span(name: str, attributes: dict[str, AttributeValue]) -> AbstractContextManager[Span]:
    """A current span with the correlation id; exceptions are recorded and set ERROR status.

    OpenTelemetry's own context manager, returned as is: wrapping it in a generator of ours would
    add a second generator frame to every span. The correlation id is also set by
    configure_tracing's span processor; it is set here too so that watchfloor's spans carry it
    under a provider that watchfloor did not install.
    """
    correlation_id = get_correlation_id()
    if correlation_id is not None:
        attributes = {**attributes, SPAN_ATTRIBUTE: correlation_id}
    return TRACER.start_as_current_span(name, attributes=attributes)


class traced:
    """A span around a block or a function.

        @traced("strategy.evaluate", strategy="momo")
        async def evaluate(...): ...

        with traced("risk.check", rule="max_position") as span:
            span.set_attribute("risk.utilisation", 0.8)

    Decorating an `async def` spans the awaited body, not the creation of the coroutine.
    One instance used as a context manager is for one thread at a time; as a decorator it is
    shared freely.
    """

    def __init__(self, name: str, **attributes: AttributeValue) -> None:
        self.name = name
        self.attributes = attributes
        self._active: list[Any] = []

    def __call__(self, function: Callable[P, R]) -> Callable[P, R]:
        name, attributes = self.name, self.attributes
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                with start_span(name, attributes):
                    return await function(*args, **kwargs)

            return cast(Callable[P, R], run_async)

        @functools.wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with start_span(name, attributes):
                return function(*args, **kwargs)

        return run

    def __enter__(self) -> Span:
        manager = start_span(self.name, self.attributes)
        span = manager.__enter__()
        self._active.append(manager)
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._active.pop().__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
