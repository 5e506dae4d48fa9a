"""docs/metrics.md lists exactly the catalog's metrics, with their type, unit and labels."""

from __future__ import annotations

import re
from pathlib import Path

import watchfloor.metrics
import watchfloor.metrics.shipping  # noqa: F401
from watchfloor.metrics.cardinality import LABEL_OVERFLOW, _families
from watchfloor.metrics.input_errors import INPUT_ERRORS, REASONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
ROW = re.compile(r"^\| `([a-z_]+)` \| (\w+) \| ([^|]+) \| ([^|]*) \|", re.MULTILINE)


def _documented() -> dict[str, tuple[str, str, list[str]]]:
    return {
        name: (kind, unit.strip(), [label.strip() for label in labels.split(",")])
        for name, kind, unit, labels in ROW.findall(DOC.read_text())
    }


def test_every_catalog_metric_is_documented_with_type_unit_and_capped_labels():
    documented = _documented()
    for family in _families:
        if family.name.startswith("cap_test"):
            continue
        kind = family.metric._type
        name = family.name + ("_total" if kind == "counter" else "")
        assert name in documented, f"{name} is missing from docs/metrics.md"
        doc_kind, unit, labels = documented[name]
        assert doc_kind == kind, name
        assert unit, f"{name} has no unit"
        capped = {family._labels[i] for i in family._capped}
        assert [label.strip("*") for label in labels] == list(family._labels), name
        assert {label.strip("*") for label in labels if label.startswith("*")} == capped, name


def test_the_overflow_counter_is_documented_and_names_are_prefixed():
    documented = _documented()
    assert documented["watchfloor_label_overflow_total"][2] == list(LABEL_OVERFLOW._labelnames)
    errors = documented["watchfloor_metric_input_errors_total"]
    assert errors[2] == list(INPUT_ERRORS._labelnames)
    assert all(f"`{reason}`" in DOC.read_text() for reason in REASONS)
    for name in documented:
        assert name.startswith(("trading_", "pipeline_", "watchfloor_")), name
