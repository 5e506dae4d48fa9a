"""Rendering the registry for a scraper: OpenMetrics (with exemplars) if asked, else text.

Counters, gauges and histograms are written here rather than by prometheus-client's
generate_latest: that builds a labels dict and a Sample per bucket on every scrape, about 15 µs a
sample, which puts a trading exporter's 13 000-sample exposition near 200 ms on a dev box and over
the 100 ms /metrics budget while it ingests. Label strings are built once per series and cached;
values and exemplars are read live. Other collectors (process, platform, gc) go through
prometheus-client as usual. No `_created` series are written (Prometheus only reads them behind a
feature flag). A histogram with negative buckets (signed values) has no `_sum` in either format
and, in OpenMetrics, no `_count` either: OpenMetrics allows a count only beside a sum (its +Inf
bucket says the same). tests/unit/test_metrics_exposition.py checks the output parses to the same
samples, and that both formats pass prometheus-client's parsers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar
from prometheus_client.utils import floatToGoString as _untyped_float_to_go

from watchfloor.metrics.cardinality import expire_idle

# The Go float formatting Prometheus expects (1.0, +Inf, NaN); untyped in prometheus-client.
floatToGoString = cast(Callable[[float], str], _untyped_float_to_go)

_FAST_TYPES = frozenset({"counter", "gauge", "histogram"})
_label_cache: dict[tuple[str, tuple[str, ...]], str] = {}


def render(accept_header: str | None, registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The exposition body and its Content-Type for a request's Accept header.

    Prometheus sends `Accept: application/openmetrics-text...` when exemplar storage is on; only
    that format carries exemplars, so the choice follows the header as prometheus-client's own
    HTTP server does.
    """
    encoder, content_type = choose_encoder(accept_header or "")
    openmetrics = content_type.startswith("application/openmetrics-text")
    expire_idle()
    # Encoded a family at a time: the text of the whole exposition never sits in memory beside
    # its bytes (a large exposition would need three copies at once otherwise).
    parts: list[bytes] = []
    series = 0
    others: list[Collector] = []
    for collector in list(registry._collector_to_names):
        if isinstance(collector, MetricWrapperBase) and collector._type in _FAST_TYPES:
            lines = _family(collector, openmetrics)
            series += len(lines)
            parts.append(("\n".join(lines) + "\n").encode())
        else:
            others.append(collector)
    parts.append(encoder(_Collectors(others)))
    if len(_label_cache) > 2 * series:
        _label_cache.clear()  # series were removed since they were cached; keep it bounded
    return b"".join(parts), content_type


class _Collectors:
    """The collectors prometheus-client renders itself, shaped like a registry."""

    def __init__(self, collectors: list[Collector]) -> None:
        self._collectors = collectors

    def collect(self) -> Iterator[Any]:
        for collector in self._collectors:
            yield from collector.collect()


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _labels(name: str, names: tuple[str, ...], values: tuple[str, ...]) -> str:
    key = (name, values)
    text = _label_cache.get(key)
    if text is None:
        text = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))
        _label_cache[key] = text
    return text


def _series(metric: MetricWrapperBase) -> Iterable[tuple[tuple[str, ...], Any]]:
    if metric._labelnames:
        with metric._lock:
            return [(tuple(values), child) for values, child in metric._metrics.items()]
    return [((), metric)]


def _exemplar(exemplar: Exemplar | None, openmetrics: bool) -> str:
    if exemplar is None or not openmetrics:
        return ""
    pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(exemplar.labels.items()))
    stamp = f" {exemplar.timestamp}" if exemplar.timestamp is not None else ""
    return f" # {{{pairs}}} {floatToGoString(exemplar.value)}{stamp}"


def _braces(labels: str, extra: str = "") -> str:
    inner = f"{labels},{extra}" if labels and extra else labels or extra
    return f"{{{inner}}}" if inner else ""


def _family(metric: MetricWrapperBase, openmetrics: bool) -> list[str]:
    name, kind = metric._name, metric._type
    family = name + "_total" if kind == "counter" and not openmetrics else name
    out = [f"# HELP {family} {_help(metric._documentation)}", f"# TYPE {family} {kind}"]
    names = tuple(metric._labelnames)
    for values, child in _series(metric):
        labels = _labels(name, names, values)
        if kind == "counter":
            value = child._value
            exemplar = _exemplar(value.get_exemplar(), openmetrics)
            out.append(f"{name}_total{_braces(labels)} {floatToGoString(value.get())}{exemplar}")
        elif kind == "gauge":
            (sample,) = child._child_samples()  # a set_function gauge computes its value here
            out.append(f"{name}{_braces(labels)} {floatToGoString(sample.value)}")
        else:
            out.extend(_histogram(name, labels, child, openmetrics))
    return out


def _histogram(name: str, labels: str, child: Any, openmetrics: bool) -> list[str]:
    out = []
    total = 0.0
    bounds = child._upper_bounds
    for bound, bucket in zip(bounds, child._buckets, strict=True):
        total += bucket.get()
        le = _braces(labels, f'le="{floatToGoString(bound)}"')
        exemplar = _exemplar(bucket.get_exemplar(), openmetrics)
        out.append(f"{name}_bucket{le} {floatToGoString(total)}{exemplar}")
    if bounds[0] >= 0:
        out.append(f"{name}_count{_braces(labels)} {floatToGoString(total)}")
        out.append(f"{name}_sum{_braces(labels)} {floatToGoString(child._sum.get())}")
    elif not openmetrics:
        out.append(f"{name}_count{_braces(labels)} {floatToGoString(total)}")
    return out


def _help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")
