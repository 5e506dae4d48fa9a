"""`watchfloor-pipeline-exporter` (default port 9102)."""

import sys

from watchfloor_exporters.common.cli import run
from watchfloor_exporters.pipeline.app import build


def main() -> int:
    return run(
        service="pipeline-exporter",
        default_port=9102,
        port_variable="WATCHFLOOR_PIPELINE_EXPORTER_PORT",
        build=build,
    )


if __name__ == "__main__":
    sys.exit(main())
