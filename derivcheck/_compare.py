"""Error metrics and tolerances: one table keyed by dtype, one merge function.

The comparison of a derived value ``D`` with the reference ``R`` is made twice,
norm-wise and entry-wise, and a trial fails when either test fails.

*Norm-wise*, symmetric:

.. math::

    \\|D - R\\|_\\infty > \\text{atol} + \\text{rtol}\\,\\max(\\|D\\|_\\infty, \\|R\\|_\\infty)

and the reported relative error is ``‖D − R‖∞ / max(‖D‖∞, ‖R‖∞, atol/rtol)``.
Taking the larger of the two norms keeps the metric bounded (≤ 2) and
meaningful when the reference is near zero: a derived value of 0 against a
non-zero reference, or a non-zero one against a zero reference, has relative
error 1, while two values that are both at rounding level compare by ``atol``.

*Entry-wise*, so that a formula wrong in the small entries of a result is not
hidden by its large entries (:func:`entry_excess`): some entry ``i`` has

.. math::

    |D_i - R_i| > \\text{atol} + \\text{rtol}\\,\\bigl(\\max(|D_i|, |R_i|) + \\rho\\, S\\bigr) + r_i,
    \\qquad S = \\max(\\|D\\|_\\infty, \\|R\\|_\\infty, T),

with ``r_i`` the measured rounding of that entry (``16 (s^D_i + s^R_i)``, the
Monte Carlo arithmetic spreads of :func:`rounding_spread`, entry by entry)
and ``ρ rtol S`` a floor at the scale of the whole output
(:func:`entry_floor_fraction`: ``ρ rtol = 2²¹ ε``, capped at ``rtol``). *Error
model*: each entry of either side carries the rounding of its own
computation, measured as ``r_i``, plus what the measurement cannot see
(rounding inside a primitive that stays one operation, a different but
stable ordering of a sum), which for a backward-stable computation is at most
about ``n κ ε S`` — sums of ``n ≤ 2⁸`` terms, condition numbers ``κ ≤ 2¹³``
(the regimes drawn), hence ``2²¹ ε S``. An entry that is zero only because
terms of size ``S`` cancel is thus never judged against ``atol`` alone. In
float64 the floor is ``4.7e-10 S``: a formula wrong by 50 % in entries
``10⁻⁸`` times smaller than the largest fails, where the norm-wise test
(``rtol = 1e-7``) cannot see it. In float32 and below the floor reaches
``rtol``: there the entry-wise test adds nothing the precision could support.

Conditioning: when a trial fails these tests, its scale is widened by ``T``, the
size of the terms that cancel in the reference (:func:`conditioning_scale`), so
that a result which is tiny only because large terms cancel (a saturated
sigmoid's ``μ − y``) is judged relative to those terms, as rounding dictates.

Why these defaults (see :data:`DEFAULT_TOLERANCES`):

* **float64** — ``rtol = 1e-7``. Both sides are computed in float64
  (eps = 2.2e-16) by different but backward-stable orderings of the same
  arithmetic; over the sizes checked (≤ a few hundred summed terms) and the
  regimes drawn (entries up to ~1e2, condition numbers ≤ ~1e4) their rounding
  differences stay below ~1e-11 relative. ``1e-7`` leaves four orders of
  magnitude of headroom for that, while every formula error we target (a sign,
  a factor, a transpose, a dropped term) is O(1e-4) relative or larger even
  in the "tiny" regime. ``atol = 1e-12`` only separates values that are both
  rounding noise around an exact zero (e.g. a batch-norm gradient at n = 1).
* **float32** — eps = 1.2e-7, so the same argument gives ``rtol = 2e-3``,
  ``atol = 1e-5``. Formula errors smaller than ~1e-3 relative are invisible in
  float32; derivcheck says so when it checks a float32 derivation.
* **float16 / bfloat16** — ``rtol = 5e-2``, ``atol = 1e-2``.

The tolerances are never scaled by array size and a requested 0 stays 0.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from numpy.typing import DTypeLike

from derivcheck import _jaxpr


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """Relative and absolute tolerance; ``None`` fields take the dtype's default."""

    rtol: float | None = None
    atol: float | None = None


@dataclasses.dataclass(frozen=True)
class ResolvedTolerance:
    """The tolerance a check judges with: the dtype's default merged with the author's overrides.

    Both fields are set (see :func:`merge_tolerance`); every judge and the inequality
    :func:`bound` read this, never a :class:`Tolerance` whose fields may be ``None``.
    """

    rtol: float
    atol: float


DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(rtol=1e-7, atol=1e-12),
    "float32": Tolerance(rtol=2e-3, atol=1e-5),
    "bfloat16": Tolerance(rtol=5e-2, atol=1e-2),
    "float16": Tolerance(rtol=5e-2, atol=1e-2),
}


def real_precision(dtype: DTypeLike) -> np.dtype:
    """The real dtype whose rounding a value of ``dtype`` carries: a complex number is a pair of its
    real components (``complex64`` rounds as ``float32``), other dtypes are themselves.

    >>> real_precision("complex64"), real_precision("float64")
    (dtype('float32'), dtype('float64'))
    """
    dt = jnp.dtype(dtype)
    return np.dtype(jnp.finfo(dt).dtype) if jnp.issubdtype(dt, jnp.complexfloating) else dt


def default_tolerance(dtype: DTypeLike) -> Tolerance:
    """The table's entry for ``dtype`` (a complex dtype's real components; float64's for unknown dtypes)."""
    name = real_precision(dtype).name if dtype is not None else "float64"
    return DEFAULT_TOLERANCES.get(name, DEFAULT_TOLERANCES["float64"])


def merge_tolerance(dtype: DTypeLike, override: Tolerance | None) -> ResolvedTolerance:
    """The dtype's default with the author's overrides on top (``0`` is kept as ``0``)."""
    base = default_tolerance(dtype)
    rtol = None if override is None else override.rtol
    atol = None if override is None else override.atol
    return ResolvedTolerance(
        rtol=_default_field(base, "rtol") if rtol is None else float(rtol),
        atol=_default_field(base, "atol") if atol is None else float(atol),
    )


def _default_field(base: Tolerance, field: str) -> float:
    """``base.rtol`` or ``base.atol``; a :data:`DEFAULT_TOLERANCES` entry edited to ``None`` is an error."""
    value = getattr(base, field)
    if value is None:
        raise ValueError(f"DEFAULT_TOLERANCES entry {base} must set {field}")
    return value


def sup_norm(x: jnp.ndarray) -> jnp.ndarray:
    """``‖x‖∞`` of one trial's value (0 for an empty array)."""
    x = jnp.asarray(x)
    return jnp.max(jnp.abs(x), initial=0.0) if x.size else jnp.zeros((), x.dtype)


def trial_errors(derived: jnp.ndarray, reference: jnp.ndarray) -> tuple[jnp.ndarray, ...]:
    """One trial's ``(abs_err, scale, finite)``: ``‖D−R‖∞``, ``max(‖D‖∞, ‖R‖∞)``, both finite.

    Traceable: used inside the vmapped, jitted trial function.
    """
    d, r = jnp.asarray(derived), jnp.asarray(reference)
    abs_err = sup_norm(d - r)
    scale = jnp.maximum(sup_norm(d), sup_norm(r))
    finite = jnp.all(jnp.isfinite(d)) & jnp.all(jnp.isfinite(r))
    return abs_err, scale, finite


def bound(tol: ResolvedTolerance, scale: Any, rounding: Any = 0):
    """The tolerance inequality's right-hand side: ``atol + rtol · scale + rounding``.

    The one place it is written: every judge, the diagnosis and the families
    call it (NumPy arrays, floats, or traced JAX arrays). Evaluated as
    ``(atol + rtol · scale) + rounding``, and without the addition when
    ``rounding`` is the literal ``0``, so a value compares exactly as before.

    >>> tol = ResolvedTolerance(rtol=0.5, atol=1.0)
    >>> bound(tol, 4.0), bound(tol, 4.0, rounding=0.25)
    (3.0, 3.25)
    """
    allowed = tol.atol + tol.rtol * scale
    return allowed if _is_zero(rounding) else allowed + rounding


def fits(err: Any, tol: ResolvedTolerance, scale: Any, rounding: Any = 0):
    """``err ≤ atol + rtol · scale + rounding``: two values are equal by the check's own test.

    (A NaN ``err`` does not fit; use :func:`exceeds` where a NaN must not fail.)
    """
    return err <= bound(tol, scale, rounding)


