"""The trading exporter's app: POST /v1/events, /metrics, /health, /ready."""

from __future__ import annotations

from fastapi import FastAPI

from watchfloor_exporters.common.http import exporter_app
from watchfloor_exporters.common.ingestor import Ingestor
from watchfloor_exporters.common.simulation import Step
from watchfloor_exporters.trading.events import TradingEvent
from watchfloor_exporters.trading.simulator import TradingSimulator
from watchfloor_exporters.trading.state import EXPORTER, TradingState

DESCRIPTION = """Receives trading activity events and exposes the watchfloor trading metrics.

A batch is a JSON array or NDJSON of events, each with `id`, `type`, `timestamp`. A batch is
applied whole or not at all: any invalid event rejects it with a 4xx naming the field. Events
whose id was already applied are skipped, so replaying a batch does not double count."""


def build(token: str, simulate: bool, port: int, seed: int | None) -> FastAPI:
    state = TradingState()
    step: Step | None = None
    if simulate:
        simulator = TradingSimulator(seed)

        def step(now, dt):  # type: ignore[no-untyped-def]
            return {"/v1/events": simulator.step(now, dt)}

    return exporter_app(
        exporter=EXPORTER,
        title="watchfloor trading exporter",
        description=DESCRIPTION,
        token=token,
        ingestor=Ingestor(EXPORTER, state.apply),
        routes={"/v1/events": TradingEvent},
        step=step,
        port=port,
    )
