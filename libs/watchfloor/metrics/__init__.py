"""The watchfloor metric catalog, on prometheus-client's default registry.

One module per domain: `watchfloor.metrics.trading`, `watchfloor.metrics.pipeline`,
`watchfloor.metrics.shipping` (the log shipper's own health). Names are in base units with
`_total`, `_seconds`, `_bps`, `_ratio` suffixes; docs/metrics.md lists every metric and label.
Helpers (`trading.record_order(...)`, `pipeline.record_run(...)`, ...) cache label children and
cap unbounded labels (`cardinality`); histograms carry the active span's trace id as an exemplar;
`exposition.render` serves OpenMetrics when the scraper asks for it.
"""

from watchfloor.metrics import pipeline, trading
from watchfloor.metrics.cardinality import OVERFLOW, set_label_limit
from watchfloor.metrics.exposition import render

__all__ = ["OVERFLOW", "pipeline", "render", "set_label_limit", "trading"]
