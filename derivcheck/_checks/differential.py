"""Gradient, Jacobian, Hessian, VJP and JVP claims, checked against JAX autodiff.

=========  ====================================================  ==========================
claim      reference                                             shape of ``derived(...)``
=========  ====================================================  ==========================
gradient   ``jax.grad(of, argnums=wrt)``                         ``args[wrt].shape``
jacobian   ``jax.jacfwd`` (``jax.jacrev`` when out is smaller)   ``out.shape + in.shape``
hessian    ``jax.hessian(of, argnums=wrt)``                      ``in.shape * 2``
vjp        ``jax.vjp(of, ...)[1](ct)``, random cotangent ``ct``  ``args[wrt].shape``
jvp        ``jax.jvp(of, (x,), (t,))[1]``, random tangent ``t``  ``out.shape``
=========  ====================================================  ==========================

Complex values follow JAX's conventions: ``holomorphic=True`` (gradient, Jacobian) passes
``holomorphic=True`` to the reference; without it a real-valued ``of`` of a complex argument has
JAX's gradient ``∂f/∂x − i ∂f/∂y``; a VJP's cotangent is not conjugated; a JVP is linear. Where JAX has
no derivative of the kind asked for, :meth:`Differential._check_complex` says what to write instead.

A gradient, VJP or JVP may differentiate a pytree or several arguments (a tuple
``wrt``), and ``of`` may return a pytree: both sides are then compared raveled, and
a failure names the leaves that are wrong (see :mod:`derivcheck._pytree`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from derivcheck._checks import second_opinion
from derivcheck._checks._engine import CheckError, Run, jit_hint, judged_precision, one_line, refuse_complex, where
from derivcheck._checks._kind import Plan, batched, fixed
from derivcheck._checks.robust import KinkAware, Sides
from derivcheck._compare import (
    MCA_FACTOR,
    entry_excess,
    entry_spreads,
    judge_equality,
    judged_tolerance,
    trial_errors,
)
from derivcheck._derivation import JVP, VJP, Derivation, DerivationError, Gradient, Jacobian
from derivcheck._format import callable_name
from derivcheck._pytree import describe, flat_output, is_array, leaf_errors, leaf_paths, ravel, selection, unraveler
from derivcheck._result import Leaves


def _partial(d: Derivation, args: tuple):
    """``of`` as a function of the ``wrt`` selection alone (one argument, or a tuple of several), the
    others fixed, with its output raveled when it is a pytree (see :mod:`derivcheck._pytree`)."""
    f, x = selection(d.claim.of, d.wrt_indices, isinstance(d.claim.wrt, tuple), args)
    return flat_output(f, x)[0], x


def _of_selection(d: Derivation, args: tuple):
    """``of``'s output (as it is: a pytree stays one) on ``args``, through the ``wrt`` selection."""
    f, x = selection(d.claim.of, d.wrt_indices, isinstance(d.claim.wrt, tuple), args)
    return f(x)


def _like(x) -> jax.ShapeDtypeStruct:
    """The abstract value of ``x`` as the engine draws it: itself, or raveled when it is a pytree."""
    if is_array(x):
        return jax.ShapeDtypeStruct(jnp.shape(x), x.dtype)
    leaves = jax.tree.leaves(x)
    return jax.ShapeDtypeStruct((sum(math.prod(jnp.shape(a)) for a in leaves),), jnp.result_type(*leaves))


def _jacobian(f, x, extra, holomorphic=False):
    """``jax.jacrev`` when the output is smaller than the input, else ``jax.jacfwd`` (the same matrix).

    A real output of a complex ``x`` (not holomorphic) takes ``jax.jacrev``, the one JAX allows there:
    row ``i`` is then ``jax.grad(f_i)``'s convention, ``∂f_i/∂x − i ∂f_i/∂y``.
    """
    out = jax.eval_shape(f, x)
    complex_in = _is_complex(x) and not holomorphic
    smaller = math.prod(out.shape) < math.prod(jnp.shape(x))
    jac = jax.jacrev if smaller or complex_in else jax.jacfwd
    return jac(f, holomorphic=holomorphic)(x)


def _is_complex(tree) -> bool:
    """Whether any leaf of ``tree`` (arrays or abstract values) is complex."""
    return any(jnp.issubdtype(jnp.result_type(a), jnp.complexfloating) for a in jax.tree.leaves(tree))


