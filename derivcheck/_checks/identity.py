"""Identity and special-case claims: two expressions claimed equal.

==============  ==============================================================
claim           checked as
==============  ==============================================================
identity        ``derived(*args) == of(*args)`` on every trial; either side may
                be built from JAX transforms ("the Hessian is the Jacobian of
                the gradient": ``jax.hessian(f)`` against ``jax.jacfwd(jax.grad(f))``)
special case    the same equality where sizes or arguments take the special
                values ``at`` (``n = 1``, ``σ = 0``), in every regime
==============  ==============================================================

Equality is judged as for derivatives (:func:`derivcheck._compare.judge_equality`):
a trial fails when ``‖D − R‖∞ > atol + rtol · max(‖D‖∞, ‖R‖∞, T)``, with ``T``
the size of the terms that cancel on either side
(:func:`derivcheck._compare.conditioning_scale`), measured only for trials that
fail the plain test.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import jax
import jax.numpy as jnp

from derivcheck._checks._engine import (
    CheckConfig,
    CheckError,
    Run,
    jit_hint,
    judged_precision,
    one_line,
    run_batched,
    where,
)
from derivcheck._checks._kind import Kind, batched, fixed
from derivcheck._compare import conditioning_scale, judge_equality, trial_errors
from derivcheck._derivation import Derivation, DerivationError, Identity, SpecialCase
from derivcheck._format import callable_name
from derivcheck._inputs import Constant, Inputs, _all_dims, sizes_label
from derivcheck._pytree import conform, is_array, ravel
from derivcheck._result import Result


def fname(fn) -> str:
    """A function's readable name (``lambda`` for anonymous ones)."""
    return callable_name(fn)


def eval_shape_or_raise(what: str, fn, *args):
    """``jax.eval_shape(fn, *args)``, turning any failure into a one-line :class:`CheckError`."""
    try:
        return jax.eval_shape(fn, *args)
    except CheckError:
        raise
    except Exception as exc:
        raise CheckError(f"{what} raised on the drawn inputs: {one_line(exc)}{jit_hint(exc)}") from exc


def require_float_array(what: str, out) -> None:
    """One array of floats, or a one-line error naming what was returned."""
    if not hasattr(out, "shape") or not hasattr(out, "dtype"):
        raise CheckError(f"{what} returns {type(out).__name__}, expected one array of floats")
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise CheckError(f"{what} returns dtype {out.dtype}, expected floats")


def _sides(d: Derivation, args: tuple) -> tuple:
    """``(of(*args), derived(*args))``, both raveled when ``of`` returns a pytree (a rule's output that
    is a dict or an ``(out, aux)`` pair): the comparison, the judge and the diagnosis read arrays."""
    ref, got = d.claim.of(*args), d.derived(*args)
    if is_array(ref):
        return ref, got
    return ravel(ref), conform(got, ref, "derived function")


def failing_regimes_text(run: Run) -> str:
    """``every regime`` or ``regimes shifted, constant``: where a run's failures are."""
    bad = sorted({c.regime for c in run.cells if c.failures})
    every = sorted({c.regime for c in run.cells})
    return "every regime" if bad == every else "regimes " + ", ".join(bad)


