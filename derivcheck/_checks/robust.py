"""Guards for functions that misbehave in ways no formula error explains: kinks and non-determinism.

**Kinks.** Where ``of`` is not differentiable (``|x|`` at 0, ``max`` with
ties, ``relu`` of an exact zero) every subgradient is a valid answer and JAX
returns one by convention, so a derived function that returns another differs
there without being wrong. For the failing trials only (measured with the
rounding scales, see :mod:`derivcheck._compare`), the reference ``R`` and the
derived side ``D`` are evaluated on both sides of the trial's point ``x`` of
the ``wrt`` argument, along a fixed direction ``u`` with distinct entries in
``[-1, 1]`` (:func:`probed`):

.. math::

    J(h) = \\|R(x + h\\,s\\,u) - R(x - h\\,s\\,u)\\|_\\infty, \\qquad s = \\|x\\|_\\infty \\text{ (1 if } x = 0),

at ``h₁ = 2⁻¹²`` and ``h₂ = h₁ / 64``. Where ``R`` is continuous, ``J`` is
linear in ``h`` (``J(h₂) ≈ J(h₁) / 64``); across a jump it does not shrink.
A failing trial *sits on a kink* (:func:`at_kink`) when all three hold:

1. ``R`` jumps there: ``J(h₂) > 0`` and ``J(h₂) ≥ J(h₁) / 8``;
2. the derivation is right on both sides: ``D`` equals ``R`` at ``x ± h₂ s u``
   by the check's own norm-wise and entry-wise tests (the direction breaks ties
   and moves exact zeros off the kink, so both points are smooth ones);
3. the error at ``x`` is within the jump: ``‖D − R‖∞ ≤ J(h₂) (1 + 2⁻⁷) +
   |J(h₁) − J(h₂)| / 63`` (a valid subgradient lies between the one-sided
   limits; the second term bounds the continuous part of ``R`` across the
   narrow step, the factor the rounding of the two differences even in
   bfloat16).

So an error in the entries away from the kink is never excused: a LeakyReLU
Jacobian written ``2α·I`` on inputs with one exact zero is wrong at both
neighbours and fails, while the right one with the other one-sided slope at
the zero is excused. Condition 2 judges each side as a whole rather than
entry by entry, so a kink where many pieces meet (a ``max`` over ``k`` tied
entries, every entry of a constant vector) is excused when the derivation
picks another valid piece, although the probe only crosses two of them.

A trial on a kink, or where the derived side is not finite but right on both
sides (a removable singularity of the formula: ``det(A) A⁻ᵀ`` at a singular
``A``, where ``jax.grad(det)`` is the finite adjugate), is a *degenerate draw*
(:meth:`KinkAware.degenerate`): it is skipped with a note, and the check errs
only when no trial is usable.

**Non-determinism.** A verdict is only reproducible if the functions are
functions: :func:`nondeterminism` traces the derived function (and ``of``)
twice on the worst trial's inputs and, when the two programs differ, calls it
twice and reports a difference beyond rounding (randomness drawn at trace
time, global state, a counter). *Beyond rounding* means beyond both
``16 ε max|output|`` and the function's own measured rounding at those inputs,
``16 ×`` its Monte Carlo arithmetic spread
(:func:`derivcheck._compare.rounding_spread`): a function that adds the same
terms in another order on each call (iterating a Python ``set``, a graph
traversal) changes its result only by the rounding of those additions — at
most ``n ε Σ|terms|`` for ``n`` terms (Higham, Thm 3.1), which the spread
sees, as every partial sum is perturbed by ``ε`` of its size — and is not
flagged; a random draw or a counter changes it by far more.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from derivcheck._checks._engine import Family, Run, where
from derivcheck._compare import (
    MCA_FACTOR,
    cancelled_terms,
    entry_excess,
    fits,
    judged_tolerance,
    rounding_spread,
    sup_norm,
    trial_errors,
    twins,
)
from derivcheck._derivation import Derivation
from derivcheck._format import callable_name
from derivcheck._result import Leaves, Result

WIDE_STEP = 2.0**-12
NARROW_STEP = WIDE_STEP / 64
REPEAT_TOLERANCE = 16.0  # ulps of the larger output that two calls may differ by


def fixed_direction(shape: tuple[int, ...], dtype: Any, phase: int = 0) -> jax.Array:
    """A fixed direction with distinct entries in ``[-1, 1]``, the largest ``±1``; each ``phase`` gives another
    one (the far probes of a minimum use four).

    Entry ``k`` is MurmurHash3's finaliser of ``k + p·⌊2³²/φ⌋`` (a bijection of 32-bit integers, so the
    entries are distinct before rounding to ``dtype``) mapped to ``[-1, 1)``: pseudo-random, so the
    direction is no structured matrix. It was ``cos(1 + p + (p + 1) γ k)``, a sum of two outer products
    when reshaped to a matrix (rank 2): a probe of a rank-one matrix then stayed singular, and the
    removable singularity of ``det(A)·A⁻ᵀ`` at ``A = c·11ᵀ`` could not be seen to be right beside the point.
    """
    n = int(np.prod(shape))
    if n == 0:
        return jnp.zeros(shape, dtype)
    u32 = jnp.uint32
    h = lax.add(lax.iota(u32, n), lax.full((n,), (phase * 0x9E3779B9) % 2**32, u32))
    for shift, multiplier in ((16, 0x85EBCA6B), (13, 0xC2B2AE35), (16, None)):
        h = lax.bitwise_xor(h, lax.shift_right_logical(h, lax.full((n,), shift, u32)))
        if multiplier is not None:
            h = lax.mul(h, lax.full((n,), multiplier, u32))
    unit = lax.convert_element_type(h, jnp.float32) * (2.0**-31) - 1.0  # in [-1, 1)
    return (unit / jnp.max(jnp.abs(unit))).reshape(shape).astype(dtype)


def probe_points(x) -> tuple[jax.Array, jax.Array]:
    """``x ± h₁ s u`` and ``x ± h₂ s u`` (module docstring), each stacked ``(2, *x.shape)``."""
    u = fixed_direction(jnp.shape(x), jnp.result_type(x))
    size = sup_norm(x)
    scale = jnp.where(size > 0, size, 1).astype(jnp.result_type(x))

    def points(step):
        steps = jnp.array([step, -step], dtype=jnp.result_type(x))
        return x[None] + (steps * scale).reshape((2,) + (1,) * jnp.ndim(x)) * u[None]

    return points(WIDE_STEP), points(NARROW_STEP)


def probed(family: Sides, d: Derivation, args: tuple, extra: dict) -> tuple[Any, Any, jax.Array, dict]:
    """``(D(x), R(x), T(x), kink statistics)``: every evaluation the conditioning pass needs, one batch per side.

    The reference is needed at eight points — the trial ``x``, its twin for the
    cancelled terms ``T`` (:func:`~derivcheck._compare.twin`), the wide probes
    ``x ± h₁ s u``, the narrow ones ``x ± h₂ s u`` and their twins — and the
    derived side at three (``x`` and the narrow probes). Stacked and evaluated by
    one ``vmap`` per side, each side appears once in the compiled program
    instead of once per use: the program is compiled for every failing size
    set, and its size was most of what a failing check adds.
    """
    i = d.wrt_index
    wide, narrow = probe_points(args[i])

    def at(mx):
        return (*args[:i], mx, *args[i + 1 :]), extra

    here, plus, minus = (args, extra), at(narrow[0]), at(narrow[1])
    here_t, plus_t, minus_t = twins(here, plus, minus)
    ref = _each(family.reference, d, [here, here_t, at(wide[0]), at(wide[1]), plus, plus_t, minus, minus_t])
    got = _each(family.derived, d, [here, plus, minus])
    beside = [(got[1], ref[4], cancelled_terms(ref[4], ref[5])), (got[2], ref[6], cancelled_terms(ref[6], ref[7]))]
    right = jnp.all(jax.vmap(lambda g, r, t: _right(d, g, r, t))(*jax.tree.map(lambda *v: jnp.stack(v), *beside)))
    kinks = {
        "jump_wide": sup_norm(ref[2] - ref[3]).astype(jnp.float64),
        "jump_narrow": sup_norm(ref[4] - ref[6]).astype(jnp.float64),
        "right_beside": right.astype(jnp.float64),
    }
    return got[0], ref[0], cancelled_terms(ref[0], ref[1]), kinks


def _each(side, d: Derivation, points: list[tuple[tuple, dict]]) -> list:
    """``side(d, args, extra)`` at each ``(args, extra)`` point, by one ``vmap`` over them stacked."""
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *points)
    values = jax.vmap(lambda a, e: side(d, a, e))(*stacked)
    return [jax.tree.map(lambda v, k=k: v[k], values) for k in range(len(points))]


def _right(d: Derivation, got, ref, terms) -> jax.Array:
    """Whether ``D`` equals ``R`` at one point, by the norm-wise and entry-wise tests with the cancelled terms ``T``."""
    tol, floor = judged_tolerance(d.tolerance, got, ref)
    abs_err, scale, finite = trial_errors(got, ref)
    excess, _ = entry_excess(got, ref, tol, floor, terms=terms)
    return finite & fits(abs_err, tol, jnp.maximum(scale, terms)) & (excess <= 0)


def at_kink(stats: dict[str, np.ndarray]) -> np.ndarray:
    """Which trials sit on a kink of ``of`` that explains their error (module docstring, conditions 1–3)."""
    if "jump_narrow" not in stats:
        return np.zeros(np.shape(stats["abs_err"]), dtype=bool)
    narrow, wide = np.asarray(stats["jump_narrow"]), np.asarray(stats["jump_wide"])
    jumps = (narrow > 0) & (narrow >= wide / 8)
    within = np.asarray(stats["abs_err"]) <= narrow * (1 + 2**-7) + np.abs(wide - narrow) / 63
    return jumps & _right_beside(stats) & within


def singular_point(stats: dict[str, np.ndarray]) -> np.ndarray:
    """Trials where the derived side is not finite, the reference is, and the derivation is right on both sides."""
    finite_ref, finite_der = (np.asarray(stats[k], bool) for k in ("finite_reference", "finite_derived"))
    return finite_ref & ~finite_der & _right_beside(stats)


def _right_beside(stats: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(stats.get("right_beside", np.zeros(np.shape(stats["abs_err"]))), float) > 0


class Sides(Protocol):
    """The two sides of a differential claim, evaluated at one point (what :func:`probed` evaluates)."""

    def reference(self, d: Derivation, args: tuple, extra: dict) -> Any:
        """JAX's side of one trial (traceable)."""
        ...

    def derived(self, d: Derivation, args: tuple, extra: dict) -> Any:
        """The derived side of one trial (traceable)."""
        ...


