"""The exporters' command line: settings from flags or the environment, token, logging, uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from watchfloor.logging import configure_logging
from watchfloor.tracing import configure_tracing
from watchfloor_exporters.common.server import protocol_from_env, serve

log = logging.getLogger(__name__)


def _token(simulate: bool, service: str) -> str | None:
    token = os.environ.get("WATCHFLOOR_INGEST_TOKEN", "").strip()
    if token:
        return token
    if not simulate:
        return None
    # The simulator needs a token to post through the same authenticated path as real clients.
    token = secrets.token_urlsafe(32)
    directory = Path(os.environ.get("XDG_RUNTIME_DIR") or Path.home() / ".cache") / "watchfloor"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{service}.token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    log.warning("no WATCHFLOOR_INGEST_TOKEN: generated one for this run", extra={"path": str(path)})
    return token


def run(
    *,
    service: str,
    default_port: int,
    port_variable: str,
    build: Callable[[str, bool, int, int | None], FastAPI],
    argv: list[str] | None = None,
) -> int:
    """Parse flags, configure watchfloor logging/tracing, serve. Returns the exit code."""
    parser = argparse.ArgumentParser(prog=f"watchfloor-{service}")
    parser.add_argument(
        "--host", default=os.environ.get("WATCHFLOOR_EXPORTER_HOST", "127.0.0.1"),
        help="address to bind (env WATCHFLOOR_EXPORTER_HOST; 0.0.0.0 in containers)",
    )  # fmt: skip
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get(port_variable, default_port)),
        help=f"port (env {port_variable}, default {default_port})",
    )  # fmt: skip
    parser.add_argument(
        "--simulate", action="store_true",
        default=os.environ.get("WATCHFLOOR_SIMULATE", "").lower() in {"1", "true", "yes"},
        help="generate realistic activity and post it to this exporter (env WATCHFLOOR_SIMULATE=1)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=int, default=int(os.environ.get("WATCHFLOOR_SIMULATOR_SEED", "0")) or None,
        help="simulator seed, for a reproducible stream (env WATCHFLOOR_SIMULATOR_SEED)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be 1-65535, got {args.port}")
    configure_logging(service)
    endpoints = ("WATCHFLOOR_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT",
                 "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")  # fmt: skip
    if any(os.environ.get(name) for name in endpoints):
        configure_tracing(service)
    token = _token(args.simulate, service)
    if token is None:
        print(
            f"watchfloor-{service}: refusing to start: POST endpoints need a bearer token; set "
            "WATCHFLOOR_INGEST_TOKEN (or run with --simulate, which generates one)",
            file=sys.stderr,
        )
        return 2
    try:
        protocol = protocol_from_env()
        app = build(token, args.simulate, args.port, args.seed)
    except ValueError as exc:
        print(f"watchfloor-{service}: {exc}", file=sys.stderr)
        return 2
    serve(app, host=args.host, port=args.port, protocol=protocol)
    return 0
