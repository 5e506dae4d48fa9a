"""The trading exporter: order, position, P&L, risk, market-data and broker events → metrics."""
