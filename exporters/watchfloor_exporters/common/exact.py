"""Exact running sums of floats, for totals that must not drift.

A float running total loses what it cannot represent: add 2**54, then 1 a few hundred times,
subtract 2**54 again, and it reads 0 instead of the ones (a ratio over it then divides by zero).
Every finite float is an integer multiple of 2**-1074, so sums are kept as Python integers in those
units, exactly. `int / int` is correctly rounded in Python, so a ratio of two such sums is the float
nearest the true ratio, and `to_float` of a sum past the float range raises OverflowError instead
of returning inf.
"""

from __future__ import annotations

_EXPONENT = 1074


def units(value: float) -> int:
    """`value` as an integer count of 2**-1074."""
    numerator, denominator = value.as_integer_ratio()
    return numerator << (_EXPONENT + 1 - denominator.bit_length())


def to_float(total: int) -> float:
    """The float nearest `total` units; OverflowError if it is beyond the float range."""
    return total / (1 << _EXPONENT)
