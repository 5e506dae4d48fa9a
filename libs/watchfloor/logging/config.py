"""configure_logging / shutdown_logging: assembling and tearing down the pipeline.

    caller thread ──enqueue──▶ writer thread ──▶ stream (stderr)
                                    │
                                    └──▶ spool (disk) ──▶ shipper thread ──Beats+ACK──▶ Logstash

Environment variables fill in any argument left at its default; an explicit argument wins.
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import logging
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, cast

from watchfloor.logging.audit import AuditChain, held_audit
from watchfloor.logging.ecs import EcsDocumentBuilder
from watchfloor.logging.handler import EnqueueHandler
from watchfloor.logging.masking import Masker
from watchfloor.logging.shipper import Endpoint, Shipper, beats_transport
from watchfloor.logging.spool import Spool, SpoolLockedError
from watchfloor.logging.writer import STOP, Writer
from watchfloor.metrics.shipping import observe_pipeline


class _DefaultStr(str):
    """A default that can be told apart from the same value passed explicitly."""

    __slots__ = ()


class _DefaultInt(int):
    __slots__ = ()


class _CurrentStderr:
    """Default stream: whatever sys.stderr is at write time (follows test capture, redirects)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_DEFAULT_LEVEL = _DefaultStr("INFO")
_DEFAULT_PORT = _DefaultInt(5044)
_DEFAULT_STREAM = cast(TextIO, _CurrentStderr())

DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_QUEUE_CAPACITY = 100_000
DEFAULT_BATCH_SIZE = 1000
# The servers' own loggers: left alone they write plain text beside the pipeline, without
# correlation or trace ids, and are never shipped.
FRAMEWORK_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "gunicorn.error",
    "gunicorn.access",
)


@dataclass(frozen=True)
class Settings:
    service: str
    environment: str
    level: str
    stream: TextIO | None
    logstash_endpoints: tuple[Endpoint, ...]
    logstash_loadbalance: bool
    spool_dir: Path | None
    spool_max_bytes: int
    queue_capacity: int
    batch_size: int
    ship_timeout: float
    retry_initial: float
    retry_max: float
    mask_keys: tuple[str, ...]
    mask_patterns: tuple[str, ...]
    capture_framework_loggers: bool = True


class _Pipeline:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.records: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.spool = _open_spool(settings) if settings.logstash_endpoints else None
        self.shipper: Shipper | None = None
        if self.spool is not None:
            self.shipper = Shipper(
                self.spool,
                [
                    (
                        endpoint,
                        beats_transport(
                            endpoint.host, endpoint.port, settings.ship_timeout, settings.batch_size
                        ),
                    )
                    for endpoint in settings.logstash_endpoints
                ],
                loadbalance=settings.logstash_loadbalance,
                batch_size=settings.batch_size,
                retry_initial=settings.retry_initial,
                retry_max=settings.retry_max,
            )
        masker = Masker(settings.mask_keys, settings.mask_patterns)
        self.writer = Writer(
            self.records,
            EcsDocumentBuilder(settings.service, settings.environment, masker),
            settings.stream,
            self.spool,
            AuditChain(self.spool.directory if self.spool is not None else None),
            self.shipper.wakeup.set if self.shipper is not None else _nothing,
        )
        self.handler = EnqueueHandler(self.records, settings.queue_capacity)

    def start(self) -> None:
        self.writer.start()
        if self.shipper is not None:
            self.shipper.start()
        observe_pipeline(self.queued, self.spool_bytes)

    def queued(self) -> float:
        return float(self.records.qsize() + (self.spool.pending_events if self.spool else 0))

    def spool_bytes(self) -> float:
        return float(self.spool.total_bytes if self.spool else 0)

    def stop(self, timeout: float) -> None:
        deadline = time.monotonic() + max(0.0, timeout)
        self.records.put(STOP)
        self.writer.join(max(0.0, deadline - time.monotonic()))
        if self.shipper is not None and self.spool is not None:
            self.shipper.wakeup.set()
            # Wait for the ACKs of what is spooled, unless Logstash is already failing: the
            # spool keeps those events for the next start, so waiting would only delay exit.
            while (
                self.spool.pending_events > 0
                and self.shipper.consecutive_failures == 0
                and time.monotonic() < deadline
            ):
                time.sleep(0.01)
            self.shipper.stop()
            self.shipper.join(max(0.0, deadline - time.monotonic()))
        shipper_done = self.shipper is None or not self.shipper.is_alive()
        if self.spool is not None and not self.writer.is_alive() and shipper_done:
            self.spool.close()


