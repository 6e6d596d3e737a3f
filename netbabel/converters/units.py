"""Unit factors: the one place where netbabel scales numbers between units.

Units are written as in the schema: a prefix and a base (`pA`, `nS`, `uF`, `ms`,
`Hz`), optionally combined with `*`, `/` and integer powers (`uF/cm2`, `S/cm2`,
`ohm*cm`, `1/ms`). `factor(a, b)` is the number to multiply a value in unit `a`
by to express it in unit `b`; `convert(value, a, b)` applies it. Converting
between different dimensions (pA -> nS) raises ValueError.

    >>> convert(1.0, "nA", "pA")
    1000.0
    >>> factor("pF", "nF")
    0.001
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

PREFIXES = {"": 1.0, "p": 1e-12, "n": 1e-9, "u": 1e-6, "µ": 1e-6, "m": 1e-3, "c": 1e-2, "k": 1e3, "M": 1e6, "G": 1e9}

# base unit -> (SI factor, dimension exponents over (s, m, kg, A))
BASES: dict[str, tuple[float, tuple[int, int, int, int]]] = {
    "s": (1.0, (1, 0, 0, 0)),
    "Hz": (1.0, (-1, 0, 0, 0)),
    "m": (1.0, (0, 1, 0, 0)),
    "A": (1.0, (0, 0, 0, 1)),
    "V": (1.0, (-3, 2, 1, -1)),
    "S": (1.0, (3, -2, -1, 2)),
    "ohm": (1.0, (-3, 2, 1, -2)),
    "F": (1.0, (4, -2, -1, 2)),
    "C": (1.0, (1, 0, 0, 1)),
    "mol": (1.0, (0, 0, 0, 0)),
    "M": (1e3, (0, -3, 0, 0)),  # molar = mol/l, amount not tracked
    "degC": (1.0, (0, 0, 0, 0)),
}
DIMENSIONLESS = {"", "1"}


@lru_cache(maxsize=None)
def _parse(unit: str) -> tuple[float, tuple[int, ...]]:
    """(SI factor, dimension) of a unit expression such as `uF/cm2` or `ohm*cm`."""
    unit = unit.strip()
    if unit in DIMENSIONLESS:
        return 1.0, (0, 0, 0, 0)
    total = 1.0
    dims = [0, 0, 0, 0]
    sign = 1
    for token in re.split(r"(\*|/)", unit.replace(" ", "")):
        if token == "*":
            sign = sign if sign == 1 else -1  # `a/b*c` is read as a/(b*c), as units are usually written
            continue
        if token == "/":
            sign = -1
            continue
        if token == "1":
            continue
        scale, dim = _parse_token(token)
        total *= scale ** sign
        for i, d in enumerate(dim):
            dims[i] += sign * d
    return total, tuple(dims)


def _parse_token(token: str) -> tuple[float, tuple[int, ...]]:
    for prefix in ("", *PREFIXES):
        if not token.startswith(prefix):
            continue
        rest = token[len(prefix):]
        m = re.match(r"^([A-Za-z]+)(\d*)$", rest)
        if m and m.group(1) in BASES:
            base_scale, dim = BASES[m.group(1)]
            power = int(m.group(2) or 1)
            scale = (PREFIXES[prefix] * base_scale) ** power
            return scale, tuple(d * power for d in dim)
    raise ValueError(f"unknown unit {token!r}")


def factor(from_unit: str, to_unit: str) -> float:
    """Multiply a value in `from_unit` by this to get it in `to_unit`."""
    f_scale, f_dim = _parse(from_unit)
    t_scale, t_dim = _parse(to_unit)
    if f_dim != t_dim:
        raise ValueError(f"cannot convert {from_unit!r} to {to_unit!r}: different dimensions")
    ratio = f_scale / t_scale
    nearest = 10.0 ** round(math.log10(ratio))
    return nearest if math.isclose(ratio, nearest, rel_tol=1e-12) else ratio


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """`value` in `from_unit` expressed in `to_unit`."""
    return value * factor(from_unit, to_unit)
