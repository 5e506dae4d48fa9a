"""In-process exporter apps over ASGI: the same routes, validation and state as in production."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from watchfloor_exporters.pipeline.app import build as build_pipeline
from watchfloor_exporters.trading.app import build as build_trading

TOKEN = "unit-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
_ids = itertools.count()


def event(kind: str, at: datetime | None = None, **fields: Any) -> dict[str, Any]:
    """An event with a fresh id and a timestamp (now unless given)."""
    return {
        "type": kind,
        "id": f"e-{next(_ids)}",
        "timestamp": (at or datetime.now(UTC)).isoformat(),
        **fields,
    }


def later(seconds: float, base: datetime | None = None) -> datetime:
    return (base or datetime.now(UTC)) + timedelta(seconds=seconds)


@pytest.fixture
async def trading() -> AsyncIterator[httpx.AsyncClient]:
    app = build_trading(TOKEN, False, 0, None)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
        yield client


@pytest.fixture
async def pipeline() -> AsyncIterator[httpx.AsyncClient]:
    app = build_pipeline(TOKEN, False, 0, None)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
        yield client


Post = Callable[..., Any]
