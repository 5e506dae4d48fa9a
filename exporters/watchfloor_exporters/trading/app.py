"""The trading exporter's app: POST /v1/events, /metrics, /health, /ready."""

from __future__ import annotations

import functools

from fastapi import FastAPI

from watchfloor_exporters.common.http import create_app
from watchfloor_exporters.common.ingest import DEFAULT_MAX_BODY_BYTES, limit_from_env
from watchfloor_exporters.common.ingestor import Ingestor
from watchfloor_exporters.common.simulation import post_forever
from watchfloor_exporters.trading.events import TradingEvent
from watchfloor_exporters.trading.simulator import TradingSimulator
from watchfloor_exporters.trading.state import EXPORTER, TradingState

DESCRIPTION = """Receives trading activity events and exposes the watchfloor trading metrics.

A batch is a JSON array or NDJSON of events, each with `id`, `type`, `timestamp`. A batch is
applied whole or not at all: any invalid event rejects it with a 4xx naming the field. Events
whose id was already applied are skipped, so replaying a batch does not double count."""


def build(token: str, simulate: bool, port: int, seed: int | None) -> FastAPI:
    state = TradingState()
    ingestor = Ingestor(EXPORTER, state.apply, state.label_values)
    background = None
    if simulate:
        simulator = TradingSimulator(seed)
        background = functools.partial(
            post_forever,
            base_url=f"http://127.0.0.1:{port}",
            token=token,
            step=lambda now, dt: {"/v1/events": simulator.step(now, dt)},
            max_events=ingestor.max_events,
        )
    return create_app(
        exporter=EXPORTER,
        title="watchfloor trading exporter",
        description=DESCRIPTION,
        token=token,
        max_body_bytes=limit_from_env("WATCHFLOOR_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        routes={"/v1/events": ingestor.route(TradingEvent)},
        background=background,
    )