@dataclasses.dataclass(frozen=True)
class Equality:
    """The family of claims "``derived(*args)`` equals ``of(*args)``"."""

    analysis: ClassVar[str] = "equality"  # diagnosed by value relations (sign, factor, transpose…)

    def extra_inputs(self, d, args):
        return {}

    def validate(self, d, args, extra):
        """Both sides return one array of floats of one shape, or pytrees of one structure whose leaves
        are (compared raveled, as :func:`_sides` does)."""
        ref = eval_shape_or_raise(f"of= {fname(d.claim.of)}", d.claim.of, *args)
        got = eval_shape_or_raise("derived function", d.derived, *args)
        if not is_array(ref):
            for leaf in jax.tree.leaves(ref):
                require_float_array(f"of= {fname(d.claim.of)}", leaf)
            for leaf in jax.tree.leaves(got):
                require_float_array("derived function", leaf)
            try:
                ref, got = jax.eval_shape(lambda *a: _sides(d, a), *args)
            except DerivationError as exc:  # another structure, or another shape of a leaf
                raise CheckError(str(exc)) from exc
        require_float_array(f"of= {fname(d.claim.of)}", ref)
        require_float_array("derived function", got)
        if got.shape != ref.shape:
            raise CheckError(f"derived function returns shape {got.shape} but of= returns {ref.shape}")
        return judged_precision(got, ref, f"of= {fname(d.claim.of)}")

    def trial(self, d, args, extra):
        ref, got = _sides(d, args)
        abs_err, scale, _ = trial_errors(got, ref)
        stats = {
            "abs_err": abs_err.astype(jnp.float64),
            "scale": scale.astype(jnp.float64),
            "finite_derived": jnp.all(jnp.isfinite(got)),
            "finite_reference": jnp.all(jnp.isfinite(ref)),
        }
        return stats, (got, ref)

    def conditioning(self, d, args, extra):
        """The size ``T`` of the terms that cancel on either side (measured only where a trial fails).

        Only ``T`` (two plain evaluations per side), not the intermediates'
        ``256 ε M``: either side may be a whole JAX transform (a Hessian), whose
        equation-by-equation evaluation costs seconds to compile.
        """
        return {"terms": jnp.maximum(conditioning_scale(d.claim.of, args), conditioning_scale(d.derived, args))}

    def judge(self, stats, tol):
        return judge_equality(stats, tol)

    def summarize(self, d: Derivation, run: Run):
        at = _at_text(d)
        other = f"of= {fname(d.claim.of)}"
        n, bad = run.trials, int(run.failed.sum())
        rel = run.rel_err[run.stats["finite_reference"]]
        if not bad:
            return f"equals {other}{at} on {n} trials; max rel. error {rel.max():.1e}", {}
        w = run.worst
        return (
            f"differs from {other}{at} in {bad} of {n} trials ({failing_regimes_text(run)}); "
            f"worst rel. error {w.rel_err:.2g} at {where(w.sizes, w.regime)}"
        ), {}


EQUALITY = Equality()


def _at_text(d: Derivation) -> str:
    at = getattr(d.claim, "at", ())
    return " at " + ", ".join(f"{k} = {v}" for k, v in at) if at else ""


@functools.lru_cache(maxsize=256)
def at_special_values(d: Derivation) -> Derivation:
    """``d`` with its inputs fixed at the claim's special values (cached: one compile per derivation)."""
    inputs = d.inputs
    if not isinstance(inputs, Inputs):
        raise CheckError("a special case needs dc.inputs(...) with named specs, to set its sizes or arguments")
    at = dict(d.claim.at)
    dims = set(_all_dims(spec for _, spec in inputs.specs))
    unknown = [k for k in at if k not in dims and k not in inputs.names]
    if unknown:
        raise CheckError(
            f"special_case(at=...): {unknown} names neither a dimension {sorted(dims)} "
            f"nor an argument {list(inputs.names)}"
        )
    bad = {k: v for k, v in at.items() if k in dims and (not isinstance(v, int) or isinstance(v, bool) or v < 0)}
    if bad:
        raise CheckError(f"special_case(at=...): a dimension takes an int >= 0, got {bad}")
    specs = tuple(
        (name, Constant(at[name], dtype=getattr(spec, "dtype", "float64")) if name in at else spec)
        for name, spec in inputs.specs
    )
    fixed = {k: v for k, v in at.items() if k in dims}
    sizes = tuple(dict.fromkeys(tuple(sorted({**dict(s), **fixed}.items())) for s in inputs.sizes))
    return dataclasses.replace(d, inputs=dataclasses.replace(inputs, specs=specs, sizes=sizes))


def check_special_case(d: Derivation, config: CheckConfig) -> Result:
    """Check ``derived == of`` with the sizes and arguments of ``at`` fixed, in every regime."""
    special = at_special_values(d)
    result = run_batched(special, config, EQUALITY)
    sizes = ", ".join(sorted({sizes_label(c.sizes) for c in result.cells}))
    return dataclasses.replace(result, details={"at": dict(d.claim.at), "sizes": sizes})


# ----------------------------------------------------------------------- Kind rows

KINDS = (
    batched(Identity, fixed(EQUALITY), "of="),
    Kind(SpecialCase, check_special_case, plan=None, reference="of="),  # values fixed by `at`: not shrunk
)
