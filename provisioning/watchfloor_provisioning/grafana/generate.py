"""Write the dashboards to provisioning/grafana/dashboards/<folder>/<uid>.json.

python -m watchfloor_provisioning.grafana.generate          # regenerate (make dashboards)
python -m watchfloor_provisioning.grafana.generate --check  # exit 1 when the JSON is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from watchfloor_provisioning.grafana.dashboards import DASHBOARDS

OUTPUT = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"


def rendered() -> dict[Path, str]:
    files = {}
    for folder, build in DASHBOARDS:
        dashboard = build().build()
        text = json.dumps(
            json.loads(JSONEncoder(sort_keys=True).encode(dashboard)), indent=2, sort_keys=True
        )
        files[OUTPUT / folder / f"{dashboard.uid}.json"] = text + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m watchfloor_provisioning.grafana.generate")
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON is stale")
    args = parser.parse_args(argv)
    files = rendered()
    existing = set(OUTPUT.glob("*/*.json"))
    stale = sorted(str(p) for p, text in files.items() if not p.exists() or p.read_text() != text)
    orphans = sorted(str(p) for p in existing - set(files))
    if args.check:
        if stale or orphans:
            print(
                "stale dashboards (run `make dashboards`): " + ", ".join(stale + orphans),
                file=sys.stderr,
            )
            return 1
        return 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for orphan in orphans:
        Path(orphan).unlink()
    print(f"wrote {len(files)} dashboards to {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
