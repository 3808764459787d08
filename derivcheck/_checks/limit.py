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
the rate is ``r ≥ min_rate`` (default 1/4) to within :data:`RATE_RESOLUTION`: a
law-of-large-numbers difference of size ``n^{-1/2}`` has ``r ≈ 1/2``, a difference that tends to
a non-zero constant ``r ≈ 0``, and a second-order scheme claimed to be of order 4 has ``r ≈ 2``
however soon it reaches rounding. The rate is known to lie in an interval (:class:`Rate`,
:func:`_cell_rate`): the end slope ``± Δ`` of a smooth path (a wrong limit that levels off is
judged where it is flat), the resampled spread of a noisy one (a sample mean), a lower bound when
a single point is above the tolerance. A cell whose interval straddles the claim is undecided,
and the check is then ``inconclusive`` ("not decided …", with what would settle it). The median
over the cell's trials (20 to 100 at the default 300 trials) makes the rate robust to one noisy
path; the spread of per-trial rates is reported.

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
from derivcheck._result import Cell, Outcome, Result, Trial

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


@dataclasses.dataclass(frozen=True)
class Rate:
    """A cell's measured rate ``r``, the interval ``[lo, hi]`` it is known to lie in, and how it was
    measured (:func:`_cell_rate`): ``"fit"`` (least squares over the tail; the interval from resampling
    the trials), ``"end"`` (the last local slope of a smooth path, ``± Δ``) or ``"bound"`` (a lower
    bound: one point above the tolerance; ``hi = ∞``)."""

    value: float
    how: str = "fit"
    lo: float = math.nan
    hi: float = math.nan

    def verdict(self, min_rate: float) -> str:
        """``"holds"`` when the interval lies at or above ``min_rate − ρ`` (:data:`RATE_RESOLUTION`),
        ``"fails"`` when it lies below, ``"undecided"`` when it straddles it."""
        need = min_rate - RATE_RESOLUTION
        lo = self.value if math.isnan(self.lo) else self.lo
        hi = self.value if math.isnan(self.hi) else self.hi
        return "holds" if lo >= need else "fails" if hi < need else "undecided"


RATE_RESOLUTION = 0.05
"""``ρ``: a measured rate within ``ρ`` below the claimed one counts as it. No finite path tells a rate
``p`` from ``p − ρ`` for every ``ρ > 0`` (a rate of exactly 2 is measured 1.9999…); claimed rates are
orders — integers, halves (a Monte Carlo ``n^{-1/2}``), the default ``1/4`` — so ``ρ`` is a tenth of the
smallest gap between them, and no order is confirmed for another."""


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
    return _cell_rate(h, rel, floor, end=False).value


def _cell_rate(h: np.ndarray, rel: np.ndarray, floor: np.ndarray, end: bool = True) -> Rate:
    """The rate a cell is judged by: :func:`_rate`'s fit, or, where the path is smooth, its end.

    *Smooth* means that the local slopes ``s_k`` of the median curve between successive tail points
    change monotonically (to within :data:`SLOPE_RESOLUTION`), as they do when the difference
    follows ``C h^r (1 + D h^q + …)`` with ``q ≥ 1``, deterministically: quadrature along ``n``,
    a function along its argument. Each halving of ``h`` then shrinks the slope's error by ``2^q ≥ 2``,
    so what is left to change after the last slope is at most the last change
    ``Δ = |s_K − s_{K−1}|`` (a geometric series of ratio ``≤ 1/2``): ``r ∈ [s_K − Δ, s_K + Δ]``, judged
    by :meth:`Rate.verdict` (an interval that straddles the claim is undecided). This judges the path
    where it ends: a difference that levels off at a non-zero value (``c + C h²``, a limit that is
    wrong by ``c``) has ``s_K ≈ 0`` although the fit over the tail, which still sees the decay, can
    exceed 1/4; and a second-order rule whose slopes creep up to 2 (1.9999…) is not failed for its
    last digit. Noisy paths (a sample mean) have slopes that do not change monotonically and keep
    the fit, which the median makes robust.
    With a single point above the tolerance the rate is a lower bound, which decides only when it
    reaches the claim.
    """
    rel, floor = np.atleast_2d(rel), np.atleast_2d(floor)
    above = _above(rel)
    if not above.size:
        return Rate(math.inf)
    use = above[-TAIL:]
    values = np.maximum(rel, floor)
    m = np.maximum(np.median(values, axis=0), np.finfo(np.float64).tiny)
    if use.size == 1:
        k = int(use[0])
        if k + 1 < len(h):  # the next point is at the tolerance: its floor bounds it above
            bound = _slope(h, m, [k, k + 1])
            return Rate(bound, "bound", bound, math.inf) if end else Rate(bound)
        use = np.array([k - 1, k])
    slopes = np.array([_slope(h, m, [a, b]) for a, b in itertools.pairwise(use)])
    steps = np.diff(slopes)
    smooth = slopes.size >= 2 and (np.all(steps >= -SLOPE_RESOLUTION) or np.all(steps <= SLOPE_RESOLUTION))
    if end and smooth:
        r, change = float(slopes[-1]), float(abs(steps[-1]))
        return Rate(r, "end", r - change, r + change)
    fit = _fit(h, m, use)
    if not end:
        return Rate(fit)
    lo, hi = _resampled(h, values, use)
    return Rate(fit, "fit", min(lo, fit), max(hi, fit))


