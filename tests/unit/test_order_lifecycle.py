"""OrderLifecycle: one call per step writes the span, the catalog metrics and a trading log event.

Metrics are compared before and after each step (the default registry is shared by the process),
and every test uses its own strategy name, so other tests' series cannot skew them.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.trace import StatusCode
from prometheus_client import REGISTRY

from watchfloor.correlation import correlation_scope
from watchfloor.logging import DATASET_ERRORS, DATASET_TRADING
from watchfloor.metrics import cardinality
from watchfloor.tracing import OrderTrace
from watchfloor.trading import OrderLifecycle


@pytest.fixture(autouse=True)
def _admit_everything() -> Iterator[None]:
    """Values other tests pushed into the cardinality guard must not fold this module's labels."""
    cardinality.reset()
    yield


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Samples:
    """Differences of chosen samples since the object was made."""

    def __init__(self, **samples: tuple[str, dict[str, str]]) -> None:
        self._samples = samples
        self._before = {key: value(name, **labels) for key, (name, labels) in samples.items()}

    def moved(self) -> dict[str, float]:
        return {
            key: value(name, **labels) - self._before[key]
            for key, (name, labels) in self._samples.items()
        }


def order_samples(strategy: str, venue: str = "XNAS") -> Samples:
    order = {"strategy": strategy, "symbol": "AAPL", "venue": venue, "side": "buy"}
    typed = {**order, "order_type": "limit"}
    quantity = {"strategy": strategy, "symbol": "AAPL", "side": "buy"}

    def status(name: str) -> tuple[str, dict[str, str]]:
        return ("trading_orders_total", {**typed, "status": name})

    return Samples(
        submitted=status("submitted"),
        acked=status("acked"),
        partially_filled=status("partially_filled"),
        filled=status("filled"),
        cancelled=status("cancelled"),
        rejected=status("rejected"),
        expired=status("expired"),
        submitted_quantity=("trading_submitted_quantity_total", quantity),
        filled_quantity=("trading_filled_quantity_total", quantity),
        fills=("trading_fills_total", order),
        ack=("trading_order_ack_duration_seconds_count", {"strategy": strategy, "venue": venue}),
        execution=("trading_order_execution_duration_seconds_count", typed),
        slippage=("trading_slippage_bps_count", quantity),
    )


def submit(strategy: str, **overrides: Any) -> OrderLifecycle:
    fields: dict[str, Any] = {
        "strategy": strategy,
        "symbol": "AAPL",
        "side": "buy",
        "quantity": 100,
        "venue": "XNAS",
        "price": 187.2,
    }
    return OrderLifecycle(overrides.pop("order_id", "o-1"), **{**fields, **overrides})


def trading_events(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["log"]["logger"] == "watchfloor.trading.orders"]


def only(samples: Samples, **expected: float) -> None:
    """The samples named moved by the amounts given; every other one stayed where it was."""
    moved = samples.moved()
    assert {k: v for k, v in moved.items() if v} == expected


def test_submission_is_one_call(spans, ecs_lines):
    samples = order_samples("lc-submit")
    with correlation_scope("corr-submit"):
        order = submit("lc-submit", arrival_price=187.18)
    only(samples, submitted=1, submitted_quantity=100)
    assert isinstance(order, OrderTrace)
    assert spans.get_finished_spans() == ()  # the order's span stays open
    (doc,) = trading_events(ecs_lines())
    assert doc["event"]["dataset"] == DATASET_TRADING
    assert doc["event"]["action"] == "order.submitted"
    assert doc["message"] == "order o-1 submitted"
    assert doc["log.level"] == "info"
    assert doc["trading"] == {
        "order": {"id": "o-1", "type": "limit"},
        "strategy": "lc-submit",
        "symbol": "AAPL",
        "side": "buy",
        "quantity": 100.0,
        "venue": "XNAS",
        "price": 187.2,
        "arrival_price": 187.18,
        "status": "submitted",
    }
    assert doc["correlation"] == {"id": "corr-submit"}
    context = order.span.get_span_context()
    assert doc["trace"]["id"] == format(context.trace_id, "032x")
    assert doc["span"]["id"] == format(context.span_id, "016x")


def test_ack_is_one_call(spans, ecs_lines):
    order = submit("lc-ack")
    samples = order_samples("lc-ack")
    order.acked("V-9")
    only(samples, acked=1, ack=1)
    order.expired()
    (span,) = spans.get_finished_spans()
    (event,) = span.events
    assert event.name == "order.acked"
    assert event.attributes["trading.venue.order_id"] == "V-9"
    latency = event.attributes["trading.ack.latency_seconds"]
    assert latency >= 0
    submitted, acked, _expired = trading_events(ecs_lines())
    assert acked["event"]["action"] == "order.acked"
    assert acked["event"]["dataset"] == DATASET_TRADING
    assert acked["trading"]["venue_order_id"] == "V-9"
    assert acked["trading"]["ack"] == {"latency_seconds": latency}  # one reading, both signals
    assert acked["trace"]["id"] == submitted["trace"]["id"]


