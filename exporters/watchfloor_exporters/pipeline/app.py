"""The pipeline exporter's app: POST /v1/runs, /v1/quality, /v1/api-usage, /metrics, /ready."""

from __future__ import annotations

import functools

from fastapi import FastAPI

from watchfloor_exporters.common.http import create_app
from watchfloor_exporters.common.ingest import DEFAULT_MAX_BODY_BYTES, limit_from_env
from watchfloor_exporters.common.ingestor import Ingestor
from watchfloor_exporters.common.simulation import post_forever
from watchfloor_exporters.pipeline.events import ApiUsageEvent, QualityEvent, RunEvent
from watchfloor_exporters.pipeline.simulator import API, QUALITY, RUNS, PipelineSimulator
from watchfloor_exporters.pipeline.state import EXPORTER, PipelineState

DESCRIPTION = """Receives data-pipeline events and exposes the watchfloor pipeline metrics.

/v1/runs takes run_started and run_finished events, /v1/quality quality_check events,
/v1/api-usage api_usage events; each a JSON array or NDJSON, applied whole or not at all, with
replayed ids skipped. Data freshness is computed from each dataset's last successful load."""


def build(token: str, simulate: bool, port: int, seed: int | None) -> FastAPI:
    state = PipelineState()
    ingestor = Ingestor(EXPORTER, state.apply, state.label_values)
    background = None
    if simulate:
        simulator = PipelineSimulator(seed)
        background = functools.partial(
            post_forever,
            base_url=f"http://127.0.0.1:{port}",
            token=token,
            step=simulator.step,
            max_events=ingestor.max_events,
        )
    return create_app(
        exporter=EXPORTER,
        title="watchfloor pipeline exporter",
        description=DESCRIPTION,
        token=token,
        max_body_bytes=limit_from_env("WATCHFLOOR_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        routes={
            RUNS: ingestor.route(RunEvent),
            QUALITY: ingestor.route(QualityEvent),
            API: ingestor.route(ApiUsageEvent),
        },
        background=background,
    )
