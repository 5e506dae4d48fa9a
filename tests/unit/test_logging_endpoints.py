"""Several Logstash endpoints: parsing, validation and where configure_logging takes them from."""

from __future__ import annotations

import pytest

from watchfloor.logging import config as logging_config
from watchfloor.logging import configure_logging, shutdown_logging
from watchfloor.logging.config import parse_endpoints
from watchfloor.logging.shipper import Endpoint


@pytest.fixture(autouse=True)
def _no_logstash_env(monkeypatch):
    for name in (
        "WATCHFLOOR_LOGSTASH_HOST",
        "WATCHFLOOR_LOGSTASH_HOSTS",
        "WATCHFLOOR_LOGSTASH_PORT",
        "WATCHFLOOR_LOGSTASH_LOADBALANCE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_entries_with_and_without_ports():
    assert parse_endpoints(
        ["ls1:5044", " ls2 ", "10.0.0.7:6000", "[::1]:5045", "[fe80::2]", "::1"], 5050, source="x"
    ) == (
        Endpoint("ls1", 5044),
        Endpoint("ls2", 5050),
        Endpoint("10.0.0.7", 6000),
        Endpoint("::1", 5045),
        Endpoint("fe80::2", 5050),
        Endpoint("::1", 5050),
    )
    assert str(Endpoint("::1", 5045)) == "[::1]:5045"
    assert str(Endpoint("ls1", 5044)) == "ls1:5044"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("", "empty host"),
        (":5044", "empty host"),
        ("ls1:", "port is not a number"),
        ("ls1:http", "port is not a number"),
        ("ls1:0", "1-65535"),
        ("ls1:70000", "1-65535"),
        ("ls1:-1", "port is not a number"),
        ("ls1:\uff15\uff10\uff14\uff14", "port is not a number"),  # fullwidth digits
        ("fe80::1:5044:x", "IPv6 address goes in brackets"),
        ("[::1", "unbalanced brackets"),
        ("[::1]5044", "unbalanced brackets"),
        ("[ls1]:5044", "not an IPv6 address"),
        ("ls 1:5044", "not a hostname"),
        ("user@ls1:5044", "no scheme, user or path"),
        ("http://ls1:5044", "no scheme, user or path"),
        ("ls1:5044/beats", "no scheme, user or path"),
    ],
)
def test_a_bad_entry_is_named_with_the_reason(entry, reason):
    with pytest.raises(ValueError, match=reason) as raised:
        parse_endpoints(["ls0:5044", entry], 5044, source="logstash_hosts")
    assert f"logstash_hosts: bad Logstash endpoint {entry!r}" in str(raised.value)


def test_duplicates_and_empty_lists_are_refused():
    with pytest.raises(ValueError, match="'ls1' is listed twice"):
        parse_endpoints(["ls1:5044", "ls1"], 5044, source="logstash_hosts")
    with pytest.raises(ValueError, match="logstash_hosts is empty"):
        parse_endpoints([], 5044, source="logstash_hosts")


def _settings(monkeypatch, **kwargs):
    """What configure_logging resolves, captured without starting a pipeline."""
    captured = []

    class Capture:
        def __init__(self, settings):
            captured.append(settings)
            raise LookupError("captured")

    monkeypatch.setattr(logging_config, "_Pipeline", Capture)
    with pytest.raises(LookupError, match="captured"):
        configure_logging("svc", stream=None, **kwargs)
    return captured[0]


def test_environment_list_and_loadbalance(monkeypatch):
    monkeypatch.setenv("WATCHFLOOR_LOGSTASH_HOSTS", "ls1:5044, ls2")
    monkeypatch.setenv("WATCHFLOOR_LOGSTASH_PORT", "6000")
    monkeypatch.setenv("WATCHFLOOR_LOGSTASH_LOADBALANCE", "true")
    settings = _settings(monkeypatch)
    assert settings.logstash_endpoints == (Endpoint("ls1", 5044), Endpoint("ls2", 6000))
    assert settings.logstash_loadbalance is True


def test_single_host_form_still_works(monkeypatch):
    settings = _settings(monkeypatch, logstash_host="ls1", logstash_port=5999)
    assert settings.logstash_endpoints == (Endpoint("ls1", 5999),)
    assert settings.logstash_loadbalance is False
    monkeypatch.setenv("WATCHFLOOR_LOGSTASH_HOST", "ls9")
    assert _settings(monkeypatch).logstash_endpoints == (Endpoint("ls9", 5044),)
    assert _settings(monkeypatch, logstash_host="").logstash_endpoints == ()


def test_explicit_list_wins_over_environment(monkeypatch):
    monkeypatch.setenv("WATCHFLOOR_LOGSTASH_HOSTS", "env1,env2")
    monkeypatch.setenv("WATCHFLOOR_LOGSTASH_LOADBALANCE", "1")
    settings = _settings(monkeypatch, logstash_hosts=["a:1", "b:2"], logstash_loadbalance=False)
    assert settings.logstash_endpoints == (Endpoint("a", 1), Endpoint("b", 2))
    assert settings.logstash_loadbalance is False


@pytest.mark.parametrize(
    ("kwargs", "env", "message"),
    [
        ({"logstash_host": "a", "logstash_hosts": ["b"]}, {}, "not both"),
        ({"logstash_hosts": "a:1,b:2"}, {}, "a list of 'host:port' strings"),
        ({"logstash_hosts": ["a:1", 5044]}, {}, "5044: not a string"),
        ({}, {"WATCHFLOOR_LOGSTASH_HOST": "a", "WATCHFLOOR_LOGSTASH_HOSTS": "b"}, "not both"),
        ({}, {"WATCHFLOOR_LOGSTASH_HOSTS": "ls1:5044,,ls2"}, "'': empty host"),
        ({}, {"WATCHFLOOR_LOGSTASH_HOSTS": "ls1:5044,ls2:x"}, "'ls2:x'"),
        ({}, {"WATCHFLOOR_LOGSTASH_LOADBALANCE": "sometimes"}, "true or false"),
    ],
)
def test_bad_configuration_is_a_clear_value_error(monkeypatch, kwargs, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=message):
        configure_logging("svc", stream=None, **kwargs)
    shutdown_logging()