class Guardable(Sides, Family, Protocol):
    """A differential family as :class:`KinkAware` needs it: its two sides, a values-only validation, its
    rounding scales from values it is given, and a second opinion."""

    def rounding_scales(self, d: Derivation, args: tuple, extra: dict, got, ref, terms, sides: Sides) -> dict:
        """The conditioning statistics from both sides' values and the cancelled terms at the trial (traceable)."""
        ...

    def validate_values(self, d: Derivation, args: tuple, extra: dict, values: tuple) -> str | None:
        """The dtype to judge at from one trial's abstract values, ``None`` when :meth:`validate` must say more."""
        ...

    def second_opinion(self, d: Derivation, args: tuple, extra: dict) -> dict[str, Any]:
        """Central differences of ``of`` against both sides of one trial (traceable)."""
        ...


class Staged:
    """A family's two sides for one derivation, each staged out (``jax.jit``) once per argument shape.

    The conditioning pass uses each side twice: evaluated at every point it
    needs (:func:`probed`), and staged out again for the Monte Carlo pass
    (:func:`~derivcheck._compare.entry_spreads`). A second call of one ``jax.jit``
    function at the same shapes reuses its first trace — for a Hessian, a trace
    through ``jax.hessian``'s forward and reverse passes; the values are the
    same, since XLA inlines the call. A :class:`Sides`.
    """

    def __init__(self, family: Sides, d: Derivation):
        self._reference = jax.jit(lambda a, e: family.reference(d, a, e))
        self._derived = jax.jit(lambda a, e: family.derived(d, a, e))

    def reference(self, d: Derivation, args: tuple, extra: dict):
        return self._reference(args, extra)

    def derived(self, d: Derivation, args: tuple, extra: dict):
        return self._derived(args, extra)


