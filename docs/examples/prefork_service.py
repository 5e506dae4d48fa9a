"""A WSGI service under a pre-fork server: /metrics, whichever worker answers it, sums them all.

    export PROMETHEUS_MULTIPROC_DIR=/run/orders/metrics   # before gunicorn starts
    gunicorn -c docs/examples/gunicorn.conf.py --chdir docs/examples prefork_service:app

Each worker writes its values to files in PROMETHEUS_MULTIPROC_DIR (prometheus-client's
multi-process mode) and `wsgi_app()` serves their sum. A gauge says how to combine the workers:
`livesum` adds the live ones (gunicorn.conf.py's child_exit drops a dead worker's share).
tests/integration/test_metrics_multiprocess.py runs it with two gunicorn workers.
"""

import os
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import Counter, Gauge

from watchfloor.metrics import wsgi_app

ORDERS = Counter("example_orders_accepted", "Orders accepted, over every worker.")
WORKERS = Gauge("example_workers", "Workers serving.", multiprocess_mode="livesum")
WORKERS.set(1)  # imported in each worker after the fork (gunicorn's default, no preload_app)
metrics = wsgi_app()


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/metrics":
        return metrics(environ, start_response)
    if environ["PATH_INFO"] == "/orders":
        ORDERS.inc()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"accepted by worker {os.getpid()}\n".encode()]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]
