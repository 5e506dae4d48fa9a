"""Measuring and judging `make bench` figures: paired, interleaved rounds and a bootstrap interval.

A figure is worth printing only when its spread is smaller than the effect it claims. So the arms
being compared (a baseline and its candidates) run in rounds: each round runs every arm once, in a
freshly shuffled order, so that a noisy neighbour or a clock-speed change hits all arms of a round
alike and cancels in the per-round comparison. An arm reports the CPU time of its own thread per
operation (time spent descheduled by the other tenants of a shared box does not count), with wall
time beside it. After `min_rounds`, and every `check_every` rounds after that, a bootstrap over the
rounds gives a 95% interval for each figure; rounds stop once every gating figure is decided, or at
the round or time cap.

Verdicts: MET / MISSED when the whole interval is on one side of the target; INCONCLUSIVE when it
straddles the target, or when an overhead the figure rests on (candidate minus baseline, where the
candidate does the baseline's work and more) has an interval reaching zero: a spread as large as
the effect. FAILED when such an overhead is below zero as a whole: the candidate cannot cost less
than the work it contains, so the measurement is broken, never a target met.
"""

from __future__ import annotations

import gc
import math
import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, Literal, TypeVar

Clock = Literal["cpu", "wall"]
R = TypeVar("R")

# Exit codes of a bench_*.py script, read by run.py. Anything else (1: a traceback) is an error.
EXIT_MET = 0
EXIT_MISSED = 10  # a gating figure missed its target, or its measurement failed
EXIT_INCONCLUSIVE = 11  # nothing missed, but a gating figure could not be decided


@dataclass(frozen=True)
class Block:
    """What one run of one arm cost per operation, in nanoseconds."""

    cpu: float
    wall: float

    def on(self, clock: Clock) -> float:
        return self.cpu if clock == "cpu" else self.wall


