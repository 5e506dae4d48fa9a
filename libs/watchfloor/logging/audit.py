"""Audit events in a hash chain.

Each audit event carries `audit.sequence`, `audit.previous_hash` and `audit.hash` (SHA-256 over
the canonical JSON of the event without `audit.hash`), so modifying, removing or reordering an
event breaks the chain at that point. The chain is sealed on the writer thread, in queue order,
after masking, i.e. over exactly what is shipped. With a spool the chain state is kept beside it,
so a restarted service continues its chain; without one each process starts a new chain id.
Removing the newest events cannot be seen from the chain alone: compare the last sequence with
the one the service reports (`audit-chain.json` in its spool).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from watchfloor.logging.ecs import ATTR_AUDIT
from watchfloor.logging.handler import capture_context

GENESIS_HASH = "0" * 64
_STATE_FILE = "audit-chain.json"

_logger = logging.getLogger("watchfloor.audit")
# Audit events are records of what happened, not diagnostics: no log level silences them.
_logger.setLevel(logging.INFO)

MAX_HELD_AUDIT_EVENTS = 10_000


class _HoldingHandler(logging.Handler):
    """Keeps audit events recorded while no pipeline is configured, for configure_logging to emit.

    Past MAX_HELD_AUDIT_EVENTS an event is written to stderr instead: never silently lost.
    """

    def __init__(self) -> None:
        super().__init__()
        self.held: list[logging.LogRecord] = []
        self.holding = True

    def emit(self, record: logging.LogRecord) -> None:
        if not self.holding:
            return
        if len(self.held) < MAX_HELD_AUDIT_EVENTS:
            capture_context(record)
            self.held.append(record)
            return
        sys.stderr.write(
            f"watchfloor: audit() called before configure_logging and {MAX_HELD_AUDIT_EVENTS} "
            f"events are already held; not held: {record.getMessage()!r} "
            f"by {getattr(record, ATTR_AUDIT, {}).get('actor')!r}\n"
        )

    def hand_over(
        self, install: Callable[[], None], sink: Callable[[logging.LogRecord], object]
    ) -> None:
        """Run `install`, pass the held records to `sink` in order and stop holding, all under
        the lock emit() runs under, so no event is both held and passed on by a new handler."""
        self.acquire()
        try:
            install()
            for record in self.held:
                sink(record)
            self.held = []
            self.holding = False
        finally:
            self.release()

    def resume(self) -> None:
        self.acquire()
        try:
            self.holding = True
        finally:
            self.release()


held_audit = _HoldingHandler()
_logger.addHandler(held_audit)


def audit(action: str, *, actor: str, **fields: Any) -> None:
    """Record an audit event (`event.kind: audit`, dataset `watchfloor.audit`).

    `action` becomes `event.action` and the message, `actor` becomes `user.name`; other fields are
    added like extra fields of a log record (dotted names nest).
    """
    if not action or not actor:
        raise ValueError("audit() needs a non-empty action and actor")
    _logger.info(
        action,
        extra={ATTR_AUDIT: {"action": action, "actor": actor, "fields": fields}},
        stacklevel=2,
    )


def canonical_hash(document: Mapping[str, Any]) -> str:
    """SHA-256 of an event's canonical JSON (sorted keys) without its own `audit.hash`."""
    body = dict(document)
    chain = dict(body.get("audit", {}))
    chain.pop("hash", None)
    body["audit"] = chain
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


class AuditChain:
    """The sealing side; used by the writer thread only."""

    def __init__(self, state_dir: Path | None) -> None:
        self._state_path = state_dir / _STATE_FILE if state_dir is not None else None
        state: dict[str, Any] = {}
        if self._state_path is not None and self._state_path.exists():
            try:
                state = json.loads(self._state_path.read_text())
            except (OSError, ValueError):
                state = {}
        self.chain_id = str(state.get("chain_id") or uuid.uuid4().hex)
        self.sequence = int(state.get("sequence", 0))
        self.last_hash = str(state.get("hash", GENESIS_HASH))
        self._dirty = False

    def seal(self, document: dict[str, Any]) -> bytes:
        """Add the chain fields to an audit event and return its JSON line."""
        self.sequence += 1
        # Round-trip through JSON first so the hash covers exactly what a reader will parse.
        parsed = orjson.loads(orjson.dumps(document, default=str, option=orjson.OPT_NON_STR_KEYS))
        parsed["audit"] = {
            **parsed.get("audit", {}),
            "chain_id": self.chain_id,
            "sequence": self.sequence,
            "previous_hash": self.last_hash,
        }
        digest = canonical_hash(parsed)
        parsed["audit"]["hash"] = digest
        self.last_hash = digest
        self._dirty = True
        return orjson.dumps(parsed)

    def save(self) -> None:
        """Persist the chain head; called after the sealed events reached the spool."""
        if self._state_path is None or not self._dirty:
            return
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {"chain_id": self.chain_id, "sequence": self.sequence, "hash": self.last_hash}
            )
        )
        os.replace(tmp, self._state_path)
        self._dirty = False


@dataclass(frozen=True)
class AuditVerification:
    """Outcome of verify_audit_chain; true when every link holds."""

    ok: bool
    checked: int
    broken_at: int | None = None
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.ok


def verify_audit_chain(
    events: Iterable[Mapping[str, Any] | str | bytes],
) -> AuditVerification:
    """Check audit events in the order given (dicts or JSON lines, one or several chains).

    Returns the index of the first event that was modified, or whose predecessor was removed or
    moved, with the reason.
    """
    heads: dict[str, tuple[int, str]] = {}
    checked = 0
    for index, raw in enumerate(events):
        event = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
        chain = event.get("audit")
        if not isinstance(chain, Mapping) or "hash" not in chain:
            return AuditVerification(False, checked, index, "event carries no audit chain fields")
        if canonical_hash(event) != chain["hash"]:
            return AuditVerification(False, checked, index, "event content does not match its hash")
        chain_id = str(chain.get("chain_id"))
        sequence = chain.get("sequence")
        if chain_id in heads:
            last_sequence, last_hash = heads[chain_id]
            if sequence != last_sequence + 1:
                return AuditVerification(
                    False,
                    checked,
                    index,
                    f"sequence {sequence} follows {last_sequence}: events removed or reordered",
                )
            if chain.get("previous_hash") != last_hash:
                return AuditVerification(
                    False, checked, index, "previous_hash does not match the preceding event"
                )
        elif sequence == 1 and chain.get("previous_hash") != GENESIS_HASH:
            return AuditVerification(False, checked, index, "first event of a chain not at genesis")
        heads[chain_id] = (int(sequence or 0), str(chain["hash"]))
        checked += 1
    return AuditVerification(True, checked)
