"""Elasticsearch templates, ILM, roles and Kibana objects, checked against what the library emits."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from watchfloor.correlation import correlation_scope
from watchfloor.logging import (
    DATASET_AUDIT,
    DATASET_ERRORS,
    DATASET_LOGS,
    DATASET_TRADING,
    audit,
    configure_logging,
    shutdown_logging,
)

pytestmark = pytest.mark.static

ROOT = Path(__file__).resolve().parents[2] / "provisioning"
ES = ROOT / "elasticsearch"


def load(folder: str) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (ES / folder).glob("*.json")}


MAPPINGS = load("component_templates")["watchfloor-ecs-mappings"]["template"]["mappings"]


def mapped_type(path: str) -> str | None:
    node = MAPPINGS
    for part in path.split("."):
        props = node.get("properties", {})
        if part not in props:
            return None
        node = props[part]
    return node.get("type", "object")


def leaves(doc: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(leaves(value, path + "."))
        else:
            out[path] = value
    return out


def test_every_field_watchfloor_logging_emits_is_mapped_with_a_fitting_type():
    stream = io.StringIO()
    configure_logging("mapping-check", stream=stream, environment="test")
    tracer = TracerProvider().get_tracer("t")
    with correlation_scope("c-1"), tracer.start_as_current_span("s"):
        logging.getLogger("m").info(
            "with extras", extra={"order_id": "o-1", "service.version": "1.0"}
        )
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("m").exception("failed")
    audit("limit.change", actor="ops", limit="max_position")
    shutdown_logging()
    owned = {}
    for line in stream.getvalue().splitlines():
        owned.update(leaves(json.loads(line)))
    for extra in ("order_id", "limit"):  # extra fields: the dynamic template maps them as keyword
        owned.pop(extra)
    for path, value in owned.items():
        kind = mapped_type(path)
        assert kind is not None, f"{path} is not mapped"
        if path == "@timestamp":
            assert kind == "date"
        elif isinstance(value, bool):
            assert kind == "boolean", path
        elif isinstance(value, int):
            assert kind == "long", path
        elif isinstance(value, str):
            assert kind in {"keyword", "match_only_text", "wildcard", "text"}, path
    extras = MAPPINGS["dynamic_templates"][0]["extra_strings_as_keyword"]
    assert extras["mapping"]["type"] == "keyword"


@pytest.mark.parametrize(
    ("dataset", "days"),
    [("logs", 30), ("system", 30), ("errors", 90), ("trading", 365), ("audit", 2555)],
)
def test_retention_by_class(dataset, days):
    template = load("index_templates")[f"logs-watchfloor.{dataset}"]
    assert template["index_patterns"] == [f"logs-watchfloor.{dataset}-*"]
    assert "data_stream" in template and template["priority"] > 100  # above the built-in logs-*-*
    policy_name = template["template"]["settings"]["index"]["lifecycle"]["name"]
    phases = load("ilm")[policy_name]["policy"]["phases"]
    assert phases["delete"]["min_age"] == f"{days}d"
    assert "rollover" in phases["hot"]["actions"]
    for component in template["composed_of"]:
        assert component in load("component_templates")


def test_datasets_the_library_emits_have_data_streams():
    templates = load("index_templates")
    for dataset in (DATASET_LOGS, DATASET_ERRORS, DATASET_TRADING, DATASET_AUDIT):
        assert f"logs-{dataset}" in templates


def test_roles_are_least_privilege():
    roles = load("roles")
    writer = roles["watchfloor_logstash_writer"]
    assert writer["indices"] == [
        {"names": ["logs-watchfloor.*"], "privileges": ["create_doc", "auto_configure"]}
    ]
    assert roles["watchfloor_grafana_reader"]["indices"][0]["privileges"] == [
        "read",
        "view_index_metadata",
    ]
    for name, role in roles.items():
        assert "all" not in role["cluster"]
        for grant in role["indices"]:
            assert not {"all", "manage"} & set(grant["privileges"])
            # Only trace retention deletes, and only Jaeger's indices: logs and audit never.
            if "delete_index" in grant["privileges"]:
                assert (name, grant["names"]) == ("watchfloor_trace_retention", ["jaeger-*"])


def test_kibana_objects():
    objects = [
        json.loads(line)
        for line in (ROOT / "kibana" / "saved_objects.ndjson").read_text().splitlines()
    ]
    views = {o["id"]: o for o in objects if o["type"] == "index-pattern"}
    for dataset in ("logs", "errors", "trading", "audit", "system"):
        assert (
            views[f"watchfloor-{dataset}"]["attributes"]["title"] == f"logs-watchfloor.{dataset}-*"
        )
    searches = {o["id"]: o for o in objects if o["type"] == "search"}
    assert set(searches) == {
        "watchfloor-errors-24h",
        "watchfloor-by-correlation-id",
        "watchfloor-audit-trail",
    }
    for search in searches.values():
        assert all(ref["id"] in views for ref in search["references"])
        json.loads(search["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