_lock = threading.Lock()
_current: _Pipeline | None = None
_atexit_registered = False


def configure_logging(
    service: str,
    *,
    environment: str | None = None,
    level: str = _DEFAULT_LEVEL,
    stream: TextIO | None = _DEFAULT_STREAM,
    logstash_host: str | None = None,
    logstash_port: int = _DEFAULT_PORT,
    spool_dir: str | None = None,
    logstash_hosts: Sequence[str] | None = None,
    logstash_loadbalance: bool | None = None,
    capture_framework_loggers: bool | None = None,
) -> None:
    """Send every stdlib log record of this process as ECS JSON to `stream` and to Logstash.

    Installs one handler on the root logger (replacing the one a previous call installed).
    Shipping is on when a Logstash host is given; events then pass through a durable spool in
    `spool_dir` (default: $XDG_STATE_HOME/watchfloor/spool/<service>). `logstash_hosts` instead
    names several beats inputs ("host:port", or "host" for `logstash_port`): the shipper fails
    over between them, and with `logstash_loadbalance=True` sends batches to each in turn.

    With `capture_framework_loggers` (default on; WATCHFLOOR_CAPTURE_FRAMEWORK_LOGS=0 turns it
    off) the uvicorn and gunicorn loggers lose their own handlers and propagate into the pipeline.
    Audit events recorded before the first call are held and emitted now.
    """
    global _current, _atexit_registered  # noqa: PLW0603 - one pipeline per process, by design
    settings = _resolve(
        service,
        environment,
        level,
        stream,
        _Targets(logstash_host, logstash_port, logstash_hosts, logstash_loadbalance),
        spool_dir,
        capture_framework_loggers,
    )
    with _lock:
        root = logging.getLogger()
        if _current is not None:
            root.removeHandler(_current.handler)
            _current.stop(timeout=5.0)
            _current = None
        pipeline = _Pipeline(settings)
        pipeline.start()

        def install() -> None:
            root.addHandler(pipeline.handler)

        held_audit.hand_over(install, pipeline.records.put)
        root.setLevel(settings.level)
        _current = pipeline
        if settings.capture_framework_loggers:
            _take_over_framework_loggers()
        if not _atexit_registered:
            atexit.register(_shutdown_at_exit)
            _atexit_registered = True


def shutdown_logging(timeout: float = 10.0) -> None:
    """Stop accepting records, write out what is queued, and wait up to `timeout` seconds for
    Logstash to acknowledge what is spooled (what it does not stays on disk for the next start)."""
    global _current  # noqa: PLW0603
    with _lock:
        if _current is None:
            return
        logging.getLogger().removeHandler(_current.handler)
        held_audit.resume()
        _current.stop(timeout)
        _current = None


def reclaim_framework_loggers() -> None:
    """Take the framework loggers over again if a server configured them after configure_logging
    (uvicorn.run applies its LOGGING_CONFIG when it starts, unless given log_config=None)."""
    with _lock:
        if _current is not None and _current.settings.capture_framework_loggers:
            _take_over_framework_loggers()


def _take_over_framework_loggers() -> None:
    for name in FRAMEWORK_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True


def _shutdown_at_exit() -> None:
    shutdown_logging(_env_float("WATCHFLOOR_LOG_SHUTDOWN_TIMEOUT", 10.0))


def _nothing() -> None:
    return None


