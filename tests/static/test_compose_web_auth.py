"""Basic auth on Prometheus, Alertmanager and Pushgateway in Compose: every server has its web
config, every client presents the password, and `make up` derives the hashes from .env."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import yaml

from tests.static.conftest import REPO
from watchfloor_stack.compose import webauth
from watchfloor_stack.compose.compose_file import load
from watchfloor_stack.compose.dotenv import ensure_env, parse

SERVERS = {"prometheus": 9090, "alertmanager": 9093, "pushgateway": 9091}
IMAGES = {f"prom/{kind}": kind for kind in SERVERS}
DATASOURCES = REPO / "provisioning" / "grafana" / "datasources" / "datasources.yml"


def _flag(command: list[str], name: str) -> str:
    return next(arg.split("=", 1)[1] for arg in command if arg.startswith(f"--{name}="))


def _servers(raw_compose: dict[str, Any]) -> dict[str, str]:
    """Each service running one of the three servers (the scale profile runs several) -> kind."""
    servers = {
        name: IMAGES[service["image"].rsplit(":", 1)[0]]
        for name, service in raw_compose["services"].items()
        if service["image"].rsplit(":", 1)[0] in IMAGES
    }
    assert set(servers.values()) == set(SERVERS)
    return servers


def _prometheus_config(service: dict[str, Any]) -> Path:
    target = _flag(service["command"], "config.file")
    (source,) = [v.split(":")[0] for v in service["volumes"] if v.split(":")[1] == target]
    return REPO / source


def test_each_server_reads_a_web_config_holding_its_hash(raw_compose: dict[str, Any]):
    for name, kind in _servers(raw_compose).items():
        service = raw_compose["services"][name]
        target = _flag(service["command"], "web.config.file")
        mounted = {c["target"]: c["source"] for c in service["configs"]}
        content = raw_compose["configs"][mounted[target]]["content"]
        secret = webauth.PASSWORDS[kind]
        assert yaml.safe_load(content) == {
            "basic_auth_users": {
                webauth.USERNAME: f"${{{webauth.hash_variable(secret)}:?run make up, which derives it in .env}}"
            }
        }
        # Compose creates each password secret from .env's variable of the same name.
        assert raw_compose["secrets"][secret.lower()] == {"environment": secret}


def test_each_healthcheck_authenticates(raw_compose: dict[str, Any]):
    for name, kind in _servers(raw_compose).items():
        service, port = raw_compose["services"][name], SERVERS[kind]
        secret = webauth.PASSWORDS[kind].lower()
        assert secret in service["secrets"], f"{name} cannot read its own password"
        check = service["healthcheck"]["test"][-1]
        assert f"http://{webauth.USERNAME}:$$(cat /run/secrets/{secret})@localhost:{port}/" in check


def test_prometheus_presents_each_password_it_needs(raw_compose: dict[str, Any]):
    for name, kind in _servers(raw_compose).items():
        if kind == "prometheus":
            _presents_each_password(raw_compose["services"][name])


def _presents_each_password(service: dict[str, Any]) -> None:
    config = yaml.safe_load(_prometheus_config(service).read_text())
    clients = {job["job_name"]: job for job in config["scrape_configs"]}
    clients["alerting"] = config["alerting"]["alertmanagers"][0]
    needed = {"prometheus": "prometheus", "alertmanager": "alertmanager",
              "pushgateway": "pushgateway", "alerting": "alertmanager"}  # fmt: skip
    granted = set(service["secrets"])
    for client, server in needed.items():
        secret = webauth.PASSWORDS[server].lower()
        assert clients[client]["basic_auth"] == {
            "username": webauth.USERNAME,
            "password_file": f"/run/secrets/{secret}",
        }, client
        assert secret in granted


def test_grafana_and_the_hub_present_the_passwords(compose: dict[str, Any], env: dict[str, str]):
    grafana = compose["services"]["grafana"]["environment"]
    sources = {s["uid"]: s for s in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    for uid in ("prometheus", "alertmanager"):
        source = sources[uid]
        assert source["basicAuth"] is True and source["basicAuthUser"] == webauth.USERNAME
        variable = re.fullmatch(r"\$(\w+)", source["secureJsonData"]["basicAuthPassword"])
        assert variable, source
        assert grafana[variable[1]] == env[webauth.PASSWORDS[uid]]
    hub = compose["services"]["alert-hub"]["environment"]
    assert hub["WATCHFLOOR_ALERTMANAGER_USERNAME"] == webauth.USERNAME
    assert hub["WATCHFLOOR_ALERTMANAGER_PASSWORD"] == env["ALERTMANAGER_PASSWORD"]


def test_make_up_derives_the_hashes_quoted_and_keeps_them(tmp_path: Path):
    example, env_file = REPO / ".env.example", tmp_path / ".env"
    ensure_env(example, env_file)
    changed = webauth.ensure_hashes(env_file)
    assert changed == sorted(webauth.hash_variable(s) for s in webauth.PASSWORDS.values())
    text = env_file.read_text()
    values = parse(text)
    for secret in webauth.PASSWORDS.values():
        hashed = values[webauth.hash_variable(secret)]
        assert f"{webauth.hash_variable(secret)}='{hashed}'" in text  # literal for Compose
        assert webauth.password_hash(values[secret], hashed) == hashed
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert webauth.ensure_hashes(env_file) == []  # a second make up changes nothing
    assert env_file.read_text() == text
    env_file.write_text(text.replace(values["PUSHGATEWAY_PASSWORD"], "a-new-password"))
    assert webauth.ensure_hashes(env_file) == ["PUSHGATEWAY_PASSWORD_BCRYPT"]
    resolved = load(REPO / "docker-compose.monitoring.yml", parse(env_file.read_text()))
    content = yaml.safe_load(resolved["configs"]["pushgateway-web"]["content"])
    assert (
        webauth.password_hash("a-new-password", content["basic_auth_users"]["watchfloor"])
        == (content["basic_auth_users"]["watchfloor"])
    )
