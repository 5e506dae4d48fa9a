"""`make bench`: run every benchmarks/bench_*.py in its own process and summarise.

Separate processes keep one benchmark's global state (logging pipeline, tracer provider,
registry) from skewing another's figures.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(selected: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if selected:
        scripts = [s for s in scripts if any(name in s.stem for name in selected)]
    failed = []
    for script in scripts:
        print(f"== {script.stem}", flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(script)], check=False)
        print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
        if result.returncode != 0:
            failed.append(script.stem)
    print(f"{len(scripts) - len(failed)} of {len(scripts)} benchmark files met every target")
    if failed:
        print("missed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
