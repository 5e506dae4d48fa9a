"""docs/exporters.md documents every event type and field the exporters accept."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from watchfloor_exporters.pipeline import events as pipeline
from watchfloor_exporters.trading import events as trading

DOC = (Path(__file__).resolve().parents[3] / "docs" / "exporters.md").read_text()
MODELS = [
    trading.OrderSubmitted, trading.OrderAcked, trading.OrderRejected, trading.OrderFilled,
    trading.OrderCancelled, trading.PositionSnapshot, trading.PnlSnapshot,
    trading.MarketDataLatency, trading.RiskViolation, trading.BrokerApiCall,
    pipeline.RunStarted, pipeline.RunFinished, pipeline.QualityCheck, pipeline.ApiUsage,
]  # fmt: skip


def test_every_event_type_and_field_is_documented():
    sections = re.split(r"^### ", DOC, flags=re.MULTILINE)[1:]
    documented = {
        s.split("`")[1]: set(re.findall(r"^\| `(\w+)` \|", s, re.MULTILINE)) for s in sections
    }
    for model in MODELS:
        tag = typing.get_args(model.model_fields["type"].annotation)[0]
        fields = set(model.model_fields) - {"type", "id", "timestamp"}
        assert documented.get(tag) == fields, tag
