"""A second opinion on the reference: is JAX or the derivation the inaccurate side?

JAX is the trusted side, but not an infallible one: ``jax.grad`` of a special
function built from series and recurrences (``betaln``, ``gammainc``…) is the
derivative of the *approximation*, which can be off by ``1e-7`` relative where
a hand formula (``ψ(a) − ψ(a + b)``) is exact to ``1e-15``. A correct
derivation then fails by a little. When every failing trial of a check fails
by little, each is given an independent second opinion, and the outcome is
``inconclusive`` when that opinion sides with the derivation.

**Little** (:data:`DOUBT_BOUND`): a failing trial's relative error
``‖D − R‖∞ / max(‖D‖∞, ‖R‖∞)`` is at most ``1e-5`` in float64 and ``1e-2`` in
float32. The float64 bound lies a decade below the smallest formula error the
tolerances are designed to catch (``1e-4``, see :mod:`derivcheck._compare`) and
a decade above the worst reference inaccuracy we have met in JAX's float64
derivatives of special functions (``7e-7``); the float32 bound is five times
float32's ``rtol``, the same place relative to its rounding. Half precision gets
no second opinion (central differences cannot resolve anything there). Above
the bound the error is taken for a formula error, whatever the second opinion.

**The second opinion** is central differences with Richardson extrapolation
along one direction ``w`` at the trial's point ``x`` of the ``wrt`` argument:

.. math::

    \\Delta(h) = \\frac{\\phi(h) - \\phi(-h)}{2h} = \\phi'(0) + c_2 h^2 + c_4 h^4 + \\dots,
    \\qquad \\phi(t) = G(x + t w),

at ``h_k = 2⁻⁵ · 2⁻ᵏ``, ``k < 5`` (``w`` scaled entry-wise by ``|x|``, so each
entry moves by at most 3 % of itself), with the Neville table
``T_{k,j} = T_{k,j−1} + (T_{k,j−1} − T_{k−1,j−1}) / (4^j − 1)``. Error model
(Ridders): the error of ``T_{k,j}`` is estimated by
``max(‖T_{k,j} − T_{k,j−1}‖∞, ‖T_{k,j} − T_{k−1,j−1}‖∞)``, plus the rounding
of the quotient, ``2 ρ / h_k`` with ``ρ`` the Monte Carlo arithmetic rounding
allowance of ``G`` at ``x`` (:func:`derivcheck._compare.rounding_spread`);
the entry with the smallest estimate is the opinion ``F`` and twice its
estimate the error bar ``E``. What is compared along ``w``:

==========  =============================  ==========================================
claim       ``G``                          compared with ``F``
==========  =============================  ==========================================
gradient    ``of``                         ``⟨D, w⟩``, ``⟨R, w⟩``
vjp         ``⟨ct, of⟩``                   ``⟨D, w⟩``, ``⟨R, w⟩``
jacobian    ``of``                         ``D w``, ``R w`` (contracting the input axes)
hessian     ``jax.grad(of)``               ``D w``, ``R w``
jvp         ``of``, ``w`` = the tangent    ``D``, ``R`` (scaled as ``w``)
==========  =============================  ==========================================

``w`` is ``(D − R) ⊙ |x|`` (for a matrix, its row with the largest
difference), so ``⟨D − R, w⟩ = Σ (D − R)ᵢ² |xᵢ| > 0``: the two sides differ
along ``w`` as much as they can. The opinion *sides with the derivation* when
``‖D_w − F‖∞ ≤ E`` and ``‖R_w − F‖∞ > 2E``, *with the reference* in the mirror
case, and is undecided otherwise. The outcome is ``inconclusive`` only when it
sides with the derivation on every failing trial; otherwise the check fails as
before. So a wrong formula, which the differences agree with less than with
JAX, still fails; a formula wrong by less than the opinion can resolve is
undecided and fails as well.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from derivcheck._compare import MCA_FACTOR, rounding_spread, sup_norm

DOUBT_BOUND: dict[str, float] = {"float64": 1e-5, "float32": 1e-2}
"""The largest relative error a failing trial may have for the reference's accuracy to be doubted (see above)."""
STEP = 2.0**-5
LEVELS = 5
SAFETY = 2.0
"""The error bar ``E`` is twice Ridders' estimate: an estimate of the error, not a bound on it."""
FIELDS = ("opinion_derived", "opinion_reference", "opinion_error", "opinion_scale")


def doubt_bound(dtype: str) -> float:
    """:data:`DOUBT_BOUND` for ``dtype`` (0: no second opinion)."""
    return DOUBT_BOUND.get(str(dtype), 0.0)