def test_fills_partial_then_final_by_quantity(spans, ecs_lines):
    order = submit("lc-fill", arrival_price=187.0)
    samples = order_samples("lc-fill")
    order.filled(40, 187.1)
    only(samples, partially_filled=1, fills=1, filled_quantity=40, slippage=1)
    assert spans.get_finished_spans() == ()
    order.filled(60, 187.3)  # reaches the order's 100: final without saying so
    only(
        samples,
        partially_filled=1,
        filled=1,
        fills=2,
        filled_quantity=100,
        slippage=2,
        execution=1,
    )
    assert value("trading_fill_ratio", strategy="lc-fill", symbol="AAPL") == 1.0
    (span,) = spans.get_finished_spans()
    assert [(e.name, e.attributes["final"]) for e in span.events] == [
        ("order.filled", False),
        ("order.filled", True),
    ]
    assert span.events[1].attributes["trading.fill.quantity"] == 60
    assert span.events[1].attributes["trading.fill.slippage_bps"] == pytest.approx(3000 / 187)
    assert span.attributes["trading.status"] == "filled"
    assert span.attributes["trading.filled_quantity"] == 100
    _, partial, final = trading_events(ecs_lines())
    assert partial["event"]["action"] == "order.partially_filled"
    assert partial["message"] == "order o-1 partially filled"
    assert partial["trading"]["fill"] == {
        "quantity": 40.0,
        "price": 187.1,
        "final": False,
        "slippage_bps": pytest.approx(1000 / 187),
    }
    assert final["event"]["action"] == "order.filled"
    assert final["trading"]["status"] == "filled"
    assert final["trading"]["filled_quantity"] == 100.0
    assert final["trading"]["execution"]["duration_seconds"] >= 0
    assert {d["event"]["dataset"] for d in (partial, final)} == {DATASET_TRADING}


def test_explicit_final_flag_wins(spans):
    order = submit("lc-final")
    samples = order_samples("lc-final")
    order.filled(10, 187.2, final=True)  # the venue says done although 90 were never filled
    only(samples, filled=1, fills=1, filled_quantity=10, execution=1)
    assert value("trading_fill_ratio", strategy="lc-final", symbol="AAPL") == 0.1
    (span,) = spans.get_finished_spans()
    assert span.attributes["trading.status"] == "filled"


def test_rejection_is_one_call(spans, ecs_lines):
    order = submit("lc-reject")
    samples = order_samples("lc-reject")
    rejections = Samples(
        reason=(
            "trading_order_rejections_total",
            {"strategy": "lc-reject", "venue": "XNAS", "reason": "price_band"},
        )
    )
    order.rejected("price_band")
    only(samples, rejected=1)
    only(rejections, reason=1)
    assert value("trading_fill_ratio", strategy="lc-reject", symbol="AAPL") == 0.0
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["trading.reject.reason"] == "price_band"
    _, rejected = trading_events(ecs_lines())
    # A warning, not an error: an error would route it to watchfloor.errors instead.
    assert rejected["log.level"] == "warning"
    assert rejected["event"]["dataset"] == DATASET_TRADING
    assert rejected["trading"]["reject"] == {"reason": "price_band"}


def test_cancellation_after_a_partial_fill(spans, ecs_lines):
    order = submit("lc-cancel")
    order.filled(40, 187.2)
    samples = order_samples("lc-cancel")
    order.cancelled("user")
    only(samples, cancelled=1)
    assert value("trading_fill_ratio", strategy="lc-cancel", symbol="AAPL") == 0.4
    (span,) = spans.get_finished_spans()
    assert span.attributes["trading.status"] == "cancelled"
    assert span.attributes["trading.cancel.reason"] == "user"
    assert span.attributes["trading.filled_quantity"] == 40
    *_, cancelled = trading_events(ecs_lines())
    assert cancelled["event"]["action"] == "order.cancelled"
    assert cancelled["trading"]["cancel"] == {"reason": "user"}
    assert cancelled["trading"]["filled_quantity"] == 40.0


def test_expiry(spans, ecs_lines):
    order = submit("lc-expire", venue=None)
    samples = order_samples("lc-expire", venue="unknown")
    order.expired()
    only(samples, expired=1)
    (span,) = spans.get_finished_spans()
    assert span.attributes["trading.status"] == "expired"
    *_, expired = trading_events(ecs_lines())
    assert expired["event"]["action"] == "order.expired"
    assert "venue" not in expired["trading"]


