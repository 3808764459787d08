"""Definiteness claims: a matrix is positive/negative (semi-)definite.

Each trial symmetrizes ``H`` after checking ``‖H − Hᵀ‖∞ ≤ atol + rtol‖H‖∞``
and computes its eigenvalues with ``jnp.linalg.eigvalsh`` in the check's
precision. An eigenvalue counts as zero when

.. math::

    |\\lambda| \\le \\text{margin} = c \\, n \\, \\varepsilon \\, \\|H\\|_2 + n \\, \\rho_H,
    \\qquad c = 64,

``n ε ‖H‖₂`` is the backward error of a symmetric eigensolver (``c`` absorbs
the accumulation over ``n`` terms). ``ρ_H`` is the rounding the formula itself
commits in the entries of ``H``, measured by Monte Carlo arithmetic at this
very input (the equality claims' rounding allowance,
:func:`derivcheck._compare.rounding_spread` times
:data:`~derivcheck._compare.MCA_FACTOR`): a perturbation ``E`` of the entries
with ``|E_ij| ≤ ρ_H`` moves every eigenvalue by at most ``‖E‖₂ ≤ n ρ_H``
(Weyl). ``diag(p) − p pᵀ`` with a saturated ``p ≈ e₁`` has entries of 1e-14
computed from terms of size 1: their cancellation shows in ``ρ_H``, so a
matrix with an exact null direction (the softmax Hessian along ``1``)
computes eigenvalues inside the margin, while a huge intermediate that is
only inverted (``1/(1 + e^{−t})`` at saturated ``t``) adds nothing to it — it
no longer makes a positive-definite matrix "numerically zero". A truly
negative eigenvalue of relative size above ~1e-12 (float64, n ≤ 100) is
outside the margin. A sign also counts when the diagonally scaled matrix
shows it (:func:`graded_signs`: same inertia, a margin relative to each entry's
own scale), so a graded matrix such as ``−diag(1/p)`` spanning 14 orders of
magnitude is confirmed ``nd`` (the matrix-free check has no entries to scale
and keeps the unscaled margin). An eigenvalue certain in neither is *zero at
this precision*: a PD claim is not confirmed there. The result
reports the extreme eigenvalues, the numerical rank and, when singular, the
null direction — so "PSD and singular along 1" is visible, not just "holds".

When the claim names ``of``, the matrix must also equal ``jax.hessian(of)``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from derivcheck._checks._engine import CheckError, Run, judged_precision, one_line, refuse_complex, where
from derivcheck._compare import (
    MCA_FACTOR,
    conditioning_scale,
    entry_spreads,
    exceeds,
    judge_equality,
    rounding_allowance,
    trial_errors,
)
from derivcheck._derivation import DEFINITE_WORDS, Derivation
from derivcheck._result import Spectrum
from derivcheck._spectrum import classify

MARGIN_FACTOR = 64.0


def definiteness_margin(n: int, eps, lam_scale, spread):
    """``64 n ε ‖H‖₂ + n · 16 s``: eigenvalues within it are zero at this precision (see the module docstring).

    ``s`` is the Monte Carlo arithmetic spread of the matrix entries (or of an operator's products,
    per unit of the vector's largest entry).
    """
    return MARGIN_FACTOR * n * eps * lam_scale + n * MCA_FACTOR * spread


def graded_signs(h, spread, eps):
    """How many eigenvalues of the symmetric ``H`` are certainly positive and certainly negative,
    read off its diagonally scaled form ``Ĥ = D⁻¹ H D⁻¹``.

    With ``D = diag(d)``, ``d_i = √max(|H_ii|, ε maxⱼ |H_jj|, tiny)`` (any positive ``d`` would do),
    ``Ĥ`` is congruent to ``H``, so by Sylvester's law of inertia it has as many positive and as many
    negative eigenvalues. A rounding ``|E_ij| ≤ 16 S_ij`` of the entries of ``H`` (``S`` their Monte
    Carlo spread, ``spread``) is ``|Ê_ij| ≤ 16 S_ij / (d_i d_j)`` in ``Ĥ``; forming ``Ĥ`` rounds each
    entry by at most ``4ε|Ĥ_ij|`` (a square root, a product, a quotient, the symmetrization). With
    ``B̂`` the sum of both bounds, ``‖Ê‖₂ ≤ ‖B̂‖_F``, and the eigensolver's backward error on ``Ĥ``
    is ``64 n ε ‖Ĥ‖₂`` as on ``H``: an eigenvalue of ``Ĥ`` beyond

    .. math::

        64 \\, n \\, \\varepsilon \\, \\|\\hat H\\|_2 + \\|\\hat B\\|_F

    has a certain sign (Weyl), and so has one more eigenvalue of ``H``. The count is a second lower
    bound beside the unscaled one (:func:`definiteness_margin`); the check takes the larger of the two.
    For a graded matrix it is the sharp one: ``−diag(1/p)`` with ``p`` from 1 down to 1e-14 has
    ``Ĥ = −I``, every sign certain, while most eigenvalues of ``H`` lie far inside ``64 n ε ‖H‖₂``.
    A matrix whose smallest eigenvalue is zero in exact arithmetic gains nothing: scaling cannot make
    a zero eigenvalue nonzero.
    """
    n = h.shape[0]
    a = jnp.abs(jnp.diagonal(h))
    floor = jnp.maximum(eps * jnp.max(a), jnp.finfo(h.dtype).tiny)
    d = jnp.sqrt(jnp.maximum(a, floor))
    dd = d[:, None] * d[None, :]
    scaled = h / dd
    lam = jnp.linalg.eigvalsh(scaled)
    b = MCA_FACTOR * jnp.maximum(spread, spread.T) / dd + 4 * eps * jnp.abs(scaled)
    margin = MARGIN_FACTOR * n * eps * jnp.max(jnp.abs(lam)) + jnp.sqrt(jnp.sum(jnp.square(b)))
    certain = jnp.isfinite(margin)
    return jnp.sum(certain & (lam > margin)), jnp.sum(certain & (lam < -margin))


def certain_signs(sym, lam, spread, eps) -> dict:
    """``margin``, ``n_pos``, ``n_neg`` of the symmetric matrix ``sym`` with eigenvalues ``lam``.

    Each count is the larger of two lower bounds on the number of eigenvalues certainly of that
    sign: those beyond :func:`definiteness_margin` (``spread``: the entry-wise Monte Carlo spread,
    its maximum for the margin) and those :func:`graded_signs` certifies on the scaled matrix.
    """
    margin = definiteness_margin(sym.shape[0], eps, jnp.max(jnp.abs(lam)), jnp.max(spread))
    graded_pos, graded_neg = graded_signs(sym, spread, eps)
    return {
        "margin": margin,
        "n_pos": jnp.maximum(jnp.sum(lam > margin), graded_pos),
        "n_neg": jnp.maximum(jnp.sum(lam < -margin), graded_neg),
    }


def _holds(kind: str, n_pos, n_neg, n):
    return {"pd": n_pos == n, "psd": n_neg == 0, "nd": n_neg == n, "nsd": n_pos == 0}[kind]


def _hessian(d: Derivation, args: tuple):
    i = d.wrt_index
    of = d.claim.of
    return jax.hessian(lambda x: of(*args[:i], x, *args[i + 1 :]))(args[i])


@dataclasses.dataclass(frozen=True)
class Definite:
    """The family of claims "this matrix is PD / PSD / ND / NSD"."""

    definiteness: str = "psd"
    reference_name: str = "jnp.linalg.eigvalsh"
    analysis: ClassVar[str] = "spectrum"  # diagnosed in spectrum terms

    def extra_inputs(self, d, args):
        return {}

    def validate(self, d, args, extra):
        try:
            got = jax.eval_shape(d.derived, *args)
        except CheckError:
            raise
        except Exception as exc:
            raise CheckError(f"derived function raised: {one_line(exc)}") from exc
        refuse_complex((args, got), "a definiteness claim")
        shape = getattr(got, "shape", None)
        if shape is None or len(shape) != 2 or shape[0] != shape[1]:
            raise CheckError(f"a definiteness claim needs a square matrix; derived returns shape {shape}")
        if not jnp.issubdtype(got.dtype, jnp.floating):
            raise CheckError(f"derived function returns dtype {got.dtype}, expected floats")
        if d.claim.of is not None:
            try:
                ref = jax.eval_shape(lambda *a: _hessian(d, a), *args)
            except Exception as exc:
                raise CheckError(f"jax.hessian of of= failed: {one_line(exc)}") from exc
            n = int(np.prod(ref.shape[: len(ref.shape) // 2]))
            if ref.shape != shape and (n, n) != shape:
                raise CheckError(f"derived matrix has shape {shape} but jax.hessian(of) has shape {ref.shape}")
            return judged_precision(got, ref, "jax.hessian")
        return str(got.dtype)  # no reference: the matrix is judged at its own precision

    def trial(self, d, args, extra):
        h = jnp.asarray(d.derived(*args))
        n = h.shape[0]
        sym_err, scale, _ = trial_errors(h, h.T)
        sym = (h + h.T) / 2
        lam = jnp.linalg.eigvalsh(sym)
        lam_scale = jnp.max(jnp.abs(lam))
        signs = certain_signs(sym, lam, matrix_spread(d.derived, args, h), jnp.finfo(h.dtype).eps)
        stats = {
            "n": jnp.asarray(n),
            "sym_err": sym_err,
            "scale": scale,
            "lambda_min": lam[0],
            "lambda_max": lam[-1],
            "lambda_scale": lam_scale,
            **signs,
            "finite_derived": jnp.all(jnp.isfinite(h)),
            "finite_reference": jnp.asarray(True),
        }
        ref = None
        if d.claim.of is not None:
            ref = _hessian(d, args).reshape(h.shape)
            abs_err, ref_scale, _ = trial_errors(h, ref)
            stats["abs_err"] = abs_err
            stats["eq_scale"] = ref_scale
            stats["finite_reference"] = jnp.all(jnp.isfinite(ref))
        return stats, (h, ref)

    def conditioning(self, d, args, extra):
        """Rounding scales of the equality with ``jax.hessian(of)``, as for a Hessian claim (zeros without ``of``)."""
        if d.claim.of is None:
            zero = jnp.zeros((), jnp.float64)
            return {"terms": zero, "rounding": zero}
        return {
            "terms": conditioning_scale(lambda a: _hessian(d, a), (args,)),
            "rounding": rounding_allowance(lambda a: d.derived(*a), lambda a: _hessian(d, a), args),
        }

    def judge(self, stats, tol):
        kind = self.definiteness
        n = stats["n"]
        asym = exceeds(stats["sym_err"], stats["scale"], tol)
        wrong_sign = ~_holds(kind, stats["n_pos"], stats["n_neg"], n)
        failed = asym | wrong_sign
        rel = np.zeros(failed.shape)
        if "abs_err" in stats:  # equality with jax.hessian(of), judged as a Hessian claim is
            eq = judge_equality(
                {
                    "abs_err": stats["abs_err"],
                    "scale": stats["eq_scale"],
                    **{k: stats[k] for k in ("terms", "rounding") if k in stats},
                },
                tol,
            )
            failed, rel = failed | eq[0], eq[2]
        # closeness to violating the claim, in units of the spectrum or the margin (whichever is larger): ~[-1, 2]
        scale = np.maximum(stats["lambda_scale"], stats["margin"])
        scale = np.where(scale > 0, scale, 1.0)
        lo, hi, m = stats["lambda_min"] / scale, stats["lambda_max"] / scale, stats["margin"] / scale
        closeness = {"pd": m - lo, "psd": -m - lo, "nd": hi + m, "nsd": hi - m}[kind]
        # among failing trials prefer the one that shows most structure (highest numerical rank)
        # over a nearly-zero (saturated) matrix: the reader learns more from "rank K-1, null along 1"
        informative = failed * (stats["n_pos"] + stats["n_neg"]) / np.maximum(n, 1)
        return failed, closeness + 10.0 * failed + 5.0 * informative + rel, rel

    def summarize(self, d: Derivation, run: Run):
        s = run.stats
        w = run.worst
        h = np.asarray(w.derived, dtype=np.float64)
        n = h.shape[0]
        lam, vecs = np.linalg.eigh((h + h.T) / 2)
        i = run.badness.argmax()
        margin = float(s["margin"][i])
        n_pos, n_neg = int(s["n_pos"][i]), int(s["n_neg"][i])
        rank = n_pos + n_neg
        null = vecs[:, np.argmin(np.abs(lam))] if 0 < rank < n else None
        if null is not None:
            null = null * np.sign(null[np.argmax(np.abs(null))])
        ranks = (s["n_pos"] + s["n_neg"])[s["finite_reference"]]
        spectrum = Spectrum(
            n=n,
            lambda_min=float(s["lambda_min"][i]),
            lambda_max=float(s["lambda_max"][i]),
            rank=rank,
            margin=margin,
            found=classify(n_pos, n_neg, n),
            null_direction=null,
            min_rank=int(ranks.min()),
            max_rank=int(ranks.max()),
        )
        kind = d.claim.definiteness
        word = DEFINITE_WORDS[kind]
        lam_txt = f"λ ∈ [{spectrum.lambda_min:.3g}, {spectrum.lambda_max:.3g}]"
        rank_txt = f"rank {rank} of {n}" + (f", null direction ≈ {_vec(null)}" if null is not None else "")
        bad = int(run.failed.sum())
        if not bad:
            singular = int((ranks < s["n"][s["finite_reference"]]).sum()) if kind in ("psd", "nsd") else 0
            example = f" (e.g. {rank_txt}, at {where(w.sizes, w.regime)})" if rank < n else ""
            sing_txt = f"; singular in {singular} trials{example}" if singular else ""
            return f"{word} on {run.trials} trials{sing_txt}; closest: {lam_txt}", {"spectrum": spectrum}
        asym = exceeds(s["sym_err"], s["scale"], run.tol)
        if asym.any():
            j = int(np.argmax(asym))
            reason = f"not symmetric (‖H − Hᵀ‖∞ = {s['sym_err'][j]:.2g}) at {where(run.sizes[j], run.regimes[j])}"
        elif "abs_err" in s and (run.failed & ~asym & _holds(kind, s["n_pos"], s["n_neg"], s["n"])).any():
            j = int(np.nanargmax(run.rel_err))
            at = where(run.sizes[j], run.regimes[j])
            reason = f"differs from jax.hessian(of) (rel. error {run.rel_err[j]:.2g}) at {at}"
        else:
            reason = f"{spectrum.found}, not {kind}: {lam_txt}, {rank_txt}, at {where(w.sizes, w.regime)}"
        return f"fails in {bad} of {run.trials} trials: {reason}", {"spectrum": spectrum}


def matrix_spread(fn, args: tuple, h):
    """Entry by entry, the Monte Carlo spread of the matrix ``h = fn(*args)`` (zeros when it cannot be staged out)."""
    spreads = entry_spreads(fn, *args)
    if len(spreads) != 1 or spreads[0].size != h.size:
        return jnp.zeros(h.shape, h.dtype)
    return spreads[0].reshape(h.shape).astype(h.dtype)


def _vec(v: np.ndarray, k: int = 6) -> str:
    vals = ", ".join(f"{x:.2f}" for x in v[:k])
    return f"[{vals}{', …' if v.size > k else ''}]"
