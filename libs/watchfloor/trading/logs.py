"""Loggers whose records go to the trading dataset (`watchfloor.trading`, kept 365 days)."""

from __future__ import annotations

import logging

from watchfloor.logging.ecs import TRADING_LOGGER


def trading_logger(name: str | None = None) -> logging.Logger:
    """`watchfloor.trading`, or its child `watchfloor.trading.<name>`.

    The ECS formatter gives every record of these loggers `event.dataset: watchfloor.trading`
    unless the record names another dataset in `extra` or is an error (`watchfloor.errors`).
    """
    return logging.getLogger(TRADING_LOGGER if not name else f"{TRADING_LOGGER}.{name}")
