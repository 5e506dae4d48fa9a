"""promtool and amtool on exactly the files Compose mounts, laid out where the containers see them.

The promtool and amtool checking them are those of the releases the containers run (Prometheus
3.5, Alertmanager 0.28; `make tools` builds them); the e2e suite starts the containers on Docker
hosts.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.binaries import pinned_binary
from tests.static.conftest import REPO


def _materialise(service: dict[str, Any], root: Path) -> None:
    """Copy every bind mount of `service` to root/<container path>."""
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if not source.startswith("./"):
            continue
        destination = root / target.lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / source).is_dir():
            shutil.copytree(REPO / source, destination)
        else:
            shutil.copy(REPO / source, destination)


def _flag(command: list[str], name: str) -> str:
    return next(arg.split("=", 1)[1] for arg in command if arg.startswith(f"--{name}="))


def _running(compose: dict[str, Any], repository: str) -> dict[str, dict[str, Any]]:
    """The services running `repository`'s image: one per server, two or three in the scale profile."""
    found = {
        name: service for name, service in compose["services"].items()
        if service["image"].rsplit(":", 1)[0] == repository
    }  # fmt: skip
    assert found, repository
    return found


def test_promtool_accepts_the_prometheus_config_as_mounted(compose: dict[str, Any], tmp_path: Path):
    promtool = pinned_binary("promtool")
    for name, prometheus in _running(compose, "prom/prometheus").items():
        root = tmp_path / name
        _materialise(prometheus, root)
        # A user's targets file, as README "Scraping your services" shows.
        example = REPO / "infrastructure" / "prometheus" / "targets" / "services.example.yml"
        (root / "etc/prometheus/services/orders.yml").write_text(
            example.read_text().replace("[]", "")
            .replace("# - targets", "- targets").replace("#   ", "  ")
        )  # fmt: skip
        config = root / _flag(prometheus["command"], "config.file").lstrip("/")
        # The container's environment, which external_labels may name (the scale profile's replica).
        env = {"PATH": "/usr/bin:/bin", **(prometheus.get("environment") or {})}
        result = subprocess.run([promtool, "check", "config", str(config)],
                                capture_output=True, text=True, check=False, env=env)  # fmt: skip
        assert result.returncode == 0, f"{name}: {result.stdout + result.stderr}"
        rules = len(list((REPO / "infrastructure" / "prometheus" / "rules").glob("*.yml")))
        assert f"SUCCESS: {rules} rule files found" in result.stdout + result.stderr


def test_amtool_accepts_what_the_alertmanager_config_job_renders(
    compose: dict[str, Any], tmp_path: Path
):
    amtool = pinned_binary("amtool")
    job = compose["services"]["alertmanager-config"]
    _materialise(job, tmp_path)
    # The job's own shell command, run with this root standing in for the container's /.
    script = job["command"][-1].replace("/etc/", f"{tmp_path}/etc/")
    script = script.replace("python -m", f"{sys.executable} -m")
    (tmp_path / "etc/alertmanager-rendered").mkdir(parents=True)
    subprocess.run(["sh", "-ec", script], env={**job["environment"], "PATH": "/usr/bin:/bin"},
                   check=True)  # fmt: skip
    # Every Alertmanager mounts that volume where its --config.file points.
    for name, alertmanager in _running(compose, "prom/alertmanager").items():
        config = _flag(alertmanager["command"], "config.file")
        assert f"alertmanager-config:{Path(config).parent}:ro" in alertmanager["volumes"], name
    rendered = tmp_path / "etc/alertmanager-rendered/alertmanager.yml"
    assert (rendered.stat().st_mode & 0o777) == 0o600
    assert compose["services"]["alertmanager-config"]["user"] == "65534:65534"
    result = subprocess.run([amtool, "check-config", str(rendered)],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    # The templates were copied next to it: amtool found and parsed them.
    assert " - 1 templates\n  SUCCESS" in result.stdout, result.stdout
