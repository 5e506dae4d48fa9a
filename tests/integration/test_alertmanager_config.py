"""Alertmanager's routing, rendered from the environment and checked by the amtool of the
Alertmanager release Compose pins (0.28, built by `make tools`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.binaries import pinned_binary
from watchfloor_stack.localmode.alertmanager_config import TEMPLATE, MissingSettingError, render

pytestmark = [pytest.mark.integration, pytest.mark.static]

ALL_RECEIVERS = {
    "WATCHFLOOR_ALERTHUB_TOKEN": "hub-token",
    "WATCHFLOOR_SLACK_WEBHOOK_URL": "https://hooks.slack.invalid/services/T0/B0/x",
    "WATCHFLOOR_PAGERDUTY_ROUTING_KEY": "pd-key",
    "WATCHFLOOR_SMTP_SMARTHOST": "smtp.invalid:587",
    "WATCHFLOOR_SMTP_FROM": "alerts@watchfloor.invalid",
    "WATCHFLOOR_SMTP_USERNAME": "alerts",
    "WATCHFLOOR_SMTP_PASSWORD": "smtp-secret",
    "WATCHFLOOR_ALERT_EMAIL_TO": "oncall@watchfloor.invalid",
}


def _write(tmp_path: Path, env: dict[str, str]) -> Path:
    shutil.copytree(TEMPLATE.parent / "templates", tmp_path / "templates", dirs_exist_ok=True)
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(render(TEMPLATE.read_text(), env), sort_keys=False))
    return path


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [pinned_binary("amtool"), *args], capture_output=True, text=True, check=False
    )


def test_without_receivers_everything_goes_to_the_hub_only():
    config = render(TEMPLATE.read_text(), {"WATCHFLOOR_ALERTHUB_TOKEN": "t"})
    for receiver in config["receivers"]:
        assert set(receiver) == {"name", "webhook_configs"}, receiver["name"]
        (hook,) = receiver["webhook_configs"]
        assert hook["url"] == "http://alert-hub:9095/alertmanager/webhook"
        assert hook["http_config"]["authorization"]["credentials"] == "t"
    assert not any(
        key.startswith("smtp_") and key != "smtp_require_tls" for key in config["global"]
    )


def test_with_every_receiver_configured():
    config = render(TEMPLATE.read_text(), ALL_RECEIVERS)
    page = next(r for r in config["receivers"] if r["name"] == "trading-page")
    assert set(page) == {
        "name",
        "webhook_configs",
        "pagerduty_configs",
        "slack_configs",
        "email_configs",
    }
    assert page["pagerduty_configs"][0]["routing_key"] == "pd-key"
    assert config["global"]["smtp_smarthost"] == "smtp.invalid:587"


def test_email_needs_smtp_and_the_hub_token_is_required():
    config = render(
        TEMPLATE.read_text(),
        {"WATCHFLOOR_ALERTHUB_TOKEN": "t", "WATCHFLOOR_ALERT_EMAIL_TO": "x@y.invalid"},
    )
    assert all("email_configs" not in r for r in config["receivers"])
    with pytest.raises(MissingSettingError, match="WATCHFLOOR_ALERTHUB_TOKEN"):
        render(TEMPLATE.read_text(), {})
    result = subprocess.run(
        [sys.executable, "-m", "watchfloor_stack.localmode.alertmanager_config"],
        capture_output=True, text=True, check=False, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 2 and "WATCHFLOOR_ALERTHUB_TOKEN" in result.stderr


@pytest.mark.parametrize(
    "env", [{"WATCHFLOOR_ALERTHUB_TOKEN": "t"}, ALL_RECEIVERS], ids=["hub-only", "all"]
)
def test_amtool_check_config(tmp_path, env):
    result = _amtool("check-config", str(_write(tmp_path, env)))
    assert result.returncode == 0, result.stdout + result.stderr


ROUTES = [
    ({"alertname": "Watchdog", "severity": "info", "team": "platform"}, "hub"),
    ({"alertname": "Anything", "severity": "info", "team": "trading"}, "hub"),
    (
        {"alertname": "TradingStrategyDrawdownCritical", "severity": "critical", "team": "trading"},
        "trading-page",
    ),
    (
        {"alertname": "TradingSlippageHigh", "severity": "warning", "team": "trading"},
        "trading-chat",
    ),
    ({"alertname": "PipelineRunFailed", "severity": "critical", "team": "data"}, "data-page"),
    ({"alertname": "PipelineDataStale", "severity": "warning", "team": "data"}, "data-chat"),
    (
        {"alertname": "ElasticsearchClusterRed", "severity": "critical", "team": "platform"},
        "platform-page",
    ),
    ({"alertname": "TargetDown", "severity": "warning", "team": "platform"}, "platform-chat"),
    ({"alertname": "NoTeam", "severity": "warning"}, "hub"),
]


@pytest.mark.parametrize(("labels", "receiver"), ROUTES, ids=[r for _, r in ROUTES])
def test_amtool_routes(tmp_path, labels, receiver):
    config = _write(tmp_path, ALL_RECEIVERS)
    pairs = [f"{k}={v}" for k, v in labels.items()]
    result = _amtool("config", "routes", "test", f"--config.file={config}",
                     f"--verify.receivers={receiver}", *pairs)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_trading_warnings_follow_us_market_hours():
    config = render(TEMPLATE.read_text(), ALL_RECEIVERS)
    trading = next(r for r in config["route"]["routes"] if r.get("matchers") == ['team="trading"'])
    chat = next(r for r in trading["routes"] if r["receiver"] == "trading-chat")
    assert chat["active_time_intervals"] == ["us-regular-trading-hours"]
    assert chat["mute_time_intervals"] == ["us-market-holidays"]
    hours = next(t for t in config["time_intervals"] if t["name"] == "us-regular-trading-hours")
    assert hours["time_intervals"][0]["location"] == "America/New_York"


@pytest.mark.parametrize(
    "name", ["watchfloor.title", "watchfloor.slack.text", "watchfloor.email.html"]
)
def test_notification_templates_render(name):
    result = _amtool("template", "render", f"--template.glob={TEMPLATE.parent / 'templates' / '*.tmpl'}",
                     f'--template.text={{{{ template "{name}" . }}}}')  # fmt: skip
    assert result.returncode == 0, result.stderr
