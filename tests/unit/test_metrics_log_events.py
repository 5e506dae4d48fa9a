"""watchfloor_log_events_total{level, dataset}: each written log event counted once, under its
document's level and dataset, both closed sets; counting never raises into the writer."""

from __future__ import annotations

import logging
from collections import Counter

import pytest
from prometheus_client import REGISTRY

from watchfloor.logging import audit
from watchfloor.logging.ecs import DATASET_TRADING
from watchfloor.logging.ecs import DATASETS as ECS_DATASETS
from watchfloor.metrics.cardinality import OVERFLOW
from watchfloor.metrics.log_events import DATASETS, LEVELS, LogEventTally, level_label

log = logging.getLogger("tests.log_events")


def _counts() -> dict[tuple[str, str], float]:
    return {
        (sample.labels["level"], sample.labels["dataset"]): sample.value
        for family in REGISTRY.collect()
        if family.name == "watchfloor_log_events"
        for sample in family.samples
        if sample.name == "watchfloor_log_events_total"
    }


def _moved(before: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    after = _counts()
    return {
        key: after[key] - before.get(key, 0.0) for key in after if after[key] != before.get(key)
    }


def _accepted() -> float:
    return REGISTRY.get_sample_value("watchfloor_log_events_accepted_total") or 0.0


def test_the_known_datasets_are_the_ones_the_ecs_builder_routes_to():
    assert DATASETS == ECS_DATASETS


def test_every_level_and_dataset_exists_at_zero_before_any_event():
    # A rule sees the first error of a process only as an increase from an existing series.
    assert set(_counts()) == {(lv, ds) for lv in LEVELS for ds in (*DATASETS, OVERFLOW)}


def test_each_written_event_counts_once_under_its_documents_level_and_dataset(ecs_lines):
    before, accepted = _counts(), _accepted()
    log.debug("debug")
    log.info("fill", extra={"event.dataset": DATASET_TRADING})
    log.warning("slow venue")
    log.error("order failed")
    log.critical("risk engine down")
    log.log(25, "a custom NOTICE level")
    logging.getLogger("uvicorn.error").error("a server's own record")
    audit("limits.changed", actor="ops")
    log.info("two args %s %s", "only-one")  # noqa: PLE1206 - written by the writer's fallback
    docs = ecs_lines()

    expected = Counter((d["log.level"], d["event"]["dataset"]) for d in docs)
    expected[("info", "watchfloor.logs")] += expected.pop(("level 25", "watchfloor.logs"))
    assert _moved(before) == {key: float(n) for key, n in expected.items()}
    assert expected[("error", "watchfloor.errors")] == 2  # the library's and uvicorn's
    assert expected[("info", "watchfloor.audit")] == 1
    assert expected[("info", "watchfloor.errors")] == 1  # the unformattable record
    assert sum(_moved(before).values()) == len(docs) == _accepted() - accepted


@pytest.mark.parametrize(
    ("levelno", "level"),
    [(0, "debug"), (5, "debug"), (10, "debug"), (19, "debug"), (20, "info"), (25, "info"),
     (30, "warning"), (40, "error"), (45, "error"), (50, "critical"), (99, "critical"),
     (-3, "debug")],
)  # fmt: skip
def test_custom_levels_count_under_the_standard_level_at_or_below(levelno, level):
    assert level_label(levelno) == level


def test_a_dataset_outside_the_known_set_is_recorded_as_overflow():
    before = _counts()
    tally = LogEventTally()
    tally.add(logging.ERROR, {"event": {"dataset": "orders.custom"}})
    tally.add(logging.ERROR, {"event": {"dataset": "WATCHFLOOR.ERRORS"}})
    tally.add(logging.ERROR, {"event": {"dataset": "watchfloor.errors"}})
    tally.flush()
    assert _moved(before) == {("error", OVERFLOW): 2.0, ("error", "watchfloor.errors"): 1.0}


def test_odd_documents_are_counted_as_overflow_without_raising():
    before = _counts()
    tally = LogEventTally()
    for document in (
        {},
        {"event": None},
        {"event": "watchfloor.logs"},
        {"event": {"dataset": ["watchfloor.logs"]}},
        {"event": {"dataset": {"unhashable": True}}},
        {"event": {"dataset": None}},
    ):
        tally.add(logging.WARNING, document)
    tally.flush()
    assert _moved(before) == {("warning", OVERFLOW): 6.0}


def test_a_flush_adds_the_batch_once_and_starts_the_next_empty():
    before = _counts()
    tally = LogEventTally()
    for _ in range(3):
        tally.add(logging.INFO, {"event": {"dataset": "watchfloor.logs"}})
    tally.flush()
    tally.flush()
    assert _moved(before) == {("info", "watchfloor.logs"): 3.0}
