"""docs/metrics.md lists exactly the catalog's metrics, with their labels."""

from __future__ import annotations

import re
from pathlib import Path

import watchfloor.metrics
import watchfloor.metrics.shipping  # noqa: F401
from watchfloor.metrics.cardinality import _families

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
ROW = re.compile(r"^\| `([a-z_]+)` \| (\w+) \| ([^|]*) \|", re.MULTILINE)


def test_every_catalog_metric_is_documented_with_its_labels():
    documented = {name: labels for name, _, labels in ROW.findall(DOC.read_text())}
    for family in _families:
        if family.name.startswith("cap_test"):
            continue
        suffix = "_total" if family.metric._type == "counter" else ""
        name = family.name + suffix
        assert name in documented, f"{name} is missing from docs/metrics.md"
        labels = [label.strip(" *") for label in documented[name].split(",")]
        assert labels == list(family._labels), name
    for name in documented:
        assert name.startswith(("trading_", "pipeline_", "watchfloor_")), name
