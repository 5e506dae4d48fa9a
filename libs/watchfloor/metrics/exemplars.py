"""Exemplars for histogram observations: the active span's ids, when it is sampled."""

from __future__ import annotations

from opentelemetry.trace import get_current_span


def current_exemplar() -> dict[str, str] | None:
    """`{"trace_id", "span_id"}` of the current sampled span, or None (nothing to link to)."""
    context = get_current_span().get_span_context()
    if not (context.is_valid and context.trace_flags.sampled):
        return None
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }
