"""The alerts, in SQLite so a restart of the hub keeps them; bounded in rows and bytes.

An alert is keyed by Alertmanager's fingerprint, so several Alertmanagers delivering the same alert
store it once. Resolved alerts are kept for the retention (the page lets them go, the API lists
them) and then pruned, and the file gives the space back (incremental vacuum, WAL truncation).
At capacity the oldest resolved alerts make room; when only firing ones are left a new alert is
refused (the webhook answers 429, Alertmanager counts a failed notification).

Every method runs on the store's one thread (`run`): writes keep their arrival order and the event
loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import orjson

from watchfloor_alerthub.limits import MAX_STORED_BYTES
from watchfloor_alerthub.models import WebhookAlert

WATCHDOG = "Watchdog"
_LOG = logging.getLogger("watchfloor.alerthub.store")
# A row's weight against the bound: what WebhookAlert.size counts.
_SELECT_SIZE = (
    "SELECT length(labels) + length(annotations) + length(generator_url) FROM alerts"
    " WHERE fingerprint = ?"
)
_SELECT_ROWS = (
    "SELECT fingerprint, status, labels, annotations, starts_at, ends_at, generator_url,"
    " silence_id, acknowledged_by FROM alerts"
)
_SELECT_ROW = _SELECT_ROWS + " WHERE fingerprint = ?"
_TOTALS = (
    "SELECT count(*), total(length(labels) + length(annotations) + length(generator_url))"
    " FROM alerts"
)
_EVICT_RESOLVED = (
    "DELETE FROM alerts WHERE fingerprint IN (SELECT fingerprint FROM alerts"
    " WHERE status = 'resolved' AND fingerprint != ? ORDER BY updated_at LIMIT 64)"
    " RETURNING fingerprint, length(labels) + length(annotations) + length(generator_url)"
)
_BY_KEEPING_ORDER = (
    "SELECT fingerprint, length(labels) + length(annotations) + length(generator_url)"
    " FROM alerts ORDER BY status = 'firing' DESC, updated_at DESC"
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT,
    generator_url TEXT NOT NULL,
    updated_at REAL NOT NULL,
    silence_id TEXT,
    acknowledged_by TEXT
);
CREATE INDEX IF NOT EXISTS alerts_by_age ON alerts (status, updated_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_P = ParamSpec("_P")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Stored:
    fingerprint: str
    firing: bool
    text: str  # the alert as the API and the pages get it, JSON


@dataclass
class Changes:
    stored: list[Stored] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    refused: int = 0  # new alerts that did not fit


@dataclass(frozen=True)
class Target:
    """What acknowledging an alert needs to know about it."""

    labels: dict[str, str]
    firing: bool
    silence_id: str | None


class AlertStore:
    def __init__(
        self,
        path: Path,
        *,
        max_alerts: int,
        resolved_retention_seconds: float,
        max_bytes: int = MAX_STORED_BYTES,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.max_alerts, self.max_bytes = max_alerts, max_bytes
        self._retention = resolved_retention_seconds
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alerthub-db")
        created = not self._db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone()
        # Space freed by pruning goes back to the file system; a file created before the hub
        # vacuumed is converted once (auto_vacuum can only change through VACUUM).
        self._db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        if not created and self._db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            self._db.execute("VACUUM")
        self._db.execute("PRAGMA journal_mode = WAL")
        # Consistent under WAL; a power cut may lose the last transactions, which Alertmanager's
        # next notification or the reconciliation brings back.
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA journal_size_limit = 4194304")
        self._db.executescript(_SCHEMA)
        self._count, self._bytes = self._totals()
        self._trim()
        self.watchdog_seen = self._watchdog_seen()

    async def run(self, method: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Call one of this store's methods on its thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, lambda: method(*args, **kwargs))

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self._db.close()

    @property
    def count(self) -> int:
        return self._count

    @property
    def stored_bytes(self) -> int:
        return self._bytes

    def load(self) -> list[Stored]:
        """Every alert, as the in-memory view starts from."""
        return [_stored(row) for row in self._db.execute(_SELECT_ROWS)]

    def apply(self, alerts: Sequence[WebhookAlert], now: float) -> Changes:
        """Store one notification's alerts in one transaction."""
        changes = Changes()
        with self._transaction():
            for alert in alerts:
                if alert.labels.get("alertname") == WATCHDOG and alert.status == "firing":
                    self._db.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('watchdog_seen', ?)", (str(now),)
                    )
                    self.watchdog_seen = now
                row = self._db.execute(_SELECT_SIZE, (alert.fingerprint,)).fetchone()
                old_size = row[0] if row else 0
                grow = alert.size - old_size
                if self._make_room(alert.fingerprint, int(row is None), grow, changes):
                    self._upsert(alert, now)
                    self._count += row is None
                    self._bytes += alert.size - old_size
                elif row is not None and alert.status == "resolved":
                    # A resolution always lands, if need be without its new annotations.
                    self._db.execute(
                        "UPDATE alerts SET status = 'resolved', ends_at = ?, updated_at = ?"
                        " WHERE fingerprint = ?",
                        (_iso(alert.endsAt), now, alert.fingerprint),
                    )
                else:
                    # A resolved alert the hub never saw needs no room: nothing would show it.
                    changes.refused += alert.status == "firing"
                    continue
                changes.stored.append(self._get(alert.fingerprint))
        return changes

    def acknowledge(self, fingerprint: str, silence_id: str, by: str, now: float) -> Stored | None:
        self._db.execute(
            "UPDATE alerts SET silence_id = ?, acknowledged_by = ?, updated_at = ?"
            " WHERE fingerprint = ?",
            (silence_id, by, now, fingerprint),
        )
        row = self._db.execute(_SELECT_ROW, (fingerprint,)).fetchone()
        return _stored(row) if row else None

    def target(self, fingerprint: str) -> Target | None:
        row = self._db.execute(
            "SELECT labels, status, silence_id FROM alerts WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
        return Target(orjson.loads(row[0]), row[1] == "firing", row[2]) if row else None

    def reconcile(
        self,
        active: Mapping[str, Sequence[str]],
        creators: Mapping[str, str],
        fetched_since: float,
        now: float,
    ) -> Changes:
        """Agree with Alertmanager's alerts (fingerprint -> ids of the silences muting it).

        A row changed since `fetched_since` (a webhook or an acknowledgement that raced the
        fetch) is left alone: it is newer than what was fetched.
        """
        changes = Changes()
        with self._transaction():
            rows = self._db.execute(
                "SELECT fingerprint, silence_id FROM alerts"
                " WHERE status = 'firing' AND updated_at < ?",
                (fetched_since,),
            ).fetchall()
            ended = datetime.fromtimestamp(now, UTC).isoformat()
            for fingerprint, silence_id in rows:
                silences = active.get(fingerprint)
                if silences is None:
                    # Resolved in Alertmanager but never notified (silenced alerts are not).
                    self._db.execute(
                        "UPDATE alerts SET status = 'resolved', ends_at = ?, updated_at = ?"
                        " WHERE fingerprint = ?",
                        (ended, now, fingerprint),
                    )
                elif silences and silence_id not in silences:
                    # Silenced in Alertmanager (its UI, amtool, another hub): acknowledged.
                    self._db.execute(
                        "UPDATE alerts SET silence_id = ?, acknowledged_by = ?"
                        " WHERE fingerprint = ?",
                        (silences[0], creators.get(silences[0], "Alertmanager"), fingerprint),
                    )
                elif not silences and silence_id is not None:
                    # The silence expired or was expired: the alert wants attention again.
                    self._db.execute(
                        "UPDATE alerts SET silence_id = NULL, acknowledged_by = NULL"
                        " WHERE fingerprint = ?",
                        (fingerprint,),
                    )
                else:
                    continue
                changes.stored.append(self._get(fingerprint))
        return changes

    def prune(self, now: float) -> Changes:
        """Drop resolved alerts past the retention and give the space back."""
        changes = Changes()
        with self._transaction():
            changes.deleted = [
                row[0]
                for row in self._db.execute(
                    "DELETE FROM alerts WHERE status = 'resolved' AND updated_at < ?"
                    " RETURNING fingerprint",
                    (now - self._retention,),
                ).fetchall()
            ]
        if changes.deleted:
            self._count, self._bytes = self._totals()
        self._db.executescript("PRAGMA incremental_vacuum;")  # execute() frees one page only
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return changes

    # -- helpers, on the store's thread

    def _upsert(self, alert: WebhookAlert, now: float) -> None:
        self._db.execute(
            """INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)
               ON CONFLICT(fingerprint) DO UPDATE SET status=excluded.status,
               labels=excluded.labels, annotations=excluded.annotations,
               starts_at=excluded.starts_at, ends_at=excluded.ends_at,
               generator_url=excluded.generator_url, updated_at=excluded.updated_at""",
            (
                alert.fingerprint, alert.status, alert.labels_json, alert.annotations_json,
                alert.startsAt.isoformat(), _iso(alert.endsAt), alert.generatorURL, now,
            ),
        )  # fmt: skip

    def _make_room(self, fingerprint: str, rows: int, grow: int, changes: Changes) -> bool:
        """Whether `rows` more rows and `grow` more bytes fit for `fingerprint`, evicting other
        resolved alerts (oldest first) if that is what it takes."""
        while self._count + rows > self.max_alerts or self._bytes + grow > self.max_bytes:
            evicted = self._db.execute(_EVICT_RESOLVED, (fingerprint,)).fetchall()
            if not evicted:
                return False
            self._count -= len(evicted)
            self._bytes -= sum(size for _, size in evicted)
            changes.deleted.extend(fingerprint for fingerprint, _ in evicted)
        return True

    def _trim(self) -> None:
        """Bring a database written before the bounds (or with a larger bound) within them,
        keeping the alerts that changed last."""
        excess_rows = self._count - self.max_alerts
        if excess_rows <= 0 and self._bytes <= self.max_bytes:
            return
        kept, kept_bytes, dropped = 0, 0, []
        for fingerprint, size in self._db.execute(_BY_KEEPING_ORDER).fetchall():
            if kept < self.max_alerts and kept_bytes + size <= self.max_bytes:
                kept, kept_bytes = kept + 1, kept_bytes + size
            else:
                dropped.append((fingerprint,))
        with self._transaction():
            self._db.executemany("DELETE FROM alerts WHERE fingerprint = ?", dropped)
        self._count, self._bytes = self._totals()
        _LOG.warning(
            "dropped %d stored alerts over the bounds (%d alerts, %d bytes)",
            len(dropped), self.max_alerts, self.max_bytes,
        )  # fmt: skip
        self._db.executescript("PRAGMA incremental_vacuum;")  # execute() frees one page only

    def _totals(self) -> tuple[int, int]:
        count, size = self._db.execute(_TOTALS).fetchone()
        return int(count), int(size)

    def _watchdog_seen(self) -> float | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'watchdog_seen'").fetchone()
        return float(row[0]) if row else None

    def _get(self, fingerprint: str) -> Stored:
        row = self._db.execute(_SELECT_ROW, (fingerprint,)).fetchone()
        return _stored(row)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, kind: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if kind else "COMMIT")


def _stored(row: Iterable[Any]) -> Stored:
    fingerprint, status, labels, annotations, starts, ends, url, silence_id, by = row
    text = orjson.dumps(
        {
            "fingerprint": fingerprint,
            "status": status,
            "labels": orjson.Fragment(labels),
            "annotations": orjson.Fragment(annotations),
            "startsAt": starts,
            "endsAt": ends,
            "generatorURL": url,
            "silenceId": silence_id,
            "acknowledgedBy": by,
        }
    ).decode()
    return Stored(fingerprint, status == "firing", text)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
