"""Convergence-order claims: an iteration converges to a root with order ``p`` (and constant ``C``).

The derived function is one step ``x_{k+1} = step(x_k, *params)`` (its first
argument is the iterate); the inputs draw the start ``x_0`` and the
parameters, so each trial is one start. Every start runs ``steps`` iterations
in float64 (``lax.scan``, vmapped over starts). The errors are
``e_k = ‖x_k − x*‖₂`` with ``x* = root(x_0, *params)`` when the claim gives it,
else the last iterate. From the last three errors above the floor

.. math::

    \\varphi = 10^{-12} \\max(1, \\|x^*\\|_2), \\qquad
    \\hat p = \\frac{\\log(e_{k+1}/e_k)}{\\log(e_k/e_{k-1})}, \\qquad
    \\hat C = \\frac{e_{k+1}}{e_k^{\\,p}}

(``p`` the claimed order), never using the start ``e_0`` itself. Using the
*last* errors above the floor puts the estimate as deep in the asymptotic
regime as float64 allows, while the floor
(4500 ε) keeps rounding in the iterates and in ``x*`` below 1e-3 of each
error used. A start fails when it does not converge (the last error is above
the floor: diverged, cycled, NaN, or settled elsewhere than the claimed root).
The order is judged on the median of ``p̂`` over the measurable starts — a
claim fails when ``|median p̂ − p| > order_tol · p`` (default 10 %), and the
starts off by more than that are its counterexamples — and likewise the
constant on the median of ``Ĉ / C`` (``constant_tol``, default 10 %): a
three-point estimate from one start carries the pre-asymptotic terms of that
start (and, for a vector iteration, the mix of coordinates in ``‖·‖₂``), the
median over starts does not; the spread is reported.

Where float64 runs out: an order-``p`` iteration from ``e_0`` spends about
``log_p(log φ / log e_0)`` steps above the floor, so for ``p ≥ 3``, or a start
within ~1e-3 of the root, fewer than three errors after the start remain and the
order cannot be measured from that start. Such starts are counted ("too fast to measure") and
judged for convergence only; if no start is measurable the check is an error
asking for starts farther from the root. derivcheck does not emulate higher
precision (the step is the user's float64 JAX code); farther starts, in the
basin but outside the last few decades, are how it gets a longer error sequence.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from derivcheck._checks._engine import CheckConfig, CheckError, Run, run_batched, where
from derivcheck._checks._kind import Kind
from derivcheck._checks.identity import eval_shape_or_raise, failing_regimes_text, fname, require_float_array
from derivcheck._derivation import ConvergenceOrder, Derivation
from derivcheck._result import Result

FLOOR_REL = 1e-12


def _iterates(d: Derivation, args: tuple) -> jax.Array:
    """``x_0 … x_K`` of the derived step from the drawn start (``K = steps``)."""
    x0, params = args[0], args[1:]

    def step(x, _):
        nxt = jnp.asarray(d.derived(x, *params), x0.dtype)
        return nxt, nxt

    _, xs = jax.lax.scan(step, x0, None, length=d.claim.steps)
    return jnp.concatenate([x0[None], xs])


def _constant(d: Derivation, root, params):
    c = d.claim.constant
    if c is None:
        return jnp.nan
    return jnp.asarray(c(root, *params) if callable(c) else c, jnp.float64)


def order_estimates(errors: jax.Array, floor) -> tuple[jax.Array, jax.Array]:
    """``(last, measurable)``: the index ``k + 1`` of the last error above ``floor`` before the first
    one at or below it, and whether ``e_{k−1} > e_k > e_{k+1}`` all lie above the floor with
    ``k − 1 ≥ 1`` (the start itself is never used: it is not in the asymptotic regime)."""
    below = errors <= floor
    first_below = jnp.where(below.any(), jnp.argmax(below), errors.shape[0])
    last = first_below - 1
    e = lambda i: errors[jnp.clip(i, 0, errors.shape[0] - 1)]
    measurable = (last >= 3) & (e(last - 2) > e(last - 1)) & (e(last - 1) > e(last)) & jnp.isfinite(e(last - 2))
    return last, measurable


@dataclasses.dataclass(frozen=True)
class Convergence:
    """The family of claims "this iteration converges (with order ``p``, constant ``C``)"."""

    claim: ConvergenceOrder

    def extra_inputs(self, d, args):
        return {}

    def validate(self, d, args, extra):
        if not args:
            raise CheckError("a convergence claim needs the iterate as the derived step's first argument")
        x0 = args[0]
        nxt = eval_shape_or_raise("the derived step", d.derived, *args)
        require_float_array("the derived step", nxt)
        if nxt.shape != x0.shape:
            raise CheckError(f"the derived step maps an iterate of shape {x0.shape} to shape {nxt.shape}")
        root = d.claim.root
        if root is not None:
            r = eval_shape_or_raise(f"root= {fname(root)}", root, *args)
            if getattr(r, "shape", None) != x0.shape:
                raise CheckError(f"root= {fname(root)} returns shape {getattr(r, 'shape', '?')}, expected {x0.shape}")
        if callable(d.claim.constant):
            c = eval_shape_or_raise(f"constant= {fname(d.claim.constant)}", d.claim.constant, *args)
            if getattr(c, "shape", None) != ():
                raise CheckError(f"constant= {fname(d.claim.constant)} must return a scalar C")
        return str(nxt.dtype)

    def trial(self, d, args, extra):
        claim = d.claim
        xs = _iterates(d, args)
        root = xs[-1] if claim.root is None else jnp.asarray(claim.root(*args), xs.dtype)
        diff = (xs - root).reshape(xs.shape[0], -1)
        errors = jnp.sqrt(jnp.sum(diff * diff, axis=1)).astype(jnp.float64)
        finite = jnp.isfinite(errors)
        errors = jnp.where(finite, errors, jnp.inf)
        floor = FLOOR_REL * jnp.maximum(1.0, jnp.sqrt(jnp.sum(root * root)))
        last_step = jnp.sqrt(jnp.sum((xs[-1] - xs[-2]) ** 2))
        settled = jnp.isfinite(last_step) & (last_step <= floor)
        # a step that lands on the root exactly may make the next one 0/0 (Newton at a double root): an iterate
        # within the floor before the first non-finite one has converged, whatever follows
        before_bad = jnp.cumprod(finite.astype(jnp.int32)).astype(bool)
        landed = jnp.any(before_bad & (errors <= floor)) & ~jnp.all(finite)
        converged = ((errors[-1] <= floor) | landed) if claim.root is not None else settled
        k, measurable = order_estimates(errors, floor)
        e0, e1, e2 = (errors[jnp.clip(k - j, 0, errors.shape[0] - 1)] for j in (2, 1, 0))
        measurable = measurable & converged
        p_hat = jnp.where(measurable, jnp.log(e2 / e1) / jnp.log(e1 / e0), jnp.nan)
        p = jnp.nan if claim.order is None else claim.order
        c_hat = jnp.where(measurable, e2 / e1**p, jnp.nan)
        c = _constant(d, root, args[1:])
        stats = {
            "converged": converged,
            "settled": settled,
            "measurable": measurable,
            "p_hat": p_hat,
            "c_hat": c_hat,
            "c": jnp.asarray(c, jnp.float64),
            "errors": errors,
            "floor": floor,
            "abs_err": jnp.where(measurable, jnp.abs(p_hat - p), jnp.nan),
            "finite_derived": jnp.all(jnp.isfinite(xs[1])),
            "finite_reference": jnp.all(jnp.isfinite(root)) & jnp.isfinite(c if claim.constant is not None else 0.0),
        }
        return stats, (jnp.stack([p_hat, c_hat]), jnp.stack([jnp.asarray(p, jnp.float64), c]))

    def judge(self, stats, tol):
        """Every start must converge; the order (and constant) are judged on their median over the
        measurable starts, and where that is off, the starts that are off are the failing ones."""
        claim = self.claim
        measurable = stats["measurable"] & stats["finite_reference"]
        failed = ~stats["converged"]
        rel = np.zeros(failed.shape)
        badness = np.where(failed, 10.0 + np.log10(np.minimum(stats["errors"][:, -1], 1e300) + 1e-300), 0.0)
        if claim.order is not None and measurable.any():
            rel = np.where(measurable, np.abs(stats["p_hat"] - claim.order) / claim.order, 0.0)
            median = np.median(stats["p_hat"][measurable])
            if abs(median - claim.order) > claim.order_tol * claim.order:
                failed = failed | (measurable & (rel > claim.order_tol))
            badness = badness + rel / claim.order_tol
        if claim.constant is not None and measurable.any():
            c = np.maximum(np.abs(stats["c"]), np.finfo(np.float64).tiny)
            ratio = np.where(measurable, stats["c_hat"] / c, 1.0)
            if abs(np.median(ratio[measurable]) - 1) > claim.constant_tol:
                failed = failed | (measurable & (np.abs(ratio - 1) > claim.constant_tol))
            badness = badness + np.minimum(np.abs(ratio - 1), 1e6) / claim.constant_tol
        return failed, badness, rel

    def summarize(self, d: Derivation, run: Run):
        s, claim = run.stats, d.claim
        valid = s["finite_reference"]
        measurable = s["measurable"] & valid
        n, m = run.trials, int(measurable.sum())
        details = _details(s, valid, measurable, run)
        if not run.failed.any() and claim.order is not None and m == 0:
            raise CheckError(
                f"no start left three errors above the float64 floor ({FLOOR_REL:g}·max(1, ‖x*‖)): "
                "the order cannot be measured; draw starts farther from the root"
            )
        if run.failed.any():
            return _failure_message(d, run, details), {"details": details}
        text = f"converges from all {n} starts"
        if claim.order is not None:
            o = details["order"]
            text += f"; order {o['median']:.3f} (spread {o['min']:.3f}–{o['max']:.3f} over {m} starts)"
            if m < n:
                text += f"; {n - m} starts too fast to measure in float64"
        if claim.constant is not None:
            c = details["constant"]
            text += (
                f"; C = {c['median']:.4g} (claimed {c['claimed_median']:.4g}; "
                f"estimate/claimed {c['ratio_min']:.3f}–{c['ratio_max']:.3f})"
            )
        return text, {"details": details}


def _stats_summary(x: np.ndarray) -> dict:
    if x.size == 0:
        return {
            "median": float("nan"),
            "min": float("nan"),
            "max": float("nan"),
            "q25": float("nan"),
            "q75": float("nan"),
        }
    q25, med, q75 = np.percentile(x, [25, 50, 75])
    return {"median": float(med), "min": float(x.min()), "max": float(x.max()), "q25": float(q25), "q75": float(q75)}


def _details(s: dict, valid: np.ndarray, measurable: np.ndarray, run: Run) -> dict:
    i = int(np.argmax(run.badness))
    errors = s["errors"][i]
    shown = errors[: int(np.argmax(errors <= s["floor"][i])) + 1] if (errors <= s["floor"][i]).any() else errors[:12]
    details = {
        "starts": int(valid.sum()),
        "converged": int((s["converged"] & valid).sum()),
        "measured": int(measurable.sum()),
        "order": _stats_summary(s["p_hat"][measurable]),
        "floor_rel": FLOOR_REL,
        "worst_errors": [float(e) if np.isfinite(e) else None for e in shown[:40]],
    }
    if np.isfinite(s["c"][valid]).any():
        c_hat, c = s["c_hat"][measurable], s["c"][measurable]
        ratio = c_hat / np.where(c != 0, c, np.nan)
        details["constant"] = {
            **_stats_summary(c_hat),
            "claimed_median": float(np.median(c)) if c.size else float("nan"),
            "ratio_min": float(np.nanmin(ratio)) if np.isfinite(ratio).any() else float("nan"),
            "ratio_max": float(np.nanmax(ratio)) if np.isfinite(ratio).any() else float("nan"),
        }
    return details


def _errors_text(errors: list) -> str:
    shown = [f"{e:.2g}" if e is not None else "nan" for e in errors[:6]]
    return " → ".join(shown) + (" → …" if len(errors) > 6 else "")


def _failure_message(d: Derivation, run: Run, details: dict) -> str:
    s, claim, w = run.stats, d.claim, run.worst
    at = where(w.sizes, w.regime)
    start = _value_text(w.inputs[d.arg_names[0]] if d.arg_names else next(iter(w.inputs.values())))
    not_conv = ~s["converged"] & s["finite_reference"]
    head = f"in {int(run.failed.sum())} of {run.trials} starts ({failing_regimes_text(run)})"
    if not_conv.any():
        i = int(np.argmax(run.badness))
        errs = details["worst_errors"]
        if s["settled"][i] and claim.root is not None:
            how = "settles at another point than the claimed root"
        elif not np.isfinite(s["errors"][i][-1]):
            how = "diverges (the iterates overflow or become NaN)"
        else:
            how = f"does not converge in {claim.steps} steps"
        return f"{how} {head}: from x0 = {start} at {at}, errors {_errors_text(errs)}"
    o = details["order"]
    if claim.order is not None and np.nanmax(run.rel_err) > claim.order_tol:
        return (
            f"converges with order {o['median']:.3f} (spread {o['min']:.3f}–{o['max']:.3f} over "
            f"{details['measured']} starts), not {claim.order:g} {head}; worst from x0 = {start} at {at}: "
            f"errors {_errors_text(details['worst_errors'])}"
        )
    c = details.get("constant", {})
    return (
        f"order {o['median']:.3f} holds but the constant does not {head}: C = {c.get('median', float('nan')):.4g}, "
        f"claimed {c.get('claimed_median', float('nan')):.4g}; worst from x0 = {start} at {at}"
    )


def _value_text(x) -> str:
    x = np.asarray(x)
    if x.ndim == 0:
        return f"{float(x):.4g}"
    vals = ", ".join(f"{v:.3g}" for v in x.ravel()[:4])
    return f"[{vals}{', …' if x.size > 4 else ''}]"


def check_convergence(d: Derivation, config: CheckConfig) -> Result:
    """Run the iteration from every drawn start and judge convergence, order and constant."""
    return run_batched(d, config, Convergence(claim=d.claim))


# ----------------------------------------------------------------------- Kind rows

KINDS = (Kind(ConvergenceOrder, check_convergence, reference="the iterates"),)  # not shrunk
