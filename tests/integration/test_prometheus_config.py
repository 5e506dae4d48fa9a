"""The one prometheus.yml: Compose targets for every job, and promtool 3.5 on local mode's
rendering (tests/static checks the Compose layout)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.binaries import pinned_binary
from watchfloor_stack.localmode.components import DEFAULT_PORTS
from watchfloor_stack.localmode.config import PROMETHEUS_DIR, render_prometheus

pytestmark = [pytest.mark.integration, pytest.mark.static]


def _referenced_target_files() -> set[str]:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    configs = [*config["scrape_configs"], *config["alerting"]["alertmanagers"]]
    files = {f for c in configs for sd in c["file_sd_configs"] for f in sd["files"]}
    return {f.removeprefix("targets/") for f in files if f.startswith("targets/")}


def test_compose_targets_cover_every_file_sd_file_except_the_users_own():
    compose = {p.name for p in (PROMETHEUS_DIR / "targets" / "compose").glob("*.yml")}
    assert compose == _referenced_target_files()
    for path in (PROMETHEUS_DIR / "targets" / "compose").glob("*.yml"):
        for group in yaml.safe_load(path.read_text()):
            for target in group["targets"]:
                host, port = target.split(":")
                assert host != "127.0.0.1" and port.isdigit(), target


def test_promtool_accepts_the_local_mode_rendering(tmp_path: Path):
    ports = {name: 10_000 + i for i, name in enumerate(DEFAULT_PORTS)}
    config = render_prometheus(tmp_path, ports, scrape_interval="1s", evaluation_interval="1s")
    result = subprocess.run([pinned_binary("promtool"), "check", "config", str(config)],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
