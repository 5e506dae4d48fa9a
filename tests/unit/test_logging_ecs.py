"""The ECS document watchfloor.logging writes, field by field."""

from __future__ import annotations

import logging
import re

import pytest
from opentelemetry.sdk.trace import TracerProvider

from watchfloor.correlation import correlation_scope
from watchfloor.logging import DATASET_AUDIT, DATASET_ERRORS, DATASET_LOGS, DATASET_TRADING

log = logging.getLogger("tests.ecs")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_core_fields(ecs_lines):
    log.info("order %s filled", "o-1", extra={"qty": 100, "price": 187.25})
    (doc,) = ecs_lines()
    assert ISO_MS.match(doc["@timestamp"])
    assert doc["log.level"] == "info"
    assert doc["message"] == "order o-1 filled"
    assert doc["service"] == {"name": "unit-test", "environment": "test"}
    assert doc["event"]["dataset"] == DATASET_LOGS
    assert doc["event"]["kind"] == "event"
    assert doc["log"]["logger"] == "tests.ecs"
    assert doc["log"]["origin"]["function"] == "test_core_fields"
    assert doc["qty"] == 100 and doc["price"] == 187.25
    assert "correlation" not in doc and "trace" not in doc


def test_event_ids_are_unique_and_sequenced(ecs_lines):
    for index in range(500):
        log.info("tick %d", index)
    docs = ecs_lines()
    ids = [d["event"]["id"] for d in docs]
    assert len(set(ids)) == 500
    assert [d["event"]["sequence"] for d in docs] == list(range(1, 501))


def test_dotted_extras_nest_and_never_overwrite_owned_fields(ecs_lines):
    log.info(
        "x",
        extra={
            "trading.order.id": "o-9",
            "trading.symbol": "MSFT",
            "service.version": "1.4.2",
            "event.id": "forged",
            "host": "spoofed",
        },
    )
    (doc,) = ecs_lines()
    assert doc["trading"] == {"order": {"id": "o-9"}, "symbol": "MSFT"}
    assert doc["service"]["version"] == "1.4.2"
    assert doc["service"]["name"] == "unit-test"
    assert doc["event"]["id"] != "forged" and doc["event"]["id_extra"] == "forged"
    assert doc["host_extra"] == "spoofed" and "hostname" in doc["host"]


def test_exception_fields(ecs_lines):
    try:
        raise KeyError("missing-order")
    except KeyError:
        log.exception("lookup failed")
    (doc,) = ecs_lines()
    assert doc["log.level"] == "error"
    assert doc["event"]["dataset"] == DATASET_ERRORS
    assert doc["error"]["type"] == "KeyError"
    assert doc["error"]["message"] == "'missing-order'"
    assert "raise KeyError" in doc["error"]["stack_trace"]


def test_dataset_routing(ecs_lines):
    log.info("fill", extra={"event.dataset": DATASET_TRADING})
    log.info("forged audit", extra={"event.dataset": DATASET_AUDIT})
    log.warning("unknown dataset", extra={"event.dataset": "elsewhere"})
    log.error("a failure")
    docs = ecs_lines()
    assert [d["event"]["dataset"] for d in docs] == [
        DATASET_TRADING,
        DATASET_LOGS,  # only audit() writes audit events
        DATASET_LOGS,
        DATASET_ERRORS,
    ]


def test_log_inside_span_carries_its_ids(ecs_lines):
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("submit") as span:
        log.info("inside")
        context = span.get_span_context()
    log.info("outside")
    inside, outside = ecs_lines()
    assert inside["trace"]["id"] == format(context.trace_id, "032x")
    assert inside["span"]["id"] == format(context.span_id, "016x")
    assert "trace" not in outside


def test_correlation_id_field(ecs_lines):
    with correlation_scope("corr-123"):
        log.info("with")
    log.info("without")
    with_id, without = ecs_lines()
    assert with_id["correlation"] == {"id": "corr-123"}
    assert "correlation" not in without


def test_logs_in_a_span_and_scope_carry_both_ids(ecs_lines):
    tracer = TracerProvider().get_tracer("tests")
    with correlation_scope("c-1"), tracer.start_as_current_span("fill"):
        log.info("both")
    (doc,) = ecs_lines()
    assert doc["correlation"]["id"] == "c-1" and len(doc["trace"]["id"]) == 32


def test_unserialisable_extra_is_kept_as_text(ecs_lines):
    class Opaque:
        def __str__(self) -> str:
            return "opaque-object"

    log.info("odd", extra={"thing": Opaque(), "data": b"\x00bytes", "numbers": (1, 2)})
    (doc,) = ecs_lines()
    assert doc["thing"] == "opaque-object"
    assert doc["numbers"] == [1, 2]


def test_message_args_formatting_failure_does_not_lose_the_event(ecs_lines):
    log.info("two args %s %s", "only-one")  # noqa: PLE1206 - the bad call is the test
    (doc,) = ecs_lines()
    assert doc["message"] == "two args %s %s"
    assert "unformattable" in doc["error"]["message"]


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error", "critical"])
def test_levels(ecs_lines, level):
    getattr(log, level)("lvl")
    (doc,) = ecs_lines()
    assert doc["log.level"] == level
