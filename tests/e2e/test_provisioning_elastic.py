"""The setup code against a real Elasticsearch 9 (security on): objects applied, a watchfloor
event indexed into its data stream with the provisioned mappings and ILM policy."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import LogMessageWaitStrategy

from elasticsearch import Elasticsearch
from tests.e2e.conftest import ELASTICSEARCH_IMAGE

PASSWORDS = {
    "ELASTIC_PASSWORD": "e2e-elastic-pass",
    "KIBANA_SYSTEM_PASSWORD": "e2e-kibana-pass",
    "LOGSTASH_WRITER_PASSWORD": "e2e-logstash-pass",
    "JAEGER_WRITER_PASSWORD": "e2e-jaeger-pass",
    "GRAFANA_READER_PASSWORD": "e2e-grafana-pass",
    "ELASTICSEARCH_EXPORTER_PASSWORD": "e2e-exporter-pass",
    "TRACE_RETENTION_PASSWORD": "e2e-retention-pass",
}


def test_setup_against_real_elasticsearch():
    container = (
        DockerContainer(ELASTICSEARCH_IMAGE)
        .with_env("discovery.type", "single-node")
        .with_env("xpack.security.enabled", "true")
        .with_env("xpack.security.http.ssl.enabled", "false")
        .with_env("xpack.license.self_generated.type", "basic")
        .with_env("ELASTIC_PASSWORD", PASSWORDS["ELASTIC_PASSWORD"])
        .with_env("ES_JAVA_OPTS", "-Xms512m -Xmx512m")
        .with_exposed_ports(9200)
        .waiting_for(LogMessageWaitStrategy('"message":"started').with_startup_timeout(240))
    )
    with container:
        url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(9200)}"
        result = subprocess.run(
            [sys.executable, "-m", "watchfloor_provisioning.elastic", "--elasticsearch-url", url],
            env={**os.environ, **PASSWORDS}, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        writer = Elasticsearch(
            url, basic_auth=("watchfloor_logstash", PASSWORDS["LOGSTASH_WRITER_PASSWORD"])
        )
        writer.index(
            index="logs-watchfloor.trading-default",
            document={"@timestamp": "2026-11-24T14:30:00.000Z", "message": "fill", "event": {"id": "e-1", "dataset": "watchfloor.trading"}, "order_id": "o-1"},
            id="e-1", op_type="create",
        )  # fmt: skip
        # What Logstash does on a re-sent event: the same id again is refused, stored once.
        from elasticsearch import ConflictError

        try:
            writer.index(
                index="logs-watchfloor.trading-default",
                id="e-1",
                op_type="create",
                document={"@timestamp": "2026-11-24T14:30:00.000Z", "message": "fill"},
            )
            raise AssertionError("a duplicate event id was stored twice")
        except ConflictError:
            pass
        admin = Elasticsearch(url, basic_auth=("elastic", PASSWORDS["ELASTIC_PASSWORD"]))
        deadline = time.monotonic() + 30
        while (
            admin.count(index="logs-watchfloor.trading-default")["count"] < 1
            and time.monotonic() < deadline
        ):
            time.sleep(1)
        mapping = admin.indices.get_mapping(index="logs-watchfloor.trading-default")
        properties = next(iter(mapping.body.values()))["mappings"]["properties"]
        assert properties["event"]["properties"]["id"]["type"] == "keyword"
        assert properties["order_id"]["type"] == "keyword"
        stream = admin.indices.get_data_stream(name="logs-watchfloor.trading-default")
        assert stream["data_streams"][0]["ilm_policy"] == "watchfloor-trading"
