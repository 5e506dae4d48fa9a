"""configure_logging takes over uvicorn's and gunicorn's loggers; an unhandled request exception
is one ECS event with the request's correlation and trace ids."""

from __future__ import annotations

import copy
import io
import json
import logging
import logging.config
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from uvicorn.config import LOGGING_CONFIG

from watchfloor.fastapi import instrument_app
from watchfloor.logging import configure_logging, shutdown_logging
from watchfloor.logging.config import FRAMEWORK_LOGGERS, reclaim_framework_loggers
from watchfloor.logging.handler import mark_logged


@pytest.fixture(autouse=True)
def _restore_framework_loggers() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in FRAMEWORK_LOGGERS]
    saved = [(lg.handlers[:], lg.propagate, lg.level, lg.disabled) for lg in loggers]
    yield
    shutdown_logging()
    for lg, (handlers, propagate, level, disabled) in zip(loggers, saved, strict=True):
        lg.handlers[:] = handlers
        lg.propagate, lg.level, lg.disabled = propagate, level, disabled


def _uvicorn_dict_config() -> None:
    """What `uvicorn.run` / `uvicorn app:app` does at startup."""
    logging.config.dictConfig(copy.deepcopy(LOGGING_CONFIG))


def _events(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_uvicorn_loggers_configured_first_are_taken_over():
    _uvicorn_dict_config()
    assert logging.getLogger("uvicorn.access").handlers  # uvicorn's own plain-text handler
    stream = io.StringIO()
    configure_logging("svc-fw", stream=stream)
    for name in FRAMEWORK_LOGGERS:
        assert logging.getLogger(name).handlers == []
        assert logging.getLogger(name).propagate
    logging.getLogger("uvicorn.access").info('%s - "%s %s" %d', "1.2.3.4:5", "GET", "/x", 200)
    logging.getLogger("gunicorn.error").warning("worker timeout")
    shutdown_logging()
    access, gunicorn = _events(stream)
    assert access["log"]["logger"] == "uvicorn.access"
    assert access["message"] == '1.2.3.4:5 - "GET /x" 200'
    assert gunicorn["log"]["logger"] == "gunicorn.error"


def test_opt_out_by_argument_and_environment(monkeypatch):
    _uvicorn_dict_config()
    kept = logging.getLogger("uvicorn.access").handlers[:]
    configure_logging("svc-fw", stream=io.StringIO(), capture_framework_loggers=False)
    assert logging.getLogger("uvicorn.access").handlers == kept
    monkeypatch.setenv("WATCHFLOOR_CAPTURE_FRAMEWORK_LOGS", "0")
    configure_logging("svc-fw", stream=io.StringIO())
    assert logging.getLogger("uvicorn.access").handlers == kept
    # an explicit argument wins over the environment
    configure_logging("svc-fw", stream=io.StringIO(), capture_framework_loggers=True)
    assert logging.getLogger("uvicorn.access").handlers == []


def test_bad_environment_value_is_named(monkeypatch):
    monkeypatch.setenv("WATCHFLOOR_CAPTURE_FRAMEWORK_LOGS", "maybe")
    with pytest.raises(ValueError, match="WATCHFLOOR_CAPTURE_FRAMEWORK_LOGS"):
        configure_logging("svc-fw", stream=io.StringIO())


def test_uvicorn_configuring_after_configure_logging_is_reclaimed():
    stream = io.StringIO()
    configure_logging("svc-fw", stream=stream)
    _uvicorn_dict_config()  # uvicorn.run(app) after configure_logging
    assert not logging.getLogger("uvicorn").propagate
    reclaim_framework_loggers()
    assert logging.getLogger("uvicorn").handlers == []
    assert logging.getLogger("uvicorn").propagate


async def test_instrumented_app_reclaims_on_its_first_call(spans):
    stream = io.StringIO()
    configure_logging("svc-fw", stream=stream)
    app = FastAPI()
    instrument_app(app, "svc-fw")
    _uvicorn_dict_config()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        await http.get("/nothing-here")
    assert logging.getLogger("uvicorn.access").handlers == []
    assert logging.getLogger("uvicorn.access").propagate


async def test_unhandled_exception_is_one_ecs_event_with_request_ids(spans):
    stream = io.StringIO()
    configure_logging("svc-fw", stream=stream)
    app = FastAPI()

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError("order book exploded")

    instrument_app(app, "svc-fw")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/fail", headers={"x-correlation-id": "req-42"})
    assert response.status_code == 500
    shutdown_logging()
    (event,) = [e for e in _events(stream) if "error" in e]
    assert event["error"]["type"] == "RuntimeError"
    assert event["error"]["message"] == "order book exploded"
    assert "raise RuntimeError" in event["error"]["stack_trace"]
    assert event["correlation"]["id"] == "req-42"
    (server_span,) = [s for s in spans.get_finished_spans() if s.name == "GET /fail"]
    assert event["trace"]["id"] == format(server_span.context.trace_id, "032x")


def test_server_traceback_of_a_logged_exception_is_not_a_second_event():
    stream = io.StringIO()
    configure_logging("svc-fw", stream=stream)
    logged, other = RuntimeError("logged by instrument_app"), RuntimeError("not logged")
    mark_logged(logged)
    server = logging.getLogger("uvicorn.error")
    server.error("Exception in ASGI application\n", exc_info=logged)
    server.error("Exception in ASGI application\n", exc_info=other)
    logging.getLogger("app").error("the app may log it again", exc_info=logged)
    shutdown_logging()
    assert [e["error"]["message"] for e in _events(stream)] == [
        "not logged",
        "logged by instrument_app",
    ]
