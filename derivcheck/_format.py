"""Numbers and exceptions as one-line text: the formatting every layer shares.

This module sits below everything (it imports nothing from derivcheck), so the
diagnosis, the checks and the presentation layer all format alike.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np


def fmt_number(x: float) -> str:
    """``2``, ``1/2``, ``−1/3`` for simple rationals, else 4 significant digits.

    >>> fmt_number(0.5), fmt_number(-1 / 3), fmt_number(0.831415)
    ('1/2', '−1/3', '0.8314')
    """
    frac = Fraction(float(x)).limit_denominator(12)
    if abs(float(frac) - x) <= 1e-9 * max(1.0, abs(x)) and abs(frac.numerator) <= 1000:
        text = str(frac.numerator) if frac.denominator == 1 else f"{frac.numerator}/{frac.denominator}"
    else:
        text = f"{x:.4g}"
    return text.replace("-", "−")


def one_line(exc: BaseException) -> str:
    """``TypeName: first line of the message`` (JAX errors can be pages long).

    >>> one_line(ValueError("bad shape\\nmore detail"))
    'ValueError: bad shape'
    """
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > 200:
        first = first[:197] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def fmt_vector(v: Any, k: int = 6, spec: str = ".2f") -> str:
    """The first ``k`` entries of ``v`` as ``[a, b, …]`` (``-`` for no vector), each in format ``spec``.

    >>> fmt_vector([0.5, -1.25, 2.0]), fmt_vector(range(9), k=2, spec=".3g")
    ('[0.50, -1.25, 2.00]', '[0, 1, …]')
    """
    if v is None:
        return "-"
    flat = np.ravel(np.asarray(v, dtype=float))
    vals = ", ".join(f"{x:{spec}}" for x in flat[:k])
    return f"[{vals}{', …' if flat.size > k else ''}]"


def callable_name(fn: Any) -> str:
    """A function's readable name: its qualified name, ``f(axis=1)`` for ``functools.partial(f, axis=1)``.

    >>> import functools
    >>> def f(x, axis=-1): ...
    >>> callable_name(f), callable_name(functools.partial(f, axis=1)), callable_name(functools.partial(f, 2.0))
    ('f', 'f(axis=1)', 'f(2.0, ...)')
    """
    inner = getattr(fn, "func", None)
    if inner is not None and callable(inner) and hasattr(fn, "keywords") and hasattr(fn, "args"):
        bound = [repr(a) for a in fn.args] + (["..."] if fn.args else [])
        bound += [f"{k}={v!r}" for k, v in fn.keywords.items()]
        return f"{callable_name(inner)}({', '.join(bound)})"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return str(name) if name else type(fn).__name__