def _resolve(
    service: str,
    environment: str | None,
    level: str,
    stream: TextIO | None,
    targets: _Targets,
    spool_dir: str | None,
    capture_framework_loggers: bool | None = None,
) -> Settings:
    env = os.environ
    if not service or not service.strip():
        raise ValueError("configure_logging needs a service name, e.g. 'order-router'")
    resolved_level = env.get("WATCHFLOOR_LOG_LEVEL", level) if level is _DEFAULT_LEVEL else level
    resolved_level = resolved_level.upper()
    if not isinstance(logging.getLevelName(resolved_level), int):
        raise ValueError(f"unknown log level {resolved_level!r}: use DEBUG, INFO, WARNING, ERROR")
    if stream is _DEFAULT_STREAM:
        stream = _stream_from_env(env.get("WATCHFLOOR_LOG_STREAM", "stderr"))
    directory = spool_dir or env.get("WATCHFLOOR_SPOOL_DIR")
    return Settings(
        service=service,
        environment=environment or env.get("WATCHFLOOR_ENVIRONMENT", "development"),
        level=resolved_level,
        stream=stream,
        logstash_endpoints=_endpoints(targets),
        logstash_loadbalance=_loadbalance(targets.loadbalance),
        spool_dir=Path(directory) if directory else None,
        spool_max_bytes=_env_int("WATCHFLOOR_SPOOL_MAX_BYTES", DEFAULT_SPOOL_MAX_BYTES),
        queue_capacity=_env_int("WATCHFLOOR_LOG_QUEUE_SIZE", DEFAULT_QUEUE_CAPACITY),
        batch_size=_env_int("WATCHFLOOR_LOG_BATCH_SIZE", DEFAULT_BATCH_SIZE),
        ship_timeout=_env_float("WATCHFLOOR_LOG_SHIP_TIMEOUT", 10.0),
        retry_initial=_env_float("WATCHFLOOR_LOG_RETRY_INITIAL_SECONDS", 0.1),
        retry_max=_env_float("WATCHFLOOR_LOG_RETRY_MAX_SECONDS", 2.0),
        mask_keys=tuple(k.strip() for k in env.get("WATCHFLOOR_MASK_KEYS", "").split(",") if k),
        mask_patterns=_env_patterns(env.get("WATCHFLOOR_MASK_PATTERNS", "")),
        capture_framework_loggers=_env_bool(
            "WATCHFLOOR_CAPTURE_FRAMEWORK_LOGS", capture_framework_loggers, default=True
        ),
    )


@dataclass(frozen=True)
class _Targets:
    host: str | None
    port: int
    hosts: Sequence[str] | None
    loadbalance: bool | None


def _endpoints(targets: _Targets) -> tuple[Endpoint, ...]:
    """The configured beats inputs: explicit arguments first, then the environment."""
    env = os.environ
    port = (
        _env_int("WATCHFLOOR_LOGSTASH_PORT", 5044)
        if targets.port is _DEFAULT_PORT
        else targets.port
    )
    if not 0 < port < 65536:
        raise ValueError(f"logstash_port must be 1-65535, got {port}")
    if targets.host is not None and targets.hosts is not None:
        raise ValueError("give logstash_host or logstash_hosts, not both")
    if targets.hosts is not None:
        if isinstance(targets.hosts, str):
            raise ValueError("logstash_hosts must be a list of 'host:port' strings, not a string")
        return parse_endpoints(list(targets.hosts), port, source="logstash_hosts")
    if targets.host is not None:
        return parse_endpoints([targets.host], port, source="logstash_host") if targets.host else ()
    single, several = env.get("WATCHFLOOR_LOGSTASH_HOST"), env.get("WATCHFLOOR_LOGSTASH_HOSTS")
    if single and several:
        raise ValueError("set WATCHFLOOR_LOGSTASH_HOST or WATCHFLOOR_LOGSTASH_HOSTS, not both")
    if several:
        entries = several.split(",")
        return parse_endpoints(entries, port, source="WATCHFLOOR_LOGSTASH_HOSTS")
    if single:
        return parse_endpoints([single], port, source="WATCHFLOOR_LOGSTASH_HOST")
    return ()


