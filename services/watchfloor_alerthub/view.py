"""The stored alerts as the pages and the API read them, in memory: each alert encoded once.

Readers page through it by fingerprint (`chunk_after`), so a reader that takes minutes holds one
part, never a copy of everything; a part is built once per version of the alerts and shared by
every reader. The database thread writes; this mirror follows on the event loop.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

from watchfloor_alerthub.limits import CHUNK_BYTES
from watchfloor_alerthub.store import Changes, Stored


class AlertView:
    def __init__(self, stored: Iterable[Stored]) -> None:
        self._alerts = {alert.fingerprint: alert for alert in stored}
        self.version = 0
        self._keys: dict[bool, list[str]] = {}
        self._parts: dict[tuple[bool, str], tuple[str, str | None]] = {}

    def __len__(self) -> int:
        return len(self._alerts)

    def get(self, fingerprint: str) -> Stored | None:
        return self._alerts.get(fingerprint)

    def update(self, changes: Changes) -> None:
        if not changes.stored and not changes.deleted:
            return
        for alert in changes.stored:
            self._alerts[alert.fingerprint] = alert
        for fingerprint in changes.deleted:
            self._alerts.pop(fingerprint, None)
        self.version += 1
        self._keys.clear()
        self._parts.clear()

    def chunk_after(self, cursor: str, *, firing_only: bool) -> tuple[str, str | None]:
        """The alerts after `cursor` in fingerprint order, up to CHUNK_BYTES of them, as JSON
        objects joined by commas; and the cursor of the next part (None: this is the last).

        A reader that pages through while alerts change sees each alert once, in some state it
        had; the changes it must not miss reach it as messages (broadcast.py)."""
        key = (firing_only, cursor)
        part = self._parts.get(key)
        if part is not None:
            return part
        keys = self._keys.get(firing_only)
        if keys is None:
            keys = sorted(k for k, alert in self._alerts.items() if alert.firing or not firing_only)
            self._keys[firing_only] = keys
        texts: list[str] = []
        size, index = 0, bisect_right(keys, cursor)
        while index < len(keys):
            text = self._alerts[keys[index]].text
            if texts and size + len(text) + 1 > CHUNK_BYTES:
                break
            texts.append(text)
            size += len(text) + 1
            index += 1
        part = (",".join(texts), keys[index - 1] if index < len(keys) else None)
        self._parts[key] = part
        return part
