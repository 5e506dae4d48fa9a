"""`watchfloor-alerthub` (default port 9095)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import uvicorn

from watchfloor.logging import configure_logging
from watchfloor_alerthub.app import create_app


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(prog="watchfloor-alerthub")
    parser.add_argument("--host", default=env.get("WATCHFLOOR_ALERTHUB_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(env.get("WATCHFLOOR_ALERTHUB_PORT", "9095"))
    )
    parser.add_argument(
        "--database",
        type=Path,
        default=Path(
            env.get(
                "WATCHFLOOR_ALERTHUB_DB", Path.home() / ".local/state/watchfloor/alerthub.sqlite"
            )
        ),
    )
    parser.add_argument(
        "--alertmanager-url",
        default=env.get("WATCHFLOOR_ALERTMANAGER_URL", "http://127.0.0.1:9093"),
    )
    parser.add_argument(
        "--watchdog-stale-seconds", type=float,
        default=float(env.get("WATCHFLOOR_WATCHDOG_STALE_SECONDS", "120")),
    )  # fmt: skip
    repo_runbooks = Path(__file__).resolve().parents[2] / "docs" / "runbooks"
    parser.add_argument(
        "--runbooks", type=Path, default=Path(env.get("WATCHFLOOR_RUNBOOKS_DIR", repo_runbooks)),
        help="directory of the runbooks the alerts link to (env WATCHFLOOR_RUNBOOKS_DIR)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    token = env.get("WATCHFLOOR_ALERTHUB_TOKEN", "").strip()
    if not token:
        print(
            "watchfloor-alerthub: refusing to start: set WATCHFLOOR_ALERTHUB_TOKEN", file=sys.stderr
        )
        return 2
    configure_logging("alert-hub")
    app = create_app(
        token=token,
        database=args.database,
        alertmanager_url=args.alertmanager_url.rstrip("/"),
        watchdog_stale_seconds=args.watchdog_stale_seconds,
        runbooks=args.runbooks if args.runbooks.is_dir() else None,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
