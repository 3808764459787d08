"""Limit claims: a formula claimed for a limiting value of a size or a parameter.

``derived(*args)`` is claimed to be ``lim of(*args)`` as ``along → to``:

* along a **dimension** (``to = ∞``): each trial draws its arrays once, at the
  largest size, and evaluates both sides on nested prefixes of sizes
  ``n_1 < … < n_J`` (default ``4, 8, …, 2048``) — one sample path, as in a
  law of large numbers;
* along a **scalar argument**: ``t_j = to + (t_0 − to) 2^{-j}`` (finite ``to``)
  or ``t_0 2^j`` (``to = ∞``), ``j = 0 … 10``, ``t_0`` the drawn value moved to
  within 1 of ``to`` (for ``∞``: raised to at least 1; a start ``≤ 0`` is an
  error), see :func:`start`; or the values given in ``points``.

At each point the difference is measured relative to the largest value on the trial's path,

.. math::

    d_j = \\frac{\\|D_j - R_j\\|}{S}, \\qquad S = \\max_k \\max(\\|D_k\\|, \\|R_k\\|),

a constant per trial, so that a limit of 0 (``1/t → 0``, a sample mean → 0) is judged by how fast
the difference vanishes rather than against values that vanish with it (``d_j`` relative to
``max(‖D_j‖, ‖R_j‖)`` is 1 at every point when ``D = 0``). A point is *at the tolerance* when
``‖D_j − R_j‖ ≤ atol + 10 rtol max(‖D_j‖, ‖R_j‖)``, the values at that very point: there
rounding hides the rest of the decay, and a difference that levels off at a non-zero value,
however large the values were earlier on the path, is not at it. The norm is the
root-mean-square ``‖v‖ = ‖v‖₂ / √len(v)``: a vector whose length grows with ``n`` is compared
by the typical size of its entries, not by their number or its largest one.
For every size set and regime the median of ``d_j`` over the trials is fitted, by least
squares, as ``m_j ∝ h_j^r`` with ``h_j = 1/n_j`` or ``|t_j − to|`` (``1/t_j`` for ``to = ∞``),
over the last points where most trials are not at the tolerance (:func:`_rate`: the points at
it carry no rate). The claim holds in a cell when every point is at the tolerance ("exact") or
the rate is ``r ≥ min_rate`` (default 1/4): a law-of-large-numbers difference of size
``n^{-1/2}`` has ``r ≈ 1/2``, a difference that tends to a non-zero constant ``r ≈ 0``, and a
second-order scheme claimed to be of order 4 has ``r ≈ 2`` however soon it reaches rounding.
The median over the cell's trials (about 20 at the default 300 trials) makes the rate robust to
one noisy path; the spread of per-trial rates is reported.

Structured inputs are judged separately: the regimes ``shifted`` (non-zero
mean) and ``constant`` break limits that hold only for zero-mean iid inputs,
and the result says in which regimes the limit holds.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from derivcheck._checks._engine import COMPILED_KEPT, CheckConfig, CheckError, fast_compile_options, jit_hint, one_line
from derivcheck._checks._kind import Kind
from derivcheck._checks.identity import fname
from derivcheck._compare import MCA_FACTOR, ResolvedTolerance, bound, fits, merge_tolerance, rounding_spread
from derivcheck._derivation import Derivation, Limit
from derivcheck._inputs import Inputs, OneHot, Sizes, _all_dims, sizes_label
from derivcheck._result import Cell, Result, Trial

DEFAULT_SIZES = tuple(2**k for k in range(2, 12))
DEFAULT_HALVINGS = 11
TAIL = 6
CONVERGED = 10.0


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a limit is approached: along a dimension (``"size"``) or an argument (``"argument"``)."""

    mode: str
    points: tuple[float, ...]
    h: tuple[float, ...]
    base_sizes: tuple[Sizes, ...]
    explicit: bool = False


def _spec_dims(spec) -> tuple:
    dims = tuple(spec.dims)
    return (*dims, spec.classes) if isinstance(spec, OneHot) else dims