@dataclasses.dataclass(frozen=True)
class KinkAware:
    """A differential family that tells a kink of ``of`` from a formula error (see the module docstring).

    ``inner`` is the family it guards; its ``reference(d, args, extra)`` is JAX's side of one trial.
    """

    inner: Guardable

    @property
    def analysis(self) -> str:
        """The guarded family's diagnosis (see :mod:`derivcheck._checks._kind`)."""
        return getattr(self.inner, "analysis", "conditions")

    @property
    def reference_name(self) -> str:
        """The guarded family's reference, for messages (``"jax.grad"``)."""
        return getattr(self.inner, "reference_name", "the reference")

    def extra_inputs(self, d, args):
        return self.inner.extra_inputs(d, args)

    def leaves(self, d, inputs) -> Leaves:
        """The guarded family's leaves of a pytree result (see :class:`~derivcheck._checks._engine.Family`)."""
        inner = getattr(self.inner, "leaves", None)
        return () if inner is None else inner(d, inputs)

    def validate(self, d, args, extra):
        return self.inner.validate(d, args, extra)

    def validate_values(self, d, args, extra, values):
        return self.inner.validate_values(d, args, extra, values)

    def trial(self, d, args, extra):
        return self.inner.trial(d, args, extra)

    def conditioning(self, d, args, extra):
        """The inner family's rounding scales and the kink statistics, from one batch per side (:func:`probed`)."""
        sides = Staged(self.inner, d)  # each side traced once for the whole pass
        got, ref, terms, kinks = probed(sides, d, args, extra)
        return {**self.inner.rounding_scales(d, args, extra, got, ref, terms, sides), **kinks}

    def judge(self, stats, tol):
        """The inner judgement; a derived side that is not finite where the reference is also counts as
        failing, so that its neighbours are probed (:func:`singular_point`)."""
        failed, badness, rel = self.inner.judge(stats, tol)
        singular = np.asarray(stats["finite_reference"], bool) & ~np.asarray(stats["finite_derived"], bool)
        return failed | singular, badness, rel

    def degenerate(self, stats, failed) -> dict[str, np.ndarray]:
        """The failing trials that are degenerate draws, by reason (module docstring)."""
        return {
            "a kink of of=": at_kink(stats) & failed,
            "a singular point of the derived formula": singular_point(stats),
        }

    def second_opinion(self, d, args, extra):
        """The guarded family's second opinion on the reference (:mod:`derivcheck._checks.second_opinion`)."""
        return self.inner.second_opinion(d, args, extra)

    def summarize(self, d: Derivation, run: Run):
        return self.inner.summarize(d, run)