def test_an_order_counts_once_in_the_fill_ratio(spans):
    half = submit("lc-once", order_id="o-half")
    half.filled(50, 187.2)
    half.cancelled()
    half.cancelled()  # a duplicate report of the end: counted, but the order is not re-added
    submit("lc-once", order_id="o-full").filled(100, 187.2)
    assert value("trading_fill_ratio", strategy="lc-once", symbol="AAPL") == 0.75


def test_later_steps_carry_the_order_context_on_any_thread(spans, ecs_lines):
    with correlation_scope("corr-order"):
        order = submit("lc-thread")
    steps: list[Callable[[], None]] = [order.acked, lambda: order.filled(100, 187.2)]
    for step in steps:
        worker = threading.Thread(target=step)
        worker.start()
        worker.join(timeout=10)
        assert not worker.is_alive()
    with correlation_scope("another-request"):
        logging.getLogger("tests.elsewhere").info("unrelated")
    docs = ecs_lines()
    events = trading_events(docs)
    trace_id = format(order.span.get_span_context().trace_id, "032x")
    assert [d["event"]["action"] for d in events] == [
        "order.submitted",
        "order.acked",
        "order.filled",
    ]
    assert {d["correlation"]["id"] for d in events} == {"corr-order"}
    assert {d["trace"]["id"] for d in events} == {trace_id}
    (unrelated,) = [d for d in docs if d["log"]["logger"] == "tests.elsewhere"]
    assert unrelated["correlation"]["id"] == "another-request"  # the scope was put back
    assert "trace" not in unrelated


def test_histograms_link_to_the_order_span(spans):
    order = submit("lc-exemplar")
    order.acked()  # called outside order.context(): the step makes the span current itself
    order.filled(100, 187.2)
    trace_id = format(order.span.get_span_context().trace_id, "032x")
    families = {"trading_order_ack_duration_seconds", "trading_order_execution_duration_seconds"}
    found = {
        sample.name: sample.exemplar.labels["trace_id"]
        for family in REGISTRY.collect()
        if family.name in families
        for sample in family.samples
        if sample.labels.get("strategy") == "lc-exemplar" and sample.exemplar is not None
    }
    assert set(found.values()) == {trace_id}
    assert {name.split("_duration")[0] for name in found} == {
        "trading_order_ack",
        "trading_order_execution",
    }


def test_bad_values_are_counted_never_raised(spans, ecs_lines):
    def errors(metric: str, reason: str) -> tuple[str, dict[str, str]]:
        return ("watchfloor_metric_input_errors_total", {"metric": metric, "reason": reason})

    counted = Samples(
        # The metric label is the family name: a counter's without its `_total`.
        submitted_quantity=errors("trading_submitted_quantity", "not_a_number"),
        limit_price=errors("trading_orders", "not_a_number"),
        arrival=errors("trading_slippage_bps", "out_of_range"),
        fill_quantity=errors("trading_filled_quantity", "not_finite"),
        fill_price=errors("trading_orders", "not_finite"),
    )
    order = submit("lc-bad", quantity=None, price="cheap", arrival_price=-1)
    order.filled(math.nan, math.inf)
    order.filled(5, 187.2, final=True)
    assert counted.moved() == {
        "submitted_quantity": 1,
        "limit_price": 1,
        "arrival": 1,
        "fill_quantity": 1,
        "fill_price": 1,
    }
    (span,) = spans.get_finished_spans()
    first_fill = span.events[0].attributes
    assert "trading.fill.quantity" not in first_fill and "trading.fill.price" not in first_fill
    assert first_fill["final"] is False  # no quantity to reach: final only when told
    assert span.attributes["trading.filled_quantity"] == 5
    submitted, partial, filled = trading_events(ecs_lines())
    assert "price" not in submitted["trading"] and "quantity" not in submitted["trading"]
    assert "quantity" not in partial["trading"]["fill"]
    assert filled["trading"]["status"] == "filled"


def test_strict_mode_raises_for_the_callers_mistake(spans, strict):
    order = submit("lc-strict")
    with pytest.raises(ValueError, match="must be a number"):
        order.filled("ten", 187.2)  # type: ignore[arg-type]
    order.cancelled()
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is not StatusCode.ERROR  # the mistake is not the order's
    assert span.events == ()  # raised before anything of the fill was recorded


def test_errors_of_trading_code_still_go_to_the_errors_dataset(ecs_lines):
    logging.getLogger("watchfloor.trading.orders").error("venue session lost")
    (doc,) = ecs_lines()
    assert doc["event"]["dataset"] == DATASET_ERRORS
