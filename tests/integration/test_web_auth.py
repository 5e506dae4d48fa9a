"""Prometheus 3.5, Alertmanager 0.28.1 and Pushgateway 1.11.1 (the pinned builds, in local mode)
refuse every request without the basic-auth credentials from the secrets, cross-origin ones
included, and the stack's own clients (Prometheus' scrapes and alerts, health checks) use them."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.binaries import pinned_binary
from tests.integration.conftest import LocalStack, free_port
from tests.processes import stop
from watchfloor_stack.compose import webauth
from watchfloor_stack.compose.compose_file import load
from watchfloor_stack.compose.dotenv import ensure_env, parse, write_private
from watchfloor_stack.localmode.config import load_secrets, render_web_auth

pytestmark = pytest.mark.integration

EVIL_ORIGIN = {"Origin": "https://evil.example"}

# (component, method, path): requests that read or change state.
GUARDED = [
    ("prometheus", "GET", "/api/v1/query?query=up"),
    ("prometheus", "POST", "/-/reload"),
    ("prometheus", "POST", "/-/quit"),
    ("prometheus", "GET", "/metrics"),
    ("alertmanager", "GET", "/api/v2/silences"),
    ("alertmanager", "POST", "/api/v2/silences"),
    ("alertmanager", "POST", "/-/reload"),
    ("pushgateway", "PUT", "/metrics/job/intruder"),
    ("pushgateway", "DELETE", "/metrics/job/nightly"),
    ("pushgateway", "PUT", "/api/v1/admin/wipe"),
]


@pytest.mark.parametrize(("component", "method", "path"), GUARDED, ids=str)
def test_unauthenticated_requests_are_refused(
    local_stack: LocalStack, component: str, method: str, path: str
):
    url = local_stack.url(component) + path
    assert httpx.request(method, url, headers=EVIL_ORIGIN).status_code == 401
    wrong = (webauth.USERNAME, "not-the-password")
    assert httpx.request(method, url, auth=wrong).status_code == 401


@pytest.mark.parametrize("component", ["prometheus", "alertmanager", "pushgateway"])
def test_a_cross_origin_preflight_gets_no_permission(local_stack: LocalStack, component: str):
    """A browser asks before a cross-origin POST; without credentials the answer is 401 and no
    Access-Control-Allow-Origin, so a page an operator opens cannot mute alerts or stop Prometheus."""
    response = httpx.options(
        local_stack.url(component) + "/api/v2/silences",
        headers={**EVIL_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 401
    assert "access-control-allow-origin" not in response.headers


def test_the_credentials_from_the_secrets_work(local_stack: LocalStack):
    assert local_stack.get("prometheus", "/-/ready").status_code == 200
    assert local_stack.get("alertmanager", "/api/v2/status").status_code == 200
    pushed = httpx.put(
        local_stack.url("pushgateway") + "/metrics/job/web_auth_test",
        content=b"watchfloor_web_auth_test 1\n",
        auth=(webauth.USERNAME, local_stack.env[webauth.PASSWORDS["pushgateway"]]),
    )
    assert pushed.status_code == 200
    assert "watchfloor_web_auth_test" in local_stack.get("pushgateway", "/metrics").text


def test_prometheus_scrapes_and_alerts_with_the_credentials(local_stack: LocalStack):
    for job in ("prometheus", "alertmanager", "pushgateway"):
        assert local_stack.query(f'up{{job="{job}"}} == 1'), f"{job} not scraped with auth"
    discovered = local_stack.query("prometheus_notifications_alertmanagers_discovered")
    assert float(discovered[0]["value"][1]) == 1
    errors = local_stack.query("sum(prometheus_notifications_errors_total)")
    assert float(errors[0]["value"][1]) == 0, "Prometheus failed to send alerts (401?)"


def test_every_secret_file_is_private(local_stack: LocalStack):
    state = local_stack.state
    files = [
        *(state / component / "web.yml" for component in webauth.PASSWORDS),
        *(state / "secrets" / secret.lower() for secret in webauth.PASSWORDS.values()),
        state / "alertmanager" / "alertmanager.yml",
    ]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert "$2" in (state / "prometheus" / "web.yml").read_text()  # a bcrypt hash, not the password
    assert (
        local_stack.env["PROMETHEUS_PASSWORD"] not in (state / "prometheus" / "web.yml").read_text()
    )


def test_secret_files_are_private_from_creation(tmp_path: Path, monkeypatch):
    """Created 0600, never chmod-ed afterwards: a watcher cannot catch one readable."""
    created: list[int] = []
    real_replace = os.replace

    def replace(source: os.PathLike[str] | str, target: os.PathLike[str] | str) -> None:
        created.append(stat.S_IMODE(os.stat(source).st_mode))
        real_replace(source, target)

    def no_chmod(*args: object, **kwargs: object) -> None:
        raise AssertionError("a secret file was chmod-ed after creation")

    old_umask = os.umask(0)  # the most permissive umask: only the mode given at creation counts
    try:
        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(Path, "chmod", no_chmod)
        monkeypatch.setenv("WATCHFLOOR_ENV_FILE", str(tmp_path / "none.env"))
        for name in ("WATCHFLOOR_INGEST_TOKEN", *webauth.PASSWORDS.values()):
            monkeypatch.delenv(name, raising=False)
        secrets = load_secrets(tmp_path, ("WATCHFLOOR_INGEST_TOKEN", *webauth.PASSWORDS.values()))
        render_web_auth(tmp_path, secrets)
        (tmp_path / "leftover.tmp").write_text("x")  # a leftover temp file keeps no mode
        os.chmod(tmp_path / "leftover.tmp", 0o644)
        write_private(tmp_path / "leftover", "secret")
    finally:
        os.umask(old_umask)
    assert created and set(created) == {0o600}, created
    assert stat.S_IMODE((tmp_path / "secrets.env").stat().st_mode) == 0o600


def test_an_unchanged_password_keeps_its_hash(tmp_path: Path):
    passwords = {secret: "same-password" for secret in webauth.PASSWORDS.values()}
    first = render_web_auth(tmp_path, passwords)["prometheus"].read_text()
    assert render_web_auth(tmp_path, passwords)["prometheus"].read_text() == first
    passwords["PROMETHEUS_PASSWORD"] = "changed"
    assert render_web_auth(tmp_path, passwords)["prometheus"].read_text() != first


def test_the_compose_web_configs_work_in_the_pinned_servers(tmp_path: Path):
    """What Compose mounts, from a .env `make up` wrote, accepted by the real 3.5/0.28.1/1.11.1."""
    repo = Path(__file__).resolve().parents[2]
    env_file = tmp_path / ".env"
    ensure_env(repo / ".env.example", env_file)
    webauth.ensure_hashes(env_file)
    env = parse(env_file.read_text())
    compose = load(repo / "docker-compose.monitoring.yml", env)
    (tmp_path / "prometheus.yml").write_text("global: {}\n")
    servers = {
        "prometheus": lambda port, web: [
            pinned_binary("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
            f"--web.config.file={web}",
        ],
        "alertmanager": lambda port, web: [
            pinned_binary("alertmanager"), f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'am'}", f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=", f"--web.config.file={web}",
        ],
        "pushgateway": lambda port, web: [
            pinned_binary("pushgateway"), f"--web.listen-address=127.0.0.1:{port}",
            f"--web.config.file={web}",
        ],
    }  # fmt: skip
    (tmp_path / "am.yml").write_text("route: {receiver: none}\nreceivers: [{name: none}]\n")
    for name, command in servers.items():
        web = tmp_path / f"{name}-web.yml"
        web.write_text(compose["configs"][f"{name}-web"]["content"])
        port = free_port()
        process = subprocess.Popen(
            command(port, web), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        try:
            url = f"http://127.0.0.1:{port}/-/ready"
            deadline = time.monotonic() + 30
            while True:
                try:
                    status = httpx.get(url).status_code
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, f"{name} did not start"
                    time.sleep(0.2)
            assert status == 401, name
            password = env[webauth.PASSWORDS[name]]
            assert httpx.get(url, auth=(webauth.USERNAME, password)).status_code == 200, name
        finally:
            stop(process)