# ------------------------------------------------------------------ determinism


def nondeterminism(d: Derivation, result: Result) -> str:
    """Why ``d``'s functions are not deterministic on the worst trial's inputs, or ``""``.

    Each function is traced twice (cheap: no compilation); identical programs
    with identical constants and no host callbacks are deterministic. Otherwise
    it is called twice, eagerly, and the outputs compared. A function that
    raises here proves nothing (the batched check already judged it) and is
    skipped.
    """
    w = result.worst
    if w is None:
        return ""
    trailing = d.claim.extra_arg  # a VJP's cotangent, a JVP's tangent, a Hessian-vector product's v
    names = d.arg_names or tuple(k for k in w.inputs if k != trailing)
    args = tuple(np.asarray(w.inputs[n]) for n in names)  # host arrays: no device transfer, no compile
    derived_args = args if trailing is None else (*args, _trailing_value(d, w.inputs, args))
    calls = [("derived function", d.derived, derived_args)]
    of = getattr(d.claim, "of", None)
    if callable(of):
        calls.append((f"of= {callable_name(of)}", of, args))
    for label, fn, fn_args in calls:
        try:
            if _traces_agree(fn, fn_args):
                continue
            gap = _gap(fn(*fn_args), fn(*fn_args))
            gap = gap if gap > _own_rounding(fn, fn_args) else 0.0
        except Exception:
            continue
        if gap:
            return (
                f"{label} is not deterministic: two calls on the same inputs ({where(w.sizes, w.regime)}) "
                f"differ by {gap:.2g}; its verdict cannot be reproduced — remove random draws or global state from it"
            )
    return ""


