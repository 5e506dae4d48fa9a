"""The setup job's calls, against a local server that records them (the real run is in tests/e2e)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from tests.integration.elasticsearch_double import ElasticsearchHandler, serving

pytestmark = pytest.mark.integration

PASSWORDS = {
    "ELASTIC_PASSWORD": "elastic-pass-1",
    "KIBANA_SYSTEM_PASSWORD": "kibana-pass-1",
    "LOGSTASH_WRITER_PASSWORD": "logstash-pass-1",
    "JAEGER_WRITER_PASSWORD": "jaeger-pass-1",
    "GRAFANA_READER_PASSWORD": "grafana-pass-1",
    "ELASTICSEARCH_EXPORTER_PASSWORD": "exporter-pass-1",
    "TRACE_RETENTION_PASSWORD": "retention-pass-1",
}


class Recorder(ThreadingHTTPServer):
    def __init__(self, fail_first: int = 0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.calls: list[tuple[str, str, dict, bytes]] = []
        self.fail_first = fail_first


class _Handler(ElasticsearchHandler):
    server: Recorder

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.calls.append((self.command, self.path, dict(self.headers), body))
        if self.server.fail_first > 0:
            self.server.fail_first -= 1
            status, reply = 503, {"error": "starting"}
        elif "_import" in self.path:
            status, reply = 200, {"success": True, "successCount": 9}
        else:
            status, reply = 200, {"acknowledged": True, "created": True}
        self.reply(status, reply)

    do_PUT = do_POST = do_GET = _answer


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with serving(Recorder(fail_first=2)) as server:
        yield server


def run(
    url: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watchfloor_provisioning.elastic", "--elasticsearch-url", url,
         "--retry-delay", "0.05", *extra],
        env={"PATH": "/usr/bin:/bin", **(PASSWORDS if env is None else env)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_setup_applies_every_object_in_order_and_retries(recorder: Recorder):
    url = f"http://127.0.0.1:{recorder.server_address[1]}"
    result = run(url, "--kibana-url", url)
    assert result.returncode == 0, result.stderr
    paths = [
        (method, path.split("?")[0]) for method, path, _, _ in recorder.calls[2:]
    ]  # after two 503 answers
    assert paths[:4] == [
        ("PUT", f"/_ilm/policy/watchfloor-{c}") for c in ("audit", "errors", "system", "trading")
    ]
    assert ("PUT", "/_index_template/logs-watchfloor.trading") in paths
    assert ("PUT", "/_security/role/watchfloor_logstash_writer") in paths
    assert paths.index(("PUT", "/_component_template/watchfloor-ecs-mappings")) < paths.index(
        ("PUT", "/_index_template/logs-watchfloor.logs")
    )
    user = next(
        json.loads(b)
        for m, p, _, b in recorder.calls
        if p.startswith("/_security/user/watchfloor_logstash")
    )
    assert user == {"password": "logstash-pass-1", "roles": ["watchfloor_logstash_writer"]}
    kibana = next(
        json.loads(b)
        for m, p, _, b in recorder.calls
        if p.startswith("/_security/user/kibana_system/_password")
    )
    assert kibana == {"password": "kibana-pass-1"}
    _, path, headers, body = recorder.calls[-1]
    assert path.startswith("/api/saved_objects/_import?overwrite=true")
    assert headers.get("kbn-xsrf") and b"watchfloor-errors-24h" in body


def test_setup_twice_is_idempotent(recorder: Recorder):
    url = f"http://127.0.0.1:{recorder.server_address[1]}"
    assert run(url).returncode == 0
    first = [(m, p) for m, p, _, _ in recorder.calls[2:]]
    recorder.calls.clear()
    assert run(url).returncode == 0
    assert [(m, p) for m, p, _, _ in recorder.calls] == first  # the same PUTs of the same state


def test_missing_password_and_unreachable_cluster_fail_with_a_reason():
    result = run(
        "http://127.0.0.1:9",
        env={k: v for k, v in PASSWORDS.items() if k != "JAEGER_WRITER_PASSWORD"},
    )
    assert result.returncode == 1 and "JAEGER_WRITER_PASSWORD must be set" in result.stderr
    result = run("http://127.0.0.1:9", "--attempts", "2")
    assert result.returncode == 1 and "not reachable after 2 attempts" in result.stderr


def test_dry_run_changes_nothing(recorder: Recorder):
    url = f"http://127.0.0.1:{recorder.server_address[1]}"
    result = run(url, "--dry-run", "--kibana-url", url)
    assert result.returncode == 0 and recorder.calls == []
    assert "would PUT _index_template/logs-watchfloor.audit" in result.stdout


def test_compose_stages_split_elasticsearch_from_kibana(recorder: Recorder):
    url = f"http://127.0.0.1:{recorder.server_address[1]}"
    # `setup` (before Kibana exists): every Elasticsearch object, no Kibana call.
    assert run(url, "--stage", "elasticsearch", "--kibana-url", url).returncode == 0
    paths = [p for _, p, _, _ in recorder.calls]
    assert not any(p.startswith("/api/") for p in paths)
    assert any(p.startswith("/_security/user/watchfloor_monitoring") for p in paths)
    recorder.calls.clear()
    # `kibana-setup` (Kibana healthy): only the saved objects, and no password is needed but
    # the `elastic` one it logs in with.
    result = run(url, "--stage", "kibana", "--kibana-url", url,
                 env={"ELASTIC_PASSWORD": PASSWORDS["ELASTIC_PASSWORD"]})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [p.split("?")[0] for _, p, _, _ in recorder.calls] == ["/api/saved_objects/_import"]
    result = run(url, "--stage", "kibana")
    assert result.returncode == 2 and "--stage kibana needs --kibana-url" in result.stderr
