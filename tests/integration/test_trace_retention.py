"""Trace retention: which Jaeger indices go, and the HTTP calls the real client makes for it.

Elasticsearch cannot run here: a small server that keeps a set of indices answers the two calls
(`_cat/indices`, index delete) the way Elasticsearch does; the e2e suite has the real one.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.elasticsearch_double import ElasticsearchHandler, serving
from watchfloor_provisioning.trace_retention import expired

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).date()


def _day(days_ago: int) -> str:
    return (TODAY - timedelta(days=days_ago)).isoformat()


INDICES = {
    f"jaeger-span-{_day(14)}",
    f"jaeger-service-{_day(14)}",
    f"jaeger-dependencies-{_day(8)}",
    f"jaeger-sampling-{_day(23)}",
    f"jaeger-span-{_day(7)}",  # exactly the retention: kept
    f"jaeger-span-{_day(0)}",
    "jaeger-span-read",  # an alias-style name: never touched
}
EXPIRED = sorted(
    [f"jaeger-span-{_day(14)}", f"jaeger-service-{_day(14)}", f"jaeger-dependencies-{_day(8)}",
     f"jaeger-sampling-{_day(23)}"]
)  # fmt: skip


class Cluster(ThreadingHTTPServer):
    def __init__(self, indices: set[str]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.indices = set(indices)
        self.auth: list[str] = []


class _Handler(ElasticsearchHandler):
    server: Cluster

    def do_GET(self) -> None:
        self.server.auth.append(self.headers.get("Authorization", ""))
        if self.path.startswith("/_cat/indices/jaeger-*"):
            self.reply(200, [{"index": name} for name in sorted(self.server.indices)])
        else:
            self.reply(404, {"error": self.path})

    def do_DELETE(self) -> None:
        name = self.path.strip("/").split("?")[0]
        if name in self.server.indices:
            self.server.indices.remove(name)
            self.reply(200, {"acknowledged": True})
        else:
            self.reply(404, {"error": {"type": "index_not_found_exception"}, "status": 404})


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with serving(Cluster(INDICES)) as server:
        yield server


def test_only_daily_indices_older_than_the_retention_are_selected():
    assert expired(INDICES, TODAY, days=7) == EXPIRED
    assert expired(INDICES, TODAY, days=30) == []
    assert expired([f"watchfloor-jaeger-span-{_day(9)}"], TODAY, days=7) == [
        f"watchfloor-jaeger-span-{_day(9)}"
    ]


def _run(
    cluster: Cluster, *args: str, password: str = "jaeger-pass-1"
) -> subprocess.CompletedProcess[str]:
    url = f"http://127.0.0.1:{cluster.server_address[1]}"
    return subprocess.run(
        [sys.executable, "-m", "watchfloor_provisioning.trace_retention",
         "--elasticsearch-url", url, *args],
        env={"PATH": "/usr/bin:/bin", "TRACE_RETENTION_PASSWORD": password},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_sweep_deletes_the_expired_indices_as_its_own_user(cluster: Cluster, tmp_path: Path):
    heartbeat = tmp_path / "ok"
    result = _run(cluster, "--once", "--days", "7", "--heartbeat", str(heartbeat))
    assert result.returncode == 0, result.stderr
    assert cluster.indices == INDICES - set(EXPIRED)
    assert result.stdout.count("deleted ") == 4
    assert heartbeat.exists()
    assert (
        cluster.auth[0]
        == "Basic " + base64.b64encode(b"watchfloor_trace_retention:jaeger-pass-1").decode()
    )
    again = _run(cluster, "--once", "--days", "7", "--heartbeat", str(heartbeat))
    assert again.returncode == 0 and "deleted" not in again.stdout


def test_bad_settings_and_an_unreachable_cluster_fail_with_a_reason(cluster: Cluster):
    assert (
        "--days (JAEGER_RETENTION_DAYS) must be at least 1" in _run(cluster, "--days", "0").stderr
    )
    assert "TRACE_RETENTION_PASSWORD is not set" in _run(cluster, "--once", password="").stderr
    result = subprocess.run(
        [sys.executable, "-m", "watchfloor_provisioning.trace_retention", "--once",
         "--elasticsearch-url", "http://127.0.0.1:9"],
        env={"PATH": "/usr/bin:/bin", "TRACE_RETENTION_PASSWORD": "x"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1 and "sweep failed, retrying later" in result.stderr
