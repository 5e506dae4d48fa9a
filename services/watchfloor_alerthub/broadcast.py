"""Pushing changes to every open page, with latency and memory bounded whatever the pages do.

A message is encoded once and shared by every client's queue. A client whose queue would pass
QUEUE_MESSAGES drops it and is marked for a snapshot: nothing is built then, and the snapshot it
later gets is read part by part from the shared view (view.py), so a client that stops reading
holds one part at most. Each send waits for the transport to drain (uvicorn's flow control) and a
client that takes nothing for SEND_TIMEOUT_SECONDS is closed: its page reconnects.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from prometheus_client import Counter, Gauge

from watchfloor_alerthub.limits import QUEUE_MESSAGES, SEND_TIMEOUT_SECONDS
from watchfloor_alerthub.view import AlertView

CLIENTS = Gauge("watchfloor_alerthub_websocket_clients", "Open, authenticated WebSocket clients.")
RESYNCS = Counter(
    "watchfloor_alerthub_websocket_resyncs_total",
    "Times a slow client's backlog was dropped and replaced by a snapshot.",
)


class Client:
    __slots__ = ("pending", "resync", "wake")

    def __init__(self) -> None:
        self.pending: deque[str] = deque()
        self.resync = True  # a snapshot is due; changes until it starts are in it
        self.wake = asyncio.Event()
        self.wake.set()


class Broadcaster:
    def __init__(self, view: AlertView, watchdog: Callable[[], str], max_clients: int) -> None:
        self._view, self._watchdog, self.max_clients = view, watchdog, max_clients
        self._clients: set[Client] = set()

    def connect(self) -> Client | None:
        """A new client, due a snapshot; None when max_clients are connected."""
        if len(self._clients) >= self.max_clients:
            return None
        client = Client()
        self._clients.add(client)
        CLIENTS.set(len(self._clients))
        return client

    def disconnect(self, client: Client) -> None:
        self._clients.discard(client)
        CLIENTS.set(len(self._clients))

    def publish(self, messages: Sequence[str]) -> None:
        """Queue encoded messages for every client."""
        for client in self._clients:
            if client.resync:
                continue
            if len(client.pending) + len(messages) > QUEUE_MESSAGES:
                self._resync(client)
            else:
                client.pending.extend(messages)
                client.wake.set()

    def resync_all(self) -> None:
        """Changes too many to queue: every client gets a snapshot instead (O(clients))."""
        for client in self._clients:
            if not client.resync:
                self._resync(client)

    @staticmethod
    def _resync(client: Client) -> None:
        client.pending.clear()
        client.resync = True
        client.wake.set()
        RESYNCS.inc()

    async def pump(self, client: Client, send: Callable[[str], Awaitable[None]]) -> None:
        """Send `client` a snapshot, then the changes, then a snapshot again whenever it fell
        behind; returns never, raises what `send` raises or TimeoutError."""
        while True:
            await client.wake.wait()
            client.wake.clear()
            if client.resync:
                client.resync = False
                if not await self._send_snapshot(client, send):
                    continue
            while client.pending and not client.resync:
                await _timed(send, client.pending.popleft())
            if client.resync:
                client.wake.set()

    async def _send_snapshot(self, client: Client, send: Callable[[str], Awaitable[None]]) -> bool:
        """The firing alerts in parts; False when the client fell behind again meanwhile."""
        cursor: str | None = ""
        part = 0
        while cursor is not None:
            if client.resync:
                client.wake.set()
                return False
            alerts, cursor = self._view.chunk_after(cursor, firing_only=True)
            last = "true" if cursor is None else "false"
            await _timed(
                send, f'{{"type":"snapshot","part":{part},"last":{last},"alerts":[{alerts}]}}'
            )
            part += 1
        await _timed(send, self._watchdog())
        return True


async def _timed(send: Callable[[str], Awaitable[None]], message: str) -> None:
    async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
        await send(message)