_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})")


def parse_endpoints(entries: list[str], default_port: int, *, source: str) -> tuple[Endpoint, ...]:
    """Endpoints from "host", "host:port" or "[ipv6]:port" entries; ValueError naming a bad one."""
    if not entries:
        raise ValueError(f"{source} is empty: name at least one Logstash endpoint")
    endpoints: list[Endpoint] = []
    for entry in entries:
        endpoint = _parse_endpoint(entry, default_port, source)
        if endpoint in endpoints:
            raise ValueError(f"{source}: Logstash endpoint {entry!r} is listed twice")
        endpoints.append(endpoint)
    return tuple(endpoints)


def _parse_endpoint(entry: object, default_port: int, source: str) -> Endpoint:
    def bad(reason: str) -> ValueError:
        return ValueError(
            f"{source}: bad Logstash endpoint {entry!r}: {reason} "
            "(use host, host:port or [ipv6]:port, e.g. ls1:5044)"
        )

    if not isinstance(entry, str):
        raise bad("not a string")
    text = entry.strip()
    port_text: str | None = None
    if "/" in text or "@" in text:
        raise bad("a URL or user is not an endpoint: no scheme, user or path")
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not _is_ipv6(host):
            raise bad("not an IPv6 address in brackets")
        if not bracket or (rest and not rest.startswith(":")):
            raise bad("unbalanced brackets")
        port_text = rest[1:] if rest else None
    elif _is_ipv6(text):
        host = text  # a bare IPv6 address carries no port
    else:
        host, colon, rest = text.partition(":")
        if ":" in rest:
            raise bad("an IPv6 address goes in brackets")
        if not _HOSTNAME.fullmatch(host):
            raise bad("empty host" if not host else "the host is not a hostname or address")
        port_text = rest if colon else None
    if port_text is None:
        return Endpoint(host, default_port)
    if not (port_text.isascii() and port_text.isdigit()):
        raise bad("the port is not a number")
    port = int(port_text)
    if not 0 < port < 65536:
        raise bad("the port must be 1-65535")
    return Endpoint(host, port)


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _loadbalance(explicit: bool | None) -> bool:
    return _env_bool("WATCHFLOOR_LOGSTASH_LOADBALANCE", explicit, default=False)


def _env_bool(name: str, explicit: bool | None, *, default: bool) -> bool:
    if explicit is not None:
        return explicit
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"0", "false", "no", "off"}:
        return False
    if raw in {"1", "true", "yes", "on"}:
        return True
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def _open_spool(settings: Settings) -> Spool:
    if settings.spool_dir is not None:
        return Spool(settings.spool_dir, max_bytes=settings.spool_max_bytes)
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    base = state / "watchfloor" / "spool" / settings.service
    # Two processes of one service on a host each need their own spool; the first free one is
    # taken, so a restarted process picks up the spool it left behind.
    for index in range(16):
        candidate = base if index == 0 else base.with_name(f"{base.name}.{index}")
        try:
            return Spool(candidate, max_bytes=settings.spool_max_bytes)
        except SpoolLockedError:
            continue
    raise SpoolLockedError(f"all 16 spools under {base.parent} are in use; set spool_dir")


def _stream_from_env(name: str) -> TextIO | None:
    choice = name.strip().lower()
    if choice == "stderr":
        return _DEFAULT_STREAM
    if choice == "stdout":
        return sys.stdout
    if choice in {"none", "off", ""}:
        return None
    raise ValueError(f"WATCHFLOOR_LOG_STREAM must be stderr, stdout or none, got {name!r}")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def _env_patterns(raw: str) -> tuple[str, ...]:
    if not raw.strip():
        return ()
    try:
        patterns: Any = json.loads(raw)
    except ValueError:
        raise ValueError("WATCHFLOOR_MASK_PATTERNS must be a JSON list of regexes") from None
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ValueError("WATCHFLOOR_MASK_PATTERNS must be a JSON list of regexes")
    return tuple(patterns)
