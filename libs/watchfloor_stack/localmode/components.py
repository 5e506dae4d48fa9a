"""What local mode runs: each component's command, ports, health check and where its binary is."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from watchfloor_stack import gotools
from watchfloor_stack.compose.webauth import PASSWORDS, USERNAME
from watchfloor_stack.localmode import jaeger_config


@dataclass(frozen=True)
class Component:
    name: str
    port: int
    command: tuple[str, ...]
    health_path: str
    # Where health_path answers when it is not `port` (Jaeger's healthcheck extension).
    health_port: int | None = None
    # The secret holding its basic-auth password (webauth.USERNAME), if it has one.
    password_secret: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port or self.port}{self.health_path}"


# One port per component (its URL), plus Jaeger's other listeners (OTLP, health, metrics).
DEFAULT_PORTS = {
    "prometheus": 9090,
    "pushgateway": 9091,
    "node-exporter": 9100,
    "trading-exporter": 9101,
    "pipeline-exporter": 9102,
    "alertmanager": 9093,
    "alert-hub": 9095,
    **jaeger_config.DEFAULT_PORTS,
}

# `up --ha` adds a second Prometheus, two more Alertmanagers (each Alertmanager's gossip port is
# "<name>-cluster") and VictoriaMetrics, which both Prometheus replicas remote_write to.
HA_PORTS = {
    "prometheus-b": 9190,
    "alertmanager-2": 9193,
    "alertmanager-3": 9293,
    "alertmanager-cluster": 9094,
    "alertmanager-2-cluster": 9194,
    "alertmanager-3-cluster": 9294,
    "victoriametrics": 8428,
}
# Prometheus replica -> its `replica` external label; the first is local mode's one Prometheus.
REPLICAS = {"prometheus": "a", "prometheus-b": "b"}
ALERTMANAGERS = ("alertmanager", "alertmanager-2", "alertmanager-3")

# The binary each component runs: NAME_BIN wins, then the pinned release `make tools` built, then
# PATH (Debian's package names first, then the upstream names).
_BINARIES: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "prometheus": ("prometheus", "prometheus", ("prometheus",)),
    "pushgateway": (
        "pushgateway",
        "prometheus-pushgateway",
        ("prometheus-pushgateway", "pushgateway"),
    ),
    "node-exporter": (
        "node_exporter",
        "prometheus-node-exporter",
        ("prometheus-node-exporter", "node_exporter"),
    ),
    "alertmanager": (
        "alertmanager",
        "prometheus-alertmanager",
        ("prometheus-alertmanager", "alertmanager"),
    ),
    # Debian 12 has no Jaeger v2 package: `make tools`, or an official release via JAEGER_BIN.
    "jaeger": ("jaeger", None, ("jaeger",)),
    "victoriametrics": ("victoria-metrics", None, ("victoria-metrics", "victoria-metrics-prod")),
}


class MissingBinaryError(RuntimeError):
    pass


def port_of(name: str) -> int:
    variable = port_variable(name)
    raw = os.environ.get(variable)
    if not raw:
        return {**DEFAULT_PORTS, **HA_PORTS}[name]
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{variable} must be a port number, got {raw!r}")
    return int(raw)


def find_binary(name: str) -> str:
    binary, package, candidates = _BINARIES[name]
    variable = gotools.variable(binary)
    override = os.environ.get(variable)
    if override:
        if shutil.which(override) is None:
            raise MissingBinaryError(f"{variable}={override} is not an executable")
        return override
    built = gotools.pinned(binary)
    if built is not None:
        return str(built)
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    debian = f", install it with 'sudo apt-get install {package}'" if package else ""
    raise MissingBinaryError(
        f"{name} not found: run `make tools` (builds the release Compose pins, with Go){debian}, "
        f"or point {variable} at a release binary"
    )


def ports(ha: bool = False) -> dict[str, int]:
    """Every port local mode listens on, from WATCHFLOOR_LOCAL_*_PORT or the defaults."""
    return {name: port_of(name) for name in (*DEFAULT_PORTS, *(HA_PORTS if ha else ()))}


def is_ha(listening: dict[str, int]) -> bool:
    """Whether these ports (ports.json of a running local mode) are those of `up --ha`."""
    return "victoriametrics" in listening


def port_variable(name: str) -> str:
    return f"WATCHFLOOR_LOCAL_{name.upper().replace('-', '_')}_PORT"


def components(
    state: Path,
    listening: dict[str, int] | None = None,
    retention: str = "2d",
    scrape_interval: str = "15s",
) -> list[Component]:
    """Every component with its command line, in start order, on `listening` (default: ports());
    the HA set when `listening` has the HA ports. `scrape_interval` is the window in which
    VictoriaMetrics keeps one sample of the replicas' two."""
    port = listening or ports()
    ha = is_ha(port)
    alertmanagers = ALERTMANAGERS if ha else ALERTMANAGERS[:1]
    store = [_victoriametrics(state, port, retention, scrape_interval)] if ha else []
    replicas = list(REPLICAS) if ha else ["prometheus"]
    return [
        Component(
            "jaeger",
            port["jaeger"],
            (find_binary("jaeger"), "--config", str(state / "jaeger" / "config.yaml")),
            "/status",
            port["jaeger-health"],
        ),
        *store,
        *(_prometheus(state, name, port[name], retention) for name in replicas),
        Component(
            "pushgateway",
            port["pushgateway"],
            (
                find_binary("pushgateway"),
                f"--web.listen-address=127.0.0.1:{port['pushgateway']}",
                f"--web.config.file={state / 'pushgateway' / 'web.yml'}",
            ),
            "/-/ready",
            password_secret=PASSWORDS["pushgateway"],
        ),
        Component(
            "node-exporter",
            port["node-exporter"],
            (
                find_binary("node-exporter"),
                f"--web.listen-address=127.0.0.1:{port['node-exporter']}",
            ),
            "/metrics",
        ),
        _exporter("trading-exporter", "watchfloor_exporters.trading", port["trading-exporter"]),
        _exporter("pipeline-exporter", "watchfloor_exporters.pipeline", port["pipeline-exporter"]),
        *(_alertmanager(state, name, port, alertmanagers) for name in alertmanagers),
        Component(
            "alert-hub",
            port["alert-hub"],
            (
                sys.executable,
                "-m",
                "watchfloor_alerthub",
                "--port",
                str(port["alert-hub"]),
                "--database",
                str(state / "alerthub.sqlite"),
                *(
                    argument
                    for name in alertmanagers
                    for argument in ("--alertmanager-url", f"http://127.0.0.1:{port[name]}")
                ),
            ),
            "/health",
        ),
    ]


