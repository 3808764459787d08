"""Gradient, Jacobian, Hessian and VJP claims, checked against JAX autodiff.

=========  ====================================================  ==========================
claim      reference                                             shape of ``derived(...)``
=========  ====================================================  ==========================
gradient   ``jax.grad(of, argnums=wrt)``                         ``args[wrt].shape``
jacobian   ``jax.jacfwd`` (``jax.jacrev`` when out is smaller)   ``out.shape + in.shape``
hessian    ``jax.hessian(of, argnums=wrt)``                      ``in.shape * 2``
vjp        ``jax.vjp(of, ...)[1](ct)``, random cotangent ``ct``  ``args[wrt].shape``
=========  ====================================================  ==========================
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from derivcheck._checks._engine import CheckError, Run, jit_hint, one_line, where
from derivcheck._compare import (
    ROUNDING_FACTOR,
    conditioning_scale,
    evaluate_with_scale,
    judge_equality,
    trial_errors,
)
from derivcheck._derivation import VJP, Derivation, Gradient, Hessian, Jacobian

REFERENCE_NAMES = {
    "gradient": "jax.grad",
    "jacobian": "jax.jacfwd",
    "hessian": "jax.hessian",
    "vjp": "jax.vjp",
}


def _partial(d: Derivation, args: tuple):
    """``of`` as a function of the ``wrt`` argument alone, the others fixed."""
    i = d.wrt_index
    of = d.claim.of
    return (lambda x: of(*args[:i], x, *args[i + 1 :])), args[i]


def reference_value(d: Derivation, args: tuple, extra: dict):
    """JAX's side of the claim for one trial."""
    f, x = _partial(d, args)
    claim = d.claim
    if isinstance(claim, Gradient):
        return jax.grad(f)(x)
    if isinstance(claim, Hessian):
        return jax.hessian(f)(x)
    if isinstance(claim, Jacobian):
        out = jax.eval_shape(f, x)
        jac = jax.jacrev if math.prod(out.shape) < math.prod(jnp.shape(x)) else jax.jacfwd
        return jac(f)(x)
    if isinstance(claim, VJP):
        return jax.vjp(f, x)[1](extra["cotangent"])[0]
    raise CheckError(f"no differential check for claim {claim!r}")


def derived_value(d: Derivation, args: tuple, extra: dict):
    if isinstance(d.claim, VJP):
        return d.derived(*args, extra["cotangent"])
    return d.derived(*args)


@dataclasses.dataclass(frozen=True)
class Differential:
    """The family of claims "``derived`` equals this JAX derivative of ``of``"."""

    reference_name: str = "jax autodiff"
    analysis = "equality"  # how a failure is diagnosed: a derived value against a reference

    def extra_inputs(self, d, args):
        """A VJP's cotangent, shaped like ``of``'s output."""
        if not isinstance(d.claim, VJP):
            return {}
        out = jax.eval_shape(lambda *a: _partial(d, a)[0](a[d.wrt_index]), *args)
        return {"cotangent": out}

    def validate(self, d, args, extra):
        claim = d.claim
        x = args[d.wrt_index]
        try:
            out = jax.eval_shape(lambda *a: _partial(d, a)[0](a[d.wrt_index]), *args)
        except Exception as exc:
            raise CheckError(f"of= {_fname(claim.of)} raised on the drawn inputs: {one_line(exc)}") from exc
        if isinstance(claim, Gradient) and out.shape != ():
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
            ref = jax.eval_shape(lambda a, e: reference_value(d, a, e), args, extra)
        except Exception as exc:
            raise CheckError(f"{REFERENCE_NAMES[claim.kind]} of {_fname(claim.of)} failed: {one_line(exc)}") from exc
        try:
            got = jax.eval_shape(lambda a, e: derived_value(d, a, e), args, extra)
        except Exception as exc:
            raise CheckError(f"derived function raised: {one_line(exc)}{jit_hint(exc)}") from exc
        if not hasattr(got, "shape"):
            raise CheckError(f"derived function returns {type(got).__name__}, expected one array of shape {ref.shape}")
        if got.shape != ref.shape:
            transposed = got.shape == ref.shape[::-1] and len(got.shape) > 1
            hint = " (the transpose of the expected shape)" if transposed else ""
            raise CheckError(
                f"derived function returns shape {got.shape}, expected {ref.shape}{hint} — {_shape_rule(claim.kind)}"
            )
        if not jnp.issubdtype(got.dtype, jnp.floating):
            raise CheckError(f"derived function returns dtype {got.dtype}, expected a float array like {ref.dtype}")
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
        if not floats or got.shape != ref.shape or not jnp.issubdtype(got.dtype, jnp.floating):
            return None
        return str(min((jnp.dtype(got.dtype), jnp.dtype(ref.dtype)), key=lambda t: t.itemsize))

    def trial(self, d, args, extra):
        ref = reference_value(d, args, extra)
        got = derived_value(d, args, extra)
        abs_err, scale, _ = trial_errors(got, ref)
        stats = {
            "abs_err": abs_err.astype(jnp.float64),
            "scale": scale.astype(jnp.float64),
            "finite_derived": jnp.all(jnp.isfinite(got)),
            "finite_reference": jnp.all(jnp.isfinite(ref)),
        }
        return stats, (got, ref)

    def conditioning(self, d, args, extra):
        """How much of a difference rounding can explain: ``terms`` (T) and ``rounding`` (256 ε M)."""
        ref, m_ref = evaluate_with_scale(lambda a, e: reference_value(d, a, e), args, extra)
        got, m_der = evaluate_with_scale(lambda a, e: derived_value(d, a, e), args, extra)
        eps = jnp.finfo(jnp.result_type(got, ref)).eps
        return {
            "terms": conditioning_scale(lambda a, e: reference_value(d, a, e), (args, extra)),
            "rounding": (ROUNDING_FACTOR * eps * jnp.maximum(m_ref, m_der)).astype(jnp.float64),
        }

    def judge(self, stats, tol):
        return judge_equality(stats, tol)

    def summarize(self, d: Derivation, run: Run):
        ref_name = REFERENCE_NAMES[d.claim.kind]
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
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def _shape_rule(kind: str) -> str:
    return {
        "gradient": "a gradient has the shape of the wrt argument",
        "jacobian": "a Jacobian has shape out.shape + wrt.shape, as jax.jacfwd",
        "hessian": "a Hessian has shape wrt.shape * 2, as jax.hessian",
        "vjp": "a VJP returns the cotangent pulled back to the wrt argument (its shape)",
    }[kind]


DIFFERENTIAL = Differential()
