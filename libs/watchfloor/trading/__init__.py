"""The trading domain in one place: an order's lifecycle recorded once as span, metrics and log.

from watchfloor.trading import OrderLifecycle, trading_logger

order = OrderLifecycle("o-1", strategy="momo", symbol="AAPL", side="buy", quantity=100,
                       venue="XNAS", price=187.2, arrival_price=187.18)
order.acked("V-9")
order.filled(100, 187.22)                # final: the whole quantity is filled
trading_logger("risk").info("limit raised")  # dataset watchfloor.trading, no `extra` needed
"""

from watchfloor.logging.ecs import TRADING_LOGGER
from watchfloor.trading.lifecycle import OrderLifecycle
from watchfloor.trading.logs import trading_logger

__all__ = ["TRADING_LOGGER", "OrderLifecycle", "trading_logger"]
