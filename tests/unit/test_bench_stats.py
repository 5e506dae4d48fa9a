"""The benchmark verdicts on synthetic rounds: a resolved effect is met or missed, an effect
smaller than its spread is inconclusive, a negative overhead is a failed measurement."""

from __future__ import annotations

import importlib.util
import random
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit


def _load() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "_measure.py"
    spec = importlib.util.spec_from_file_location("bench_measure", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building the class
    spec.loader.exec_module(module)
    return module


m = _load()


def rounds_with(
    seed: int, effect_ns: float, *, count: int = 40, base_ns: float = 1000.0, noise_ns: float = 40.0
) -> list[dict[str, object]]:
    """Rounds of a baseline and a candidate costing `effect_ns` more, both slowed alike by a
    machine speed that drifts +-20% between rounds, each with its own noise."""
    rng = random.Random(seed)
    rounds = []
    for _ in range(count):
        speed = rng.uniform(0.8, 1.2)
        base = base_ns * speed + rng.gauss(0, noise_ns)
        cand = (base_ns + effect_ns) * speed + rng.gauss(0, noise_ns)
        rounds.append({"baseline": m.Block(base, base), "candidate": m.Block(cand, cand)})
    return rounds


def verdict_of(rounds: list[dict[str, object]], target: str) -> object:
    figure = m.Figure(
        "candidate",
        m.ratio("candidate", "baseline"),
        m.Target.parse(target),
        overheads={"candidate": m.difference("candidate", "baseline")},
    )
    return m.evaluate(rounds, figure).verdict


def test_a_clear_overhead_under_the_target_is_met() -> None:
    assert verdict_of(rounds_with(1, effect_ns=100), "<= 1.3x") is m.Verdict.MET


def test_a_clear_overhead_over_the_target_is_missed() -> None:
    assert verdict_of(rounds_with(2, effect_ns=100), "<= 1.05x") is m.Verdict.MISSED


def test_no_effect_under_noise_is_inconclusive_even_far_under_the_target() -> None:
    # The ratio is ~1.0, far under 1.3x, but the overhead it rests on is not resolved.
    rounds = rounds_with(3, effect_ns=0)
    overhead = m.bootstrap(rounds, {"d": m.difference("candidate", "baseline")})["d"]
    assert overhead.low < 0 < overhead.high
    assert verdict_of(rounds, "<= 1.3x") is m.Verdict.INCONCLUSIVE


def test_a_negative_overhead_is_a_failed_measurement_not_a_met_target() -> None:
    assert verdict_of(rounds_with(4, effect_ns=-100), "<= 1.0x") is m.Verdict.FAILED


def test_a_figure_whose_interval_straddles_the_target_is_inconclusive() -> None:
    assert verdict_of(rounds_with(5, effect_ns=300), "<= 1.3x") is m.Verdict.INCONCLUSIVE


def test_an_overhead_below_the_bare_app_fails_the_overhead_ratio() -> None:
    """The defect this guards: instrument_app at -4.4 µs/request above the bare app, reported
    as within 1.0x of the instrumentator's overhead."""
    rng = random.Random(6)
    rounds = []
    for _ in range(40):
        speed = rng.uniform(0.9, 1.1)
        rounds.append(
            {
                arm: m.Block(cost * speed + rng.gauss(0, 1), cost * speed)
                for arm, cost in (("bare", 50.0), ("ours", 45.6), ("theirs", 80.0))
            }
        )
    figure = m.Figure(
        "ours vs theirs",
        m.overhead_ratio("ours", "theirs", "bare"),
        m.Target.parse("<= 1.0x"),
        overheads={
            "ours": m.difference("ours", "bare"),
            "theirs": m.difference("theirs", "bare"),
        },
    )
    outcome = m.evaluate(rounds, figure)
    assert outcome.estimate.high < 1.0  # on its face the target looks met
    assert outcome.verdict is m.Verdict.FAILED


def test_pairing_cancels_drift_between_rounds() -> None:
    rng = random.Random(7)
    rounds = []
    for _ in range(30):
        base = rng.uniform(500, 5000)
        rounds.append({"baseline": m.Block(base, base), "candidate": m.Block(base + 100, base)})
    overhead = m.bootstrap(rounds, {"d": m.difference("candidate", "baseline")})["d"]
    assert overhead == m.Estimate(pytest.approx(100), pytest.approx(100), pytest.approx(100))


def test_a_throughput_floor_is_judged_on_its_interval() -> None:
    rounds = rounds_with(8, effect_ns=0, base_ns=20_000, noise_ns=500)  # ~50 000 ops/s
    rate = m.bootstrap(rounds, {"r": m.rate("baseline")})["r"]
    assert rate.low < 50_000 < rate.high
    assert m.judge(rate, m.Target.parse(">= 40000")) is m.Verdict.MET
    assert m.judge(rate, m.Target.parse(">= 60000")) is m.Verdict.MISSED
    assert m.judge(rate, m.Target.parse(">= 50000")) is m.Verdict.INCONCLUSIVE


@pytest.mark.parametrize(
    ("figure", "target", "overheads", "expected"),
    [
        ((1.1, 1.0, 1.2), "<= 1.3x", [(5, 1, 9)], "MET"),
        ((1.1, 1.0, 1.2), "<= 1.3x", [(5, -1, 9)], "INCONCLUSIVE"),
        ((1.1, 1.0, 1.2), "<= 1.3x", [(5, 0, 9)], "INCONCLUSIVE"),
        ((1.1, 1.0, 1.2), "<= 1.3x", [(-5, -9, -1)], "FAILED"),
        ((1.1, 1.0, 1.2), "<= 1.3x", [(5, 1, 9), (-5, -9, -1)], "FAILED"),
        ((1.4, 1.35, 1.5), "<= 1.3x", [], "MISSED"),
        ((1.3, 1.2, 1.4), "<= 1.3x", [], "INCONCLUSIVE"),
        ((0.3, 0.25, 0.35), ">= 0.2x", [], "MET"),
        ((0.1, 0.05, 0.15), ">= 0.2x", [], "MISSED"),
    ],
)
def test_judge(
    figure: tuple[float, float, float],
    target: str,
    overheads: list[tuple[float, float, float]],
    expected: str,
) -> None:
    verdict = m.judge(
        m.Estimate(*figure), m.Target.parse(target), [m.Estimate(*o) for o in overheads]
    )
    assert verdict is m.Verdict[expected]


def synthetic_arms(
    effect_ns: float, seed: int, calls: list[str]
) -> dict[str, Callable[[], object]]:
    rng = random.Random(seed)

    def arm(name: str, cost_ns: float) -> Callable[[], object]:
        def run() -> object:
            calls.append(name)
            value = cost_ns * rng.uniform(0.9, 1.1)
            return m.Block(value, value)

        return run

    return {"baseline": arm("baseline", 1000), "candidate": arm("candidate", 1000 + effect_ns)}


FIGURE = m.Figure(
    "candidate",
    m.ratio("candidate", "baseline"),
    m.Target.parse("<= 1.3x"),
    overheads={"candidate": m.difference("candidate", "baseline")},
)


def test_measure_stops_once_the_figure_is_decided() -> None:
    calls: list[str] = []
    budget = m.Budget(min_rounds=10, max_rounds=200, max_seconds=600, check_every=5)
    result = m.measure(synthetic_arms(150, 9, calls), [FIGURE], budget=budget, seed=9)
    assert result.outcomes[0].verdict is m.Verdict.MET
    assert len(result.rounds) == 10
    assert calls[:2] == ["baseline", "candidate"]  # the unmeasured warm-up
    orders = {tuple(calls[i : i + 2]) for i in range(2, len(calls), 2)}
    assert orders == {("baseline", "candidate"), ("candidate", "baseline")}


def test_measure_runs_to_the_cap_and_reports_an_unresolved_effect_as_inconclusive() -> None:
    budget = m.Budget(min_rounds=10, max_rounds=40, max_seconds=600, check_every=5)
    result = m.measure(synthetic_arms(0, 10, []), [FIGURE], budget=budget, seed=10)
    assert len(result.rounds) == 40
    assert result.outcomes[0].verdict is m.Verdict.INCONCLUSIVE


def test_measure_out_of_time_before_min_rounds_is_inconclusive() -> None:
    budget = m.Budget(min_rounds=10, max_rounds=200, max_seconds=0, check_every=5)
    result = m.measure(synthetic_arms(500, 11, []), [FIGURE], budget=budget, seed=11)
    assert len(result.rounds) == 1
    assert result.outcomes[0].verdict is m.Verdict.INCONCLUSIVE


def test_exit_code_fails_on_missed_failed_and_inconclusive_gating_figures() -> None:
    def outcome(verdict: object, gating: bool = True) -> object:
        estimate = m.Estimate(1.0, 1.0, 1.0)
        return m.Outcome("f", estimate, m.Target.parse("<= 1x"), verdict, {}, "", gating, 10)

    met, inconclusive = outcome(m.Verdict.MET), outcome(m.Verdict.INCONCLUSIVE)
    assert m.exit_code([met]) == m.EXIT_MET
    assert m.exit_code([met, inconclusive]) == m.EXIT_INCONCLUSIVE
    assert m.exit_code([inconclusive, outcome(m.Verdict.MISSED)]) == m.EXIT_MISSED
    assert m.exit_code([met, outcome(m.Verdict.FAILED)]) == m.EXIT_MISSED
    assert m.exit_code([met, outcome(m.Verdict.FAILED, gating=False)]) == m.EXIT_MET


@pytest.mark.parametrize("text", ["1.3x", "< 1.3x", "<= fast", "<= nanx", ">="])
def test_a_malformed_target_is_refused_with_the_reason(text: str) -> None:
    with pytest.raises(ValueError, match="target"):
        m.Target.parse(text)
