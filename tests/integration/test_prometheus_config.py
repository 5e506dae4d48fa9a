"""The one prometheus.yml passes promtool for both target sets (Compose and local mode)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from watchfloor.localmode.components import DEFAULT_PORTS
from watchfloor.localmode.config import PROMETHEUS_DIR, render_prometheus

pytestmark = pytest.mark.integration

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus; .ci/run does)"
)


def _referenced_target_files() -> set[str]:
    text = (PROMETHEUS_DIR / "prometheus.yml").read_text()
    return set(re.findall(r"targets/([\w.-]+\.yml)", text))


def test_compose_targets_cover_every_file_sd_file_except_the_users_own():
    compose = {p.name for p in (PROMETHEUS_DIR / "targets" / "compose").glob("*.yml")}
    assert compose == _referenced_target_files() - {"services.yml"}
    for path in (PROMETHEUS_DIR / "targets" / "compose").glob("*.yml"):
        for group in yaml.safe_load(path.read_text()):
            for target in group["targets"]:
                host, port = target.split(":")
                assert host != "127.0.0.1" and port.isdigit(), target


@needs_promtool
def test_promtool_accepts_the_compose_layout(tmp_path: Path):
    # The layout the Compose stack mounts: the config, rules/, and targets/compose as targets/.
    shutil.copy(PROMETHEUS_DIR / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copytree(PROMETHEUS_DIR / "rules", tmp_path / "rules")
    shutil.copytree(PROMETHEUS_DIR / "targets" / "compose", tmp_path / "targets")
    shutil.copy(
        PROMETHEUS_DIR / "targets" / "services.example.yml", tmp_path / "targets" / "services.yml"
    )
    result = subprocess.run([PROMTOOL, "check", "config", str(tmp_path / "prometheus.yml")],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_accepts_the_local_mode_rendering(tmp_path: Path):
    ports = {name: 10_000 + i for i, name in enumerate(DEFAULT_PORTS)}
    config = render_prometheus(tmp_path, ports, scrape_interval="1s", evaluation_interval="1s")
    result = subprocess.run([PROMTOOL, "check", "config", str(config)],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
