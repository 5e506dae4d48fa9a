"""watchfloor: one shape for the logs, metrics and traces of every trading-platform service."""

__version__ = "0.1.0"