def _prometheus(state: Path, name: str, listen: int, retention: str) -> Component:
    # Replicas share the web config (one password); each has its own config file and TSDB.
    return Component(
        name,
        listen,
        (
            find_binary("prometheus"),
            f"--config.file={state / name / 'prometheus.yml'}",
            f"--storage.tsdb.path={state / name / 'data'}",
            f"--storage.tsdb.retention.time={retention}",
            f"--web.listen-address=127.0.0.1:{listen}",
            f"--web.config.file={state / 'prometheus' / 'web.yml'}",
            "--web.enable-lifecycle",
            "--enable-feature=exemplar-storage",
        ),
        "/-/ready",
        password_secret=PASSWORDS["prometheus"],
    )


def _alertmanager(
    state: Path, name: str, port: dict[str, int], cluster: tuple[str, ...]
) -> Component:
    gossip: tuple[str, ...]
    if len(cluster) == 1:
        gossip = ("--cluster.listen-address=",)  # a single instance: no gossip port to collide
    else:
        # Peered on loopback: notifications and silences are gossiped, so the hub hears of an
        # alert from the first in line and a silence made on one holds on all.
        gossip = (
            f"--cluster.listen-address=127.0.0.1:{port[f'{name}-cluster']}",
            f"--cluster.advertise-address=127.0.0.1:{port[f'{name}-cluster']}",
            *(
                f"--cluster.peer=127.0.0.1:{port[f'{peer}-cluster']}"
                for peer in cluster
                if peer != name
            ),
        )
    return Component(
        name,
        port[name],
        (
            find_binary("alertmanager"),
            f"--config.file={state / 'alertmanager' / 'alertmanager.yml'}",
            f"--storage.path={state / name / 'data'}",
            f"--web.listen-address=127.0.0.1:{port[name]}",
            f"--web.external-url=http://127.0.0.1:{port[name]}",
            f"--web.config.file={state / 'alertmanager' / 'web.yml'}",
            *gossip,
        ),
        "/-/ready",
        password_secret=PASSWORDS["alertmanager"],
    )


def _victoriametrics(
    state: Path, port: dict[str, int], retention: str, scrape_interval: str
) -> Component:
    # Prometheus' password guards the same data here; read from the file, never on the command
    # line (the pid files and `ps` show command lines).
    return Component(
        "victoriametrics",
        port["victoriametrics"],
        (
            find_binary("victoriametrics"),
            f"-httpListenAddr=127.0.0.1:{port['victoriametrics']}",
            f"-storageDataPath={state / 'victoriametrics' / 'data'}",
            f"-retentionPeriod={retention}",
            f"-dedup.minScrapeInterval={scrape_interval}",
            f"-httpAuth.username={USERNAME}",
            f"-httpAuth.password=file://{state / 'secrets' / PASSWORDS['prometheus'].lower()}",
        ),
        "/health",
        password_secret=PASSWORDS["prometheus"],
    )


def _exporter(name: str, module: str, port: int) -> Component:
    return Component(
        name,
        port,
        (sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port), "--simulate"),
        "/ready",
    )