def _own_rounding(fn, args: tuple) -> float:
    """``16 ×`` the Monte Carlo arithmetic spread of ``fn`` at ``args``: how far rounding alone moves it.

    Measured only when two calls differ; ``0`` when ``fn`` cannot be staged out.
    """
    with jax.enable_x64(True):
        return float(MCA_FACTOR * rounding_spread(fn, *args))


def _trailing_value(d: Derivation, inputs: dict, args: tuple) -> np.ndarray:
    """The derived function's trailing argument on the worst trial: as drawn, or (a Hessian-vector
    product's ``v``, which the check replaces by probes or unit vectors) the fixed direction shaped
    like the ``wrt`` argument."""
    if d.claim.extra_arg in inputs:
        return np.asarray(inputs[d.claim.extra_arg])
    x = args[d.wrt_index]
    return np.asarray(fixed_direction(np.shape(x), x.dtype))


def _traces_agree(fn, args: tuple) -> bool:
    """Two fresh traces of ``fn`` give the same program and constants, with no host callback.

    Agreement is remembered per function and argument shapes (a repeated check
    skips the two traces); disagreement is not, so it is found every time.
    """
    try:
        key = (fn, tuple((np.shape(a), str(np.asarray(a).dtype)) for a in args))
        if key in _AGREED:
            return True
    except TypeError:  # an unhashable callable: trace every time
        key = None
    first, second = (jax.make_jaxpr(lambda *a: fn(*a))(*args) for _ in range(2))
    text = str(first)
    if text != str(second) or "callback" in text or len(first.consts) != len(second.consts):
        return False
    agree = all(
        np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
        for a, b in zip(first.consts, second.consts, strict=True)
    )
    if agree and key is not None and len(_AGREED) < 4096:
        _AGREED.add(key)
    return agree


_AGREED: set = set()


def _gap(first: Any, second: Any) -> float:
    """The largest difference between two outputs beyond rounding (0.0 when they agree)."""
    a_leaves, b_leaves = jax.tree.leaves(first), jax.tree.leaves(second)
    if len(a_leaves) != len(b_leaves):
        return float("inf")
    gap = 0.0
    for a, b in zip(a_leaves, b_leaves, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return float("inf")
        if a.dtype.kind not in "fc":
            gap = max(gap, float(np.any(a != b)))
            continue
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.where(same, 0.0, np.abs(a - b))
        diff = np.where(np.isnan(diff), np.inf, diff)
        size = max(np.max(np.abs(np.where(np.isfinite(x), x, 0)), initial=0.0) for x in (a, b))
        allowed = REPEAT_TOLERANCE * float(np.finfo(a.dtype).eps) * float(size)
        worst = float(np.max(diff, initial=0.0))
        if worst > allowed:
            gap = max(gap, worst)
    return gap