def richardson(phi: Callable[[jax.Array], jax.Array], h0) -> tuple[jax.Array, jax.Array]:
    """``(F, E)``: ``φ′(0)`` by central differences with Richardson extrapolation, and its error bar.

    Traceable; ``E`` is ``inf`` when ``φ`` is not finite at the steps.
    """
    hs = h0 * 2.0 ** -jnp.arange(LEVELS, dtype=jnp.result_type(h0))
    values = jax.vmap(phi)(jnp.concatenate([hs, -hs]))
    ndim = values.ndim - 1
    quotients = (values[:LEVELS] - values[LEVELS:]) / (2 * hs.reshape((LEVELS,) + (1,) * ndim))
    rho = MCA_FACTOR * rounding_spread(phi, jnp.zeros((), jnp.result_type(h0)))
    column = [quotients[k] for k in range(LEVELS)]
    best = column[-1]
    best_err = jnp.full((), jnp.inf, jnp.float64)
    for j in range(1, LEVELS):
        nxt = {k: column[k] + (column[k] - column[k - 1]) / (4.0**j - 1) for k in range(j, LEVELS)}
        for k, t in nxt.items():
            err = jnp.maximum(sup_norm(t - column[k]), sup_norm(t - column[k - 1])).astype(jnp.float64)
            err = err + 2 * rho / hs[k]
            better = err < best_err
            best = jnp.where(better, t, best)
            best_err = jnp.where(better, err, best_err)
        column = [nxt.get(k, column[k]) for k in range(LEVELS)]
    finite = jnp.all(jnp.isfinite(values))
    return best, jnp.where(finite, SAFETY * best_err, jnp.inf)


def _scale(x: jax.Array) -> jax.Array:
    """``|x|`` entry-wise, floored at ``2⁻¹⁰ ‖x‖∞`` (1 when ``x = 0``): directions that move each entry relatively."""
    size = sup_norm(x)
    floor = jnp.where(size > 0, size * 2.0**-10, 1.0)
    return jnp.maximum(jnp.abs(x), floor).astype(jnp.result_type(x))


def _normalized(w: jax.Array) -> jax.Array:
    n = sup_norm(w)
    return w / jnp.where(n > 0, n, 1.0)


def _opinion(phi, h0, derived_w, reference_w, products_rounding) -> dict[str, jax.Array]:
    """The statistics :func:`sides` reads, for one trial."""
    estimate, err = richardson(phi, h0)
    err = err + products_rounding
    return {
        "opinion_derived": sup_norm(derived_w - estimate).astype(jnp.float64),
        "opinion_reference": sup_norm(reference_w - estimate).astype(jnp.float64),
        "opinion_error": err.astype(jnp.float64),
        "opinion_scale": jnp.maximum(sup_norm(derived_w), sup_norm(reference_w)).astype(jnp.float64),
    }


def _product_rounding(a: jax.Array, w: jax.Array, axes: int) -> jax.Array:
    """``K ε Σ|a||w|``: a bound on the rounding of the product ``a · w`` over ``K`` terms (Higham, Thm 3.1)."""
    k = int(np.prod(jnp.shape(w), dtype=np.int64))
    eps = jnp.finfo(jnp.result_type(a)).eps
    return (k * eps * sup_norm(jnp.tensordot(jnp.abs(a), jnp.abs(w), axes=axes))).astype(jnp.float64)


def along_difference(g, x, derived, reference) -> dict[str, jax.Array]:
    """The opinion for a gradient (``g = of``) or a VJP (``g = ⟨ct, of⟩``): both scalar functions of ``x``."""
    w = _normalized((derived - reference) * _scale(x))
    axes = jnp.ndim(x)
    pd, pr = jnp.tensordot(derived, w, axes=axes), jnp.tensordot(reference, w, axes=axes)
    rounding = _product_rounding(derived, w, axes) + _product_rounding(reference, w, axes)
    return _opinion(lambda t: g(x + t * w), jnp.asarray(STEP, jnp.result_type(x)), pd, pr, rounding)


def along_worst_row(g, x, derived, reference) -> dict[str, jax.Array]:
    """The opinion for a Jacobian (``g = of``) or a Hessian (``g = jax.grad(of)``): ``D w`` against ``R w``.

    ``w`` is the row (output entry) of ``D − R`` with the largest difference, scaled by ``|x|``.
    """
    axes = jnp.ndim(x)
    out_shape = jnp.shape(derived)[: jnp.ndim(derived) - axes]
    diff = jnp.reshape(derived - reference, (-1, *jnp.shape(x)))
    row = jnp.argmax(jax.vmap(sup_norm)(diff))
    w = _normalized(diff[row] * _scale(x))
    pd, pr = jnp.tensordot(derived, w, axes=axes), jnp.tensordot(reference, w, axes=axes)
    rounding = _product_rounding(derived, w, axes) + _product_rounding(reference, w, axes)
    estimate_shape = out_shape

    def phi(t):
        return jnp.reshape(g(x + t * w), estimate_shape)

    return _opinion(phi, jnp.asarray(STEP, jnp.result_type(x)), pd, pr, rounding)