def plan(d: Derivation) -> Plan:
    """The sequence of points and the size sets for ``d``'s limit (or a one-line error)."""
    claim, inputs = d.claim, d.inputs
    if not isinstance(inputs, Inputs):
        raise CheckError("a limit claim needs dc.inputs(...) with named specs, to grow a size or move an argument")
    dims = set(_all_dims(spec for _, spec in inputs.specs))
    if claim.along in dims:
        if claim.to != math.inf:
            raise CheckError(
                f"limit along the dimension {claim.along!r} must have to=inf; "
                f"for a finite size use dc.special_case(at={{{claim.along!r}: value}})"
            )
        points = tuple(int(p) for p in claim.points) or DEFAULT_SIZES
        if len(points) < 3 or any(b <= a for a, b in itertools.pairwise(points)) or points[0] < 1:
            raise CheckError(f"limit(points=...): give at least 3 increasing sizes >= 1, got {points}")
        base = tuple(dict.fromkeys(tuple(sorted({**dict(s), claim.along: points[-1]}.items())) for s in inputs.sizes))
        return Plan("size", points, tuple(1.0 / p for p in points), base)
    if claim.along in inputs.names:
        spec = dict(inputs.specs)[claim.along]
        if _spec_dims(spec) or tuple(getattr(spec, "shape", lambda s: ())({})) != ():
            raise CheckError(f"limit along the argument {claim.along!r}: it must be a scalar (its spec has dims)")
        if claim.points:
            pts = tuple(float(p) for p in claim.points)
            h = tuple(1.0 / abs(p) if claim.to == math.inf else abs(p - claim.to) for p in pts)
            if len(pts) < 3 or any(b >= a for a, b in itertools.pairwise(h)) or min(h) <= 0:
                raise CheckError(f"limit(points=...): give at least 3 values approaching {claim.to} monotonically")
            return Plan("argument", pts, h, inputs.sizes, explicit=True)
        factors = tuple(2.0**-j for j in range(DEFAULT_HALVINGS))
        return Plan("argument", factors, factors, inputs.sizes)
    raise CheckError(
        f"limit(along={claim.along!r}) names neither a dimension {sorted(dims)} nor an argument {list(inputs.names)}"
    )


def _at_point(d: Derivation, p: Plan, args: tuple, j: int) -> tuple:
    """The arguments at point ``j``: prefixes of size ``n_j``, or the argument moved to ``t_j``."""
    claim, specs = d.claim, dict(d.inputs.specs)
    if p.mode == "size":
        n = int(p.points[j])
        out = []
        for name, a in zip(d.arg_names, args, strict=True):
            axes = [i for i, dim in enumerate(_spec_dims(specs[name])) if dim == claim.along]
            index = tuple(slice(0, n) if i in axes else slice(None) for i in range(jnp.ndim(a)))
            out.append(a[index] if axes else a)
        return tuple(out)
    i = d.arg_names.index(claim.along)
    t0 = start(claim.to, args[i])
    if p.explicit:
        t = jnp.asarray(p.points[j], t0.dtype)
    elif claim.to == math.inf:
        t = t0 * p.points[0] / p.points[j]
    else:
        t = claim.to + (t0 - claim.to) * p.points[j]
    return (*args[:i], t, *args[i + 1 :])


def start(to: float, t0):
    """Where the path along an argument starts: the drawn ``t0``, moved to within 1 of the limit point.

    A path of eleven halvings from ``t0`` ends at ``|t − to| = |t0 − to| / 1024``: from a start of
    the ``large`` regime (``|t0 − to| ≈ 10``) that is still 0.01 away, and toward ``∞`` from a
    ``tiny`` start (``t0 ≈ 10⁻⁴``) ``t`` never passes 0.1 — the limit is never approached, and a
    true claim would fail. So a gap ``|t0 − to| > 1`` is divided by the power of two that brings it
    into ``[1/2, 1)`` (``to`` finite), and a start ``t0 < 1`` toward ``∞`` is multiplied by the one
    that brings it into ``[1, 2)`` (:func:`check_limit` refuses starts ``≤ 0``): its side and its
    binary mantissa are kept, so the trials still start at different points (one common start
    would turn an oscillation such as ``sin t`` into one fixed sequence that may seem to decay).
    """
    t0 = jnp.asarray(t0)
    if to == math.inf:
        mantissa, _ = jnp.frexp(t0)  # t0 = m 2^e, m in [1/2, 1)
        return jnp.where(t0 < 1, 2 * mantissa, t0).astype(t0.dtype)
    gap = t0 - to
    mantissa, _ = jnp.frexp(gap)
    return to + jnp.where(jnp.abs(gap) > 1, mantissa, gap).astype(t0.dtype)


def _difference(got, ref):
    """``(‖D − R‖, max(‖D‖, ‖R‖))`` at one point, root-mean-square norms, and whether each side is finite."""
    got, ref = jnp.ravel(jnp.asarray(got, jnp.float64)), jnp.ravel(jnp.asarray(ref, jnp.float64))
    rms = lambda v: jnp.sqrt(jnp.mean(v**2)) if v.size else jnp.zeros((), jnp.float64)
    return rms(got - ref), jnp.maximum(rms(got), rms(ref)), jnp.all(jnp.isfinite(got)), jnp.all(jnp.isfinite(ref))


