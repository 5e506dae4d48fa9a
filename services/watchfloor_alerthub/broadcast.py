"""Pushing changes to every open page, without letting a slow one grow memory.

Each client has a bounded queue. When it is full the client's backlog is thrown away and replaced
by one full snapshot, which supersedes everything it missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge

CLIENTS = Gauge("watchfloor_alerthub_websocket_clients", "Open WebSocket connections.")
RESYNCS = Counter(
    "watchfloor_alerthub_websocket_resyncs_total",
    "Times a slow client's backlog was dropped and replaced by a snapshot.",
)

QUEUE_SIZE = 100


class Client:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUE_SIZE)


class Broadcaster:
    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._clients: set[Client] = set()
        self._snapshot = snapshot

    def connect(self) -> Client:
        client = Client()
        client.queue.put_nowait(self._snapshot())
        self._clients.add(client)
        CLIENTS.set(len(self._clients))
        return client

    def disconnect(self, client: Client) -> None:
        self._clients.discard(client)
        CLIENTS.set(len(self._clients))

    def publish(self, message: dict[str, Any]) -> None:
        for client in list(self._clients):
            try:
                client.queue.put_nowait(message)
            except asyncio.QueueFull:
                while not client.queue.empty():
                    client.queue.get_nowait()
                client.queue.put_nowait(self._snapshot())
                RESYNCS.inc()
