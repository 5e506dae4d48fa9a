"""The pipeline exporter's app: POST /v1/runs, /v1/quality, /v1/api-usage, /metrics, /ready."""

from __future__ import annotations

from fastapi import FastAPI

from watchfloor_exporters.common.http import exporter_app
from watchfloor_exporters.common.ingestor import Ingestor
from watchfloor_exporters.pipeline.events import ApiUsageEvent, QualityEvent, RunEvent
from watchfloor_exporters.pipeline.simulator import API, QUALITY, RUNS, PipelineSimulator
from watchfloor_exporters.pipeline.state import EXPORTER, PipelineState

DESCRIPTION = """Receives data-pipeline events and exposes the watchfloor pipeline metrics.

/v1/runs takes run_started and run_finished events, /v1/quality quality_check events,
/v1/api-usage api_usage events; each a JSON array or NDJSON, applied whole or not at all, with
replayed ids skipped. Data freshness is computed from each dataset's last successful load."""


def build(token: str, simulate: bool, port: int, seed: int | None) -> FastAPI:
    state = PipelineState()
    return exporter_app(
        exporter=EXPORTER,
        title="watchfloor pipeline exporter",
        description=DESCRIPTION,
        token=token,
        ingestor=Ingestor(EXPORTER, state.apply),
        routes={RUNS: RunEvent, QUALITY: QualityEvent, API: ApiUsageEvent},
        step=PipelineSimulator(seed).step if simulate else None,
        port=port,
    )