@functools.lru_cache(maxsize=COMPILED_KEPT)
def _compiled(d: Derivation, p: Plan):
    """``jit(vmap(trial ↦ (d_1 … d_J, the floors, finite flags)))``, one per derivation and plan.

    ``d_j = ‖D_j − R_j‖ / S`` (module docstring), 0 at the tolerance, and the floor
    ``(atol + 10 rtol max(‖D_j‖, ‖R_j‖) + ρ_j) / S`` that marks it, ``ρ_j`` the rounding both
    sides show at that point (``16 ×`` their Monte Carlo arithmetic spreads,
    :func:`derivcheck._compare.rounding_spread`).
    """

    tol = merge_tolerance("float64", d.tolerance)
    near = ResolvedTolerance(rtol=CONVERGED * tol.rtol, atol=tol.atol)

    def path(args):
        points = [_at_point(d, p, args, j) for j in range(len(p.points))]
        rows = [_difference(d.derived(*a), d.claim.of(*a)) for a in points]
        diff, scale, fin_d, fin_r = (jnp.stack(col) for col in zip(*rows, strict=True))
        rounding = _rounding(d, p, points)
        top = jnp.max(jnp.where(jnp.isfinite(scale), scale, 0.0))
        top = jnp.where(top > 0, top, 1.0)
        at = fits(diff, near, scale, rounding)
        return jnp.where(at, 0.0, diff / top), bound(near, scale, rounding) / top, jnp.all(fin_d), jnp.all(fin_r)

    return jax.jit(jax.vmap(path), compiler_options=fast_compile_options())  # a few cheap trials


def _rounding(d: Derivation, p: Plan, points: list[tuple]) -> jax.Array:
    """``16 (s_D + s_R)`` at each point along an argument: both sides' Monte Carlo arithmetic spreads
    (the points share their shapes: one ``vmap`` traces each side's perturbed program once).

    Along an argument that tends to a point, the formula is evaluated ever closer to where it is
    ``0/0`` (``(1 − cos t)/t²``, a difference quotient): its cancellation grows like ``ε/t²`` and
    must count as rounding, not as a difference that stops vanishing. Along a size only the length
    of the arrays grows; sums of up to 2¹¹ terms stay within ``10 rtol`` and are not measured (0).
    """
    if p.mode != "argument":
        return jnp.zeros(len(points))

    def at(*a):
        return MCA_FACTOR * (rounding_spread(d.derived, *a) + rounding_spread(d.claim.of, *a))

    return jax.vmap(at)(*(jnp.stack(column) for column in zip(*points, strict=True)))


def _rate(h: np.ndarray, rel: np.ndarray, floor: np.ndarray) -> float:
    """Least-squares ``r`` in ``m ∝ h^r`` (``m`` the median of the trials ``rel``) over the last
    :data:`TAIL` points where most trials are above the tolerance; ``inf`` when none is ("exact").

    The points at the tolerance carry no rate: rounding hides how far below it the difference
    went, so a scheme that reaches it within a few steps is judged by the steps before. With one
    point above it, that point and the next one (at the tolerance: its floor, an upper bound)
    give a lower bound of the rate. Only the tail counts: a difference that first shrinks and
    then levels off at a non-zero value (a wrong limit that is close) has rate ~0 there. The
    median over trials is not moved by the trials already at the tolerance, nor by one noisy path.
    """
    rel, floor = np.atleast_2d(rel), np.atleast_2d(floor)
    above = np.flatnonzero(np.mean(rel > 0, axis=0) > 0.5)
    if not above.size:
        return math.inf
    use = above[-TAIL:]
    if use.size == 1:
        k = int(use[0])
        use = np.array([k, k + 1] if k + 1 < len(h) else [k - 1, k])
    m = np.median(np.maximum(rel, floor), axis=0)
    return float(np.polyfit(np.log(h[use]), np.log(np.maximum(m[use], np.finfo(np.float64).tiny)), 1)[0])


@dataclasses.dataclass
class _CellRun:
    sizes: Sizes
    regime: str
    args: tuple
    rel: np.ndarray
    median: np.ndarray
    rate: float
    trial_rates: np.ndarray
    holds: bool


def _draw(d: Derivation, config: CheckConfig, sizes: Sizes, regime: str, per: int) -> tuple:
    try:
        return d.inputs.sample(config.seed, d.name, per, sizes, regime, d.arg_names)
    except Exception as exc:
        raise CheckError(f"inputs could not be drawn at {sizes_label(sizes)}: {one_line(exc)}") from exc


