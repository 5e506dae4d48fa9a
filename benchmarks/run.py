"""`make bench`: run every benchmarks/bench_*.py in its own process and summarise.

Separate processes keep one benchmark's global state (logging pipeline, tracer provider,
registry) from skewing another's figures. A file passes when every gating figure met its target;
a missed target or a failed measurement fails the run, and so does a figure that could not be
decided (its spread as large as the effect) unless --allow-inconclusive is given.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from _measure import EXIT_INCONCLUSIVE, EXIT_MET, EXIT_MISSED

HERE = Path(__file__).resolve().parent
OUTCOMES = {EXIT_MET: "met", EXIT_MISSED: "missed", EXIT_INCONCLUSIVE: "inconclusive"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="run only files whose name contains one of these")
    parser.add_argument(
        "--allow-inconclusive",
        action="store_true",
        help="exit 0 when figures are only inconclusive (a noisy machine), not missed",
    )
    args = parser.parse_args(argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.names:
        scripts = [s for s in scripts if any(name in s.stem for name in args.names)]
    if not scripts:
        parser.error(f"no benchmark file matches {args.names}")
    results: dict[str, list[str]] = {"met": [], "missed": [], "inconclusive": [], "error": []}
    for script in scripts:
        print(f"== {script.stem}", flush=True)
        started = time.monotonic()
        code = subprocess.run([sys.executable, str(script)], check=False).returncode
        print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
        if code in OUTCOMES:
            results[OUTCOMES[code]].append(script.stem)
        else:
            results["error"].append(f"{script.stem} (exit {code})")
    print(f"{len(results['met'])} of {len(scripts)} benchmark files met every target")
    for kind in ("missed", "inconclusive", "error"):
        if results[kind]:
            label = "missed or failed measurement" if kind == "missed" else kind
            print(f"{label}: {', '.join(results[kind])}")
    failed = results["missed"] or results["error"]
    if failed or (results["inconclusive"] and not args.allow_inconclusive):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
