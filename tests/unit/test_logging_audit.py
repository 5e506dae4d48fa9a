"""The audit hash chain: intact chains verify; modification, removal and reordering are caught."""

from __future__ import annotations

import importlib
import io
import json
from pathlib import Path

import pytest

from watchfloor.logging import audit, configure_logging, shutdown_logging, verify_audit_chain


def _audit_events(count: int, **configure) -> list[dict]:
    stream = io.StringIO()
    configure_logging("audit-test", stream=stream, **configure)
    for index in range(count):
        audit("order.cancel", actor=f"trader-{index % 3}", order_id=f"o-{index}", reason="risk")
    shutdown_logging()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_audit_event_fields():
    (event,) = _audit_events(1)
    assert event["event"]["kind"] == "audit"
    assert event["event"]["dataset"] == "watchfloor.audit"
    assert event["event"]["action"] == "order.cancel"
    assert event["user"]["name"] == "trader-0"
    assert event["order_id"] == "o-0"
    assert event["audit"]["sequence"] == 1
    assert event["audit"]["previous_hash"] == "0" * 64
    assert len(event["audit"]["hash"]) == 64
    assert event["log"]["origin"]["function"] == "_audit_events"


def test_intact_chain_verifies_from_dicts_and_lines():
    events = _audit_events(20)
    assert verify_audit_chain(events)
    assert verify_audit_chain(json.dumps(e) for e in events).checked == 20


def test_modified_event_is_detected():
    events = _audit_events(10)
    events[4]["user"]["name"] = "someone-else"
    result = verify_audit_chain(events)
    assert not result
    assert result.broken_at == 4
    assert "hash" in (result.reason or "")


def test_removed_event_is_detected():
    events = _audit_events(10)
    del events[6]
    result = verify_audit_chain(events)
    assert not result and result.broken_at == 6


def test_reordered_events_are_detected():
    events = _audit_events(10)
    events[2], events[3] = events[3], events[2]
    result = verify_audit_chain(events)
    assert not result and result.broken_at == 2


def test_rehashed_forgery_is_detected_by_the_next_link():
    from watchfloor.logging.audit import canonical_hash

    events = _audit_events(5)
    events[1]["order_id"] = "forged"
    events[1]["audit"]["hash"] = canonical_hash(events[1])
    result = verify_audit_chain(events)
    assert not result and result.broken_at == 2


def test_audit_needs_action_and_actor():
    with pytest.raises(ValueError, match="action and actor"):
        audit("", actor="x")


def test_chain_continues_across_restarts_with_a_spool(tmp_path: Path):
    first = _audit_events(3, logstash_host="127.0.0.1", logstash_port=9, spool_dir=str(tmp_path))
    second = _audit_events(2, logstash_host="127.0.0.1", logstash_port=9, spool_dir=str(tmp_path))
    assert [e["audit"]["sequence"] for e in second] == [4, 5]
    assert verify_audit_chain(first + second)
    assert not verify_audit_chain(first[:2] + second)


def test_audit_events_pass_whatever_the_log_level():
    stream = io.StringIO()
    configure_logging("audit-level", stream=stream, level="ERROR")
    audit("config.change", actor="ops")
    shutdown_logging()
    assert json.loads(stream.getvalue())["event"]["action"] == "config.change"


def test_audit_before_configure_is_held_and_emitted_on_configure():
    from watchfloor.correlation import correlation_scope

    with correlation_scope("c-early"):
        audit("service.start", actor="ops", phase="boot")
    stream = io.StringIO()
    configure_logging("audit-early", stream=stream)
    audit("order.cancel", actor="trader")
    shutdown_logging()
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["event"]["action"] for e in events] == ["service.start", "order.cancel"]
    assert events[0]["correlation"]["id"] == "c-early"  # the context of the audit() call
    assert events[0]["phase"] == "boot"
    assert verify_audit_chain(events)


def test_audit_after_shutdown_is_held_for_the_next_configure():
    configure_logging("audit-gap", stream=io.StringIO())
    shutdown_logging()
    audit("limit.change", actor="ops")
    stream = io.StringIO()
    configure_logging("audit-gap", stream=stream)
    shutdown_logging()
    assert json.loads(stream.getvalue())["event"]["action"] == "limit.change"


def test_held_audit_events_beyond_the_bound_go_to_stderr(monkeypatch, capsys):
    # The package's `audit` attribute is the function, so fetch the module itself.
    audit_module = importlib.import_module("watchfloor.logging.audit")
    monkeypatch.setattr(audit_module, "MAX_HELD_AUDIT_EVENTS", 3)
    for index in range(5):
        audit("order.cancel", actor=f"trader-{index}")
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 2
    assert "before configure_logging" in warnings[0] and "'trader-3'" in warnings[0]
    assert "'trader-4'" in warnings[1]
    stream = io.StringIO()
    configure_logging("audit-bound", stream=stream)
    shutdown_logging()
    actors = [json.loads(line)["user"]["name"] for line in stream.getvalue().splitlines()]
    assert actors == ["trader-0", "trader-1", "trader-2"]
