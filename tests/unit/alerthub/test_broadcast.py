"""Slow readers: queues bounded, snapshots cheap, shared, paged and consistent."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from watchfloor_alerthub import broadcast, limits
from watchfloor_alerthub.store import Changes, Stored
from watchfloor_alerthub.view import AlertView


def stored(fingerprint: str, firing: bool = True, version: int = 0) -> Stored:
    status = "firing" if firing else "resolved"
    text = json.dumps(
        {"fingerprint": fingerprint, "status": status, "labels": {"alertname": "X", "v": version},
         "annotations": {"summary": "s" * 200}}
    )  # fmt: skip
    return Stored(fingerprint, firing, text)


class CountingView(AlertView):
    """The real view, counting the parts it is asked to build."""

    built = 0

    def chunk_after(self, cursor: str, *, firing_only: bool) -> tuple[str, str | None]:
        self.built += 1
        return super().chunk_after(cursor, firing_only=firing_only)


def watchdog() -> str:
    return '{"type":"watchdog","watchdog":{}}'


def test_a_backlog_overflow_builds_nothing_on_the_publishing_path():
    """It used to build one full snapshot per overflowing client, on the event loop."""

    async def scenario() -> None:
        view = CountingView(stored(f"{n:05x}") for n in range(9000))
        hub = broadcast.Broadcaster(view, watchdog, max_clients=300)
        clients = [hub.connect() for _ in range(300)]
        for client in clients:
            client.resync = False  # as if each had its snapshot and then stopped reading
        before = broadcast.RESYNCS._value.get()
        for index in range(limits.QUEUE_MESSAGES * 3):
            hub.publish([f'{{"type":"alert","n":{index}}}'])
        assert view.built == 0
        assert all(len(c.pending) <= limits.QUEUE_MESSAGES for c in clients)
        assert all(c.resync for c in clients)
        assert broadcast.RESYNCS._value.get() - before == 300
        assert hub.connect() is None  # and no 301st client

    asyncio.run(scenario())


def test_snapshot_parts_are_bounded_and_shared_by_every_reader():
    view = AlertView([*(stored(f"{n:05x}") for n in range(3000)), stored("fffff", firing=False)])
    seen: list[str] = []
    cursor: str | None = ""
    parts = 0
    while cursor is not None:
        first = view.chunk_after(cursor, firing_only=True)
        assert view.chunk_after(cursor, firing_only=True) is first  # built once, shared
        body, cursor = first
        assert len(body) <= limits.CHUNK_BYTES
        seen += [a["fingerprint"] for a in json.loads(f"[{body}]")]
        parts += 1
    assert parts > 5
    assert seen == [f"{n:05x}" for n in range(3000)]  # each firing alert once, resolved left out


def test_a_snapshot_taken_while_alerts_change_ends_in_the_current_state():
    async def scenario() -> None:
        view = AlertView(stored(f"{n:04x}") for n in range(2000))
        hub = broadcast.Broadcaster(view, watchdog, max_clients=10)
        client = hub.connect()
        page: dict[str, dict] = {}  # what the page keeps, updated as page.html does
        round_ = 0

        async def send(text: str) -> None:
            nonlocal round_
            message = json.loads(text)
            if message["type"] == "snapshot":
                if message["part"] == 0:
                    page.clear()
                page.update((a["fingerprint"], a) for a in message["alerts"])
                # Meanwhile alerts change on both sides of the cursor, appear and resolve.
                round_ += 1
                changes = Changes(
                    stored=[
                        stored("0000", version=round_),
                        stored("07cf", version=round_),
                        stored(f"{round_:04x}", firing=round_ % 2 == 0, version=round_),
                        stored(f"a{round_:03x}", version=round_),
                    ]
                )
                view.update(changes)
                hub.publish([f'{{"type":"alert","alert":{s.text}}}' for s in changes.stored])
            elif message["type"] == "alert":
                alert = message["alert"]
                if alert["status"] == "firing":
                    page[alert["fingerprint"]] = alert
                else:
                    page.pop(alert["fingerprint"], None)
            await asyncio.sleep(0)

        pump = asyncio.create_task(hub.pump(client, send))
        deadline = time.monotonic() + 10
        while (client.pending or client.resync or round_ == 0) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        pump.cancel()
        current = {k: json.loads(view.get(k).text) for k in view._alerts if view.get(k).firing}
        assert round_ > 1 and page == current

    asyncio.run(scenario())


def test_a_client_that_takes_nothing_is_let_go(monkeypatch):
    monkeypatch.setattr(broadcast, "SEND_TIMEOUT_SECONDS", 0.2)

    async def scenario() -> None:
        hub = broadcast.Broadcaster(AlertView([stored("01")]), watchdog, max_clients=1)
        client = hub.connect()

        async def never(text: str) -> None:
            await asyncio.Event().wait()

        with pytest.raises(TimeoutError):
            async with asyncio.timeout(5):
                await hub.pump(client, never)

    asyncio.run(scenario())
