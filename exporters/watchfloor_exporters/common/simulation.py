"""Running a simulator: post its batches to the exporter's own ingest route over HTTP.

Going through HTTP with the bearer token (rather than calling the state directly) means the
simulated stream takes exactly the path real clients take: auth, body cap, validation, dedup.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

log = logging.getLogger(__name__)

Step = Callable[[datetime, float], dict[str, list[dict[str, Any]]]]


async def post_forever(
    *, base_url: str, token: str, step: Step, interval: float = 0.25, max_events: int = 5000
) -> None:
    """Every `interval`, post what `step` produced ({route path: events}) to those routes."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=10) as client:
        last = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            batches = step(datetime.now(UTC), now - last)
            last = now
            for path, events in batches.items():
                for start in range(0, len(events), max_events):
                    await _post(
                        client, base_url + path, events[start : start + max_events], headers
                    )


async def _post(
    client: httpx.AsyncClient, url: str, events: list[dict[str, Any]], headers: dict[str, str]
) -> None:
    if not events:
        return
    try:
        response = await client.post(url, json=events, headers=headers)
    except httpx.TransportError:
        return  # the server is still starting, or stopping
    if response.status_code != 200:
        log.error(
            "simulated batch refused",
            extra={"status": response.status_code, "body": response.text[:500]},
        )
