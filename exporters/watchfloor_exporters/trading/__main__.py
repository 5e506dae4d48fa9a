"""`watchfloor-trading-exporter` (default port 9101)."""

import sys

from watchfloor_exporters.common.cli import run
from watchfloor_exporters.trading.app import build


def main() -> int:
    return run(
        service="trading-exporter",
        default_port=9101,
        port_variable="WATCHFLOOR_TRADING_EXPORTER_PORT",
        build=build,
    )


if __name__ == "__main__":
    sys.exit(main())
