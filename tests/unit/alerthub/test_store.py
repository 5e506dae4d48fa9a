"""The hub's SQLite store: bounded in rows and bytes, reconciled with Alertmanager, vacuumed."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

import orjson
import pytest

from watchfloor_alerthub.models import WebhookAlert
from watchfloor_alerthub.store import AlertStore

NOW = 1_800_000_000.0


def alert(fingerprint: str, status: str = "firing", note: str = "", **labels: str) -> WebhookAlert:
    return WebhookAlert.model_validate(
        {
            "status": status,
            "labels": {"alertname": "HostDown", "instance": fingerprint, **labels},
            "annotations": {"summary": "down", "note": note},
            "startsAt": datetime.now(UTC).isoformat(),
            "fingerprint": fingerprint,
        }
    )


def rows(path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT fingerprint, status FROM alerts"))


@pytest.fixture
def store(tmp_path):
    opened = AlertStore(tmp_path / "hub.sqlite", max_alerts=5, resolved_retention_seconds=60)
    yield opened
    opened.close()


def test_at_capacity_resolved_alerts_make_room_then_new_ones_are_refused(store, tmp_path):
    store.apply([alert(f"a{n}") for n in range(4)], NOW)
    store.apply([alert("a0", "resolved")], NOW + 1)
    changes = store.apply([alert("b0"), alert("b1")], NOW + 2)  # 6 rows wanted, 5 allowed
    assert changes.refused == 0 and changes.deleted == ["a0"]  # the resolved one made room
    changes = store.apply([alert("c0"), alert("a1", "resolved"), alert("a2")], NOW + 3)
    assert changes.refused == 1  # only firing alerts left: c0 does not fit
    assert [s.fingerprint for s in changes.stored] == ["a1", "a2"]  # the rest still landed
    assert rows(tmp_path / "hub.sqlite") == {
        "a1": "resolved", "a2": "firing", "a3": "firing", "b0": "firing", "b1": "firing"
    }  # fmt: skip
    assert store.count == 5


def test_a_resolution_always_lands_even_when_it_grows_past_the_byte_bound(tmp_path):
    store = AlertStore(
        tmp_path / "h.sqlite", max_alerts=10, resolved_retention_seconds=60, max_bytes=600
    )
    store.apply([alert("a1"), alert("a2")], NOW)
    changes = store.apply([alert("a1", "resolved", note="x" * 500)], NOW + 1)
    assert changes.refused == 0
    assert rows(tmp_path / "h.sqlite")["a1"] == "resolved"
    assert store.stored_bytes <= 600  # landed without its new, larger annotations
    changes = store.apply([alert("a2", note="y" * 500)], NOW + 2)
    assert changes.refused == 0 and changes.deleted == ["a1"]  # a firing alert grew: room made
    assert store.apply([alert("a2", note="y" * 700)], NOW + 3).refused == 1  # no room left
    store.close()


def test_a_resolved_alert_the_hub_never_saw_takes_no_room(store):
    store.apply([alert(f"a{n}") for n in range(5)], NOW)
    changes = store.apply([alert("ff", "resolved")], NOW + 1)
    assert changes.refused == 0 and changes.stored == []


def test_reconcile_resolves_what_alertmanager_no_longer_has(store, tmp_path):
    store.apply([alert("a1"), alert("a2"), alert("a3")], NOW)
    store.apply([alert("a3")], NOW + 10)  # a webhook that raced the fetch started at NOW + 5
    changes = store.reconcile({"a2": []}, {}, fetched_since=NOW + 5, now=NOW + 6)
    assert [c.fingerprint for c in changes.stored] == ["a1"]
    assert rows(tmp_path / "hub.sqlite") == {"a1": "resolved", "a2": "firing", "a3": "firing"}
    assert json.loads(changes.stored[0].text)["status"] == "resolved"


def test_reconcile_follows_alertmanagers_silences(store):
    store.apply([alert("a1"), alert("a2")], NOW)
    store.acknowledge("a2", "s-hub", "alert hub page", NOW + 1)
    silenced = {"a1": ["s-ui"], "a2": []}  # a1 silenced in Alertmanager's UI; a2's expired
    changes = store.reconcile(silenced, {"s-ui": "ops@desk"}, fetched_since=NOW + 5, now=NOW + 6)
    by_fingerprint = {c.fingerprint: orjson.loads(c.text) for c in changes.stored}
    assert by_fingerprint["a1"]["silenceId"] == "s-ui"
    assert by_fingerprint["a1"]["acknowledgedBy"] == "ops@desk"
    assert by_fingerprint["a2"]["silenceId"] is None
    # Nothing changes the second time round.
    assert store.reconcile(silenced, {}, fetched_since=NOW + 7, now=NOW + 8).stored == []


def test_prune_drops_resolved_alerts_past_retention_and_shrinks_the_file(tmp_path):
    path = tmp_path / "hub.sqlite"
    store = AlertStore(path, max_alerts=100_000, resolved_retention_seconds=60)
    big = "x" * 2000
    for start in range(0, 3000, 500):
        store.apply([alert(f"{n:04x}", note=big) for n in range(start, start + 500)], NOW)
    store.apply([alert(f"{n:04x}", "resolved", note=big) for n in range(3000)], NOW)
    store.prune(NOW + 1)
    assert store.count == 3000  # within retention
    store.prune(NOW + 61)
    grown = path.stat().st_size + (tmp_path / "hub.sqlite-wal").stat().st_size
    store.close()
    assert rows(path) == {}
    on_disk = path.stat().st_size + (tmp_path / "hub.sqlite-wal").stat().st_size
    assert on_disk < 256 * 1024, (grown, on_disk)


def test_a_database_from_before_the_bounds_is_trimmed_and_converted(tmp_path):
    """80 004 rows were kept after a test: an old file is brought within the bounds, keeping the
    firing alerts that changed last, and converted so that pruning gives space back."""
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the schema the hub has always used, no auto_vacuum
        db.execute(
            "CREATE TABLE alerts (fingerprint TEXT PRIMARY KEY, status TEXT NOT NULL,"
            " labels TEXT NOT NULL, annotations TEXT NOT NULL, starts_at TEXT NOT NULL,"
            " ends_at TEXT, generator_url TEXT NOT NULL, updated_at REAL NOT NULL,"
            " silence_id TEXT, acknowledged_by TEXT)"
        )
        db.executemany(
            "INSERT INTO alerts VALUES (?, ?, '{}', '{}', '2026-01-01T00:00:00+00:00', NULL, '',"
            " ?, NULL, NULL)",
            [(f"{n:04x}", "resolved" if n % 2 else "firing", float(n)) for n in range(200)],
        )
    store = AlertStore(path, max_alerts=50, resolved_retention_seconds=60)
    kept = store.load()
    store.close()
    assert len(kept) == 50 and all(s.firing for s in kept)
    assert {s.fingerprint for s in kept} == {f"{n:04x}" for n in range(100, 200, 2)}
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
