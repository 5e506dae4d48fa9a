"""The alert rules: valid and unit-tested under the promtool of the Prometheus release Compose pins
(3.5, built by `make tools`), and each alert complete (mixin conventions)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.binaries import pinned_binary

pytestmark = [pytest.mark.integration, pytest.mark.static]

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "infrastructure" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*_test.yml"))


def _alerts() -> list[dict]:
    alerts = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            alerts += [rule for rule in group["rules"] if "alert" in rule]
    return alerts


def _cases() -> list[dict]:
    cases = []
    for path in TEST_FILES:
        for test in yaml.safe_load(path.read_text())["tests"]:
            cases += test.get("alert_rule_test", [])
    return cases


def test_promtool_check_rules():
    promtool = pinned_binary("promtool")
    result = subprocess.run([promtool, "check", "rules", *map(str, RULE_FILES)],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass():
    promtool = pinned_binary("promtool")
    result = subprocess.run([promtool, "test", "rules", *map(str, TEST_FILES)],
                            capture_output=True, text=True, check=False, cwd=PROMETHEUS)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_alert_is_complete(alert):
    name = alert["alert"]
    assert re.fullmatch(r"(?:[A-Z][a-z0-9]+)+", name), f"{name} is not CamelCase"
    assert alert["labels"]["severity"] in {"critical", "warning", "info"}
    annotations = alert["annotations"]
    for key in ("summary", "description", "runbook_url", "dashboard"):
        assert annotations.get(key), f"{name} has no {key}"
    assert "$value" in annotations["description"], f"{name}'s description does not give the value"
    assert annotations["runbook_url"] == f"docs/runbooks/{name}.md"
    runbook = ROOT / annotations["runbook_url"]
    assert runbook.exists(), f"runbook {runbook} is missing"
    text = runbook.read_text()
    assert "## What to check" in text and "## What to do" in text


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_alert_has_a_firing_and_a_quiet_promtool_case(alert):
    cases = [c for c in _cases() if c["alertname"] == alert["alert"]]
    assert any(c.get("exp_alerts") for c in cases), f"no promtool case where {alert['alert']} fires"
    if alert["alert"] != "Watchdog":  # always firing, by design
        assert any(c.get("exp_alerts") == [] for c in cases), (
            f"no case where {alert['alert']} stays quiet"
        )


def test_thresholds_live_in_one_file_and_are_all_used():
    thresholds = yaml.safe_load((PROMETHEUS / "rules" / "thresholds.yml").read_text())
    names = [r["record"] for g in thresholds["groups"] for r in g["rules"]]
    assert len(names) == len(set(names))
    others = [p for p in RULE_FILES if p.name != "thresholds.yml"]
    used = " ".join(p.read_text() for p in others)
    for name in names:
        assert name in used, f"{name} is defined but no rule uses it"
    for path in others:
        assert "record: watchfloor:threshold:" not in path.read_text(), (
            f"{path} defines a threshold"
        )
