"""Words for what the diagnosis finds: dimensions, axes, factors as size expressions.

A symbolic dimension is named by the first argument that uses it (``m → rows
of X``); an axis of the value by the dimension whose size it has in every size
set; a factor by a simple constant or an expression in the sizes
(:func:`explain_factor`). Numbers are written by :func:`derivcheck._format.fmt_number`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from derivcheck._format import fmt_number
from derivcheck._inputs import REGIMES, Inputs

if TYPE_CHECKING:
    from derivcheck._diagnose._evidence import Observations

MATCH_RTOL = 1e-6  # a fitted factor or coefficient "equals" an expression within this


def dim_descriptions(inputs: Any) -> dict[str, str]:
    """Each symbolic dimension in words, from the first argument that uses it: ``m → rows of X``."""
    out: dict[str, str] = {}
    if not isinstance(inputs, Inputs):
        return out
    for name, spec in inputs.specs:
        dims = tuple(getattr(spec, "dims", ()))
        classes = getattr(spec, "classes", None)
        if classes is not None:
            dims = (*dims, classes)
        for axis, dim in enumerate(dims):
            if isinstance(dim, str) and dim not in out:
                out[dim] = _axis_words(name, axis, len(dims), classes is not None)
    return out


def _axis_words(name: str, axis: int, ndim: int, one_hot: bool) -> str:
    if one_hot and axis == ndim - 1:
        return f"classes of {name}"
    if ndim == 1:
        return f"length of {name}"
    if ndim == 2:
        return f"{'rows' if axis == 0 else 'columns'} of {name}"
    return f"axis {axis} of {name}"


def sizes_of(obs: Observations) -> dict[str, list[int]]:
    """Each dimension's value in every kept failing row, in order."""
    out: dict[str, list[int]] = {}
    for g in obs.failing_groups:
        for k, v in g.sizes:
            out.setdefault(k, []).extend([v] * g.rows.size)
    return out


def axis_names(obs: Observations) -> list[str]:
    """The dimension each axis of the value stands for ("" where the sizes do not say).

    Read from the size sets with failing rows: the others keep no values (their
    ``derived`` is an empty placeholder whose shape is not the value's).
    """
    groups = obs.failing_groups or obs.groups
    ndim = len(groups[0].shape)
    names = []
    for a in range(ndim):
        cands = [k for k, _ in groups[0].sizes if all(g.shape[a] == dict(g.sizes).get(k) for g in groups)]
        names.append(cands[0] if len(cands) == 1 else _prefer_wrt(obs, a, cands))
    return names


def _prefer_wrt(obs: Observations, axis: int, cands: list[str]) -> str:
    """Among dims of equal size, the one the differentiated argument uses at that axis."""
    d = obs.derivation
    if not cands or not isinstance(d.inputs, Inputs) or not hasattr(d.claim, "wrt"):
        return ""
    spec = dict(d.inputs.specs).get(d.arg_names[d.wrt_index]) if d.arg_names else None
    dims = [x for x in getattr(spec, "dims", ()) if isinstance(x, str)]
    return next((x for x in dims if x in cands), "")


def symbol(dim: str, fallback: str) -> str:
    return dim.lower() if dim else fallback


SIMPLE_CONSTANTS: tuple[float, ...] = (-1.0, 2.0, 0.5, -2.0, -0.5, 3.0, 1 / 3, 4.0, 0.25, -3.0, -1 / 3, -4.0, -0.25)


