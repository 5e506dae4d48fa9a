"""Multi-process mode's setup and gunicorn hooks, in this process (which is not in that mode:
prometheus-client chose in-memory values when it was imported). The mode itself, with real
workers, is tests/integration/test_metrics_multiprocess.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from watchfloor.metrics import multiprocess
from watchfloor.metrics.multiprocess import (
    child_exit,
    clear_multiprocess_dir,
    exposition_registry,
    on_starting,
)


@pytest.fixture
def multiproc_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "metrics"
    monkeypatch.setenv(multiprocess.ENV, str(path))
    return path


@pytest.fixture
def warnings_logged() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("watchfloor.metrics")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def test_outside_the_mode_the_given_or_default_registry_is_served(monkeypatch):
    monkeypatch.delenv(multiprocess.ENV, raising=False)
    mine = CollectorRegistry()
    assert exposition_registry() is REGISTRY
    assert exposition_registry(mine) is mine
    assert clear_multiprocess_dir() is None


def test_a_missing_directory_is_a_clear_error(multiproc_dir):
    with pytest.raises(ValueError, match=r"PROMETHEUS_MULTIPROC_DIR=.*metrics is not a directory"):
        exposition_registry()


def test_setting_the_variable_after_import_is_a_clear_error(multiproc_dir):
    multiproc_dir.mkdir()
    with pytest.raises(RuntimeError, match="set after prometheus_client was imported"):
        exposition_registry()


def test_on_starting_creates_the_directory_and_removes_only_value_files(multiproc_dir):
    on_starting(server=None)
    assert multiproc_dir.is_dir()
    (multiproc_dir / "counter_123.db").write_bytes(b"old run")
    (multiproc_dir / "gauge_livesum_123.db").write_bytes(b"old run")
    (multiproc_dir / "notes.txt").write_text("not ours")
    on_starting(server=None)
    assert sorted(p.name for p in multiproc_dir.iterdir()) == ["notes.txt"]


def test_child_exit_drops_a_dead_workers_live_gauges_and_keeps_its_counts(multiproc_dir):
    multiproc_dir.mkdir()
    for name in ("counter_77.db", "gauge_livesum_77.db", "gauge_all_77.db", "gauge_livesum_78.db"):
        (multiproc_dir / name).write_bytes(b"")
    child_exit(server=None, worker=SimpleNamespace(pid=77))
    assert sorted(p.name for p in multiproc_dir.iterdir()) == [
        "counter_77.db",  # what it counted stays in the sums
        "gauge_all_77.db",  # per-process gauges keep their pid label until the next start
        "gauge_livesum_78.db",
    ]


def test_child_exit_never_raises_into_gunicorns_master(multiproc_dir, warnings_logged):
    (multiproc_dir / "gauge_livesum_77.db").mkdir(parents=True)  # cannot be removed as a file
    child_exit(server=None, worker=SimpleNamespace(pid=77))
    (record,) = warnings_logged
    assert record.levelno == logging.WARNING
    assert record.exc_info is not None


def test_child_exit_outside_the_mode_does_nothing(monkeypatch, warnings_logged):
    monkeypatch.delenv(multiprocess.ENV, raising=False)
    child_exit(server=None, worker=SimpleNamespace(pid=77))
    assert warnings_logged == []
