"""configure_logging: handlers, reconfiguration, environment variables, bad settings."""

from __future__ import annotations

import io
import json
import logging

import pytest

from watchfloor.logging import configure_logging, shutdown_logging
from watchfloor.logging.handler import EnqueueHandler


def _ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if isinstance(h, EnqueueHandler)]


def test_twice_reconfigures_without_duplicate_handlers():
    first, second = io.StringIO(), io.StringIO()
    configure_logging("svc-a", stream=first)
    configure_logging("svc-b", stream=second)
    assert len(_ours()) == 1
    logging.getLogger("t").warning("once")
    shutdown_logging()
    assert first.getvalue() == ""
    (doc,) = [json.loads(line) for line in second.getvalue().splitlines()]
    assert doc["service"]["name"] == "svc-b"
    assert _ours() == []


def test_plain_stdlib_loggers_anywhere_are_captured():
    stream = io.StringIO()
    configure_logging("svc", stream=stream)
    logging.getLogger("some.deep.module").info("hello", extra={"k": 1})
    logging.info("root logger too")
    shutdown_logging()
    assert len(stream.getvalue().splitlines()) == 2


def test_environment_fills_defaults(monkeypatch):
    monkeypatch.setenv("WATCHFLOOR_ENVIRONMENT", "staging")
    monkeypatch.setenv("WATCHFLOOR_LOG_LEVEL", "warning")
    stream = io.StringIO()
    configure_logging("svc", stream=stream)
    logging.getLogger("t").info("filtered out")
    logging.getLogger("t").warning("kept")
    shutdown_logging()
    (doc,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert doc["service"]["environment"] == "staging"
    assert doc["message"] == "kept"


def test_explicit_arguments_win_over_environment(monkeypatch):
    monkeypatch.setenv("WATCHFLOOR_ENVIRONMENT", "staging")
    monkeypatch.setenv("WATCHFLOOR_LOG_LEVEL", "ERROR")
    stream = io.StringIO()
    configure_logging("svc", environment="prod", level="INFO", stream=stream)
    logging.getLogger("t").info("kept")
    shutdown_logging()
    (doc,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert doc["service"]["environment"] == "prod"


def test_stream_none_writes_nothing(capsys):
    configure_logging("svc", stream=None)
    logging.getLogger("t").warning("silent")
    shutdown_logging()
    assert capsys.readouterr().err == ""


def test_default_stream_follows_current_stderr(capsys):
    configure_logging("svc")
    logging.getLogger("t").warning("to stderr")
    shutdown_logging()
    assert json.loads(capsys.readouterr().err)["message"] == "to stderr"


def test_stream_from_environment(monkeypatch, capsys):
    monkeypatch.setenv("WATCHFLOOR_LOG_STREAM", "stdout")
    configure_logging("svc")
    logging.getLogger("t").warning("to stdout")
    shutdown_logging()
    assert json.loads(capsys.readouterr().out)["message"] == "to stdout"


@pytest.mark.parametrize(
    ("kwargs", "env", "message"),
    [
        ({"level": "LOUD"}, {}, "unknown log level"),
        ({"logstash_port": 70000}, {}, "1-65535"),
        ({}, {"WATCHFLOOR_LOGSTASH_PORT": "fifty"}, "must be an integer"),
        ({}, {"WATCHFLOOR_LOG_STREAM": "printer"}, "stderr, stdout or none"),
        ({}, {"WATCHFLOOR_SPOOL_MAX_BYTES": "-5"}, "must be positive"),
        ({}, {"WATCHFLOOR_MASK_PATTERNS": "not json"}, "JSON list"),
    ],
)
def test_bad_settings_fail_with_a_reason(monkeypatch, kwargs, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=message):
        configure_logging("svc", **kwargs)


def test_service_name_is_required():
    with pytest.raises(ValueError, match="service name"):
        configure_logging(" ")


def test_queue_full_drops_and_counts_without_blocking(monkeypatch):
    from watchfloor.metrics.shipping import LOG_EVENTS_DROPPED

    before = LOG_EVENTS_DROPPED.labels("queue_full")._value.get()
    records = __import__("queue").SimpleQueue()
    handler = EnqueueHandler(records, capacity=5)
    logger = logging.getLogger("tests.queue-full")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for index in range(12):
            logger.warning("event %d", index)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert records.qsize() == 5
    assert LOG_EVENTS_DROPPED.labels("queue_full")._value.get() - before == 7
