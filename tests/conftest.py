"""Suite-wide fixtures: every test leaves the process's logging pipeline as it found it."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from watchfloor.logging import configure_logging, shutdown_logging


@pytest.fixture
def ecs_lines() -> Iterator[Callable[..., list[dict[str, Any]]]]:
    """Configure logging to an in-memory stream; the returned function flushes and parses it.

    Call it as `docs = ecs_lines()` after logging; pass `configure=False` to read without
    shutting down, or use `ecs_lines.configure(**kwargs)` semantics via `configure_logging` first.
    """
    stream = io.StringIO()
    configure_logging("unit-test", environment="test", stream=stream, level="DEBUG")

    def read() -> list[dict[str, Any]]:
        shutdown_logging(timeout=5)
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield read
    shutdown_logging(timeout=5)
