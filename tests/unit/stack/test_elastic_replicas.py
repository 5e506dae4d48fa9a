"""WATCHFLOOR_INDEX_REPLICAS: the scale profile's one replica per index, through the setup job's plan."""

from __future__ import annotations

import json
from typing import Any

import pytest

from watchfloor_provisioning.elastic import ELASTICSEARCH, REPLICAS, SetupError, plan

PASSWORDS = {
    name: f"{name.lower()}-1"
    for name in (
        "KIBANA_SYSTEM_PASSWORD", "LOGSTASH_WRITER_PASSWORD", "JAEGER_WRITER_PASSWORD",
        "GRAFANA_READER_PASSWORD", "ELASTICSEARCH_EXPORTER_PASSWORD", "TRACE_RETENTION_PASSWORD",
    )
}  # fmt: skip


class _Recorder:
    """Stands in for the client: records each component template the plan would PUT."""

    def __init__(self) -> None:
        self.templates: dict[str, dict[str, Any]] = {}
        self.cluster = self

    def put_component_template(self, name: str, **body: Any) -> None:
        self.templates[name] = body


def _component_templates(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    recorder = _Recorder()
    for step in plan(env):
        if step.description.startswith("PUT _component_template/"):
            step.run(recorder)  # type: ignore[arg-type]
    return recorder.templates


def _replicas(template: dict[str, Any]) -> object:
    return (
        template.get("template", {}).get("settings", {}).get("index", {}).get("number_of_replicas")
    )


def test_without_the_variable_the_files_are_applied_as_written() -> None:
    sent = _component_templates(PASSWORDS)
    on_disk = {p.stem: json.loads(p.read_text()) for p in (ELASTICSEARCH / "component_templates").glob("*.json")}  # fmt: skip
    assert sent == on_disk
    assert _replicas(sent["watchfloor-settings"]) == 0


def test_the_scale_profile_sets_one_replica_and_changes_nothing_else() -> None:
    written = _component_templates(PASSWORDS)
    sent = _component_templates({**PASSWORDS, REPLICAS: "1"})
    assert _replicas(sent["watchfloor-settings"]) == 1
    index = dict(sent["watchfloor-settings"]["template"]["settings"]["index"])
    index["number_of_replicas"] = 0
    assert index == written["watchfloor-settings"]["template"]["settings"]["index"]
    # A template without a replica setting (the mappings) gets none.
    assert sent["watchfloor-ecs-mappings"] == written["watchfloor-ecs-mappings"]
    assert _replicas(sent["watchfloor-ecs-mappings"]) is None


@pytest.mark.parametrize("value", ["one", "-1", "1.5"])
def test_a_value_that_is_not_a_count_is_refused_by_name(value: str) -> None:
    with pytest.raises(SetupError, match=f"{REPLICAS} must be a whole number"):
        plan({**PASSWORDS, REPLICAS: value})
