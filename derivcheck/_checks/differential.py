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
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from derivcheck._checks._engine import CheckError, Run, jit_hint, one_line, where
from derivcheck._checks._kind import Plan, batched, fixed
from derivcheck._checks.robust import KinkAware
from derivcheck._compare import conditioning_scale, judge_equality, rounding_allowance, trial_errors
from derivcheck._derivation import JVP, VJP, Derivation, Gradient, Jacobian
from derivcheck._format import callable_name


def _partial(d: Derivation, args: tuple):
    """``of`` as a function of the ``wrt`` argument alone, the others fixed."""
    i = d.wrt_index
    of = d.claim.of
    return (lambda x: of(*args[:i], x, *args[i + 1 :])), args[i]


def _jacobian(f, x, extra):
    """``jax.jacrev`` when the output is smaller than the input, else ``jax.jacfwd`` (the same matrix)."""
    out = jax.eval_shape(f, x)
    jac = jax.jacrev if math.prod(out.shape) < math.prod(jnp.shape(x)) else jax.jacfwd
    return jac(f)(x)


@dataclasses.dataclass(frozen=True)
class Rule:
    """What one derivative claim compares: JAX's side ``reference(f, x, extra)`` (``f`` is ``of`` as a
    function of ``x = args[wrt]``), its name, the shape rule for messages, and the trailing argument
    the derived function takes (``extra_arg``, drawn like ``of``'s output (``"output"``) or like
    ``x`` (``"input"``), in the trial's regime)."""

    reference: Callable[..., Any]
    name: str
    shape_rule: str
    extra_arg: str | None = None
    extra_like: str = ""
    scalar: bool = False


GRADIENT = Rule(lambda f, x, e: jax.grad(f)(x), "jax.grad", "a gradient has the shape of the wrt argument", scalar=True)
JACOBIAN = Rule(_jacobian, "jax.jacfwd", "a Jacobian has shape out.shape + wrt.shape, as jax.jacfwd")
HESSIAN = Rule(lambda f, x, e: jax.hessian(f)(x), "jax.hessian", "a Hessian has shape wrt.shape * 2, as jax.hessian")
VJP_RULE = Rule(
    lambda f, x, e: jax.vjp(f, x)[1](e["cotangent"])[0],
    "jax.vjp",
    "a VJP returns the cotangent pulled back to the wrt argument (its shape)",
    extra_arg="cotangent",
    extra_like="output",
)
JVP_RULE = Rule(
    lambda f, x, e: jax.jvp(f, (x,), (e["tangent"],))[1],
    "jax.jvp",
    "a JVP returns the tangent pushed forward to of's output (its shape)",
    extra_arg="tangent",
    extra_like="input",
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
        """JAX's side of the claim for one trial."""
        f, x = _partial(d, args)
        return self.rule.reference(f, x, extra)

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
            x = args[d.wrt_index]
            return {rule.extra_arg: jax.ShapeDtypeStruct(x.shape, x.dtype)}
        out = jax.eval_shape(lambda *a: _partial(d, a)[0](a[d.wrt_index]), *args)
        return {rule.extra_arg: out}

    def validate(self, d, args, extra):
        claim = d.claim
        x = args[d.wrt_index]
        try:
            out = jax.eval_shape(lambda *a: _partial(d, a)[0](a[d.wrt_index]), *args)
        except Exception as exc:
            raise CheckError(f"of= {_fname(claim.of)} raised on the drawn inputs: {one_line(exc)}") from exc
        if self.rule.scalar and out.shape != ():
            raise CheckError(
                f"of= {_fname(claim.of)} returns shape {out.shape}; a gradient needs a scalar "
                "function (use dc.jacobian or dc.vjp for vector outputs)"
            )
        if not jnp.issubdtype(out.dtype, jnp.inexact) or not jnp.issubdtype(x.dtype, jnp.inexact):
            wrt = d.arg_names[d.wrt_index] if d.arg_names else d.wrt_index
            raise CheckError(
                f"of= {_fname(claim.of)} must map floats to floats to be differentiated "
                f"(argument {wrt} is {x.dtype}, output {out.dtype})"
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
        if not jnp.issubdtype(got.dtype, jnp.floating):
            raise CheckError(f"derived function returns dtype {got.dtype}, expected a float array like {ref.dtype}")
        if ref.size == 0:  # an empty comparison holds vacuously: a verdict on nothing is no verdict
            raise CheckError(
                f"nothing to compare: {self.rule.name} has shape {ref.shape} (no entries) at these sizes; "
                "give sizes where the result has at least one entry"
            )
        # judge at the lower of the two precisions
        return str(min((jnp.dtype(got.dtype), jnp.dtype(ref.dtype)), key=lambda t: t.itemsize))

    def validate_values(self, d, args, extra, values):
        """:meth:`validate`'s verdict from the batched trace's values: ``None`` unless all is well.

        That trace already ran ``of``, the reference and the derived function, so only their shapes
        and dtypes are left to check (``jax.grad`` itself rejects a non-scalar or integer ``of``).
        """
        got, ref = values
        if not hasattr(got, "shape") or not hasattr(ref, "shape"):
            return None
        x = args[d.wrt_index]
        floats = jnp.issubdtype(x.dtype, jnp.inexact) and jnp.issubdtype(ref.dtype, jnp.inexact)
        if not floats or got.shape != ref.shape or not jnp.issubdtype(got.dtype, jnp.floating) or not ref.size:
            return None
        return str(min((jnp.dtype(got.dtype), jnp.dtype(ref.dtype)), key=lambda t: t.itemsize))

    def trial(self, d, args, extra):
        ref = self.reference(d, args, extra)
        got = self.derived(d, args, extra)
        abs_err, scale, _ = trial_errors(got, ref)
        stats = {
            "abs_err": abs_err.astype(jnp.float64),
            "scale": scale.astype(jnp.float64),
            "finite_derived": jnp.all(jnp.isfinite(got)),
            "finite_reference": jnp.all(jnp.isfinite(ref)),
        }
        return stats, (got, ref)

    def conditioning(self, d, args, extra):
        """How much of a difference rounding can explain: ``terms`` (T) and ``rounding`` (measured, both sides)."""
        reference, derived = (lambda a, e: self.reference(d, a, e)), (lambda a, e: self.derived(d, a, e))
        return {
            "terms": conditioning_scale(reference, (args, extra)),
            "rounding": rounding_allowance(derived, reference, args, extra),
        }

    def judge(self, stats, tol):
        return judge_equality(stats, tol)

    def summarize(self, d: Derivation, run: Run):
        ref_name = self.rule.name
        n = run.trials
        bad = int(run.failed.sum())
        rel = run.rel_err[run.stats["finite_reference"]]
        if not bad:
            return f"matches {ref_name} on {n} trials; max rel. error {rel.max():.1e}", {}
        regimes = sorted({c.regime for c in run.cells if c.failures})
        all_regimes = sorted({c.regime for c in run.cells})
        where_txt = "every regime" if regimes == all_regimes else "regimes " + ", ".join(regimes)
        w = run.worst
        return (
            f"differs from {ref_name} in {bad} of {n} trials ({where_txt}); worst rel. error "
            f"{w.rel_err:.2g} at {where(w.sizes, w.regime)}"
        ), {}


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
