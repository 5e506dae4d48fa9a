"""No metric label shares a name with a label Prometheus attaches to the target it scrapes: the
series would keep the target's value and carry the metric's as `exported_<name>` (the
`service` label instrument_app used to add became `exported_service`)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

import watchfloor.logging
import watchfloor.metrics
from watchfloor.fastapi import instrument_app

PROMETHEUS = Path(__file__).resolve().parents[3] / "infrastructure" / "prometheus"
CATALOG_PREFIXES = ("trading_", "pipeline_", "watchfloor_")


def target_labels() -> set[str]:
    """Every label the repository's Prometheus configuration puts on a target or its series."""
    labels = {"job", "instance"}
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    labels |= set(config["global"].get("external_labels", {}))
    for job in config["scrape_configs"]:
        labels |= {rule["target_label"] for rule in job.get("relabel_configs", [])}
    for path in (PROMETHEUS / "targets" / "compose").glob("*.yml"):
        for group in yaml.safe_load(path.read_text()) or []:
            labels |= set(group.get("labels", {}))
    # The users' own targets: the example's commented `labels:` block.
    example = (PROMETHEUS / "targets" / "services.example.yml").read_text()
    block = example.split("#   labels:\n", 1)[1]
    labels |= set(re.findall(r"^#\s{5}(\w+):", block, flags=re.MULTILINE))
    return labels


def test_target_labels_include_the_service_label_users_add():
    assert {"job", "instance", "service", "team", "component"} <= target_labels()


def test_instrument_apps_labels_are_not_target_labels():
    registry = CollectorRegistry()
    instrument_app(FastAPI(), "svc-labels", registry=registry)
    names = {
        label
        for collector in registry._collector_to_names
        if isinstance(collector, MetricWrapperBase)
        for label in collector._labelnames
    }
    assert names == {"method", "route", "status"}
    assert not names & target_labels()


def test_catalog_labels_are_not_target_labels():
    assert watchfloor.metrics and watchfloor.logging  # every catalog module is imported
    clashes = {
        (collector._name, label)
        for collector in REGISTRY._collector_to_names
        if isinstance(collector, MetricWrapperBase) and collector._name.startswith(CATALOG_PREFIXES)
        for label in collector._labelnames
        if label in target_labels()
    }
    assert clashes == set()
