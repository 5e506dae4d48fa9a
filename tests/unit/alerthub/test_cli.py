"""`python -m watchfloor_alerthub`: Alertmanager URLs and credentials, refused with a reason."""

from __future__ import annotations

import pytest

from watchfloor_alerthub.__main__ import (
    PASSWORD,
    USERNAME,
    ConfigError,
    alertmanager_credentials,
    alertmanager_urls,
    main,
)


@pytest.fixture
def env(monkeypatch):
    for name in (USERNAME, PASSWORD, "WATCHFLOOR_ALERTMANAGER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WATCHFLOOR_ALERTHUB_TOKEN", "t")
    return monkeypatch


@pytest.mark.parametrize(
    ("given", "missing"), [({USERNAME: "u"}, PASSWORD), ({PASSWORD: "p"}, USERNAME)]
)
def test_one_credential_without_the_other_refuses_to_start_naming_it(
    env, capsys, tmp_path, given, missing
):
    for name, value in given.items():
        env.setenv(name, value)
    assert main(["--database", str(tmp_path / "h.sqlite")]) == 2
    error = capsys.readouterr().err
    assert f"{missing} is not set" in error
    assert not (tmp_path / "h.sqlite").exists()  # refused before anything started


def test_credentials_both_or_neither():
    assert alertmanager_credentials({}) is None
    assert alertmanager_credentials({USERNAME: "watchfloor", PASSWORD: "s3cret"}) == (
        "watchfloor", "s3cret"
    )  # fmt: skip


def test_one_or_several_alertmanagers():
    assert alertmanager_urls(None, {}) == ["http://127.0.0.1:9093"]
    assert alertmanager_urls(["http://am:9093/"], {}) == ["http://am:9093"]  # the single-URL form
    assert alertmanager_urls(["http://a:9093", "http://b:9093", "http://a:9093"], {}) == [
        "http://a:9093", "http://b:9093"
    ]  # fmt: skip
    env = {"WATCHFLOOR_ALERTMANAGER_URL": "http://a:9093, http://b:9093"}
    assert alertmanager_urls(None, env) == ["http://a:9093", "http://b:9093"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("am:9093", "not an http(s) URL"),
        ("ftp://am", "not an http(s) URL"),
        ("http://user:pw@am:9093", USERNAME),  # never echo the password back
        ("http://am:9093/?x=1", "query"),
    ],
)
def test_bad_alertmanager_urls_are_refused(url, reason):
    with pytest.raises(ConfigError, match=reason.replace("(", r"\(").replace(")", r"\)")) as error:
        alertmanager_urls([url], {})
    assert "pw" not in str(error.value)


@pytest.mark.parametrize("flag", ["--max-alerts=0", "--reconcile-seconds=-1", "--max-clients=x",
                                  "--resolved-retention-seconds=inf"])  # fmt: skip
def test_bounds_must_be_positive_numbers(env, capsys, flag):
    with pytest.raises(SystemExit) as exited:
        main([flag])
    assert exited.value.code == 2 and flag.split("=")[0] in capsys.readouterr().err
