"""Guards for functions that misbehave in ways no formula error explains: kinks and non-determinism.

**Kinks.** Where ``of`` is not differentiable (``|x|`` at 0, ``max`` with
ties, ``relu`` of an exact zero) every subgradient is a valid answer and JAX
returns one by convention, so a derived function that returns another differs
there without being wrong. For the failing trials only (measured with the
rounding scales, see :mod:`derivcheck._compare`), the reference ``R`` is
evaluated on both sides of the trial's point ``x`` of the ``wrt`` argument,
along a fixed direction ``u`` with distinct entries in ``[-1, 1]``:

.. math::

    J(h) = \\|R(x + h\\,s\\,u) - R(x - h\\,s\\,u)\\|_\\infty, \\qquad s = \\|x\\|_\\infty \\text{ (1 if } x = 0),

at ``h₁ = 2⁻¹²`` and ``h₂ = h₁ / 64``. Where ``R`` is continuous, ``J`` is
linear in ``h`` (``J(h₂) ≈ J(h₁) / 64``); across a jump it does not shrink.
A failing trial *sits on a kink* when ``J(h₂) ≥ J(h₁) / 8`` and the jump is at
least half the trial's error, so it explains the difference. When every
failing trial sits on a kink the check is an ``error`` that says the function
is not differentiable at the sampled points; otherwise it fails, and the
message counts the kinks.

**Non-determinism.** A verdict is only reproducible if the functions are
functions: :func:`nondeterminism` traces the derived function (and ``of``)
twice on the worst trial's inputs and, when the two programs differ, calls it
twice and reports a difference beyond rounding (randomness drawn at trace
time, global state, a counter).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from derivcheck._checks._engine import CheckError, Conditioned, Run, where
from derivcheck._compare import sup_norm
from derivcheck._derivation import Derivation
from derivcheck._format import callable_name
from derivcheck._result import Result

WIDE_STEP = 2.0**-12
NARROW_STEP = WIDE_STEP / 64
REPEAT_TOLERANCE = 16.0  # ulps of the larger output that two calls may differ by


def _direction(shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """A fixed direction with distinct entries in ``[-1, 1]`` (``cos`` of multiples of the golden angle)."""
    n = int(np.prod(shape))
    return jnp.cos(1.0 + 2.399963 * jnp.arange(n)).reshape(shape).astype(dtype)


def reference_jumps(reference, d: Derivation, args: tuple, extra: dict) -> dict[str, jax.Array]:
    """``J(h₁)`` and ``J(h₂)`` of one trial: how much ``reference(d, args, extra)`` moves across its point."""
    i = d.wrt_index
    x = args[i]
    u = _direction(jnp.shape(x), jnp.result_type(x))
    size = sup_norm(x)
    scale = jnp.where(size > 0, size, 1).astype(jnp.result_type(x))

    steps = jnp.array([WIDE_STEP, -WIDE_STEP, NARROW_STEP, -NARROW_STEP], dtype=jnp.result_type(x))
    points = x[None] + (steps * scale).reshape((4,) + (1,) * jnp.ndim(x)) * u[None]

    def at(moved_x):
        return reference(d, (*args[:i], moved_x, *args[i + 1 :]), extra)

    refs = jax.vmap(at)(points)  # the four points in one call: one trace, one copy of the reference
    return {
        "jump_wide": sup_norm(refs[0] - refs[1]).astype(jnp.float64),
        "jump_narrow": sup_norm(refs[2] - refs[3]).astype(jnp.float64),
    }


def at_kink(stats: dict[str, np.ndarray]) -> np.ndarray:
    """Which trials sit on a jump of the reference large enough to explain their error."""
    if "jump_narrow" not in stats:
        return np.zeros(np.shape(stats["abs_err"]), dtype=bool)
    narrow, wide = np.asarray(stats["jump_narrow"]), np.asarray(stats["jump_wide"])
    return (narrow > 0) & (narrow >= wide / 8) & (narrow >= 0.5 * np.asarray(stats["abs_err"]))


class Guardable(Conditioned, Protocol):
    """A differential family as :class:`KinkAware` needs it: with its reference side and a values-only validation."""

    def reference(self, d: Derivation, args: tuple, extra: dict) -> Any:
        """JAX's side of one trial (traceable)."""
        ...

    def validate_values(self, d: Derivation, args: tuple, extra: dict, values: tuple) -> str | None:
        """The dtype to judge at from one trial's abstract values, ``None`` when :meth:`validate` must say more."""
        ...


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

    def extra_inputs(self, d, args):
        return self.inner.extra_inputs(d, args)

    def validate(self, d, args, extra):
        return self.inner.validate(d, args, extra)

    def validate_values(self, d, args, extra, values):
        return self.inner.validate_values(d, args, extra, values)

    def trial(self, d, args, extra):
        return self.inner.trial(d, args, extra)

    def conditioning(self, d, args, extra):
        return {**self.inner.conditioning(d, args, extra), **reference_jumps(self.inner.reference, d, args, extra)}

    def judge(self, stats, tol):
        return self.inner.judge(stats, tol)

    def summarize(self, d: Derivation, run: Run):
        message, extra = self.inner.summarize(d, run)
        kinks = at_kink(run.stats) & run.failed
        if not kinks.any():
            return message, extra
        first = int(np.argmax(kinks))
        regimes = sorted({run.regimes[int(j)] for j in np.flatnonzero(kinks)})
        if kinks.sum() < run.failed.sum():
            return f"{message}; {int(kinks.sum())} of them on a kink of of= (not differentiable there)", extra
        jump = float(run.stats["jump_narrow"][first])
        raise CheckError(
            f"of= is not differentiable at the sampled point ({where(run.sizes[first], run.regimes[first])}): "
            f"the reference jumps by {jump:.2g} across it, and all {int(kinks.sum())} failing trials sit on such "
            f"a kink, where any subgradient is right; draw inputs away from it (kinks in regimes {', '.join(regimes)})"
        )


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
        except Exception:
            continue
        if gap:
            return (
                f"{label} is not deterministic: two calls on the same inputs ({where(w.sizes, w.regime)}) "
                f"differ by {gap:.2g}; its verdict cannot be reproduced — remove random draws or global state from it"
            )
    return ""


def _trailing_value(d: Derivation, inputs: dict, args: tuple) -> np.ndarray:
    """The derived function's trailing argument on the worst trial: as drawn, or (a Hessian-vector
    product's ``v``, which the check replaces by probes or unit vectors) the fixed direction shaped
    like the ``wrt`` argument."""
    if d.claim.extra_arg in inputs:
        return np.asarray(inputs[d.claim.extra_arg])
    x = args[d.wrt_index]
    return np.asarray(_direction(np.shape(x), x.dtype))


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
