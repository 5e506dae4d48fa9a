"""/metrics for any service: an ASGI app, a WSGI app, or a server of its own on a port.

All three serve `exposition.render` of `multiprocess.exposition_registry()`: the registry, or in
multi-process mode the sum of every worker's files. They stand in for prometheus-client's
`make_asgi_app`, `make_wsgi_app` and `start_http_server`, which write with its own generator:
that one exposes a histogram with negative buckets (`trading_slippage_bps`) with a `_count` and
no `_sum`, which OpenMetrics forbids (prometheus-client's own parser refuses it), adds `_created`
series, and skips the cardinality guard's expiry of idle series. So every /metrics of the library
gives the same bytes, `instrument_app`'s included (it mounts `asgi_app`).

None of them raises into the server: a failed render answers 500 and is logged. The ASGI app
renders on the event loop (renders take turns and do not compete with it for the GIL) and bounds
what an unauthenticated endpoint can pin: MAX_CONCURRENT_SCRAPES at once (429 past that), each
sent within SCRAPE_SEND_SECONDS in chunks, so a scraper that stops reading is cut off rather than
holding a copy of the exposition. The WSGI app leaves those bounds to its server's threads.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import CollectorRegistry

from watchfloor.metrics import exposition
from watchfloor.metrics.multiprocess import exposition_registry

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_CONCURRENT_SCRAPES = 4
SCRAPE_SEND_SECONDS = 10.0
_CHUNK = 64 * 1024
_METHODS = ("GET", "HEAD")
_PLAIN = "text/plain; charset=utf-8"
_FAILED = b"rendering the metrics failed; the service's log has the error\n"
_log = logging.getLogger("watchfloor.metrics")


class MetricsApp:
    """/metrics as an ASGI app; mount it at any path (`asgi_app()` builds one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._busy = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # served on its own, as the server's whole app
            for reply in ("lifespan.startup.complete", "lifespan.shutdown.complete"):
                await receive()
                await send({"type": reply})
            return
        if scope["type"] != "http":
            return  # a websocket the app never accepts is refused by the server
        method = scope["method"]
        if method not in _METHODS:
            await _respond(send, 405, b"use GET\n", _PLAIN, [(b"allow", b"GET, HEAD")])
            return
        if self._busy >= MAX_CONCURRENT_SCRAPES:
            text = f"more than {MAX_CONCURRENT_SCRAPES} scrapes at once; retry\n".encode()
            await _respond(send, 429, text, _PLAIN, [(b"retry-after", b"1")])
            return
        self._busy += 1
        try:
            try:
                body, content_type = exposition.render(_accept(scope), self._registry)
            except Exception:
                _log.exception("rendering /metrics failed")
                await _respond(send, 500, _FAILED, _PLAIN)
                return
            await _send_within_deadline(send, body, content_type, head=method == "HEAD")
        finally:
            self._busy -= 1


def asgi_app(registry: CollectorRegistry | None = None) -> MetricsApp:
    """An ASGI app serving /metrics: `app.mount("/metrics", asgi_app())`, or a Starlette
    `Route("/metrics", asgi_app())` (no redirect to /metrics/), or the whole app of a server.

    registry: what to serve (prometheus-client's default one if None); ignored in multi-process
    mode, where every worker's values are summed. Raises at once if that mode is misconfigured.
    """
    return MetricsApp(exposition_registry(registry))


def wsgi_app(registry: CollectorRegistry | None = None) -> WSGIApplication:
    """A WSGI app serving /metrics at whatever path it is mounted (registry as for asgi_app)."""
    served = exposition_registry(registry)

    def metrics_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in _METHODS:
            start_response(
                "405 Method Not Allowed", [("Content-Type", _PLAIN), ("Allow", "GET, HEAD")]
            )
            return [b"use GET\n"]
        try:
            body, content_type = exposition.render(environ.get("HTTP_ACCEPT"), served)
        except Exception:
            _log.exception("rendering /metrics failed")
            start_response("500 Internal Server Error", [("Content-Type", _PLAIN)])
            return [_FAILED]
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [b"" if method == "HEAD" else body]

    return metrics_app


class MetricsServer:
    """A running `start_metrics_server`: its address, and `close()` to stop it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.host: str = str(server.server_address[0])
        self.port: int = server.server_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and free the port; returns once the serving thread has ended."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in flight never holds up the process's exit


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Nothing: one stderr line per scrape would drown the service's own logs."""


def start_metrics_server(
    port: int, addr: str = "127.0.0.1", registry: CollectorRegistry | None = None
) -> MetricsServer:
    """Serve /metrics (any path, in fact) on addr:port from a daemon thread, for a process that
    serves no HTTP of its own (a worker, a batch job's long run, a gRPC server).

    addr defaults to loopback: /metrics is unauthenticated; give "0.0.0.0" (or "::") for a
    Prometheus on another host. port 0 picks a free port (`.port` says which). Raises ValueError
    for a port outside 0..65535 and OSError when the address cannot be bound.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int in 0..65535, not {port!r}")
    app = wsgi_app(registry)
    server_class = _Server6 if ":" in addr else _Server
    try:
        server = make_server(addr, port, app, server_class, handler_class=_QuietHandler)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot serve /metrics on {addr}:{port}: {exc.strerror}") from exc
    thread = threading.Thread(target=server.serve_forever, name="watchfloor-metrics", daemon=True)
    thread.start()
    return MetricsServer(server, thread)


def _accept(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"accept":
            return bytes(value).decode("latin-1")
    return None


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type.encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_within_deadline(send: Send, body: bytes, content_type: str, head: bool) -> None:
    # One send would be buffered whole by the server when the client does not read; in chunks,
    # the server's flow control makes each send wait, so the deadline can cut a stalled scraper
    # off.
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    view = memoryview(b"" if head else body)
    try:
        async with asyncio.timeout(SCRAPE_SEND_SECONDS):
            for start in range(0, len(view), _CHUNK):
                chunk = bytes(view[start : start + _CHUNK])
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
    except TimeoutError:
        return  # the server closes a connection whose response was left incomplete
