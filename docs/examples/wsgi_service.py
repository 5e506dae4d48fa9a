"""/metrics beside a plain WSGI app, no framework: dispatch on the path.

    python docs/examples/wsgi_service.py 8000

With Flask, werkzeug's DispatcherMiddleware does the same:
`DispatcherMiddleware(flask_app.wsgi_app, {"/metrics": wsgi_app()})`.
tests/unit/test_metrics_serving.py serves it with wsgiref on 127.0.0.1.
"""

import sys
from collections.abc import Iterable
from wsgiref.simple_server import make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import Counter

from watchfloor.metrics import wsgi_app

ORDERS = Counter("example_orders_accepted", "Orders accepted.")
metrics = wsgi_app()


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/metrics":
        return metrics(environ, start_response)
    if environ["PATH_INFO"] == "/orders" and environ["REQUEST_METHOD"] == "POST":
        ORDERS.inc()
        start_response("202 Accepted", [("Content-Type", "text/plain")])
        return [b"accepted\n"]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    with make_server("127.0.0.1", port, app) as server:
        server.serve_forever()