def _validate(d: Derivation, p: Plan, args: tuple, sizes: Sizes) -> None:
    abstract = tuple(jax.ShapeDtypeStruct(a.shape[1:], a.dtype) for a in args)
    for j in (0, len(p.points) - 1):
        a = jax.eval_shape(lambda *x, j=j: _at_point(d, p, x, j), *abstract)
        try:
            got = jax.eval_shape(d.derived, *a)
        except Exception as exc:
            raise CheckError(
                f"derived function raised at {sizes_label(sizes)}: {one_line(exc)}{jit_hint(exc)}"
            ) from exc
        try:
            ref = jax.eval_shape(d.claim.of, *a)
        except Exception as exc:
            raise CheckError(f"of= {fname(d.claim.of)} raised at {sizes_label(sizes)}: {one_line(exc)}") from exc
        if getattr(got, "shape", None) != getattr(ref, "shape", None):
            raise CheckError(
                f"derived function returns shape {getattr(got, 'shape', '?')} but of= returns "
                f"{getattr(ref, 'shape', '?')} (at point {p.points[j]:g} of {d.claim.along})"
            )


def _run_cells(d: Derivation, config: CheckConfig, p: Plan) -> list[_CellRun]:
    regimes = list(d.inputs.regimes)
    per = max(2, math.ceil(config.trials / (len(p.base_sizes) * len(regimes))))
    h = np.asarray(p.h)
    cells: list[_CellRun] = []
    for sizes in p.base_sizes:
        parts = [_draw(d, config, sizes, r, per) for r in regimes]
        args = tuple(np.concatenate(cols) for cols in zip(*parts, strict=True))
        _refuse_wrong_side(d, p, args, regimes, per)
        _validate(d, p, args, sizes)
        try:
            rel, floor, fin_d, fin_r = (np.asarray(x) for x in _compiled(d, p)(args))
        except Exception as exc:
            raise CheckError(f"failed under jax.jit at {sizes_label(sizes)}: {one_line(exc)}{jit_hint(exc)}") from exc
        if (fin_r & ~fin_d).any():
            raise CheckError(f"derived returns NaN or inf where of= is finite at {sizes_label(sizes)}")
        for k, regime in enumerate(regimes):
            rows = slice(k * per, (k + 1) * per)
            ok = fin_r[rows]
            if not ok.any():
                raise CheckError(f"of= is NaN or inf on every trial at {sizes_label(sizes)} [{regime}]")
            r, fl = rel[rows][ok], floor[rows][ok]
            median = np.median(r, axis=0)
            rate = _rate(h, r, fl)
            trial_rates = np.array([_rate(h, row, f) for row, f in zip(r, fl, strict=True)])
            holds = bool(rate >= d.claim.min_rate)
            cell_args = tuple(a[rows][ok] for a in args)
            cells.append(_CellRun(sizes, regime, cell_args, r, median, rate, trial_rates, holds))
    return cells


def _refuse_wrong_side(d: Derivation, p: Plan, args: tuple, regimes: list[str], per: int) -> None:
    """A limit toward ``∞`` along an argument drawn ``≤ 0`` would walk toward ``−∞``: a one-line error."""
    if p.mode != "argument" or p.explicit or d.claim.to != math.inf:
        return
    t0 = np.asarray(args[d.arg_names.index(d.claim.along)]).ravel()
    if (t0 <= 0).any():
        k = int(np.argmax(t0 <= 0))
        raise CheckError(
            f"limit toward ∞ along {d.claim.along!r}: a drawn start is {t0[k]:.3g} (regime {regimes[k // per]}), and "
            f"doubling it never reaches +∞; draw {d.claim.along} from dc.positive() or dc.uniform(low > 0)"
        )


def _point_label(d: Derivation, p: Plan, j: int) -> str:
    if p.mode == "size" or p.explicit:
        return f"{d.claim.along} = {p.points[j]:g}"
    if d.claim.to == math.inf:
        return f"{d.claim.along} = t0·{p.points[0] / p.points[j]:g}"
    if d.claim.to == 0:
        return f"{d.claim.along} = t0·{p.points[j]:g}"
    return f"{d.claim.along} = {d.claim.to:g} + (t0 − {d.claim.to:g})·{p.points[j]:g}"