RESAMPLES = 400
RESAMPLED_LEVEL = 0.95
"""The resampled interval's coverage: a cell holds on its lower end and fails on its upper end, so a
rate that sits right at the claim is held (or failed) wrongly at most 2.5 % of the time, and one a
spread away from it far more rarely; in between the check says it is not decided."""


def _fit(h: np.ndarray, m: np.ndarray, use: np.ndarray) -> float:
    """Least-squares ``r`` in ``m ∝ h^r`` over the points ``use`` (``m > 0``)."""
    return float(np.polyfit(np.log(h[use]), np.log(m[use]), 1)[0])


def _resampled(h: np.ndarray, values: np.ndarray, use: np.ndarray) -> tuple[float, float]:
    """The :data:`RESAMPLED_LEVEL` percentile interval of the fitted rate over :data:`RESAMPLES` resamplings
    of the trials (bootstrap; a fixed stream, so a check is reproducible).

    *Error model:* the trials are independent paths and the rate a statistic of their median curve; its
    sampling spread is estimated by resampling the trials. A deterministic path (every trial alike) gets
    an interval of width ~0 and is judged by its value; a sample mean's rate, about ``1/2 ± 0.1`` over
    40 trials, is undecided against a claim of ``1/2`` rather than failed in half of the seeds.
    """
    rng = np.random.default_rng(0x5EED)
    n = values.shape[0]
    picks = rng.integers(0, n, size=(RESAMPLES, n))
    medians = np.median(values[picks][:, :, use], axis=1)  # (resamples, points)
    x = np.log(h[use])
    y = np.log(np.maximum(medians, np.finfo(np.float64).tiny))
    xc = x - x.mean()
    rates = (y - y.mean(axis=1, keepdims=True)) @ xc / (xc @ xc)
    tail = (1 - RESAMPLED_LEVEL) / 2 * 100
    lo, hi = np.percentile(rates, [tail, 100 - tail])
    return float(lo), float(hi)


SLOPE_RESOLUTION = 1e-3
"""Changes of a local slope below this count as none when telling a smooth path from a noisy one: a
thousandth of an order, ten times finer than a rate is reported (two decimals)."""


def _slope(h: np.ndarray, m: np.ndarray, pair) -> float:
    a, b = pair
    return float(np.log(m[b] / m[a]) / np.log(h[b] / h[a]))


