"""/metrics of both exporters after realistic traffic is valid in the text format and OpenMetrics.

Prometheus 3 asks for OpenMetrics first; the trading exporter's signed slippage histogram (negative
buckets) used to carry a _count without a _sum there, which OpenMetrics parsers refuse.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from tests.binaries import pinned_binary
from tests.unit.exporters.conftest import AUTH, TOKEN
from watchfloor_exporters.pipeline.app import build as build_pipeline
from watchfloor_exporters.pipeline.simulator import PipelineSimulator
from watchfloor_exporters.trading.app import build as build_trading
from watchfloor_exporters.trading.simulator import TradingSimulator

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


async def _expositions(app, batches) -> tuple[str, str]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
        for path, events in batches:
            if events:
                response = await client.post(path, json=events, headers=AUTH)
                assert response.status_code == 200, response.text
        text = await client.get("/metrics")
        openmetrics = await client.get("/metrics", headers={"Accept": OPENMETRICS})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    return text.text, openmetrics.text


def _trading_batches():
    simulator = TradingSimulator(seed=7, orders_per_second=200)
    start = datetime.now(UTC) - timedelta(seconds=30)
    for tick in range(40):
        yield "/v1/events", simulator.step(start + timedelta(seconds=tick * 0.5), 0.5)


def _pipeline_batches():
    simulator = PipelineSimulator(seed=7)
    start = datetime.now(UTC) - timedelta(seconds=60)
    for tick in range(60):
        yield from simulator.step(start + timedelta(seconds=tick), 1.0).items()


@pytest.mark.parametrize("exporter", ["trading", "pipeline"])
async def test_exposition_is_valid_in_both_formats(exporter):
    app, batches = {
        "trading": (build_trading(TOKEN, False, 0, None), _trading_batches()),
        "pipeline": (build_pipeline(TOKEN, False, 0, None), _pipeline_batches()),
    }[exporter]
    text, openmetrics = await _expositions(app, batches)
    families = {f.name: f for f in openmetrics_families(openmetrics)}  # raises when invalid
    assert {f.name for f in text_string_to_metric_families(text)} >= set(families) - {""}
    if exporter == "trading":
        slippage = families["trading_slippage_bps"]
        assert any(s.labels.get("le") == "-1.0" and s.value > 0 for s in slippage.samples)
    promtool_check(text)


def promtool_check(text: str, per_family: int = 300) -> None:
    """`promtool check metrics` on the first `per_family` series of each family.

    promtool's linter is quadratic in a family's series (55 s for 10 000 on the dev box), so a
    flooded exposition is checked on a sample; every line still passes prometheus-client's parsers.
    """
    kept: list[str] = []
    seen: set[str] = set()
    # Split on newlines only: a label value may hold \x85 or \u2028, which splitlines() splits on.
    for line in text.split("\n"):
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith("# HELP "):
                seen = set()
            kept.append(line)
            continue
        labels = line[line.find("{") : line.rfind("}") + 1] if "{" in line else ""
        series = re.sub(r'(^\{|,)le="[^"]*"', r"\1", labels)  # a histogram's lines are one series
        if series in seen or len(seen) < per_family:
            seen.add(series)
            kept.append(line)
    checked = subprocess.run(
        [pinned_binary("promtool"), "check", "metrics"],
        input="\n".join(kept) + "\n", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
