"""Shared measuring and reporting for `make bench`.

Every figure is printed beside a baseline measured in the same run, as a ratio, because
absolute timings on a shared 2-core box say little; the ratio is what the targets are set on.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable


def per_call_seconds(fn: Callable[[], object], *, calls: int, repeats: int = 5) -> float:
    """Median over `repeats` runs of the mean wall time of one call of `fn`."""
    samples = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def report(
    name: str,
    value: float,
    *,
    baseline_name: str,
    baseline: float,
    unit: str,
    target: str,
    lower_is_better: bool = True,
) -> bool:
    """Print one figure as `value unit vs baseline -> ratio (target)`; return whether it met it.

    `target` is written like "<= 0.15x" or ">= 20000"; a ratio target compares value/baseline,
    an absolute one compares value itself.
    """
    ratio = value / baseline if baseline else float("inf")
    op, _, bound_text = target.partition(" ")
    absolute = not bound_text.endswith("x")
    bound = float(bound_text.rstrip("x"))
    measured = value if absolute else ratio
    met = measured <= bound if op == "<=" else measured >= bound
    direction = "lower is better" if lower_is_better else "higher is better"
    print(
        f"{name}: {value:,.6g} {unit} vs {baseline_name}: {baseline:,.6g} {unit} "
        f"-> {ratio:.3f}x  target {target} [{'MET' if met else 'MISSED'}] ({direction})",
        flush=True,
    )
    return met
