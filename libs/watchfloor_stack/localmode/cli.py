"""`watchfloor-local up|down|status`: local mode's command line."""

from __future__ import annotations

import argparse
import base64
import errno
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from watchfloor_stack.compose import webauth
from watchfloor_stack.localmode.components import (
    Component,
    MissingBinaryError,
    components,
    is_ha,
    port_variable,
    ports,
)
from watchfloor_stack.localmode.config import (
    load_secrets,
    render_alertmanager,
    render_prometheus,
    render_web_auth,
    scrape_interval_of,
)
from watchfloor_stack.localmode.jaeger_config import render_jaeger
from watchfloor_stack.localmode.processes import ProcessTable

SECRETS = ("WATCHFLOOR_INGEST_TOKEN", "WATCHFLOOR_ALERTHUB_TOKEN", *webauth.PASSWORDS.values())


def state_dir() -> Path:
    # The working directory, like `docker compose`: `make local-up` runs it from the checkout.
    return Path(os.environ.get("WATCHFLOOR_LOCAL_DIR") or ".local").resolve()


def healthy(component: Component, secrets: dict[str, str], timeout: float = 2.0) -> bool:
    request = urllib.request.Request(component.health_url)  # noqa: S310 - a loopback URL we built
    password = secrets.get(component.password_secret or "")
    if password:
        token = base64.b64encode(f"{webauth.USERNAME}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _ports_file(state: Path) -> Path:
    return state / "ports.json"


def saved_ports(state: Path) -> dict[str, int] | None:
    """The ports the running local mode was started with (what `up` saved), if any."""
    try:
        saved = json.loads(_ports_file(state).read_text())
        return {str(name): int(port) for name, port in saved.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def _in_use(port: int) -> bool:
    # SO_REUSEADDR as the servers set it: a port in TIME_WAIT is free for them, so for us too.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _choose_ports(
    state: Path, table: ProcessTable, free_ports: bool, ha: bool
) -> dict[str, int] | None:
    """The ports to run on: a running local mode's saved ones, else the configured ones with every
    conflict reported at once (None), or moved to free ports when asked."""
    if any(table.running(name) for name in table.names()):
        running = saved_ports(state) or ports()
        if is_ha(running) != ha:
            print(
                f"watchfloor-local: local mode is running {'with' if is_ha(running) else 'without'}"
                f" --ha; run `watchfloor-local down` first to switch",
                file=sys.stderr,
            )
            return None
        return running
    wanted = ports(ha)
    busy = [name for name, port in wanted.items() if _in_use(port)]
    if busy and free_ports:
        taken = set(wanted.values())
        for name in busy:
            while (port := _free_port()) in taken:
                continue
            wanted[name] = port
            taken.add(port)
    elif busy:
        print("watchfloor-local: these ports are taken by other programs:", file=sys.stderr)
        for name in busy:
            print(f"  {wanted[name]:>5}  {name:<18} move it with {port_variable(name)}=<port>",
                  file=sys.stderr)  # fmt: skip
        print("or run `watchfloor-local up --free-ports` to pick free ones.", file=sys.stderr)
        return None
    return wanted


def up(
    scrape_interval: str | None,
    evaluation_interval: str | None,
    timeout: float,
    group_wait: str | None = None,
    free_ports: bool = False,
    ha: bool = False,
) -> int:
    state = state_dir()
    state.mkdir(parents=True, exist_ok=True)
    table = ProcessTable(state)
    try:
        chosen = _choose_ports(state, table, free_ports, ha)
        if chosen is None:
            return 1
        listening = chosen
        parts = components(state, listening, scrape_interval=scrape_interval_of(scrape_interval))
    except (MissingBinaryError, ValueError) as exc:
        print(f"watchfloor-local: {exc}", file=sys.stderr)
        return 2
    _ports_file(state).write_text(json.dumps(listening, indent=2) + "\n")
    secrets = load_secrets(state, SECRETS)
    render_web_auth(state, secrets)
    render_prometheus(state, listening, scrape_interval, evaluation_interval)
    render_jaeger(state, listening)
    env = {**os.environ, **secrets}
    env.setdefault("WATCHFLOOR_ENVIRONMENT", "local")
    # The hub's calls to Alertmanager (silences, reconciliation) authenticate.
    env["WATCHFLOOR_ALERTMANAGER_USERNAME"] = webauth.USERNAME
    env["WATCHFLOOR_ALERTMANAGER_PASSWORD"] = secrets[webauth.PASSWORDS["alertmanager"]]
    # The exporters trace into local Jaeger, as they do into Compose's.
    env.setdefault("WATCHFLOOR_OTLP_ENDPOINT", f"http://127.0.0.1:{listening['jaeger-otlp-http']}")
    render_alertmanager(state, listening["alert-hub"], env, group_wait)
    for component in parts:
        if table.running(component.name) is None:
            if healthy(component, secrets, timeout=0.5):
                print(
                    f"watchfloor-local: port {component.port} already answers for "
                    f"{component.name} but not a process local mode started; stop it or set "
                    f"{port_variable(component.name)}",
                    file=sys.stderr,
                )
                down()
                return 1
            table.start(component, env)
    deadline = time.monotonic() + timeout
    waiting = list(parts)
    while waiting and time.monotonic() < deadline:
        waiting = [c for c in waiting if not healthy(c, secrets)]
        for component in waiting:
            if table.running(component.name) is None:
                return _failed(table, component, "exited")
        if waiting:
            time.sleep(0.25)
    if waiting:
        return _failed(table, waiting[0], f"not healthy after {timeout:.0f} s")
    print("watchfloor local mode is up:")
    for component in parts:
        url = component.url
        if component.name == "alert-hub":
            url += f"/#token={secrets['WATCHFLOOR_ALERTHUB_TOKEN']}"
        login = f"  ({webauth.USERNAME} / {component.password_secret})" * bool(
            component.password_secret
        )
        print(f"  {component.name:<18} {url}{login}")
    print(f"Jaeger OTLP/HTTP: http://127.0.0.1:{listening['jaeger-otlp-http']}/v1/traces")
    print(f"state, logs and generated secrets: {state}; `watchfloor-local tokens` prints them")
    return 0


def _failed(table: ProcessTable, component: Component, why: str) -> int:
    log = table.log_file(component.name)
    tail = log.read_text(errors="replace").splitlines()[-20:] if log.exists() else []
    print(f"watchfloor-local: {component.name} {why}; last lines of {log}:", file=sys.stderr)
    for line in tail:
        print(f"  | {line}", file=sys.stderr)
    down()
    return 1


def down() -> int:
    table = ProcessTable(state_dir())
    stopped = [name for name in reversed(table.names()) if table.stop(name)]
    print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
    return 0


def status() -> int:
    state = state_dir()
    table = ProcessTable(state)
    try:
        # The ports it was started with, not what this shell's environment says now.
        parts = components(state, saved_ports(state) or ports())
    except (MissingBinaryError, ValueError) as exc:
        print(f"watchfloor-local: {exc}", file=sys.stderr)
        return 2
    secrets = load_secrets(state, SECRETS, generate=False)
    all_up = True
    for component in parts:
        entry = table.running(component.name)
        up_now = entry and healthy(component, secrets)
        health = "healthy" if up_now else "unhealthy" if entry else "-"
        all_up &= health == "healthy"
        pid = str(entry.pid) if entry else "stopped"
        print(f"{component.name:<18} {pid:>8}  {health:<9} {component.url}")
    return 0 if all_up else 3


def tokens() -> int:
    """The secrets local mode runs with, as NAME=value lines (eval-able, or for curl)."""
    for name, value in load_secrets(state_dir(), SECRETS, generate=False).items():
        print(f"{name}={value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="watchfloor-local",
        description="Run the metrics half of watchfloor on native binaries, on 127.0.0.1.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start everything and wait until healthy")
    start.add_argument("--scrape-interval", help="override global.scrape_interval, e.g. 1s")
    start.add_argument("--evaluation-interval", help="override global.evaluation_interval")
    start.add_argument("--timeout", type=float, default=60.0, help="seconds to become healthy")
    start.add_argument("--group-wait", help="override Alertmanager's group_wait/interval, e.g. 1s")
    start.add_argument(
        "--free-ports", action="store_true", help="move components whose port is taken to free ones"
    )
    start.add_argument(
        "--ha",
        action="store_true",
        help="two Prometheus replicas writing to VictoriaMetrics, three peered Alertmanagers",
    )
    commands.add_parser("down", help="stop exactly the processes local mode started")
    commands.add_parser("status", help="show each process and its health (exit 3 if any down)")
    commands.add_parser("tokens", help="print the tokens and passwords in use (NAME=value)")
    args = parser.parse_args(argv)
    if args.command == "up":
        return up(
            args.scrape_interval,
            args.evaluation_interval,
            args.timeout,
            args.group_wait,
            args.free_ports,
            args.ha,
        )
    if args.command == "down":
        return down()
    if args.command == "tokens":
        return tokens()
    return status()


if __name__ == "__main__":
    sys.exit(main())
