"""prometheus-client's multi-process mode, for pre-fork servers (gunicorn, uvicorn --workers).

Each worker process has its own counters, so a scrape answered by one worker would see a random
worker's share. With PROMETHEUS_MULTIPROC_DIR set in the server's environment before it starts,
prometheus-client writes every process's values to files in that directory, and
`exposition_registry()` is then a registry of prometheus-client's `MultiProcessCollector` over
them: `/metrics` from any worker sums the workers. Everything the library serves
(`instrument_app`'s /metrics, `asgi_app`, `wsgi_app`, `start_metrics_server`) goes through it.

What prometheus-client's mode implies: gauges are per process (a `pid` label) unless created with
`multiprocess_mode` (`livesum`, `max`, ...); no exemplars, no process_/python_ collectors, and no
idle-series expiry (files keep a series until the directory is cleared). The directory must be
emptied before the server starts (`on_starting`), and a dead worker's live gauges removed
(`child_exit`, which calls `multiprocess.mark_process_dead`). In gunicorn.conf.py:

    from watchfloor.metrics.multiprocess import child_exit, on_starting  # noqa: F401
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, values

ENV = "PROMETHEUS_MULTIPROC_DIR"
_log = logging.getLogger("watchfloor.metrics")


def multiprocess_dir() -> Path | None:
    """The directory of multi-process mode, or None when the process is not in it."""
    path = os.environ.get(ENV)
    return Path(path) if path else None


def exposition_registry(registry: CollectorRegistry | None = None) -> CollectorRegistry:
    """What /metrics serves: `registry` (prometheus-client's default one if None); in
    multi-process mode, the sum over every worker's files, whatever registry was given (all of
    them write there).

    Raises ValueError when PROMETHEUS_MULTIPROC_DIR is not a directory, and RuntimeError when it
    was set after prometheus-client was imported: this process would then keep its values in
    memory and be missing from every sum.
    """
    path = multiprocess_dir()
    if path is None:
        return REGISTRY if registry is None else registry
    if not path.is_dir():
        raise ValueError(f"{ENV}={path} is not a directory; create it before the server starts")
    if values.ValueClass is values.MutexValue:
        raise RuntimeError(
            f"{ENV} was set after prometheus_client was imported, so this process's metrics are "
            "not in the shared files; set it in the server's environment before it starts"
        )
    aggregate = CollectorRegistry(auto_describe=True)
    multiprocess.MultiProcessCollector(aggregate, path=str(path))  # type: ignore[no-untyped-call]
    return aggregate


def clear_multiprocess_dir() -> Path | None:
    """Create the multi-process directory if needed and delete the value files (`*.db`) a
    previous run left there; only those, in case it points at a shared directory."""
    path = multiprocess_dir()
    if path is None:
        return None
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    return path


def on_starting(server: Any) -> None:
    """gunicorn's on_starting hook: an empty directory before the first worker forks.

    A previous run's files would otherwise be summed with this run's (counters start high, dead
    processes' gauges stay).
    """
    clear_multiprocess_dir()


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn's child_exit hook: removes the dead worker's `live*` gauges from the sums.

    Never raises: it runs in gunicorn's master, which an exception from a hook would stop.
    """
    path = multiprocess_dir()
    if path is None:
        return
    pid = getattr(worker, "pid", None)
    try:
        multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]
    except Exception:
        _log.warning("could not remove the files of dead worker %s", pid, exc_info=True)
