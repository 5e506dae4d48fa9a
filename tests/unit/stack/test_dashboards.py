"""Dashboard contract: generated, stable, wired to provisioned datasources, with units."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from watchfloor_provisioning.grafana import generate

pytestmark = pytest.mark.static

ROOT = Path(__file__).resolve().parents[3] / "provisioning" / "grafana"
DASHBOARDS = sorted((ROOT / "dashboards").glob("*/*.json"))
DATASOURCE_UIDS = {
    d["uid"]
    for d in yaml.safe_load((ROOT / "datasources" / "datasources.yml").read_text())["datasources"]
}


def _panels(dashboard: dict) -> list[dict]:
    return [p for p in dashboard["panels"] if p.get("type") != "row"]


def test_committed_json_is_what_the_code_generates():
    assert generate.main(["--check"]) == 0, "stale dashboards: run `make dashboards`"


def test_seven_dashboards_with_stable_uids():
    uids = {path.stem for path in DASHBOARDS}
    assert uids == {"watchfloor-trading", "watchfloor-risk", "watchfloor-executive", "watchfloor-pipelines",
                    "watchfloor-operations", "watchfloor-slo", "watchfloor-meta"}  # fmt: skip


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_contract(path):
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] == path.stem
    assert "__inputs" not in dashboard
    assert dashboard["refresh"] in {"5s", "30s"}
    if "trading" in dashboard["tags"] and dashboard["uid"] != "watchfloor-executive":
        assert dashboard["refresh"] == "5s"  # real-time
    for panel in _panels(dashboard):
        assert panel["datasource"]["uid"] in DATASOURCE_UIDS, panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']} has no unit"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in DATASOURCE_UIDS
            assert target["expr"].strip()
    for variable in dashboard.get("templating", {}).get("list", []):
        assert variable["datasource"]["uid"] in DATASOURCE_UIDS


def test_alert_dashboard_links_point_at_real_dashboards():
    uids = {path.stem for path in DASHBOARDS}
    rules = Path(__file__).resolve().parents[3] / "infrastructure" / "prometheus" / "rules"
    for path in rules.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["annotations"]["dashboard"].removeprefix("/d/") in uids, rule[
                        "alert"
                    ]


def test_one_provider_per_folder_without_ui_updates():
    providers = yaml.safe_load((ROOT / "dashboards.yml").read_text())["providers"]
    folders = {path.parent.name for path in DASHBOARDS}
    assert {p["options"]["path"].rsplit("/", 1)[1] for p in providers} == folders
    assert all(p["allowUiUpdates"] is False for p in providers)


def test_template_variables_cover_the_dimensions_users_filter_by():
    names = set()
    for path in DASHBOARDS:
        names |= {
            v["name"] for v in json.loads(path.read_text()).get("templating", {}).get("list", [])
        }
    assert {"strategy", "symbol", "venue", "service", "dataset"} <= names
