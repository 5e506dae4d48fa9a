"""What local mode runs: each component's command, port, health check and Debian package."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Component:
    name: str
    port: int
    command: tuple[str, ...]
    health_path: str
    # (variable to override the binary, Debian package that provides it); None for Python parts.
    binary_hint: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


DEFAULT_PORTS = {
    "prometheus": 9090,
    "pushgateway": 9091,
    "node-exporter": 9100,
    "trading-exporter": 9101,
    "pipeline-exporter": 9102,
    "alertmanager": 9093,
    "alert-hub": 9095,
}

# Binary name candidates: Debian's package names first, then the upstream names.
_BINARIES = {
    "prometheus": ("PROMETHEUS_BIN", "prometheus", ("prometheus",)),
    "pushgateway": (
        "PUSHGATEWAY_BIN",
        "prometheus-pushgateway",
        ("prometheus-pushgateway", "pushgateway"),
    ),
    "node-exporter": (
        "NODE_EXPORTER_BIN",
        "prometheus-node-exporter",
        ("prometheus-node-exporter", "node_exporter"),
    ),
    "alertmanager": (
        "ALERTMANAGER_BIN",
        "prometheus-alertmanager",
        ("prometheus-alertmanager", "alertmanager"),
    ),
}


class MissingBinaryError(RuntimeError):
    pass


def port_of(name: str) -> int:
    variable = f"WATCHFLOOR_LOCAL_{name.upper().replace('-', '_')}_PORT"
    raw = os.environ.get(variable)
    if not raw:
        return DEFAULT_PORTS[name]
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{variable} must be a port number, got {raw!r}")
    return int(raw)


def find_binary(name: str) -> str:
    variable, package, candidates = _BINARIES[name]
    override = os.environ.get(variable)
    if override:
        if shutil.which(override) is None:
            raise MissingBinaryError(f"{variable}={override} is not an executable")
        return override
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    raise MissingBinaryError(
        f"{name} not found: install it with 'sudo apt-get install {package}' "
        f"or point {variable} at the binary"
    )


def components(state: Path, retention: str = "2d") -> list[Component]:
    """Every component with its command line, in start order."""
    prometheus_port = port_of("prometheus")
    return [
        Component(
            "prometheus",
            prometheus_port,
            (
                find_binary("prometheus"),
                f"--config.file={state / 'prometheus' / 'prometheus.yml'}",
                f"--storage.tsdb.path={state / 'prometheus' / 'data'}",
                f"--storage.tsdb.retention.time={retention}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                "--web.enable-lifecycle",
                "--enable-feature=exemplar-storage",
            ),
            "/-/ready",
            ("PROMETHEUS_BIN", "prometheus"),
        ),
        Component(
            "pushgateway",
            port_of("pushgateway"),
            (
                find_binary("pushgateway"),
                f"--web.listen-address=127.0.0.1:{port_of('pushgateway')}",
            ),
            "/-/ready",
            ("PUSHGATEWAY_BIN", "prometheus-pushgateway"),
        ),
        Component(
            "node-exporter",
            port_of("node-exporter"),
            (
                find_binary("node-exporter"),
                f"--web.listen-address=127.0.0.1:{port_of('node-exporter')}",
            ),
            "/metrics",
            ("NODE_EXPORTER_BIN", "prometheus-node-exporter"),
        ),
        _exporter("trading-exporter", "watchfloor_exporters.trading"),
        _exporter("pipeline-exporter", "watchfloor_exporters.pipeline"),
        Component(
            "alertmanager",
            port_of("alertmanager"),
            (
                find_binary("alertmanager"),
                f"--config.file={state / 'alertmanager' / 'alertmanager.yml'}",
                f"--storage.path={state / 'alertmanager' / 'data'}",
                f"--web.listen-address=127.0.0.1:{port_of('alertmanager')}",
                f"--web.external-url=http://127.0.0.1:{port_of('alertmanager')}",
                "--cluster.listen-address=",  # a single instance: no gossip port to collide
            ),
            "/-/ready",
            ("ALERTMANAGER_BIN", "prometheus-alertmanager"),
        ),
        Component(
            "alert-hub",
            port_of("alert-hub"),
            (
                sys.executable,
                "-m",
                "watchfloor_alerthub",
                "--port",
                str(port_of("alert-hub")),
                "--database",
                str(state / "alerthub.sqlite"),
                "--alertmanager-url",
                f"http://127.0.0.1:{port_of('alertmanager')}",
            ),
            "/health",
        ),
    ]


def _exporter(name: str, module: str) -> Component:
    port = port_of(name)
    return Component(
        name,
        port,
        (sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port), "--simulate"),
        "/ready",
    )