def _worst(d: Derivation, p: Plan, cells: list[_CellRun]) -> tuple[_CellRun, Trial]:
    """The cell with the lowest rate, and its trial with the largest last difference (shown at the first point)."""
    c = min(cells, key=lambda c: (c.holds, -math.inf if np.isnan(c.rate) else c.rate))
    i = int(np.argmax(c.rel[:, -1]))
    args = tuple(jnp.asarray(a[i]) for a in c.args)
    at = _at_point(d, p, args, 0)  # JAX arrays: the functions may use x.at[...]
    got, ref = np.asarray(d.derived(*at)), np.asarray(d.claim.of(*at))
    first = jax.tree.map(np.asarray, at)
    trial = Trial(
        sizes=c.sizes,
        regime=c.regime,
        index=i,
        inputs=dict(zip(d.arg_names, first, strict=True)),
        derived=got,
        reference=ref,
        abs_err=float(np.sqrt(np.sum((got - ref) ** 2))),
        rel_err=float(c.rel[i, 0]),
    )
    return c, trial


def _spread(rates: np.ndarray) -> list[float] | None:
    """The quartiles of the finite per-trial rates (trials already at the tolerance are counted apart)."""
    finite = rates[np.isfinite(rates)]
    return [float(q) for q in np.percentile(finite, [25, 75])] if finite.size else None


def _rate_text(r: float) -> str:
    return "exact" if r == math.inf else f"{r:.2f}".replace("-0.00", "0.00")


def _message(d: Derivation, p: Plan, cells: list[_CellRun], worst: _CellRun) -> str:
    claim = d.claim
    toward = f"{claim.along} → {'∞' if claim.to == math.inf else f'{claim.to:g}'}"
    first, last = _point_label(d, p, 0), _point_label(d, p, len(p.points) - 1)
    path = f"median rel. difference {worst.median[0]:.2g} at {first} → {worst.median[-1]:.2g} at {last}"
    held = sorted({c.regime for c in cells if c.holds})
    failed = sorted({c.regime for c in cells if not c.holds})
    where = f"{sizes_label(worst.sizes)} [{worst.regime}]"
    if not failed:
        rates = [c.rate for c in cells]
        return (
            f"converges to of= {fname(claim.of)} as {toward} in every regime: {path} at {where} "
            f"(rate ≥ {_rate_text(min(rates))}, needed {claim.min_rate:g})"
        )
    how = "vanishes more slowly than claimed" if worst.median[-1] < worst.median[0] / 2 else "does not vanish"
    text = (
        f"the difference from of= {fname(claim.of)} {how} as {toward} in regimes {', '.join(failed)}: "
        f"{path} (rate {_rate_text(worst.rate)} < {claim.min_rate:g}) at {where}"
    )
    only = [r for r in held if r not in failed]
    if only:
        good = [c.rate for c in cells if c.holds]
        text += f"; it vanishes (rate ≥ {_rate_text(min(good))}) in regimes {', '.join(only)}"
    return text


def check_limit(d: Derivation, config: CheckConfig) -> Result:
    """Approach the limit along the plan's points in every size set and regime; judge the rate."""
    p = plan(d)
    cells = _run_cells(d, config, p)
    worst_cell, worst = _worst(d, p, cells)
    failures = {id(c): 0 if c.holds else max(1, int((~(c.trial_rates >= d.claim.min_rate)).sum())) for c in cells}
    result_cells = tuple(
        Cell(
            sizes=c.sizes,
            regime=c.regime,
            trials=len(c.rel),
            failures=failures[id(c)],
            max_rel_err=float(c.median[-1]),
            max_abs_err=float("nan"),
        )
        for c in cells
    )
    details = {
        "along": d.claim.along,
        "to": d.claim.to if d.claim.to != math.inf else "inf",
        "points": [float(x) for x in p.points],
        "min_rate": d.claim.min_rate,
        "cells": [
            {
                "sizes": sizes_label(c.sizes),
                "regime": c.regime,
                "holds": c.holds,
                "rate": None if np.isnan(c.rate) else c.rate,
                "rate_spread": _spread(c.trial_rates),
                "trials_at_tolerance": int(np.isinf(c.trial_rates).sum()),
                "median_difference": [float(m) for m in c.median],
            }
            for c in cells
        ],
    }
    tol = merge_tolerance("float64", d.tolerance)
    return Result(
        name=d.name,
        kind=d.kind,
        claim=d.claim_id,
        outcome="holds" if all(c.holds for c in cells) else "fails",
        expect=d.expect,
        message=_message(d, p, cells, worst_cell),
        trials=sum(len(c.rel) for c in cells),
        seed=config.seed,
        max_rel_err=max(float(c.median[-1]) for c in cells),
        rtol=tol.rtol,
        atol=tol.atol,
        source=d.source,
        worst=worst,
        cells=result_cells,
        details=details,
    )


# ----------------------------------------------------------------------- Kind rows

KINDS = (Kind(Limit, check_limit, reference="of="),)  # judged by its own rate statistics: not shrunk