def dim_expressions(dims: Sequence[str]) -> list[tuple[str, tuple[str, ...], Callable[[dict], float]]]:
    """Expressions in the sizes a factor may equal: ``(text, dims used, value(sizes))``."""
    out: list[tuple[str, tuple[str, ...], Callable[[dict], float]]] = []
    one = {
        "{k}": lambda k: k,
        "1/{k}": lambda k: 1 / k,
        "{k} − 1": lambda k: k - 1,
        "1/({k} − 1)": lambda k: 1 / (k - 1) if k != 1 else math.nan,
        "{k} + 1": lambda k: k + 1,
        "1/({k} + 1)": lambda k: 1 / (k + 1),
        "2{k}": lambda k: 2 * k,
        "1/(2{k})": lambda k: 1 / (2 * k),
        "{k}/2": lambda k: k / 2,
        "{k}/({k} − 1)": lambda k: k / (k - 1) if k != 1 else math.nan,
        "({k} − 1)/{k}": lambda k: (k - 1) / k,
        "{k}²": lambda k: k * k,
        "1/{k}²": lambda k: 1 / (k * k),
        "√{k}": lambda k: math.sqrt(k),
        "1/√{k}": lambda k: 1 / math.sqrt(k),
    }
    for k in dims:
        for text, fn in one.items():
            out.append((text.format(k=k), (k,), lambda s, k=k, fn=fn: fn(s[k])))
    for k, j in itertools.permutations(dims, 2):
        out.append((f"{k}/{j}", (k, j), lambda s, k=k, j=j: s[k] / s[j]))
        if k < j:
            out.append((f"{k}{j}", (k, j), lambda s, k=k, j=j: s[k] * s[j]))
            out.append((f"1/({k}{j})", (k, j), lambda s, k=k, j=j: 1 / (s[k] * s[j])))
    signed = []
    for text, used, fn in out:
        negated = f"−({text})" if " " in text else f"−{text}"
        signed.append((negated, used, lambda s, fn=fn: -fn(s)))
    return out + signed


