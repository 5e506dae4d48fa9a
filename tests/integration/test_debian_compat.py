"""Bare-metal hosts without Go: local mode still runs on Debian 12's Prometheus 2.42 and
Alertmanager 0.25 (one start: the config and every rule group load, Alertmanager is ready).

Everything else in the suite runs the releases Compose pins; this is the one compatibility check.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.conftest import LocalStack, free_port, local_env
from watchfloor_stack.localmode.components import DEFAULT_PORTS

pytestmark = pytest.mark.integration

DEBIAN = {
    "PROMETHEUS_BIN": ("/usr/bin/prometheus", "2.42."),
    "ALERTMANAGER_BIN": ("/usr/bin/prometheus-alertmanager", "0.25."),
}


def _debian_binaries() -> dict[str, str]:
    found = {}
    for variable, (path, version) in DEBIAN.items():
        if not Path(path).exists():
            pytest.skip(
                f"{path} is not installed (apt-get install prometheus prometheus-alertmanager)"
            )
        printed = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
        if version not in printed.stdout + printed.stderr:
            pytest.skip(f"{path} is not Debian 12's {version}x")
        found[variable] = path
    return found


def test_local_mode_starts_on_debian_12_prometheus_and_alertmanager(tmp_path: Path):
    binaries = _debian_binaries()
    ports = {name: free_port() for name in DEFAULT_PORTS}
    stack = LocalStack(tmp_path, {**local_env(tmp_path, ports), **binaries}, ports, "t")
    started = stack.cli("up", "--evaluation-interval", "1s")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        info = stack.get("prometheus", "/api/v1/status/buildinfo").json()["data"]
        assert info["version"].startswith("2.42."), info
        deadline = time.monotonic() + 30
        while True:
            groups = stack.get("prometheus", "/api/v1/rules").json()["data"]["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            unhealthy = [r["name"] for r in rules if r["health"] != "ok"]
            if (rules and not unhealthy) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        rule_files = sorted(
            p.name
            for p in (Path(__file__).parents[2] / "infrastructure/prometheus/rules").glob("*.yml")
        )
        assert sorted({Path(g["file"]).name for g in groups}) == rule_files
        assert rules and not unhealthy, unhealthy
        status = stack.get("alertmanager", "/api/v2/status").json()
        assert status["versionInfo"]["version"].startswith("0.25."), status["versionInfo"]
        assert status["config"]["original"], "Alertmanager 0.25 loaded no configuration"
    finally:
        stopped = stack.cli("down")
        assert stopped.returncode == 0, stopped.stderr
