"""Delete Jaeger's daily indices older than the retention: the Compose `trace-retention` service.

    python -m watchfloor_provisioning.trace_retention --days 7 [--once]

Logs have ILM; Jaeger's daily `jaeger-<kind>-YYYY-MM-DD` indices have nothing, and Jaeger's own
es-index-cleaner is a one-shot command that needs a scheduler Compose does not have. This loop
does the same selection by the date in the index name, once an interval, and touches a heartbeat
file the Compose healthcheck reads. Credentials: TRACE_RETENTION_PASSWORD (the
`watchfloor_trace_retention` user, which may list and delete jaeger-* indices and nothing else).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from elasticsearch import ApiError, Elasticsearch, TransportError

USER = "watchfloor_trace_retention"
HEARTBEAT = Path("/tmp/trace-retention.ok")  # noqa: S108 - the container's own /tmp
# Jaeger's periodic indices (date_layout 2006-01-02), with or without an index prefix.
_DAILY = re.compile(
    r"^(?:[\w.-]+-)?jaeger-(?:span|service|dependencies|sampling)-(\d{4}-\d{2}-\d{2})$"
)


def expired(indices: Iterable[str], today: date, days: int) -> list[str]:
    """The indices whose day is more than `days` days before `today` (today's is kept)."""
    cutoff = today - timedelta(days=days)
    old = []
    for name in indices:
        match = _DAILY.match(name)
        if match and date.fromisoformat(match[1]) < cutoff:
            old.append(name)
    return sorted(old)


def sweep(es: Elasticsearch, days: int, today: date | None = None) -> list[str]:
    # format=json makes the body a list of rows (the client types it as text or rows).
    rows = es.cat.indices(index="jaeger-*", format="json", h="index").body
    names = [str(row["index"]) for row in rows if isinstance(row, dict)]
    old = expired(names, today or datetime.now(UTC).date(), days)
    for name in old:
        es.indices.delete(index=name)
        print(f"deleted {name} (older than {days} days)", flush=True)
    return old


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m watchfloor_provisioning.trace_retention")
    parser.add_argument(
        "--elasticsearch-url",
        default=os.environ.get("ELASTICSEARCH_URL", "http://elasticsearch:9200"),
    )
    parser.add_argument(
        "--days", type=int, default=int(os.environ.get("JAEGER_RETENTION_DAYS", "7"))
    )
    parser.add_argument("--interval", type=float, default=3600.0, help="seconds between sweeps")
    parser.add_argument("--once", action="store_true", help="one sweep, then exit")
    parser.add_argument("--heartbeat", type=Path, default=HEARTBEAT)
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error(f"--days (JAEGER_RETENTION_DAYS) must be at least 1, got {args.days}")
    password = os.environ.get("TRACE_RETENTION_PASSWORD", "")
    if not password:
        print("trace retention: TRACE_RETENTION_PASSWORD is not set (see .env)", file=sys.stderr)
        return 1
    es = Elasticsearch(args.elasticsearch_url, basic_auth=(USER, password), request_timeout=30)
    while True:
        try:
            sweep(es, args.days)
            args.heartbeat.touch()
        except (ApiError, TransportError) as exc:
            # Elasticsearch restarting is no reason to stop: the next sweep tries again, and
            # the heartbeat going stale makes the container unhealthy if it lasts.
            print(f"trace retention: sweep failed, retrying later: {exc}", file=sys.stderr)
            if args.once:
                return 1
        if args.once:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
