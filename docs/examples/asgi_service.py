"""/metrics in an ASGI service that is not FastAPI: a Starlette app with a route of its own.

    uvicorn --app-dir docs/examples asgi_service:app --host 127.0.0.1 --port 8000

A Route, not a Mount: `Mount("/metrics", ...)` answers /metrics with a redirect to /metrics/.
In FastAPI, `instrument_app` already serves /metrics; without it, `app.mount("/metrics",
asgi_app())` works (Prometheus follows the redirect). tests/unit/test_metrics_serving.py runs it.
"""

from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from watchfloor.metrics import asgi_app

QUOTES = Counter("example_quotes", "Quotes served, by symbol.", ["symbol"])
SYMBOLS = frozenset({"AAPL", "MSFT", "EURUSD"})  # a label takes values from a closed set


async def quote(request: Request) -> JSONResponse:
    symbol = request.path_params["symbol"]
    if symbol not in SYMBOLS:
        return JSONResponse({"error": "unknown symbol"}, status_code=404)
    QUOTES.labels(symbol).inc()
    return JSONResponse({"symbol": symbol, "bid": 101.25, "ask": 101.27})


app = Starlette(routes=[Route("/quotes/{symbol}", quote), Route("/metrics", asgi_app())])