@dataclasses.dataclass(frozen=True)
class Rule:
    """What one derivative claim compares: JAX's side ``reference(f, x, extra)`` (``f`` is ``of`` as a
    function of ``x = args[wrt]``), its name, the shape rule for messages, and the trailing argument
    the derived function takes (``extra_arg``, drawn like ``of``'s output (``"output"``) or like
    ``x`` (``"input"``), in the trial's regime)."""

    reference: Callable[..., Any]
    """``reference(f, x, extra, holomorphic)``: JAX's derivative on one trial."""
    name: str
    shape_rule: str
    extra_arg: str | None = None
    extra_like: str = ""
    scalar: bool = False
    opinion: Callable[..., dict[str, Any]] | None = None
    """``opinion(f, x, extra, derived, reference)``: the second opinion's statistics of one trial
    (:mod:`derivcheck._checks.second_opinion`)."""


GRADIENT = Rule(
    lambda f, x, e, h: jax.grad(f, holomorphic=h)(x),
    "jax.grad",
    "a gradient has the shape of the wrt argument",
    scalar=True,
    opinion=lambda f, x, e, d, r: second_opinion.along_difference(f, x, d, r),
)
JACOBIAN = Rule(
    _jacobian,
    "jax.jacfwd",
    "a Jacobian has shape out.shape + wrt.shape, as jax.jacfwd",
    opinion=lambda f, x, e, d, r: second_opinion.along_worst_row(f, x, d, r),
)
HESSIAN = Rule(
    lambda f, x, e, h: jax.hessian(f)(x),
    "jax.hessian",
    "a Hessian has shape wrt.shape * 2, as jax.hessian",
    opinion=lambda f, x, e, d, r: second_opinion.along_worst_row(jax.grad(f), x, d, r),
)
VJP_RULE = Rule(
    lambda f, x, e, h: jax.vjp(f, x)[1](e["cotangent"])[0],
    "jax.vjp",
    "a VJP returns the cotangent pulled back to the wrt argument (its shape)",
    extra_arg="cotangent",
    extra_like="output",
    opinion=lambda f, x, e, d, r: second_opinion.along_difference(lambda y: jnp.sum(e["cotangent"] * f(y)), x, d, r),
)
JVP_RULE = Rule(
    lambda f, x, e, h: jax.jvp(f, (x,), (e["tangent"],))[1],
    "jax.jvp",
    "a JVP returns the tangent pushed forward to of's output (its shape)",
    extra_arg="tangent",
    extra_like="input",
    opinion=lambda f, x, e, d, r: second_opinion.along_tangent(f, x, e["tangent"], d, r),
)


