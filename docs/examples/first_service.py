"""Your first service (README, "Your first service"): an order router under uvicorn.

    pip install "./libs[fastapi]" uvicorn        # from a checkout; or the git URL in libs/README.md
    WATCHFLOOR_LOGSTASH_HOST=localhost OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 \
        uvicorn first_service:app --port 8000

Every line it writes (its own, uvicorn's access lines, the traceback of an unhandled error) is
ECS JSON on stderr and shipped to Logstash, with `correlation.id` and `trace.id`; /metrics is
Prometheus' format; each request is a SERVER span in Jaeger.
"""

import logging

from fastapi import FastAPI, HTTPException

from watchfloor.fastapi import instrument_app
from watchfloor.logging import configure_logging
from watchfloor.tracing import configure_tracing, traced

configure_logging("order-router")  # before uvicorn's loggers write: it takes them over
configure_tracing("order-router")  # the OTEL_* variables apply; explicit arguments win

app = FastAPI()
log = logging.getLogger("order_router")


@app.post("/orders/{symbol}")
async def submit(symbol: str, quantity: int) -> dict[str, str]:
    if quantity <= 0:
        raise HTTPException(status_code=422, detail="quantity must be positive")
    with traced("order.route", **{"trading.symbol": symbol}):
        log.info("order routed", extra={"trading.symbol": symbol, "quantity": quantity})
    return {"status": "routed"}


@app.get("/fail")
async def fail() -> None:
    raise RuntimeError("venue connection lost")  # one ECS error event, with the request's ids


instrument_app(app, "order-router")  # request metrics, spans, X-Correlation-ID, /metrics, /health