def _is_zero(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and x == 0


def exceeds(abs_err: np.ndarray, scale: np.ndarray, tol: ResolvedTolerance, rounding: Any = 0) -> np.ndarray:
    """Which trials fail: ``abs_err > atol + rtol * scale (+ rounding)``."""
    return np.asarray(abs_err) > bound(tol, np.asarray(scale), rounding)


def relative_error(abs_err: np.ndarray, scale: np.ndarray, tol: ResolvedTolerance, rounding: Any = 0.0) -> np.ndarray:
    """``abs_err / max(scale, (atol + rounding) / rtol)``: about ``rtol`` where a trial starts failing.

    Dividing by at least ``(atol + rounding) / rtol`` keeps values that are both
    rounding noise (around an exact zero, or after a measured cancellation)
    from showing a relative error of order 1.
    """
    abs_err = np.asarray(abs_err, dtype=np.float64)
    floor = (tol.atol + np.asarray(rounding, dtype=np.float64)) / tol.rtol if tol.rtol > 0 else 0.0
    denom = np.maximum(np.asarray(scale, dtype=np.float64), floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, abs_err / np.where(denom > 0, denom, 1.0), np.where(abs_err > 0, np.inf, 0.0))


ENTRY_FLOOR_ULPS = 2.0**21
"""The entry-wise floor in units of ``ε S``: ``n κ`` for sums of ``n ≤ 2⁸`` terms and condition
numbers ``κ ≤ 2¹³`` (module docstring)."""


def entry_floor_fraction(dtype: DTypeLike) -> float:
    """``ρ = min(1, 2²¹ ε / rtol₀)``: the entry-wise floor ``ρ rtol S`` as a fraction of the norm-wise allowance.

    ``rtol₀`` is the dtype's default, so the floor is ``2²¹ ε S`` at the
    default tolerance and scales with an author's ``rtol`` (a looser
    tolerance loosens both tests alike).

    >>> round(entry_floor_fraction("float64"), 5), entry_floor_fraction("float32")
    (0.00466, 1.0)
    """
    eps = float(jnp.finfo(np.float64 if dtype is None else dtype).eps)
    base = _default_field(default_tolerance(dtype), "rtol")
    return min(1.0, ENTRY_FLOOR_ULPS * eps / base) if base > 0 else 1.0


def judged_tolerance(override: Tolerance | None, *values) -> tuple[ResolvedTolerance, float]:
    """The tolerance and floor fraction one trial's values are judged at, known while tracing.

    The lower precision of ``values`` (as a check's ``validate`` decides) merged
    with the author's ``override``; :func:`judge_equality` uses the entry-wise
    verdict only where this equals the tolerance of the whole check.
    """
    dtype = min((real_precision(jnp.result_type(v)) for v in values), key=lambda t: t.itemsize)
    return merge_tolerance(dtype, override), entry_floor_fraction(dtype)


def entry_excess(derived, reference, tol: ResolvedTolerance, floor: float, terms: Any = 0.0, rounding: Any = 0.0):
    """``(max_i (|D_i − R_i| − a_i), max_i {|D_i − R_i| / max(|D_i|, |R_i|) : the entries over a_i})``.

    ``a_i = atol + rtol (max(|D_i|, |R_i|) + ρ S) + r_i`` (module docstring),
    ``S = max(‖D‖∞, ‖R‖∞, T)``, ``ρ = floor``, ``T = terms`` and ``r_i =
    rounding`` (a scalar or an array shaped like the values). The first number
    is positive exactly when some entry exceeds its allowance; the second is
    the relative error of the worst such entry (0 when none). NaN entries
    compare as in :func:`fits`: NaN, not a failure. Traceable.

    >>> tol = ResolvedTolerance(rtol=1e-7, atol=1e-12)
    >>> big, small = 1.0, 1e-8
    >>> with jax.enable_x64(True):
    ...     excess, rel = entry_excess(jnp.array([big, 1.5 * small]), jnp.array([big, small]), tol, 0.005)
    ...     print(bool(excess > 0), round(float(rel), 3))
    True 0.333
    """
    d, r = jnp.asarray(derived), jnp.asarray(reference)
    err = jnp.abs(d - r).astype(jnp.float64)
    size = jnp.maximum(jnp.abs(d), jnp.abs(r)).astype(jnp.float64)
    scale = jnp.maximum(jnp.maximum(sup_norm(d), sup_norm(r)).astype(jnp.float64), terms)
    excess = err - bound(tol, size + floor * scale, rounding)
    over = excess > 0
    rel = jnp.where(over, err / jnp.where(size > 0, size, 1.0), 0.0)
    return jnp.max(excess, initial=-jnp.inf), jnp.max(rel, initial=0.0)


def entry_failed(stats: dict[str, np.ndarray], tol: ResolvedTolerance) -> np.ndarray:
    """Which trials fail the entry-wise test (``False`` where it was not made, or at another tolerance)."""
    n = np.shape(stats["abs_err"])
    if "entry_excess" not in stats:
        return np.zeros(n, bool)
    same = (np.asarray(stats["entry_rtol"]) == tol.rtol) & (np.asarray(stats["entry_atol"]) == tol.atol)
    return (np.asarray(stats["entry_excess"]) > 0) & same


def equality_scale(stats: dict[str, np.ndarray]) -> np.ndarray:
    """``max(‖D‖∞, ‖R‖∞, T)`` per trial, ``T`` the cancelled-terms scale where it was measured."""
    scale = np.asarray(stats["scale"], dtype=np.float64)
    return np.fmax(scale, stats["terms"]) if "terms" in stats else scale  # fmax: a NaN T widens nothing


ROUNDING_FACTOR = 256.0
"""``256 ε``, per unit of the terms summed: the descent check's noise floor for a change of ``f`` and
for a slope ``Σ gᵢ uᵢ`` (:mod:`derivcheck._checks.optimization`). Equality claims, definiteness
margins and convexity chords measure their rounding instead (:func:`rounding_allowance`)."""


def judge_equality(stats: dict[str, np.ndarray], tol: ResolvedTolerance):
    """``(failed, badness, rel_err)`` of an equality claim.

    A trial fails the norm-wise test when ``‖D − R‖∞ > atol + rtol · max(‖D‖, ‖R‖, T) + rounding``,
    where ``T`` (:func:`conditioning_scale`) and ``rounding`` (the measured
    rounding of both sides, :func:`rounding_allowance`) are measured only for
    trials that fail without them: they say how much of the difference
    rounding alone can explain, for results that are small only because large
    terms cancel. It fails the entry-wise test when its family measured
    ``entry_excess > 0`` (:func:`entry_excess`, at this tolerance), and it
    fails when either test fails.

    ``rel_err`` is the relative error as it is: the larger of ``‖D − R‖∞ /
    max(‖D‖∞, ‖R‖∞)`` and the worst failing entry's ``|D_i − R_i| /
    max(|D_i|, |R_i|)`` for a failing trial (a factor-2 error shows ``0.5``,
    whatever the size of the values), and, for a trial that holds, the first
    with the denominator floored at ``(atol + rounding)/rtol`` so that two
    values that are both rounding noise do not show an error of order 1.
    """
    scale = equality_scale(stats)
    rounding = np.nan_to_num(np.asarray(stats.get("rounding", 0.0), dtype=np.float64), nan=0.0)  # excuses nothing
    entry = entry_failed(stats, tol)
    failed = (np.asarray(stats["abs_err"]) > bound(tol, scale, rounding)) | entry
    entry_rel = np.where(entry, np.asarray(stats.get("entry_rel", 0.0), dtype=np.float64), 0.0)
    rel = np.where(
        failed,
        np.maximum(plain_relative_error(stats["abs_err"], stats["scale"]), entry_rel),
        relative_error(stats["abs_err"], scale, tol, rounding),
    )
    return failed, rel, rel


def plain_relative_error(abs_err: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``‖D − R‖∞ / max(‖D‖∞, ‖R‖∞)``, no floor (``0`` when both sides are zero)."""
    abs_err, scale = np.asarray(abs_err, dtype=np.float64), np.asarray(scale, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, abs_err / np.where(scale > 0, scale, 1.0), np.where(abs_err > 0, np.inf, 0.0))


def blind(abs_err: np.ndarray, scale: np.ndarray, tol: ResolvedTolerance, stats: dict | None = None) -> np.ndarray:
    """Trials that could not tell the derived side from 0: ``S ≤ atol + rtol · S'' + r`` with
    ``S = max(‖D‖∞, ‖R‖∞)``, so ``D = 0`` — or ``D = 2R``, ``D = −R`` within ``S`` — would pass;
    and ``D ≠ R`` (an exact agreement is evidence at any size).

    ``S'' = max(S, T)`` and ``r`` are the allowance the judge gave (:func:`judge_equality`): with
    ``stats``, the cancelled terms ``T`` and the measured rounding ``r`` where they were measured.
    Rounding that moves a side as far as its own size means its value is decided by rounding, not
    by the inputs: an eigenvector of a repeated eigenvalue (``eigh`` returns any basis of the
    eigenspace), a difference of saturated terms.

    A check whose every usable trial is blind has compared nothing it could refute: its outcome
    is ``inconclusive`` (:func:`derivcheck._checks._engine.run_batched`), not ``holds``. It happens
    when the drawn inputs make both sides smaller than the dtype's ``atol`` (float32's ``1e-5``):
    a weight-decay gradient ``10⁻⁶ w`` written without its factor 2.

    >>> tol = ResolvedTolerance(rtol=2e-3, atol=1e-5)
    >>> blind(np.array([3e-6, 3e-6, 0.0]), np.array([8e-6, 1e-3, 0.0]), tol).tolist()
    [True, False, False]
    >>> blind(np.array([1.0]), np.array([1.0]), tol, {"scale": np.array([1.0]), "rounding": np.array([3.0])}).tolist()
    [True]
    """
    scale, abs_err = np.asarray(scale, np.float64), np.asarray(abs_err, np.float64)
    if stats is None:
        return (scale <= bound(tol, scale)) & (abs_err > 0)
    rounding = np.nan_to_num(np.asarray(stats.get("rounding", 0.0), dtype=np.float64), nan=0.0)
    return (scale <= bound(tol, equality_scale(stats), rounding)) & (abs_err > 0)


PERTURBATION = 2.0**-20


def _signs(shape: tuple[int, ...], salt: int) -> jnp.ndarray:
    """A fixed, data-independent ±1 pattern (Knuth's multiplicative hash of the index)."""
    n = int(np.prod(shape, dtype=np.int64))
    u32 = jnp.uint32
    i = lax.add(lax.iota(u32, n), lax.full((n,), salt * 7919 % 2**32, u32))  # lax, not jnp: see _perturb
    bits = lax.shift_right_logical(lax.mul(i, lax.full((n,), 2654435761, u32)), lax.full((n,), 15, u32))
    odd = lax.convert_element_type(lax.bitwise_and(bits, lax.full((n,), 1, u32)), jnp.float64)
    return lax.reshape(lax.sub(lax.mul(odd, lax.full((n,), 2.0, jnp.float64)), lax.full((n,), 1.0, jnp.float64)), shape)


def conditioning_scale(fn, tree) -> jnp.ndarray:
    """``T = ‖fn(x ⊙ (1 + δu)) − fn(x)‖∞ / δ``: the size of the terms that cancel in ``fn(x)``.

    Every float input is perturbed by a relative ``δ = 2⁻²⁰`` in a fixed
    pattern of signs ``u``. A result that is small only because large terms cancel (``μ − y``
    with ``μ ≈ y ≈ 1`` in a saturated sigmoid) moves by about ``T δ``, with
    ``T`` the size of those terms, while rounding moves any algorithm's result
    by about ``T ε``: comparing the error with ``rtol · max(‖D‖, ‖R‖, T)``
    keeps such a trial from failing a correct formula on rounding alone. It is
    only measured for trials that fail the plain test.
    """
    leaves, moved = jax.tree.leaves(tree), jax.tree.leaves(twin(tree))
    pairs = [jnp.stack([jnp.asarray(x), jnp.asarray(m)]) for x, m in zip(leaves, moved, strict=True)]
    treedef = jax.tree.structure(tree)
    # both points in one vmapped call: one trace and one copy of fn in the compiled program
    both = jax.vmap(lambda *ls: [jnp.asarray(v) for v in jax.tree.leaves(fn(*jax.tree.unflatten(treedef, ls)))])(*pairs)
    return cancelled_terms([v[0] for v in both], [v[1] for v in both])


def twin(tree):
    """``x ⊙ (1 + δu)`` for every float leaf of ``tree``, others as they are (:func:`conditioning_scale`)."""
    return twins(tree)[0]


def twins(*trees) -> list:
    """:func:`twin` of each of several trees of the same structure and shapes, each sign pattern made once.

    The pattern of a leaf depends only on its position and shape, so the twins of several points
    (a trial and its probes, :func:`derivcheck._checks.robust.probed`) share it: one pattern in the
    traced program per leaf instead of one per point.
    """
    flat = [jax.tree.flatten(t) for t in trees]
    columns = zip(*(leaves for leaves, _ in flat), strict=True)
    moved = []
    for i, column in enumerate(columns):
        x = column[0]
        if not jnp.issubdtype(jnp.result_type(x), jnp.inexact):
            moved.append(column)
            continue
        factor = 1 + PERTURBATION * _signs(jnp.shape(x), i).astype(jnp.result_type(x))
        moved.append(tuple(y * factor for y in column))
    return [jax.tree.unflatten(treedef, [m[k] for m in moved]) for k, (_, treedef) in enumerate(flat)]


def cancelled_terms(at_x, at_twin) -> jnp.ndarray:
    """``T = ‖f(twin(x)) − f(x)‖∞ / δ`` from the two values (:func:`conditioning_scale`), in float64.

    Over the finite moves only: where ``f(twin(x))`` is not finite (the perturbed input left ``f``'s
    domain: a covariance of condition 10¹⁴ is no longer positive definite, its Cholesky factor NaN),
    the move measures nothing and widens nothing (0), so a NaN can never excuse a difference.
    """
    pairs = zip(jax.tree.leaves(at_x), jax.tree.leaves(at_twin), strict=True)
    moved_by = [_sup_finite(jnp.asarray(b) - jnp.asarray(a)) for a, b in pairs]
    return (jnp.max(jnp.stack(moved_by)) / PERTURBATION).astype(jnp.float64)


MCA_SAMPLES = 8
"""Evaluations of each side with every result perturbed (Monte Carlo arithmetic, see :func:`rounding_spread`)."""
MCA_SEED = 0x5EED
MCA_FACTOR = 16.0
"""The rounding allowance is ``16 ×`` the spread each side shows. Under the error model of
:func:`rounding_spread` a side's actual rounding error ``e`` and the deviations ``s_k`` of
its 8 perturbed evaluations are draws of the same symmetric distribution, so
``|e| > 16 max_k |s_k|`` needs all 8 draws below 1/16 of ``|e|``: for a Gaussian-like error,
probability ``≈ P(|s| < σ/8)^8 ≈ 10⁻⁸`` per trial. Each perturbation is already ``2u``
(the rounding it models is at most ``u``), and sums are perturbed by their worst-case bound."""


def rounding_allowance(derived, reference, *args) -> jnp.ndarray:
    """``16 (s_D + s_R)``: how much of ``‖D − R‖∞`` the rounding of the two sides can explain.

    ``s`` is each side's Monte Carlo arithmetic spread (:func:`rounding_spread`)
    at this very input, so it grows only with the rounding actually present.
    """
    return MCA_FACTOR * (rounding_spread(derived, *args) + rounding_spread(reference, *args))


def rounding_spread(fn, *args) -> jnp.ndarray:
    """``max_k ‖f̃_k − f‖∞``: how far rounding moves ``fn(*args)``, measured by Monte Carlo arithmetic.

    *Error model* (Parker's Monte Carlo arithmetic, the idea behind
    Verificarlo and CADNA): every floating-point operation's result ``z`` is
    replaced by ``z (1 + ε ξ)``, ``ξ ~ U(−1, 1)`` independent, ``ε`` the
    dtype's machine epsilon — twice the unit roundoff, so each perturbation is
    at least as large as the rounding it stands for (a complex result gets independent
    ``ξ`` on its real and imaginary parts, both times ``|z|``). The formula's jaxpr is
    evaluated equation by equation (:mod:`derivcheck._jaxpr`, stepping into
    ``jit`` and ``custom_jvp`` bodies; a loop or a library call that stays
    one primitive is perturbed at its outputs only) :data:`MCA_SAMPLES` times
    with independent ``ξ``, and the largest deviation from the unperturbed
    value is returned. The propagated rounding error of ``f`` is a random
    variable of the same kind, so a multiple of this spread bounds it (see
    :data:`ROUNDING_FACTOR`).

    Unlike the size of the largest intermediate, this only counts what
    rounding actually does to the result: a huge intermediate that is only
    inverted (``1/(1 + e^{−t})`` at ``t = −700``), exponentiated or compared
    moves the result by ``ε`` relative, while terms that cancel (``μ − y`` at
    a saturated sigmoid) move it by ``ε`` times their own size. Deterministic
    (a fixed seed), traceable, and ``0`` when ``fn`` cannot be staged out.
    """
    spreads = [_sup_finite(s) for s in entry_spreads(fn, *args)]
    return jnp.max(jnp.stack(spreads)) if spreads else jnp.zeros((), jnp.float64)


def entry_spreads(fn, *args, base=None) -> list:
    """Entry by entry, ``max_k |f̃_k − f|`` for each of ``fn``'s output leaves (:func:`rounding_spread`).

    ``base``: ``fn(*args)`` when the caller has it already (else it is computed).
    Non-finite deviations count as 0 (the value itself is judged elsewhere);
    ``[]`` when ``fn`` cannot be staged out. Traceable.
    """
    try:
        closed = jax.make_jaxpr(fn)(*args)
    except Exception:
        return []
    flat = jax.tree.leaves(args)
    base = _jaxpr.run(closed.jaxpr, closed.consts, flat) if base is None else jax.tree.leaves(base)
    total = sum(_entries(v.aval) for eqn in _jaxpr.equations(closed.jaxpr) for v in eqn.outvars)

    def perturbed(sample):
        noise = _uniform_hash((total,), sample)  # one draw per sample, sliced site by site
        scaled: dict = {}  # ε ξ in each float dtype met: one multiplication per dtype, not per site
        used = [0]

        def eps_xi(x):
            dtype = real_precision(jnp.result_type(x))  # a complex value's parts round in its real precision
            if dtype not in scaled:
                eps = lax.full((total,), jnp.finfo(dtype).eps, noise.dtype)
                scaled[dtype] = lax.convert_element_type(lax.mul(noise, eps), dtype)
            return scaled[dtype]

        def perturb(eqn, ins, outs):
            if _exact(eqn, ins, outs):
                return outs
            bound = _accumulation_bound(eqn, ins, outs)
            moved = []
            for out in outs:
                start, used[0] = used[0], used[0] + _entries(out)
                moved.append(_perturb(eps_xi(out), start, out, bound) if _inexact(out) else out)
            return moved

        outs = _jaxpr.run(closed.jaxpr, closed.consts, flat, on_outputs=perturb, enter=True)
        return [
            _abs_finite(o - b) if _inexact(b) else jnp.zeros(jnp.shape(b), jnp.float64)
            for o, b in zip(outs, base, strict=True)
        ]

    samples = jnp.arange(MCA_SAMPLES, dtype=jnp.uint32) + jnp.uint32(MCA_SEED)
    return [jnp.max(m, axis=0) for m in jax.vmap(perturbed)(samples)]


def _entries(x) -> int:
    """How many noise entries a perturbation of ``x`` (an array or an abstract value) draws: one per real
    component of each entry (two for a complex one), none unless inexact."""
    parts = 2 if jnp.issubdtype(jnp.result_type(x), jnp.complexfloating) else 1
    return parts * int(np.prod(jnp.shape(x), dtype=np.int64)) if _inexact(x) else 0


def _inexact(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def _perturb(eps_xi, start: int, x, bound=None):
    """``x + ε ξ b``: ``ε ξ`` from ``eps_xi[start:]`` (``ξ ∈ [−1, 1)``), ``b`` = ``|x|`` or a sum's error bound.

    For ``b = |x|`` it computes ``x + ε ξ x``: ``ξ`` is symmetric and independent of ``x``, so
    ``ξ x`` and ``ξ |x|`` have the same distribution, and the ``abs`` is one operation fewer
    per perturbed result. Non-floats are returned as they are. The pass draws one noise vector for all
    its perturbations (:func:`entry_spreads`), scaled by ``ε`` once per dtype: a
    slice per result, instead of a hash per result, keeps the perturbed
    program — compiled for every failing size set — a fraction of the size.
    Written with :mod:`jax.lax` primitives: ``jnp``'s operators are
    ``jit``-wrapped, and each call inside a trace is a nested trace of its own
    (hundreds per formula); the arithmetic is the same, operation for operation.
    """
    x = jnp.asarray(x)
    if not _inexact(x) or x.size == 0:
        return x
    n = x.size

    def noise(part: int) -> jax.Array:
        return lax.reshape(lax.slice(eps_xi, (start + part * n,), (start + (part + 1) * n,)), x.shape)

    # an infinite result is not rounded (−inf fills a masked score): x + εξx would make it −inf + inf = NaN,
    # which spreads (a whole softmax row) and then counts as no spread at all (_abs_finite)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):  # each part rounds on its own: ξ_re + i ξ_im, both × |x| (or b)
        real = jnp.finfo(x.dtype).dtype
        size = lax.abs(x) if bound is None else lax.max(lax.abs(x), lax.convert_element_type(bound, real))
        moved = lax.add(x, lax.complex(lax.mul(noise(0), size), lax.mul(noise(1), size)))
        finite = lax.bitwise_and(lax.is_finite(lax.real(x)), lax.is_finite(lax.imag(x)))
    elif bound is None:  # ε ξ x (see above)
        moved, finite = lax.add(x, lax.mul(noise(0), x)), lax.is_finite(x)
    else:
        size = lax.max(lax.abs(x), lax.convert_element_type(bound, x.dtype))
        moved, finite = lax.add(x, lax.mul(noise(0), size)), lax.is_finite(x)
    return lax.select(finite, moved, x)


EXACT_PRIMITIVES = frozenset(
    """reshape broadcast_in_dim transpose squeeze expand_dims slice dynamic_slice dynamic_update_slice
    concatenate pad gather scatter select_n rev copy copy_p neg abs sign max min clamp stop_gradient iota
    floor ceil round reduce_max reduce_min argmax argmin sort eq ne lt le gt ge and or not
    split real imag conj complex top_k cummax cummin rem nextafter bitcast_convert_type optimization_barrier
    """.split()
)
"""Primitives whose results are exact (data movement, comparisons, sign changes, the parts of a complex
number, IEEE ``fmod``): never rounded, never perturbed."""


def _exact(eqn, ins, outs) -> bool:
    """Whether an equation rounds nothing: an :data:`EXACT_PRIMITIVES` one, or a conversion that does not narrow."""
    name = eqn.primitive.name
    if name == "convert_element_type":
        src, dst = jnp.result_type(ins[0]), jnp.result_type(outs[0])
        return not (jnp.issubdtype(dst, jnp.inexact) and jnp.dtype(dst).itemsize < jnp.dtype(src).itemsize)
    return name in EXACT_PRIMITIVES


def _uniform_hash(shape: tuple[int, ...], sample) -> jnp.ndarray:
    """Pseudo-random numbers in ``[−1, 1)``, one per entry, from a hash of (entry, sample).

    A 32-bit integer hash (two multiply–xorshift rounds, after MurmurHash3's
    finalizer) instead of ``jax.random``: a few integer operations per
    perturbed value, so the perturbed program compiles quickly.
    """
    n = int(np.prod(shape, dtype=np.int64))
    u32 = jnp.uint32

    def const(v: int) -> jax.Array:
        return lax.full((n,), v % 2**32, u32)

    def mix(h: jax.Array, shift: int, by: int) -> jax.Array:  # (h ^ (h >> shift)) * by
        return lax.mul(lax.bitwise_xor(h, lax.shift_right_logical(h, const(shift))), const(by))

    sample = lax.convert_element_type(jnp.asarray(sample), u32)
    seed = lax.mul(sample, u32(0x85EBCA77))
    h = lax.mul(lax.bitwise_xor(lax.iota(u32, n), lax.broadcast(seed, (n,))), const(0x9E3779B1))
    h = mix(h, 15, 0x85EBCA6B)
    h = lax.bitwise_xor(h, lax.shift_right_logical(h, const(13)))
    unit = lax.mul(lax.convert_element_type(h, jnp.float64), lax.full((n,), 2.0**-31, jnp.float64))
    return lax.reshape(lax.sub(unit, lax.full((n,), 1.0, jnp.float64)), shape)


def _accumulation_bound(eqn, ins, outs):
    """For a sum of ``K`` terms (``reduce_sum``, ``dot_general``): ``K · Σ|terms|``, else ``None``.

    One primitive adds ``K`` terms with ``K − 1`` roundings; its error is at
    most ``γ_K Σ|terms| ≈ K u Σ|terms|`` (Higham, *Accuracy and Stability of
    Numerical Algorithms*, Thm 3.1 and §3.1), which can be far larger than
    ``u |result|`` when the terms cancel. The perturbation of such a result is
    scaled by that bound, so the spread sees the cancellation inside it.
    """
    name = eqn.primitive.name
    if name not in ("reduce_sum", "dot_general") or len(outs) != 1 or not _inexact(outs[0]):
        return None
    params = eqn.primitive.get_bind_params(eqn.params)
    if name == "reduce_sum":
        (x,) = ins
        k = int(np.prod([jnp.shape(x)[a] for a in params["axes"]], dtype=np.int64))
        return _times(k, jax.lax.reduce_sum_p.bind(lax.abs(x), **params))
    a, b = ins
    (contract_a, _), _ = params["dimension_numbers"]
    k = int(np.prod([jnp.shape(a)[i] for i in contract_a], dtype=np.int64))
    total = jax.lax.dot_general_p.bind(lax.abs(a), lax.abs(b), **params)  # complex when the product's type is asked
    return _times(k, lax.real(total) if jnp.issubdtype(total.dtype, jnp.complexfloating) else total)


def _times(k: int, x) -> jax.Array:
    """``k · x`` as one :mod:`jax.lax` multiplication (see :func:`_perturb`)."""
    return lax.mul(lax.full(jnp.shape(x), k, jnp.result_type(x)), x)


def _abs_finite(x) -> jnp.ndarray:
    """``|x|`` in float64, non-finite entries as 0."""
    a = jnp.abs(jnp.asarray(x)).astype(jnp.float64)
    return jnp.where(jnp.isfinite(a), a, 0.0)


def _sup_finite(x) -> jnp.ndarray:
    """``‖x‖∞`` over the finite entries, in float64 (0 when none)."""
    a = jnp.abs(jnp.asarray(x)).astype(jnp.float64)
    return jnp.max(jnp.where(jnp.isfinite(a), a, 0.0), initial=0.0)