@dataclasses.dataclass(frozen=True)
class Differential:
    """The family of claims "``derived`` equals this JAX derivative of ``of``" (one per :class:`Rule`)."""

    rule: Rule
    analysis: ClassVar[str] = "equality"  # diagnosed by value relations (sign, factor, transpose…)

    @property
    def reference_name(self) -> str:
        return self.rule.name

    def reference(self, d: Derivation, args: tuple, extra: dict):
        """JAX's side of the claim for one trial (raveled when it is a pytree: a tuple of arguments)."""
        f, x = _partial(d, args)
        name = self.rule.extra_arg
        if name is not None and self.rule.extra_like == "input" and not is_array(x):
            extra = {**extra, name: unraveler(x)(extra[name])}  # a tangent of several arguments, drawn raveled
        ref = self.rule.reference(f, x, extra, _holomorphic(d))
        return ref if is_array(ref) else ravel(ref)

    def derived(self, d: Derivation, args: tuple, extra: dict):
        """The derived side for one trial (with its trailing argument, when the claim has one)."""
        if self.rule.extra_arg is None:
            return d.derived(*args)
        return d.derived(*args, extra[self.rule.extra_arg])

    def extra_inputs(self, d, args):
        """The trailing argument's shape: like ``of``'s output (a cotangent) or the ``wrt`` argument (a tangent)."""
        rule = self.rule
        if rule.extra_arg is None:
            return {}
        if rule.extra_like == "input":
            return {
                rule.extra_arg: _like(selection(d.claim.of, d.wrt_indices, isinstance(d.claim.wrt, tuple), args)[1])
            }
        out = jax.eval_shape(lambda *a: _partial(d, a)[0](_partial(d, a)[1]), *args)
        return {rule.extra_arg: out}

    def _check_complex(self, d: Derivation, x, out) -> None:
        """A one-line error where JAX has no derivative of this kind for these dtypes (see the README's
        "Complex inputs"): ``holomorphic=True`` needs complex in and out; without it a gradient needs a
        real output and a Jacobian of a complex argument a real one."""
        name, holo = _fname(d.claim.of), _holomorphic(d)
        complex_in, complex_out = _is_complex(x), _is_complex(out)
        if self.rule is HESSIAN:
            refuse_complex((x, out), "a Hessian claim")
        if holo and not (complex_in and complex_out):
            side = "argument" if not complex_in else "output"
            raise CheckError(
                f"holomorphic=True needs of= {name} to take and return complex values, but its {side} is real: "
                "drop holomorphic=True, or give the argument a complex dtype (e.g. dc.normal('n', dtype='complex128'))"
            )
        if holo or not complex_out or self.rule.extra_arg is not None:
            return  # a VJP or JVP is defined for any complex function (jax.vjp, jax.jvp)
        if self.rule.scalar or complex_in:
            what = "a gradient" if self.rule.scalar else "a Jacobian of a complex argument"
            raise CheckError(
                f"of= {name} returns complex values, and {what} without holomorphic=True needs a real output: "
                "pass holomorphic=True if of is holomorphic, else check a real output (jnp.real, jnp.abs(...) ** 2) "
                "or a dc.vjp / dc.jvp"
            )

    def validate(self, d, args, extra):
        claim = d.claim
        try:
            x = selection(claim.of, d.wrt_indices, isinstance(claim.wrt, tuple), args)[1]
            out = jax.eval_shape(lambda *a: _of_selection(d, a), *args)
        except Exception as exc:
            raise CheckError(f"of= {_fname(claim.of)} raised on the drawn inputs: {one_line(exc)}") from exc
        if self.rule.scalar and (not is_array(out) or out.shape != ()):
            shape = f"shape {out.shape}" if is_array(out) else describe(out)
            raise CheckError(
                f"of= {_fname(claim.of)} returns {shape}; a gradient needs a scalar "
                "function (use dc.jacobian or dc.vjp for vector outputs)"
            )
        names = [d.arg_names[i] if d.arg_names else str(i) for i in d.wrt_indices]
        self._check_complex(d, x, out)
        for wrt, leaf in zip(names, jax.tree.leaves(x) if not is_array(x) else [x], strict=False):
            for o in jax.tree.leaves(out):
                if not jnp.issubdtype(o.dtype, jnp.inexact) or not jnp.issubdtype(leaf.dtype, jnp.inexact):
                    raise CheckError(
                        f"of= {_fname(claim.of)} must map floating-point values to floating-point values to be "
                        f"differentiated (argument {wrt} is {leaf.dtype}, output {o.dtype})"
                    )
        try:
            ref = jax.eval_shape(lambda a, e: self.reference(d, a, e), args, extra)
        except Exception as exc:
            if "callback" in str(exc).lower():  # jax.pure_callback / io_callback: a host function, no derivative
                raise CheckError(
                    f"{_fname(claim.of)} calls a host function (a JAX callback), which JAX cannot differentiate: "
                    f"there is no {self.rule.name} to check against (differentiate a JAX version of it instead)"
                ) from exc
            raise CheckError(f"{self.rule.name} of {_fname(claim.of)} failed: {one_line(exc)}") from exc
        try:
            got = jax.eval_shape(lambda a, e: self.derived(d, a, e), args, extra)
        except DerivationError as exc:  # a pytree result of the wrong structure (see derivcheck._pytree.conform)
            raise CheckError(str(exc)) from exc
        except Exception as exc:
            raise CheckError(f"derived function raised: {one_line(exc)}{jit_hint(exc)}") from exc
        if not hasattr(got, "shape"):
            raise CheckError(f"derived function returns {type(got).__name__}, expected one array of shape {ref.shape}")
        if got.shape != ref.shape:
            transposed = got.shape == ref.shape[::-1] and len(got.shape) > 1
            hint = " (the transpose of the expected shape)" if transposed else ""
            raise CheckError(
                f"derived function returns shape {got.shape}, expected {ref.shape}{hint} — {self.rule.shape_rule}"
            )
        if not jnp.issubdtype(got.dtype, jnp.inexact):
            kind = "complex" if _is_complex(ref) else "real"
            raise CheckError(f"derived function returns dtype {got.dtype}, expected {kind} values like {ref.dtype}")
        if ref.size == 0:  # an empty comparison holds vacuously: a verdict on nothing is no verdict
            raise CheckError(
                f"nothing to compare: {self.rule.name} has shape {ref.shape} (no entries) at these sizes; "
                "give sizes where the result has at least one entry"
            )
        return judged_precision(got, ref, self.rule.name)

    def validate_values(self, d, args, extra, values):
        """:meth:`validate`'s verdict from the batched trace's values: ``None`` unless all is well.

        That trace already ran ``of``, the reference and the derived function, so only their shapes
        and dtypes are left to check (``jax.grad`` itself rejects a non-scalar or integer ``of``).
        """
        got, ref = values
        if not hasattr(got, "shape") or not hasattr(ref, "shape"):
            return None
        x = args[d.wrt_index]
        inexact = jnp.issubdtype(x.dtype, jnp.inexact) and jnp.issubdtype(ref.dtype, jnp.inexact)
        if not inexact or got.shape != ref.shape or not jnp.issubdtype(got.dtype, jnp.inexact) or not ref.size:
            return None
        return judged_precision(got, ref, self.rule.name)

    def trial(self, d, args, extra):
        ref = self.reference(d, args, extra)
        got = self.derived(d, args, extra)
        abs_err, scale, _ = trial_errors(got, ref)
        tol, floor = judged_tolerance(d.tolerance, got, ref)
        excess, rel = entry_excess(got, ref, tol, floor)
        stats = {
            "abs_err": abs_err.astype(jnp.float64),
            "scale": scale.astype(jnp.float64),
            "finite_derived": jnp.all(jnp.isfinite(got)),
            "finite_reference": jnp.all(jnp.isfinite(ref)),
            "entry_excess": excess,
            "entry_rel": rel,
            "entry_rtol": jnp.asarray(tol.rtol, jnp.float64),
            "entry_atol": jnp.asarray(tol.atol, jnp.float64),
        }
        return stats, (got, ref)

    def rounding_scales(self, d, args, extra, got, ref, terms, sides: Sides) -> dict[str, jax.Array]:
        """How much of a difference rounding can explain: ``terms`` (T, given) and ``rounding`` (measured, both
        sides), and the entry-wise test made again with them (:func:`derivcheck._compare.entry_excess`).

        The conditioning pass of the kink guard (:class:`~derivcheck._checks.robust.KinkAware`) evaluates the
        two sides' values ``got``, ``ref`` and the cancelled terms with its probes
        (:func:`derivcheck._checks.robust.probed`); ``sides`` are the sides it staged."""
        s_der = _one_spread(lambda a, e: sides.derived(d, a, e), got, args, extra)
        s_ref = _one_spread(lambda a, e: sides.reference(d, a, e), ref, args, extra)
        tol, floor = judged_tolerance(d.tolerance, got, ref)
        excess, rel = entry_excess(got, ref, tol, floor, terms=terms, rounding=MCA_FACTOR * (s_der + s_ref))
        rounding = MCA_FACTOR * (jnp.max(s_der, initial=0.0) + jnp.max(s_ref, initial=0.0))  # rounding_allowance
        return {"terms": terms, "rounding": rounding, "entry_excess": excess, "entry_rel": rel}

    def second_opinion(self, d, args, extra):
        """Central differences of ``of`` on one trial against both sides (see :mod:`.second_opinion`)."""
        if self.rule.opinion is None:
            raise CheckError(f"{self.rule.name} has no second opinion")
        f, x = _partial(d, args)
        if not is_array(x):  # several arguments: the opinion is taken on the raveled selection, as both sides are
            unravel = unraveler(x)
            f, x = (lambda v, f=f: f(unravel(v))), ravel(x)
        return self.rule.opinion(f, x, extra, self.derived(d, args, extra), self.reference(d, args, extra))

    def judge(self, stats, tol):
        return judge_equality(stats, tol)

    def summarize(self, d: Derivation, run: Run):
        ref_name = self.rule.name
        n = run.trials
        bad = int(run.failed.sum())
        rel = run.rel_err[run.valid]
        if not bad:
            return f"matches {ref_name} on {n} trials; max rel. error {rel.max():.1e}", {}
        regimes = sorted({c.regime for c in run.cells if c.failures})
        all_regimes = sorted({c.regime for c in run.cells})
        where_txt = "every regime" if regimes == all_regimes else "regimes " + ", ".join(regimes)
        w = run.worst
        return (
            f"differs from {ref_name} in {bad} of {n} trials ({where_txt}); worst rel. error "
            f"{w.rel_err:.2g} at {where(w.sizes, w.regime)}{self.wrong_leaves(d, run)}"
        ), {}

    def wrong_leaves(self, d: Derivation, run: Run) -> str:
        """``; wrong only in params['b']…`` when the worst trial's difference sits in some leaves of a pytree
        result only (beyond ``atol + rtol·‖reference‖∞``, the tolerance the comparison allows the whole)."""
        w = run.worst
        if w is None or w.derived is None or w.reference is None:
            return ""
        leaves = self.leaves(d, w.inputs)
        names, sizes = [name for name, _ in leaves], [math.prod(shape) for _, shape in leaves]
        if not leaves or sum(sizes) != np.size(w.reference):
            return ""
        limit = run.tol.atol + run.tol.rtol * float(np.max(np.abs(w.reference), initial=0.0))
        wrong = [name for name, err in leaf_errors(names, sizes, w.derived, w.reference) if err > limit]
        if not wrong or len(wrong) == len(names):
            return ""
        return f"; wrong only in {', '.join(wrong)} (the other leaves match within tolerance)"

    def leaves(self, d: Derivation, inputs: dict[str, Any]) -> Leaves:
        """The leaves of a pytree result, in the raveled order both sides are compared in: each one's name
        and shape, read from one trial's ``inputs`` (by argument name); ``()`` when the result is one array.

        A JVP's result is ``of``'s output (leaves ``output[0]``, ``output['a']``…); a gradient's or VJP's
        with several ``wrt`` arguments (or a pytree argument's leaves) is the tuple of them.
        """
        if self.rule.extra_like == "input":  # a JVP: the leaves of of's output
            args = tuple(np.asarray(inputs[n]) for n in d.arg_names)
            f, x = selection(d.claim.of, d.wrt_indices, isinstance(d.claim.wrt, tuple), args)
            out = jax.eval_shape(f, x)
            if is_array(out):
                return ()
            shapes = [tuple(o.shape) for o in jax.tree.leaves(out)]
            return tuple(zip(leaf_paths("output", out), shapes, strict=True))
        if isinstance(d.claim.wrt, tuple):  # a gradient or VJP of several arguments (or a pytree's leaves)
            names = [d.arg_names[i] for i in d.wrt_indices]
            return tuple((n, tuple(np.shape(inputs[n]))) for n in names)
        return ()


