"""The watchfloor metric catalog, on prometheus-client's default registry.

One module per domain: `watchfloor.metrics.trading`, `watchfloor.metrics.pipeline`,
`watchfloor.metrics.shipping` (the log shipper's own health). Names are in base units with
`_total`, `_seconds`, `_bps`, `_ratio` suffixes; docs/metrics.md lists every metric and label.
Helpers (`record_order(...)`, `record_run(...)`, ...; re-exported here) cache label children and
cap unbounded labels (`cardinality`) and never raise into the caller: a bad value is folded,
clamped or dropped and counted in `watchfloor_metric_input_errors_total` (`input_errors`;
`set_strict(True)` or WATCHFLOOR_METRICS_STRICT=1 raises ValueError instead); histograms
carry the active span's trace id as an exemplar; `exposition.render` serves OpenMetrics when the
scraper asks for it. `/metrics` for any service (`serving`): `asgi_app()`, `wsgi_app()`,
`start_metrics_server(port)`; pre-fork servers sum their workers through prometheus-client's
multi-process mode (`multiprocess`, PROMETHEUS_MULTIPROC_DIR); docs/metrics-exposition.md.
"""

from watchfloor.metrics import pipeline, trading
from watchfloor.metrics.cardinality import OVERFLOW, set_label_limit
from watchfloor.metrics.exposition import render
from watchfloor.metrics.input_errors import set_strict
from watchfloor.metrics.pipeline import (
    record_api_call,
    record_cost,
    record_run,
    record_run_started,
    record_validation,
    set_freshness,
    set_quality,
    track_freshness,
)
from watchfloor.metrics.serving import MetricsServer, asgi_app, start_metrics_server, wsgi_app
from watchfloor.metrics.trading import (
    record_broker_call,
    record_fill,
    record_market_data,
    record_order,
    record_order_ack,
    record_rejection,
    record_risk_violation,
    record_slippage,
    record_submitted_quantity,
    set_drawdown,
    set_exposure,
    set_fill_ratio,
    set_limit_utilisation,
    set_pnl,
    set_win_ratio,
    slippage_bps,
)

__all__ = [
    "OVERFLOW",
    "MetricsServer",
    "asgi_app",
    "pipeline",
    "record_api_call",
    "record_broker_call",
    "record_cost",
    "record_fill",
    "record_market_data",
    "record_order",
    "record_order_ack",
    "record_rejection",
    "record_risk_violation",
    "record_run",
    "record_run_started",
    "record_slippage",
    "record_submitted_quantity",
    "record_validation",
    "render",
    "set_drawdown",
    "set_exposure",
    "set_fill_ratio",
    "set_freshness",
    "set_label_limit",
    "set_limit_utilisation",
    "set_pnl",
    "set_quality",
    "set_strict",
    "set_win_ratio",
    "slippage_bps",
    "start_metrics_server",
    "track_freshness",
    "trading",
    "wsgi_app",
]
