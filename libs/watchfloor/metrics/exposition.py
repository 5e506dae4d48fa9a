"""Rendering the registry for a scraper: OpenMetrics (with exemplars) if asked, else text."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder


def render(accept_header: str | None, registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The exposition body and its Content-Type for a request's Accept header.

    Prometheus sends `Accept: application/openmetrics-text...` when exemplar storage is on; only
    that format carries exemplars, so the choice follows the header exactly as prometheus-client's
    own HTTP server does.
    """
    encoder, content_type = choose_encoder(accept_header or "")
    return encoder(registry), content_type