Round = Mapping[str, Block]  # arm name -> its block in this round
RoundStat = Callable[[Sequence[Round]], float]


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its bootstrap interval."""

    value: float
    low: float
    high: float


class Verdict(StrEnum):
    MET = "MET"
    MISSED = "MISSED"
    INCONCLUSIVE = "INCONCLUSIVE: spread >= effect"
    FAILED = "FAILED MEASUREMENT: negative overhead"


@dataclass(frozen=True)
class Target:
    """`<= 1.3x` (a ratio) or `>= 20000` (an absolute figure)."""

    op: Literal["<=", ">="]
    bound: float
    ratio: bool

    @classmethod
    def parse(cls, text: str) -> Target:
        op, _, bound_text = text.strip().partition(" ")
        if op not in ("<=", ">="):
            raise ValueError(f"target {text!r}: expected '<= N', '>= N', '<= Nx' or '>= Nx'")
        ratio = bound_text.endswith("x")
        try:
            bound = float(bound_text.removesuffix("x"))
        except ValueError:
            raise ValueError(f"target {text!r}: {bound_text!r} is not a number") from None
        if not math.isfinite(bound):
            raise ValueError(f"target {text!r}: the bound must be finite")
        return cls("<=" if op == "<=" else ">=", bound, ratio)

    def __str__(self) -> str:
        return f"{self.op} {_number(self.bound)}{'x' if self.ratio else ''}"


def judge(figure: Estimate, target: Target, overheads: Sequence[Estimate] = ()) -> Verdict:
    """The verdict on `figure` against `target`, given the overheads the figure rests on."""
    if any(overhead.high < 0 for overhead in overheads):
        return Verdict.FAILED
    if any(overhead.low <= 0 for overhead in overheads):
        return Verdict.INCONCLUSIVE
    if target.op == "<=":
        met, missed = figure.high <= target.bound, figure.low > target.bound
    else:
        met, missed = figure.low >= target.bound, figure.high < target.bound
    if met:
        return Verdict.MET
    return Verdict.MISSED if missed else Verdict.INCONCLUSIVE


def bootstrap(
    rounds: Sequence[R],
    stats: Mapping[str, Callable[[Sequence[R]], float]],
    *,
    seed: int = 0,
    resamples: int = 2000,
    confidence: float = 0.95,
) -> dict[str, Estimate]:
    """Percentile-bootstrap intervals of several statistics, resampling whole rounds (so each
    round's arms stay paired); every statistic sees the same resamples."""
    if not rounds:
        raise ValueError("bootstrap needs at least one round")
    rng = random.Random(seed)
    n = len(rounds)
    drawn: dict[str, list[float]] = {name: [] for name in stats}
    for _ in range(resamples):
        sample = [rounds[rng.randrange(n)] for _ in range(n)]
        for name, stat in stats.items():
            drawn[name].append(stat(sample))
    tail = (1 - confidence) / 2
    estimates = {}
    for name, stat in stats.items():
        values = sorted(drawn[name])
        estimates[name] = Estimate(
            stat(rounds), _percentile(values, tail), _percentile(values, 1 - tail)
        )
    return estimates


def _percentile(ordered: Sequence[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    if ordered[below] == ordered[above]:  # also keeps inf - inf out of the interpolation
        return ordered[below]
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def _divide(numerator: float, denominator: float) -> float:
    if denominator == 0:
        return math.copysign(math.inf, numerator) if numerator else 0.0
    return numerator / denominator


# Statistics over rounds of blocks. Per-round comparisons cancel what drifts between rounds.


def cost(arm: str, clock: Clock = "cpu") -> RoundStat:
    """Median ns per operation of one arm."""
    return lambda rounds: statistics.median(r[arm].on(clock) for r in rounds)


def rate(arm: str, clock: Clock = "cpu") -> RoundStat:
    """Operations per second of one arm (from its median cost)."""
    return lambda rounds: _divide(1e9, cost(arm, clock)(rounds))


def difference(candidate: str, baseline: str, clock: Clock = "cpu") -> RoundStat:
    """Median over rounds of candidate - baseline, ns per operation: the overhead."""
    return lambda rounds: statistics.median(
        r[candidate].on(clock) - r[baseline].on(clock) for r in rounds
    )


def ratio(candidate: str, baseline: str, clock: Clock = "cpu") -> RoundStat:
    """Median over rounds of candidate / baseline (cost ratio: lower means a cheaper candidate)."""
    return lambda rounds: statistics.median(
        _divide(r[candidate].on(clock), r[baseline].on(clock)) for r in rounds
    )


def overhead_ratio(candidate: str, rival: str, bare: str, clock: Clock = "cpu") -> RoundStat:
    """(candidate - bare) / (rival - bare): one overhead as a multiple of another."""
    ours, theirs = difference(candidate, bare, clock), difference(rival, bare, clock)
    return lambda rounds: _divide(ours(rounds), theirs(rounds))


@dataclass(frozen=True)
class Figure(Generic[R]):
    """A figure judged from rounds: its statistic, its target, the overheads it rests on
    (name -> statistic that must be resolved above zero). Non-gating figures are printed with
    their verdict but do not decide the exit code."""

    name: str
    statistic: Callable[[Sequence[R]], float]
    target: Target
    overheads: Mapping[str, Callable[[Sequence[R]], float]] = field(default_factory=dict)
    unit: str = ""
    gating: bool = True


@dataclass(frozen=True)
class Outcome:
    name: str
    estimate: Estimate
    target: Target
    verdict: Verdict
    overheads: Mapping[str, Estimate]
    unit: str
    gating: bool
    rounds: int


def evaluate(rounds: Sequence[R], figure: Figure[R], *, seed: int = 0) -> Outcome:
    """Judge one figure on the rounds measured so far."""
    stats = {"figure": figure.statistic}
    stats.update({f"overhead {name}": stat for name, stat in figure.overheads.items()})
    estimates = bootstrap(rounds, stats, seed=seed)
    overheads = {name: estimates[f"overhead {name}"] for name in figure.overheads}
    verdict = judge(estimates["figure"], figure.target, list(overheads.values()))
    return Outcome(
        figure.name,
        estimates["figure"],
        figure.target,
        verdict,
        overheads,
        figure.unit,
        figure.gating,
        len(rounds),
    )


@dataclass(frozen=True)
class Budget:
    """How many rounds a measurement may take: at least `min_rounds` before any verdict, at most
    `max_rounds` or `max_seconds` of wall time."""

    min_rounds: int = 20
    max_rounds: int = 200
    max_seconds: float = 30.0
    check_every: int = 5


@dataclass(frozen=True)
class Measurement:
    rounds: list[dict[str, Block]]
    outcomes: list[Outcome]
    seconds: float


def measure(
    arms: Mapping[str, Callable[[], Block]],
    figures: Sequence[Figure[Round]],
    *,
    budget: Budget,
    seed: int = 0,
) -> Measurement:
    """Run the arms in shuffled order, round after round, until every gating figure is decided
    or the budget is spent. Each arm is run once first, unmeasured, to warm it up."""
    rng = random.Random(seed)
    order = list(arms)
    for name in order:
        arms[name]()
    rounds: list[dict[str, Block]] = []
    outcomes: list[Outcome] = []
    started = time.monotonic()
    while True:
        rng.shuffle(order)
        rounds.append({name: arms[name]() for name in order})
        done = len(rounds)
        spent = done >= budget.max_rounds or time.monotonic() - started >= budget.max_seconds
        due = done >= budget.min_rounds and (done - budget.min_rounds) % budget.check_every == 0
        if not (due or spent):
            continue
        outcomes = [evaluate(rounds, figure, seed=seed) for figure in figures]
        if done < budget.min_rounds:
            outcomes = [_too_few(outcome) for outcome in outcomes]
        decided = (Verdict.MET, Verdict.MISSED)
        if spent or all(o.verdict in decided for o in outcomes if o.gating):
            return Measurement(rounds, outcomes, time.monotonic() - started)


def _too_few(outcome: Outcome) -> Outcome:
    return Outcome(
        outcome.name,
        outcome.estimate,
        outcome.target,
        Verdict.INCONCLUSIVE,
        outcome.overheads,
        outcome.unit,
        outcome.gating,
        outcome.rounds,
    )


def timed(fn: Callable[[], object], calls: int) -> Callable[[], Block]:
    """An arm that calls `fn` `calls` times and reports the cost of one call."""

    def run() -> Block:
        gc.collect()
        cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
        for _ in range(calls):
            fn()
        return Block((time.thread_time_ns() - cpu) / calls, (time.perf_counter_ns() - wall) / calls)

    return run


def single(name: str, value: float, target: str, unit: str) -> Outcome:
    """An absolute figure measured once (a sustained load, a peak): no interval to give."""
    parsed = Target.parse(target)
    estimate = Estimate(value, value, value)
    return Outcome(name, estimate, parsed, judge(estimate, parsed), {}, unit, True, 1)


def report(outcome: Outcome) -> None:
    """Print one figure with its interval and verdict, and the overheads it rests on."""
    e, unit = outcome.estimate, outcome.unit or ("x" if outcome.target.ratio else "")
    spread = (
        "one measurement"
        if outcome.rounds == 1
        else f"95% CI {_number(e.low)} to {_with_unit(e.high, unit)}, {outcome.rounds} rounds"
    )
    note = "" if outcome.gating else " (informational)"
    print(
        f"{outcome.name}: {_with_unit(e.value, unit)} ({spread}); target {outcome.target} "
        f"[{outcome.verdict}]{note}",
        flush=True,
    )
    for name, overhead in outcome.overheads.items():
        print(
            f"    overhead {name}: {overhead.value / 1e3:+.3f} µs "
            f"(95% CI {overhead.low / 1e3:+.3f} to {overhead.high / 1e3:+.3f})",
            flush=True,
        )


def report_measurement(measurement: Measurement, *, per: str) -> None:
    """Print every figure of a measurement, then what each arm cost per operation."""
    for outcome in measurement.outcomes:
        report(outcome)
    rounds = measurement.rounds
    arms = ", ".join(
        f"{arm} {cost(arm, 'cpu')(rounds) / 1e3:.3f} | {cost(arm, 'wall')(rounds) / 1e3:.3f}"
        for arm in rounds[0]
    )
    print(
        f"    {len(rounds)} rounds in {measurement.seconds:.1f} s, arms in shuffled order; "
        f"median µs/{per} (thread CPU | wall): {arms}",
        flush=True,
    )


def exit_code(outcomes: Sequence[Outcome]) -> int:
    verdicts = [o.verdict for o in outcomes if o.gating]
    if any(v in (Verdict.MISSED, Verdict.FAILED) for v in verdicts):
        return EXIT_MISSED
    if any(v is Verdict.INCONCLUSIVE for v in verdicts):
        return EXIT_INCONCLUSIVE
    return EXIT_MET


def _number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _with_unit(value: float, unit: str) -> str:
    return f"{_number(value)}x" if unit == "x" else f"{_number(value)} {unit}".rstrip()