def close(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return bool(np.all(np.isfinite(b)) and np.all(np.abs(a - b) <= MATCH_RTOL * np.maximum(np.abs(a), 1e-300)))


@dataclasses.dataclass(frozen=True)
class Factor:
    """A factor explained: its expression, the dims it uses, and their words."""

    text: str
    dims: tuple[str, ...] = ()
    words: str = ""


def explain_factor(
    c: np.ndarray,
    sizes: dict[str, list[int]],
    dims: dict[str, str],
    verify: Callable[[np.ndarray], bool] | None = None,
) -> Factor | None:
    """Which simple constant or size expression equals the factor ``c_t`` on every trial.

    ``verify(values)`` decides whether a candidate's per-trial values fit (by
    default: equal to ``c`` within :data:`MATCH_RTOL`; the diagnosis passes the
    check's own test, since a fitted ``c_t`` is imprecise where terms cancel).
    A simple constant wins; then an expression whose value varies with the
    sizes. An expression that takes one value on these trials is no evidence
    for a dimension (``9`` at the only size set read is ``m`` as much as any
    other 9): it is not offered (:func:`size_coincidences` names such
    coincidences for the evidence).

    >>> explain_factor(np.array([5.0, 13.0]), {"m": [5, 13], "d": [3, 8]}, {"m": "rows of X"}).words
    'm = 13 (rows of X)'
    """
    c = np.asarray(c, float)
    if c.size == 0:
        return None
    verify = verify or (lambda vals: close(c, vals))
    for k in SIMPLE_CONSTANTS:
        if verify(np.full(c.shape, k)):
            return Factor(fmt_number(k))
    matches = []
    for text, used, fn in dim_expressions(sorted(sizes)):
        if len({tuple(sizes[k][i] for k in used) for i in range(c.size)}) < 2:
            continue  # one value of these dims: a size expression cannot be told from a constant
        vals = np.array([fn({k: sizes[k][i] for k in used}) for i in range(c.size)], float)
        if np.all(np.isfinite(vals)) and verify(vals):
            matches.append((len(text), text, used))
    if not matches:
        return None
    _, text, used = min(matches)
    return Factor(text, used, _factor_words(text, used, sizes, dims))


def size_coincidences(value: float, sizes: dict[str, list[int]]) -> list[str]:
    """Size expressions equal to ``value`` where every dimension they use has one size (``m`` for 9 at m = 9).

    >>> size_coincidences(9.0, {"m": [9, 9], "d": [3, 3]})
    ['m', 'd²']
    """
    fixed = {k: v[0] for k, v in sizes.items() if len(set(v)) == 1}
    out = []
    for text, used, fn in dim_expressions(sorted(fixed)):
        if all(k in fixed for k in used) and math.isclose(fn(fixed), value, rel_tol=MATCH_RTOL):
            out.append(text)
    return sorted(out, key=len)[:3]


def _factor_words(text: str, used: tuple[str, ...], sizes: dict[str, list[int]], dims: dict[str, str]) -> str:
    """``m = 13 (rows of X)`` for a bare dim; ``m − 1, with m = 13 (rows of X)`` otherwise."""
    parts = [f"{k} = {max(sizes[k])}" + (f" ({dims[k]})" if k in dims else "") for k in used]
    if text.lstrip("−") == used[0] and len(used) == 1:
        sign = "−" if text.startswith("−") else ""
        return sign + parts[0]
    return f"{text}, with " + " and ".join(parts)


def times(text: str) -> str:
    return f"({text}) · " if any(ch in text for ch in " /") and not text.startswith("1/") else f"{text} · "


DEGENERATE_REGIMES: dict[str, str] = {
    "constant": "all entries equal",
    "shifted": "saturated gates",
    "large": "saturated gates",
}
"""Regimes whose draws make many different formulas agree: on all-equal entries a matrix equals its
transpose, every index order gives the same value and deviations from the mean vanish; far from 0
sigmoid, tanh and softmax saturate, and every term through their derivatives vanishes. A formula
that holds *only* there says nothing about its error (:func:`degenerate_holding`)."""


def degenerate_holding(obs: Observations) -> list[str]:
    """The holding regimes, when they are all degenerate (:data:`DEGENERATE_REGIMES`) and another fails.

    Empty when some regime outside :data:`DEGENERATE_REGIMES` holds throughout (then "fails only
    in …" is a finding), or when every regime fails.
    """
    all_regimes = list(dict.fromkeys(r for g in obs.groups for r in g.regimes))
    bad = set(r for g in obs.groups for r in g.regimes[g.failed])
    good = [r for r in all_regimes if r not in bad]
    if good and bad and all(r in DEGENERATE_REGIMES for r in good):
        return good
    return []


def regime_line(obs: Observations) -> str:
    """Which regimes fail, describing the smaller side: "fails only in regime large (…)".

    When the only holding regimes are degenerate (:func:`degenerate_holding`), says so instead of
    offering them as where the formula is right.
    """
    all_regimes = list(dict.fromkeys(r for g in obs.groups for r in g.regimes))
    bad = list(dict.fromkeys(r for g in obs.groups for r in g.regimes[g.failed]))
    good = [r for r in all_regimes if r not in bad]
    if len(all_regimes) <= 1:
        return ""
    if not good:
        return "fails in every regime"
    degenerate = degenerate_holding(obs)
    if degenerate:
        why = "; ".join(dict.fromkeys(DEGENERATE_REGIMES[r] for r in degenerate))
        return (
            f"holds only in regime{'s' if len(degenerate) > 1 else ''} {', '.join(degenerate)} ({why}), "
            "where formulas that differ by a transpose, the order of a product, an index order, a term in the "
            "deviations from the mean or a term through a saturated gate agree: that says nothing about the error"
        )
    if len(bad) <= len(good):
        described = ", ".join(f"{r} ({REGIMES.get(r, r)})" for r in bad)
        return f"fails only in regime{'s' if len(bad) > 1 else ''} {described}; holds in {', '.join(good)}"
    described = ", ".join(f"{r} ({REGIMES.get(r, r)})" for r in good)
    return f"holds only in regime{'s' if len(good) > 1 else ''} {described}; fails in {', '.join(bad)}"
