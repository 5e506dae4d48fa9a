"""Apply the Elasticsearch and Kibana objects: what the Compose `setup` job runs.

    python -m watchfloor_provisioning.elastic --dry-run
    python -m watchfloor_provisioning.elastic --elasticsearch-url http://elasticsearch:9200 \\
        --kibana-url http://kibana:5601
    python -m watchfloor_provisioning.elastic --stage elasticsearch   # Compose `setup`
    python -m watchfloor_provisioning.elastic --stage kibana          # Compose `kibana-setup`

Idempotent (every call is a PUT of the desired state, or an import with overwrite), retried with
backoff while Elasticsearch or Kibana is starting, and failing with the object and the reason.
Credentials come from the environment: ELASTIC_PASSWORD (the `elastic` superuser, setup only),
KIBANA_SYSTEM_PASSWORD, LOGSTASH_WRITER_PASSWORD, JAEGER_WRITER_PASSWORD, GRAFANA_READER_PASSWORD,
ELASTICSEARCH_EXPORTER_PASSWORD, TRACE_RETENTION_PASSWORD. The objects are read from provisioning/ in the repository, or
from WATCHFLOOR_PROVISIONING_DIR (the Compose jobs mount the repository's provisioning/ there).

WATCHFLOOR_INDEX_REPLICAS, when set, is the number_of_replicas of every component template that
sets one (the files say 0: one node could never assign a replica); the scale profile's three
nodes set it to 1 (docker-compose.scale.yml).

Compose runs two stages: Elasticsearch's objects and users before Kibana, Logstash, Jaeger and
Grafana start (they log in with those users), and Kibana's saved objects once Kibana is healthy,
since they go through Kibana's own API.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from elasticsearch import ApiError, Elasticsearch, TransportError

ROOT = Path(os.environ.get("WATCHFLOOR_PROVISIONING_DIR") or Path(__file__).resolve().parents[1])
ELASTICSEARCH = ROOT / "elasticsearch"
SAVED_OBJECTS = ROOT / "kibana" / "saved_objects.ndjson"
USERS = {  # user → (role, password variable)
    "watchfloor_logstash": ("watchfloor_logstash_writer", "LOGSTASH_WRITER_PASSWORD"),
    "watchfloor_jaeger": ("watchfloor_jaeger_writer", "JAEGER_WRITER_PASSWORD"),
    "watchfloor_grafana": ("watchfloor_grafana_reader", "GRAFANA_READER_PASSWORD"),
    "watchfloor_monitoring": ("watchfloor_monitoring", "ELASTICSEARCH_EXPORTER_PASSWORD"),
    "watchfloor_trace_retention": ("watchfloor_trace_retention", "TRACE_RETENTION_PASSWORD"),
}
STAGES = ("all", "elasticsearch", "kibana")
REPLICAS = "WATCHFLOOR_INDEX_REPLICAS"


class SetupError(RuntimeError):
    pass


@dataclass(frozen=True)
class Step:
    description: str
    run: Callable[[Elasticsearch], object]


def _load(folder: str) -> dict[str, dict[str, Any]]:
    return {
        p.stem: json.loads(p.read_text()) for p in sorted((ELASTICSEARCH / folder).glob("*.json"))
    }


def _call(api: str, **kwargs: Any) -> Callable[[Elasticsearch], object]:
    """A client call by its dotted name (e.g. "ilm.put_lifecycle"), applied later."""

    def run(es: Elasticsearch) -> object:
        target: Any = es
        for part in api.split("."):
            target = getattr(target, part)
        return target(**kwargs)

    return run


def plan(env: Mapping[str, str]) -> list[Step]:
    """The Elasticsearch calls, in dependency order (policies before templates using them)."""
    steps: list[Step] = []
    for name, body in _load("ilm").items():
        steps.append(
            Step(
                f"PUT _ilm/policy/{name}",
                _call("ilm.put_lifecycle", name=name, policy=body["policy"]),
            )
        )
    replicas = _replicas(env)
    for name, written in _load("component_templates").items():
        body = written if replicas is None else _with_replicas(written, replicas)
        steps.append(
            Step(
                f"PUT _component_template/{name}",
                _call("cluster.put_component_template", name=name, **body),
            )
        )
    for name, body in _load("index_templates").items():
        steps.append(
            Step(
                f"PUT _index_template/{name}",
                _call("indices.put_index_template", name=name, **body),
            )
        )
    for name, body in _load("roles").items():
        steps.append(
            Step(f"PUT _security/role/{name}", _call("security.put_role", name=name, **body))
        )
    for user, (role, variable) in USERS.items():
        password = _required(env, variable)
        steps.append(Step(f"PUT _security/user/{user} (role {role})",
                          _call("security.put_user", username=user, password=password, roles=[role])))  # fmt: skip
    kibana_password = _required(env, "KIBANA_SYSTEM_PASSWORD")
    steps.append(Step("POST _security/user/kibana_system/_password",
                      _call("security.change_password", username="kibana_system", password=kibana_password)))  # fmt: skip
    return steps


def _replicas(env: Mapping[str, str]) -> int | None:
    value = env.get(REPLICAS, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise SetupError(
            f"{REPLICAS} must be a whole number of replicas (0 or more), not {value!r}"
        )
    return int(value)


def _with_replicas(body: dict[str, Any], replicas: int) -> dict[str, Any]:
    """A copy of a component template whose number_of_replicas, if it sets one, is `replicas`."""
    index = body.get("template", {}).get("settings", {}).get("index", {})
    if "number_of_replicas" not in index:
        return body
    settings = {**body["template"]["settings"], "index": {**index, "number_of_replicas": replicas}}
    return {**body, "template": {**body["template"], "settings": settings}}


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if len(value) < 8:
        raise SetupError(f"{name} must be set to a password of at least 8 characters (see .env)")
    return value


def _retry(what: str, action: Callable[[], Any], attempts: int, delay: float) -> Any:
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except (TransportError, httpx.TransportError) as exc:
            if attempt == attempts:
                raise SetupError(
                    f"{what}: not reachable after {attempts} attempts ({exc})"
                ) from exc
        except ApiError as exc:
            if exc.status_code not in {429, 502, 503, 504} or attempt == attempts:
                raise SetupError(f"{what}: {exc.status_code} {exc.message} {exc.body}") from exc
        time.sleep(min(30.0, delay * 2 ** (attempt - 1)))
    raise AssertionError("unreachable")


def apply_elasticsearch(es: Elasticsearch, steps: list[Step], attempts: int, delay: float) -> None:
    for step in steps:
        _retry(step.description, lambda: step.run(es), attempts, delay)  # noqa: B023 - called at once
        print(f"ok  {step.description}", flush=True)


def import_kibana(url: str, auth: tuple[str, str], attempts: int, delay: float) -> None:
    def call() -> dict[str, Any]:
        response = httpx.post(
            f"{url}/api/saved_objects/_import",
            params={"overwrite": "true"},
            headers={"kbn-xsrf": "watchfloor-setup"},
            files={
                "file": ("saved_objects.ndjson", SAVED_OBJECTS.read_bytes(), "application/ndjson")
            },
            auth=auth,
            timeout=30,
        )
        if response.status_code in {502, 503}:
            raise httpx.TransportError(f"Kibana answered {response.status_code} (starting)")
        body: dict[str, Any] = response.json()
        if response.status_code != 200 or not body.get("success"):
            raise SetupError(
                f"Kibana import failed: {response.status_code} {json.dumps(body)[:500]}"
            )
        return body

    result = _retry("POST kibana /api/saved_objects/_import", call, attempts, delay)
    print(f"ok  Kibana saved objects imported ({result.get('successCount')})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m watchfloor_provisioning.elastic")
    parser.add_argument(
        "--elasticsearch-url",
        default=os.environ.get("ELASTICSEARCH_URL", "http://elasticsearch:9200"),
    )
    parser.add_argument(
        "--kibana-url", default=os.environ.get("KIBANA_URL"), help="import data views and searches"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be applied, change nothing"
    )
    parser.add_argument(
        "--stage", choices=STAGES, default="all",
        help="elasticsearch: objects and users; kibana: saved objects only (needs --kibana-url)",
    )  # fmt: skip
    parser.add_argument("--attempts", type=int, default=30)
    parser.add_argument("--retry-delay", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.stage == "kibana" and not args.kibana_url:
        parser.error("--stage kibana needs --kibana-url (or KIBANA_URL)")
    kibana_url = None if args.stage == "elasticsearch" else args.kibana_url
    try:
        steps = [] if args.stage == "kibana" else plan(os.environ)
        if args.dry_run:
            for step in steps:
                print(f"would {step.description}")
            if kibana_url:
                print(f"would POST {kibana_url}/api/saved_objects/_import?overwrite=true "
                      f"({len(SAVED_OBJECTS.read_text().splitlines())} objects)")  # fmt: skip
            return 0
        auth = ("elastic", _required(os.environ, "ELASTIC_PASSWORD"))
        es = Elasticsearch(args.elasticsearch_url, basic_auth=auth, request_timeout=30)
        apply_elasticsearch(es, steps, args.attempts, args.retry_delay)
        if kibana_url:
            import_kibana(kibana_url.rstrip("/"), auth, args.attempts, args.retry_delay)
    except SetupError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