def along_tangent(g, x, tangent, derived, reference) -> dict[str, jax.Array]:
    """The opinion for a JVP: ``d/dt of(x + t c·tangent)`` against ``c D`` and ``c R``.

    ``c`` makes the largest relative move of an entry of ``x`` one step (``c |tangentᵢ| ≤ |xᵢ|``).
    """
    ratio = _scale(x) / jnp.where(tangent != 0, jnp.abs(tangent), jnp.inf)
    c = jnp.min(ratio)
    c = jnp.where(jnp.isfinite(c) & (c > 0), c, 1.0)
    w = c * tangent
    eps = jnp.finfo(jnp.result_type(derived)).eps
    rounding = (eps * c * (sup_norm(derived) + sup_norm(reference))).astype(jnp.float64)
    return _opinion(lambda t: g(x + t * w), jnp.asarray(STEP, jnp.result_type(x)), c * derived, c * reference, rounding)


# ------------------------------------------------------------------ the verdict (NumPy)


@dataclasses.dataclass(frozen=True)
class Opinion:
    """What the second opinion found on a check's failing trials."""

    trials: int
    with_derived: int
    with_reference: int
    reference_gap: float
    """The largest relative disagreement of JAX with the differences, ``‖R_w − F‖∞ / max(‖D_w‖∞, ‖R_w‖∞)``."""
    derived_gap: float
    """The same for the derivation."""

    @property
    def inconclusive(self) -> bool:
        """The opinion sides with the derivation on every failing trial."""
        return self.trials > 0 and self.with_derived == self.trials

    def message(self, reference: str, failing: int, total: int, rtol: float, worst_rel: float) -> str:
        """What was seen and what would settle it (one line). ``worst_rel``: the largest relative error of
        the failing trials as the check judged it — the ``rtol`` a pass needs (the gaps are measured along
        the difference's direction, relative to the derivative there, another scale)."""
        return (
            f"inconclusive: {reference} differs from the derivation by a little (rel. error up to {worst_rel:.1e}) "
            f"in {failing} of {total} trials, and there {reference} disagrees with central differences "
            f"(Richardson-extrapolated, along the difference) by up to {self.reference_gap:.1g} relative while the "
            f"derivation agrees with them to {self.derived_gap:.1g}; the reference may be the inaccurate side — "
            f"check {reference} at these inputs (e.g. against SciPy or mpmath), or pass "
            f"rtol={_above(rtol, worst_rel)} if that accuracy is enough"
        )

    def note(self, reference: str) -> str:
        """What the opinion found when it does not make the check inconclusive."""
        undecided = self.trials - self.with_derived - self.with_reference
        return (
            f"second opinion on {self.trials} failing trials: central differences of of= side with {reference} on "
            f"{self.with_reference}, with the derivation on {self.with_derived}, undecided on {undecided}"
            + (
                f"; where they side with {reference}, of= as computed has {reference}'s derivative — if of= is an "
                "approximation (a library special function), compare it with an accurate implementation"
                if self.with_reference
                else ""
            )
        )


def _above(rtol: float, worst_rel: float) -> str:
    """The next power of ten at or above both (``3e-07`` → ``1e-06``): a tolerance a pass needs, rounded up."""
    need = max(rtol, worst_rel)
    return f"{10.0 ** math.ceil(math.log10(need)):.0e}" if need > 0 else f"{rtol:.0e}"


def sides(stats: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(with_derived, with_reference)`` per trial (both ``False`` where undecided or not asked)."""
    gd = np.asarray(stats["opinion_derived"], np.float64)
    gr = np.asarray(stats["opinion_reference"], np.float64)
    e = np.asarray(stats["opinion_error"], np.float64)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(gd) & np.isfinite(gr) & np.isfinite(e)
        return finite & (gd <= e) & (gr > 2 * e), finite & (gr <= e) & (gd > 2 * e)


def opinion(stats: dict[str, np.ndarray], asked: np.ndarray) -> Opinion:
    """Summarize the opinion on the ``asked`` trials."""
    with_d, with_r = sides(stats)
    scale = np.asarray(stats["opinion_scale"], np.float64)[asked]
    denom = np.where(scale > 0, scale, 1.0)
    gd = np.asarray(stats["opinion_derived"], np.float64)[asked] / denom
    gr = np.asarray(stats["opinion_reference"], np.float64)[asked] / denom
    return Opinion(
        trials=int(asked.sum()),
        with_derived=int(with_d[asked].sum()),
        with_reference=int(with_r[asked].sum()),
        reference_gap=float(np.max(gr, initial=0.0)),
        derived_gap=float(np.max(gd, initial=0.0)),
    )
