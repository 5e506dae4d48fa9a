"""Records of the `watchfloor.trading` loggers reach the trading dataset without `extra`."""

from __future__ import annotations

import logging

from watchfloor.logging import DATASET_AUDIT, DATASET_ERRORS, DATASET_LOGS, DATASET_TRADING
from watchfloor.trading import TRADING_LOGGER, trading_logger


def test_the_trading_namespace_defaults_to_the_trading_dataset(ecs_lines):
    logging.getLogger("watchfloor.trading").info("namespace root")
    logging.getLogger("watchfloor.trading.risk.limits").info("a child, any depth")
    trading_logger("desk").info("through the helper")
    logging.getLogger("watchfloor.tradingdesk").info("only a shared prefix")
    logging.getLogger("watchfloor").info("the parent")
    docs = ecs_lines()
    assert [(d["log"]["logger"], d["event"]["dataset"]) for d in docs] == [
        ("watchfloor.trading", DATASET_TRADING),
        ("watchfloor.trading.risk.limits", DATASET_TRADING),
        ("watchfloor.trading.desk", DATASET_TRADING),
        ("watchfloor.tradingdesk", DATASET_LOGS),
        ("watchfloor", DATASET_LOGS),
    ]


def test_an_explicit_dataset_and_errors_still_win(ecs_lines):
    log = trading_logger()
    log.info("asked for logs", extra={"event.dataset": DATASET_LOGS})
    log.info("audit is refused", extra={"event.dataset": DATASET_AUDIT})
    log.error("an error")
    docs = ecs_lines()
    assert [d["event"]["dataset"] for d in docs] == [
        DATASET_LOGS,
        DATASET_TRADING,  # only audit() writes audit events: the namespace default applies
        DATASET_ERRORS,
    ]


def test_helper_names():
    assert TRADING_LOGGER == "watchfloor.trading"
    assert trading_logger().name == "watchfloor.trading"
    assert trading_logger("").name == "watchfloor.trading"
    assert trading_logger("fx").name == "watchfloor.trading.fx"
