"""configure_logging / shutdown_logging: assembling and tearing down the pipeline.

    caller thread ──enqueue──▶ writer thread ──▶ stream (stderr)
                                    │
                                    └──▶ spool (disk) ──▶ shipper thread ──Beats+ACK──▶ Logstash

Environment variables fill in any argument left at its default; an explicit argument wins.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, cast

from watchfloor.logging.audit import AuditChain
from watchfloor.logging.ecs import EcsDocumentBuilder
from watchfloor.logging.handler import EnqueueHandler
from watchfloor.logging.masking import Masker
from watchfloor.logging.shipper import Shipper, beats_transport
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


@dataclass(frozen=True)
class Settings:
    service: str
    environment: str
    level: str
    stream: TextIO | None
    logstash_host: str | None
    logstash_port: int
    spool_dir: Path | None
    spool_max_bytes: int
    queue_capacity: int
    batch_size: int
    ship_timeout: float
    retry_initial: float
    retry_max: float
    mask_keys: tuple[str, ...]
    mask_patterns: tuple[str, ...]


class _Pipeline:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.records: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.spool = _open_spool(settings) if settings.logstash_host else None
        self.shipper: Shipper | None = None
        if self.spool is not None and settings.logstash_host:
            self.shipper = Shipper(
                self.spool,
                beats_transport(
                    settings.logstash_host,
                    settings.logstash_port,
                    settings.ship_timeout,
                    settings.batch_size,
                ),
                target=f"{settings.logstash_host}:{settings.logstash_port}",
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
) -> None:
    """Send every stdlib log record of this process as ECS JSON to `stream` and to Logstash.

    Installs one handler on the root logger (replacing the one a previous call installed).
    Shipping is on when a Logstash host is given; events then pass through a durable spool in
    `spool_dir` (default: $XDG_STATE_HOME/watchfloor/spool/<service>).
    """
    global _current, _atexit_registered  # noqa: PLW0603 - one pipeline per process, by design
    settings = _resolve(
        service, environment, level, stream, logstash_host, logstash_port, spool_dir
    )
    with _lock:
        root = logging.getLogger()
        if _current is not None:
            root.removeHandler(_current.handler)
            _current.stop(timeout=5.0)
            _current = None
        pipeline = _Pipeline(settings)
        pipeline.start()
        root.addHandler(pipeline.handler)
        root.setLevel(settings.level)
        _current = pipeline
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
        _current.stop(timeout)
        _current = None


def _shutdown_at_exit() -> None:
    shutdown_logging(_env_float("WATCHFLOOR_LOG_SHUTDOWN_TIMEOUT", 10.0))


def _nothing() -> None:
    return None


def _resolve(
    service: str,
    environment: str | None,
    level: str,
    stream: TextIO | None,
    logstash_host: str | None,
    logstash_port: int,
    spool_dir: str | None,
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
    host = logstash_host if logstash_host is not None else env.get("WATCHFLOOR_LOGSTASH_HOST")
    port = (
        _env_int("WATCHFLOOR_LOGSTASH_PORT", 5044)
        if logstash_port is _DEFAULT_PORT
        else logstash_port
    )
    if not 0 < port < 65536:
        raise ValueError(f"logstash_port must be 1-65535, got {port}")
    directory = spool_dir or env.get("WATCHFLOOR_SPOOL_DIR")
    return Settings(
        service=service,
        environment=environment or env.get("WATCHFLOOR_ENVIRONMENT", "development"),
        level=resolved_level,
        stream=stream,
        logstash_host=host or None,
        logstash_port=port,
        spool_dir=Path(directory) if directory else None,
        spool_max_bytes=_env_int("WATCHFLOOR_SPOOL_MAX_BYTES", DEFAULT_SPOOL_MAX_BYTES),
        queue_capacity=_env_int("WATCHFLOOR_LOG_QUEUE_SIZE", DEFAULT_QUEUE_CAPACITY),
        batch_size=_env_int("WATCHFLOOR_LOG_BATCH_SIZE", DEFAULT_BATCH_SIZE),
        ship_timeout=_env_float("WATCHFLOOR_LOG_SHIP_TIMEOUT", 10.0),
        retry_initial=_env_float("WATCHFLOOR_LOG_RETRY_INITIAL_SECONDS", 0.1),
        retry_max=_env_float("WATCHFLOOR_LOG_RETRY_MAX_SECONDS", 2.0),
        mask_keys=tuple(k.strip() for k in env.get("WATCHFLOOR_MASK_KEYS", "").split(",") if k),
        mask_patterns=_env_patterns(env.get("WATCHFLOOR_MASK_PATTERNS", "")),
    )


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
