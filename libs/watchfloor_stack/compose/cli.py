"""`python -m watchfloor_stack.compose env|preflight|urls`: the steps of `make up` around it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from watchfloor_stack.compose import dotenv, preflight, webauth
from watchfloor_stack.compose.compose_file import InterpolationError, load_merged, memory_budget

DEFAULT_COMPOSE_FILE = Path("docker-compose.monitoring.yml")
# What `make up` prints once the stack is healthy: (name, port variable, path, login); the
# ports' defaults are .env.example's.
URLS = [
    ("Grafana", "GRAFANA_PORT", "/", "GRAFANA_ADMIN_USER / GRAFANA_ADMIN_PASSWORD"),
    ("Kibana", "KIBANA_PORT", "/", "elastic / ELASTIC_PASSWORD"),
    ("Prometheus", "PROMETHEUS_PORT", "/", "watchfloor / PROMETHEUS_PASSWORD"),
    ("Alertmanager", "ALERTMANAGER_PORT", "/", "watchfloor / ALERTMANAGER_PASSWORD"),
    ("Jaeger", "JAEGER_UI_PORT", "/", ""),
    ("Alert hub", "ALERTHUB_PORT", "/", "WATCHFLOOR_ALERTHUB_TOKEN"),
    ("Elasticsearch", "ELASTICSEARCH_PORT", "/", "elastic / ELASTIC_PASSWORD"),
    ("Trading exporter", "TRADING_EXPORTER_PORT", "/metrics", ""),
    ("Pipeline exporter", "PIPELINE_EXPORTER_PORT", "/metrics", ""),
    ("Pushgateway", "PUSHGATEWAY_PORT", "/", "watchfloor / PUSHGATEWAY_PASSWORD"),
    ("Logs (Beats, watchfloor.logging)", "LOGSTASH_BEATS_PORT", "", ""),
    ("Traces (OTLP/HTTP)", "JAEGER_OTLP_HTTP_PORT", "/v1/traces", ""),
]


def _environment(env_file: Path) -> dict[str, str]:
    # Compose's precedence: the shell's environment over .env.
    return {**dotenv.parse(env_file.read_text()), **os.environ}


def cmd_env(args: argparse.Namespace) -> int:
    existed = args.env_file.exists()
    added = dotenv.ensure_env(args.example, args.env_file)
    added += webauth.ensure_hashes(args.env_file)
    if not existed:
        print(f"created {args.env_file} with random secrets (mode 0600)")
    elif added:
        print(f"set in {args.env_file}: {', '.join(added)}")
    return 0


def cmd_preflight(args: argparse.Namespace) -> int:
    try:
        environment = _environment(args.env_file)
    except OSError as exc:
        print(f"watchfloor: cannot read {args.env_file}: {exc}", file=sys.stderr)
        return 1
    try:
        config = load_merged(args.compose_files, environment)
    except InterpolationError as exc:
        print(f"watchfloor: .env lacks a setting: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"watchfloor: cannot read a compose file: {exc}", file=sys.stderr)
        return 1
    # Every check runs even when an earlier one failed: one run lists everything to fix.
    docker_problems, info = preflight.check_docker(args.docker)
    problems = list(docker_problems)
    if info.get("MemTotal"):
        problems += preflight.check_memory(int(info["MemTotal"]), config)
    else:
        problems += preflight.check_memory(preflight.host_memory(), config, "This machine")
    problems += preflight.check_max_map_count(info)
    problems += preflight.check_disk(info)
    running = preflight.running_services(args.docker, args.compose_files) if info else set()
    problems += preflight.check_ports(config, running)
    for problem in problems:
        print(f"watchfloor: {problem}", file=sys.stderr)
    if docker_problems:
        print(f"watchfloor: {preflight.LOCAL_MODE}", file=sys.stderr)
    if problems:
        print(f"watchfloor: {len(problems)} pre-flight problem(s); nothing was started",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"pre-flight ok: Docker and Compose v2 present, memory for the "
          f"{memory_budget(config) / 1024**3:.1f} GiB budget, disk space, ports free")  # fmt: skip
    return 0


def cmd_urls(args: argparse.Namespace) -> int:
    defaults = dotenv.parse(args.example.read_text())
    env = _environment(args.env_file)
    address = env.get("WATCHFLOOR_BIND_ADDRESS") or "127.0.0.1"
    host = "localhost" if address in {"127.0.0.1", "0.0.0.0"} else address  # noqa: S104
    print("\nwatchfloor is up:")
    for name, variable, path, login in URLS:
        port = env.get(variable) or defaults[variable]  # empty means Compose's default too
        scheme = "http://" if path else ""
        line = f"  {name:<34} {scheme}{host}:{port}{path}"
        print(f"{line:<70} {login}" if login else line)
    print(f"\nCredentials are in {args.env_file} (variables named above); "
          "`make down` stops the stack, `make clean` also deletes its data.")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m watchfloor_stack.compose")
    parser.add_argument("--env-file", type=Path, default=Path(".env"))
    parser.add_argument("--example", type=Path, default=Path(".env.example"))
    parser.add_argument(
        "--compose-file",
        dest="compose_files",
        type=Path,
        action="append",
        help="repeatable, merged in order like `docker compose -f a -f b` "
        f"(default: {DEFAULT_COMPOSE_FILE})",
    )
    parser.add_argument("--docker", default="docker")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("env", help="create .env from .env.example, or add what it lacks")
    commands.add_parser(
        "preflight", help="check Docker, Compose v2, memory, vm.max_map_count, disk space, ports"
    )
    commands.add_parser("urls", help="print the stack's URLs and where the credentials are")
    args = parser.parse_args(argv)
    # Not argparse's default: `append` would add the given files to it.
    args.compose_files = args.compose_files or [DEFAULT_COMPOSE_FILE]
    handlers = {"env": cmd_env, "preflight": cmd_preflight, "urls": cmd_urls}
    return handlers[args.command](args)
