"""gunicorn settings for a service in prometheus-client's multi-process mode.

PROMETHEUS_MULTIPROC_DIR must be in gunicorn's environment when it starts (not set here: this
file imports prometheus-client, which reads the variable once, on import). The two hooks are
watchfloor's: on_starting empties that directory (a previous run's counts would be added to
this one's), child_exit removes a dead worker's `live*` gauges from the sums.

With FastAPI: `worker_class = "uvicorn_worker.UvicornWorker"`; instrument_app's /metrics sums
the workers the same way.
"""

from watchfloor.metrics.multiprocess import child_exit, on_starting

__all__ = ["child_exit", "on_starting"]  # gunicorn finds its hooks by these names

bind = "127.0.0.1:8000"
workers = 2