def _one_spread(fn, like, args, extra) -> jax.Array:
    """``fn``'s entry-wise Monte Carlo arithmetic spread, shaped like ``like`` (0 where it cannot be measured)."""
    spreads = entry_spreads(fn, args, extra, base=like)
    if len(spreads) != 1 or jnp.shape(spreads[0]) != jnp.shape(like):
        return jnp.zeros(jnp.shape(like), jnp.float64)
    return spreads[0]


def _holomorphic(d: Derivation) -> bool:
    """The claim's ``holomorphic=`` option (``False`` for claims without one: VJPs, JVPs, Hessians)."""
    return bool(getattr(d.claim, "holomorphic", False))


def _fname(fn) -> str:
    return callable_name(fn)


# ----------------------------------------------------------------------- Kind rows


def _dense_plan(rule: Rule) -> Callable[[Derivation], Plan]:
    """Every trial computes both sides in full; kinks of ``of`` are told from formula errors."""
    return fixed(KinkAware(Differential(rule)), "dense")


KINDS = (
    batched(Gradient, _dense_plan(GRADIENT), GRADIENT.name),
    batched(Jacobian, _dense_plan(JACOBIAN), JACOBIAN.name),
    batched(VJP, _dense_plan(VJP_RULE), VJP_RULE.name),
    batched(JVP, _dense_plan(JVP_RULE), JVP_RULE.name),
)
