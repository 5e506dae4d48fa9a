"""`watchfloor-alerthub` (default port 9095)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn

from watchfloor.logging import configure_logging
from watchfloor_alerthub import limits
from watchfloor_alerthub.app import create_app
from watchfloor_stack.assets import runbooks

USERNAME, PASSWORD = "WATCHFLOOR_ALERTMANAGER_USERNAME", "WATCHFLOOR_ALERTMANAGER_PASSWORD"


class ConfigError(Exception):
    pass


def _number(kind: Callable[[str], float], *, zero: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (value >= 0 if zero else value > 0) or value == float("inf"):
            bound = "0 or more" if zero else "above 0"
            raise argparse.ArgumentTypeError(f"must be a finite number {bound}: {text!r}")
        return value

    return parse


def _listed(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def alertmanager_urls(given: list[str] | None, env: Mapping[str, str]) -> list[str]:
    """--alertmanager-url (repeatable) or WATCHFLOOR_ALERTMANAGER_URL (comma-separated)."""
    urls = given or _listed(env.get("WATCHFLOOR_ALERTMANAGER_URL", "")) or ["http://127.0.0.1:9093"]
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigError(f"Alertmanager URL {url!r} is not an http(s) URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ConfigError(
                f"Alertmanager URL {parts.hostname!r} carries credentials: give them in"
                f" {USERNAME} and {PASSWORD} instead"
            )
        if parts.query or parts.fragment:
            raise ConfigError(f"Alertmanager URL {url!r} has a query or fragment")
    return [url.rstrip("/") for url in dict.fromkeys(urls)]


def alertmanager_credentials(env: Mapping[str, str]) -> tuple[str, str] | None:
    """Basic-auth credentials for Alertmanager: both variables or neither."""
    username, password = env.get(USERNAME, ""), env.get(PASSWORD, "")
    if bool(username) != bool(password):
        missing = PASSWORD if username else USERNAME
        raise ConfigError(f"{missing} is not set; set both {USERNAME} and {PASSWORD}, or neither")
    return (username, password) if username else None


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(prog="watchfloor-alerthub")
    parser.add_argument("--host", default=env.get("WATCHFLOOR_ALERTHUB_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(env.get("WATCHFLOOR_ALERTHUB_PORT", "9095"))
    )
    parser.add_argument(
        "--database",
        type=Path,
        default=Path(
            env.get(
                "WATCHFLOOR_ALERTHUB_DB", Path.home() / ".local/state/watchfloor/alerthub.sqlite"
            )
        ),
    )
    parser.add_argument(
        "--alertmanager-url", action="append", metavar="URL",
        help="an Alertmanager to acknowledge and reconcile with; repeat it for an HA cluster"
        " (env WATCHFLOOR_ALERTMANAGER_URL, comma-separated; default http://127.0.0.1:9093)",
    )  # fmt: skip
    parser.add_argument(
        "--watchdog-stale-seconds", type=_number(float),
        default=env.get("WATCHFLOOR_WATCHDOG_STALE_SECONDS", "120"),
    )  # fmt: skip
    parser.add_argument(
        "--runbooks", type=Path, default=Path(env.get("WATCHFLOOR_RUNBOOKS_DIR") or runbooks()),
        help="directory of the runbooks the alerts link to (env WATCHFLOOR_RUNBOOKS_DIR)",
    )  # fmt: skip
    bounds = (
        ("--max-alerts", "MAX_ALERTS", int, limits.DEFAULT_MAX_ALERTS),
        ("--max-clients", "MAX_CLIENTS", int, limits.DEFAULT_MAX_CLIENTS),
        ("--reconcile-seconds", "RECONCILE_SECONDS", float, limits.DEFAULT_RECONCILE_SECONDS),
        ("--resolved-retention-seconds", "RESOLVED_RETENTION_SECONDS", float,
         limits.DEFAULT_RESOLVED_RETENTION_SECONDS),
        ("--alertmanager-warmup-seconds", "ALERTMANAGER_WARMUP_SECONDS", float,
         limits.DEFAULT_ALERTMANAGER_WARMUP_SECONDS),
    )  # fmt: skip
    for flag, suffix, kind, default in bounds:
        variable = f"WATCHFLOOR_ALERTHUB_{suffix}"
        parser.add_argument(
            flag, type=_number(kind, zero=flag == "--alertmanager-warmup-seconds"),
            default=env.get(variable, str(default)),
            help=f"(env {variable}; default {default:g})",
        )  # fmt: skip
    parser.add_argument(
        "--allowed-origin", action="append", metavar="ORIGIN",
        help="another origin whose pages may open the WebSocket, e.g. https://hub.example.com"
        " behind a proxy (env WATCHFLOOR_ALERTHUB_ALLOWED_ORIGINS, comma-separated)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    token = env.get("WATCHFLOOR_ALERTHUB_TOKEN", "").strip()
    if not token:
        print(
            "watchfloor-alerthub: refusing to start: set WATCHFLOOR_ALERTHUB_TOKEN", file=sys.stderr
        )
        return 2
    try:
        urls = alertmanager_urls(args.alertmanager_url, env)
        credentials = alertmanager_credentials(env)
    except ConfigError as exc:
        print(f"watchfloor-alerthub: refusing to start: {exc}", file=sys.stderr)
        return 2
    configure_logging("alert-hub")
    app = create_app(
        token=token,
        database=args.database,
        alertmanager_url=urls,
        alertmanager_credentials=credentials,
        watchdog_stale_seconds=args.watchdog_stale_seconds,
        runbooks=args.runbooks if args.runbooks.is_dir() else None,
        max_alerts=args.max_alerts,
        max_clients=args.max_clients,
        reconcile_seconds=args.reconcile_seconds,
        resolved_retention_seconds=args.resolved_retention_seconds,
        alertmanager_warmup_seconds=args.alertmanager_warmup_seconds,
        allowed_origins=args.allowed_origin
        or _listed(env.get("WATCHFLOOR_ALERTHUB_ALLOWED_ORIGINS", "")),
    )
    uvicorn.run(
        app, host=args.host, port=args.port, log_config=None, access_log=False,
        # The sans-I/O protocol waits for the socket to drain before each message (broadcast.py
        # relies on it); no per-message deflate, which would compress every message once per
        # client on the event loop; and only the small auth message is ever received.
        ws="websockets-sansio", ws_per_message_deflate=False,
        ws_max_size=limits.MAX_INCOMING_MESSAGE_BYTES,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
