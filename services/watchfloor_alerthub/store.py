"""The current alerts, in SQLite so a restart of the hub keeps them.

An alert is keyed by Alertmanager's fingerprint. Resolved alerts are kept for an hour (the page
shows them fading out) and then pruned. The Watchdog's last arrival is kept too.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from watchfloor_alerthub.models import WebhookAlert

RESOLVED_KEEP_SECONDS = 3600
_ALL = "SELECT * FROM alerts ORDER BY starts_at"
_FIRING = "SELECT * FROM alerts WHERE status = 'firing' ORDER BY starts_at"
WATCHDOG = "Watchdog"

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
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class AlertStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def apply(self, alerts: list[WebhookAlert]) -> list[dict[str, Any]]:
        """Upsert the alerts of one notification (one transaction); returns them as stored."""
        now = time.time()
        changed = []
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for alert in alerts:
                    if alert.labels.get("alertname") == WATCHDOG:
                        self._db.execute(
                            "INSERT OR REPLACE INTO meta VALUES ('watchdog_seen', ?)", (str(now),)
                        )
                    self._db.execute(
                        """INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)
                           ON CONFLICT(fingerprint) DO UPDATE SET status=excluded.status,
                           labels=excluded.labels, annotations=excluded.annotations,
                           starts_at=excluded.starts_at, ends_at=excluded.ends_at,
                           generator_url=excluded.generator_url, updated_at=excluded.updated_at""",
                        (
                            alert.fingerprint, alert.status, json.dumps(alert.labels),
                            json.dumps(alert.annotations), alert.startsAt.isoformat(),
                            alert.endsAt.isoformat() if alert.endsAt else None,
                            alert.generatorURL, now,
                        ),
                    )  # fmt: skip
                self._db.execute(
                    "DELETE FROM alerts WHERE status = 'resolved' AND updated_at < ?",
                    (now - RESOLVED_KEEP_SECONDS,),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            for alert in alerts:
                changed.append(self._get(alert.fingerprint))
        return [c for c in changed if c is not None]

    def acknowledge(self, fingerprint: str, silence_id: str, by: str) -> dict[str, Any] | None:
        with self._lock:
            self._db.execute(
                "UPDATE alerts SET silence_id = ?, acknowledged_by = ? WHERE fingerprint = ?",
                (silence_id, by, fingerprint),
            )
            return self._get(fingerprint)

    def get(self, fingerprint: str) -> dict[str, Any] | None:
        with self._lock:
            return self._get(fingerprint)

    def alerts(self, include_resolved: bool = False) -> list[dict[str, Any]]:
        query = _ALL if include_resolved else _FIRING
        with self._lock:
            rows = self._db.execute(query).fetchall()
        return [_row(r) for r in rows]

    def watchdog_seen(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='watchdog_seen'").fetchone()
        return float(row[0]) if row else None

    def close(self) -> None:
        self._db.close()

    def _get(self, fingerprint: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT * FROM alerts WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
        return _row(row) if row else None


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "fingerprint": row[0],
        "status": row[1],
        "labels": json.loads(row[2]),
        "annotations": json.loads(row[3]),
        "startsAt": row[4],
        "endsAt": row[5],
        "generatorURL": row[6],
        "silenceId": row[8],
        "acknowledgedBy": row[9],
    }