@dataclasses.dataclass
class _CellRun:
    sizes: Sizes
    regime: str
    args: tuple
    rel: np.ndarray
    median: np.ndarray
    measured: Rate
    trial_rates: np.ndarray
    verdict: str  # holds, fails or undecided (Rate.verdict)

    @property
    def rate(self) -> float:
        return self.measured.value

    @property
    def holds(self) -> bool:
        return self.verdict == "holds"


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
            measured = _cell_rate(h, r, fl)
            trial_rates = np.array([_rate(h, row, f) for row, f in zip(r, fl, strict=True)])
            cell_args = tuple(a[rows][ok] for a in args)
            verdict = measured.verdict(d.claim.min_rate)
            cells.append(_CellRun(sizes, regime, cell_args, r, median, measured, trial_rates, verdict))
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
    rank = {"fails": 0, "undecided": 1, "holds": 2}
    c = min(cells, key=lambda c: (rank[c.verdict], -math.inf if np.isnan(c.rate) else c.rate))
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
    failed = sorted({c.regime for c in cells if c.verdict == "fails"})
    where = f"{sizes_label(worst.sizes)} [{worst.regime}]"
    need = f"the claimed {claim.min_rate:g} less the resolution {RATE_RESOLUTION:g}"
    if not failed and worst.verdict == "undecided" and worst.measured.how == "bound":
        return (
            f"not decided: the difference from of= {fname(claim.of)} reaches the tolerance one point after "
            f"{_point_label(d, p, _last_above(worst))}, so only a lower bound of its rate is measured "
            f"(≥ {_rate_text(worst.rate)}, below {need}) at {where}: {path}; points= that start "
            "farther from the limit, or a looser tolerance, settle it"
        )
    if not failed and worst.verdict == "undecided":
        fix = (
            f"points= that go farther toward {'∞' if claim.to == math.inf else f'{claim.to:g}'} settle it"
            if worst.measured.how == "end"
            else "more trials narrow it"
        )
        return (
            f"not decided: the rate of the difference from of= {fname(claim.of)} is {_interval(worst.measured)}, "
            f"either side of {need}, at {where}: {path}; {fix}"
        )
    if not failed:
        rates = [c.rate for c in cells]
        return (
            f"converges to of= {fname(claim.of)} as {toward} in every regime: {path} at {where} "
            f"(rate ≥ {_rate_text(min(rates))}, needed {claim.min_rate:g})"
        )
    how = "vanishes more slowly than claimed" if worst.median[-1] < worst.median[0] / 2 else "does not vanish"
    text = (
        f"the difference from of= {fname(claim.of)} {how} as {toward} in regimes {', '.join(failed)}: "
        f"{path} (rate {_interval(worst.measured)}, below {need}) at {where}"
    )
    only = [r for r in held if r not in failed]
    if only:
        good = [c.rate for c in cells if c.holds]
        text += f"; it vanishes (rate ≥ {_rate_text(min(good))}) in regimes {', '.join(only)}"
    return text


def _interval(r: Rate) -> str:
    """``0.03 ± 0.083 where the path ends``, ``0.48 (0.41 to 0.55 over resampled trials)``, ``0.01``."""
    if r.how == "end":
        return f"{_rate_text(r.value)} ± {(r.hi - r.lo) / 2:.2g} where the path ends"
    if r.how == "fit" and not math.isnan(r.lo) and r.hi - r.lo > 0.005:
        return f"{_rate_text(r.value)} ({_rate_text(r.lo)} to {_rate_text(r.hi)} over resampled trials)"
    return _rate_text(r.value)


def _above(rel: np.ndarray) -> np.ndarray:
    """The points where most trials (rows of ``rel``) are above the tolerance (``> 0``)."""
    return np.flatnonzero(np.mean(np.atleast_2d(rel) > 0, axis=0) > 0.5)


def _last_above(c: _CellRun) -> int:
    """The last point where most of the cell's trials are above the tolerance."""
    above = _above(c.rel)
    return int(above[-1]) if above.size else 0


def check_limit(d: Derivation, config: CheckConfig) -> Result:
    """Approach the limit along the plan's points in every size set and regime; judge the rate."""
    p = plan(d)
    cells = _run_cells(d, config, p)
    worst_cell, worst = _worst(d, p, cells)
    failures = {
        id(c): 0 if c.verdict != "fails" else max(1, int((~(c.trial_rates >= d.claim.min_rate)).sum())) for c in cells
    }
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
                "rate_measured": c.measured.how,
                "rate_interval": [x if math.isfinite(x) else None for x in (c.measured.lo, c.measured.hi)],
                "verdict": c.verdict,
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
        outcome=_outcome(cells),
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


def _outcome(cells: list[_CellRun]) -> Outcome:
    """``fails`` when a cell fails, ``inconclusive`` when none does but one is undecided, else ``holds``."""
    verdicts = {c.verdict for c in cells}
    return "fails" if "fails" in verdicts else "inconclusive" if "undecided" in verdicts else "holds"


# ----------------------------------------------------------------------- Kind rows

KINDS = (Kind(Limit, check_limit, reference="of="),)  # judged by its own rate statistics: not shrunk
