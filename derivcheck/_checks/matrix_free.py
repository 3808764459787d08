"""Matrix-free Hessian checks: Hessian-vector products and Lanczos, never a dense ``n × n`` matrix.

Above :data:`THRESHOLD` entries of the differentiated argument (or when the
derivation says ``matrix_free=True``) a Hessian or definiteness claim is
checked through products with vectors only, so memory stays linear in ``n``.
The derivation may supply its matrix densely (``fn(*args)``) or as a
Hessian-vector product (``hvp=True``: ``fn(*args, v) = H v``).

**Equality** (``dc.hessian``, and ``dc.definite`` with ``of=``). On ``p``
probes ``v_j ~ N(0, I)`` (:data:`PROBES`, drawn per trial) the derived product
``D v_j`` is compared with JAX's forward-over-reverse product
``R v_j = jax.jvp(jax.grad(of), (x,), (v_j,))[1]`` by the norm-wise test of
:mod:`derivcheck._compare`, probe by probe; the trial's error is its worst
probe's. *Error bound:* for a wrong matrix ``D ≠ R`` with ``E = D − R`` and
top singular triple ``(σ₁, u₁, w₁)``, ``‖E v‖₂ ≥ σ₁ |w₁ᵀv|`` and
``w₁ᵀv ~ N(0, 1)``, so ``P(‖E v‖₂ ≤ s σ₁) ≤ s √(2/π)``: every one of the
``p`` probes misses an error with ``σ₁ ≥ τ / s`` (``τ`` the tolerance on
``‖E v‖₂``) with probability at most ``(s √(2/π))^p`` — below ``1e-8`` for
``s = 0.1`` and ``p = 8``.

**Definiteness** (``dc.definite``). Lanczos with full reorthogonalization
(classical Gram–Schmidt applied twice, "twice is enough") runs
``k = min(`` :data:`STEPS` ``, n)`` steps on the derived operator from a random
start; the extreme eigenvalues of the tridiagonal ``T_k`` (Ritz values)
``θ_min ≥ λ_min`` and ``θ_max ≤ λ_max`` estimate the spectrum's ends, and
``r = |β_k s_k|`` (``s`` the Ritz vector in ``T``'s basis) bounds the distance
from each to an eigenvalue. A PSD claim fails when ``θ_min < −margin``: the
Ritz vector is then a direction with a negative Rayleigh quotient, a witness
that holds whatever the convergence; a PD claim fails when ``θ_min ≤ margin``
(``λ_min ≤ θ_min``). Without a witness the claim *holds* only when the bound
below proves it — ``θ_min − u ≥ −margin`` (PSD) or ``> margin`` (PD), ``u`` the
larger of the bound's ``ε/(1 − ε)(θ_max − θ_min)`` and the residual ``r`` —
and is otherwise *inconclusive*: a negative eigenvalue smaller than ``u`` may
have been missed (a singular PSD matrix is only ever proven with ``k = n``),
and ``matrix_free=False`` settles it with every eigenvalue. An undecided run is
checked once more with up to twice the steps (:func:`check_definite`). The margin is the
dense check's, ``64 n ε max|θ| + 16 n s`` (see
:mod:`derivcheck._checks.definite`), with ``s`` the Monte Carlo arithmetic spread
of the product ``H v₁`` per unit of ``‖v₁‖∞``: the operator's rounding, modelled
as a perturbation of its entries of that size. *Error bound* for a claim that holds:
by Kuczyński & Woźniakowski (1992, Thm 4.2), from a start uniform on the
sphere, ``P(θ_max(B) < (1 − ε) λ_max(B)) ≤ 1.648 √n e^{−√ε (2k − 1)}`` for any
PSD ``B``; applied to ``B = λ_max I − H`` (the same Krylov spaces), with
probability at least ``1 − δ``

.. math::

    \\lambda_{\\min} \\ge \\theta_{\\min} - \\frac{\\varepsilon}{1 - \\varepsilon}(\\lambda_{\\max} - \\theta_{\\min}),
    \\qquad \\varepsilon = \\Big(\\frac{\\ln(1.648 \\sqrt{n} / \\delta)}{2k - 1}\\Big)^2,

so a negative eigenvalue deeper than that is found with probability
``≥ 1 − δ`` (``δ =`` :data:`FAILURE_PROBABILITY`); the result's note states
the bound with ``θ_max`` for ``λ_max`` (``≤ λ_max``: the bound used is the
smaller one, which is why a verdict also needs the margin test above). When
a step finds the Krylov space invariant (``β_j = 0``, before the restart), the
bound is 0: the start, random, has a component along every eigenspace almost
surely, so that space holds an eigenvector of every distinct eigenvalue and the
Ritz values include them all, ``θ_min = λ_min`` (a ridge Hessian
``XᵀX/m + λI`` with ``m`` below the steps has ``m + 1`` distinct eigenvalues). When ``k = n`` the Krylov space is the
whole space and the Ritz values are the eigenvalues (``ε = 0``). Symmetry is
checked on the probes: ``V ᵀ(H V)`` must be symmetric up to
``atol + rtol · max|VᵀHV| + 16 √n ε max‖v_i‖‖H v_j‖`` (the last term the
rounding of the length-``n`` inner products).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from derivcheck._checks._engine import (
    CheckConfig,
    CheckError,
    Run,
    jit_hint,
    judged_precision,
    one_line,
    refuse_complex,
    where,
)
from derivcheck._checks._kind import Kind, Plan, batched, run_plan
from derivcheck._checks.definite import Definite as DefiniteFamily
from derivcheck._checks.definite import definiteness_margin
from derivcheck._checks.differential import HESSIAN, Differential
from derivcheck._checks.robust import KinkAware
from derivcheck._compare import (
    MCA_FACTOR,
    conditioning_scale,
    exceeds,
    judge_equality,
    rounding_spread,
    sup_norm,
)
from derivcheck._derivation import DEFINITE_WORDS, Definite, Derivation, Hessian
from derivcheck._inputs import CustomInputs
from derivcheck._result import Result, Spectrum

THRESHOLD = 512
"""Entries of the differentiated argument above which a Hessian claim is checked matrix-free
(a dense 512 × 512 float64 Hessian is 2 MiB per trial, per side)."""
PROBES = 8
STEPS = 64
FAILURE_PROBABILITY = 1e-3
KW_CONSTANT = 1.648
REFERENCE = "jax.jvp(jax.grad(of))"


# ---------------------------------------------------------------------- choosing the path


@functools.lru_cache(maxsize=1024)
def dimension(d: Derivation) -> int:
    """The largest number of entries the matrix's side has over the derivation's size sets."""
    claim = d.claim
    i = d.wrt_index
    sizes = []
    for args in _abstract_args(d):
        if claim.hvp or getattr(claim, "of", None) is not None:
            sizes.append(math.prod(args[i].shape))
        else:
            sizes.append(jax.eval_shape(d.derived, *args).shape[0])
    return max(sizes)


def _abstract_args(d: Derivation) -> list[tuple]:
    spec = d.inputs
    if isinstance(spec, CustomInputs):
        out = jax.eval_shape(spec.draw, jax.random.PRNGKey(0))
        return [tuple(out) if isinstance(out, list | tuple) else (out,)]
    result = []
    for sizes in spec.sizes:
        shapes = spec.shapes(sizes)
        table = dict(spec.specs)
        result.append(
            tuple(jax.ShapeDtypeStruct(shapes[n], np.dtype(getattr(table[n], "dtype", "float64"))) for n in d.arg_names)
        )
    return result


def is_matrix_free(d: Derivation) -> bool:
    """The derivation's ``matrix_free=`` when given, else whether its dimension exceeds :data:`THRESHOLD`."""
    chosen = getattr(d.claim, "matrix_free", None)
    if chosen is not None:
        return bool(chosen)
    try:
        return dimension(d) > THRESHOLD
    except Exception:
        return False  # the dense path reports what is wrong with the declaration


def hessian_plan(d: Derivation) -> Plan:
    """A Hessian claim: matrix-free above the threshold, else dense matrices (an ``hvp=True``
    derivation's products with the unit vectors) against ``jax.hessian``, kinks told apart."""
    if is_matrix_free(d):
        return Plan(MatrixFree(None), d, "matrix-free")
    return Plan(KinkAware(Differential(HESSIAN)), materialized(d), "dense")


def definite_plan(d: Derivation) -> Plan:
    """A definiteness claim: Lanczos above the threshold, else ``eigvalsh`` of the dense matrix."""
    if is_matrix_free(d):
        return Plan(MatrixFree(d.claim.definiteness), d, "matrix-free")
    return Plan(DefiniteFamily(d.claim.definiteness), materialized(d, square=True), "dense")


def _product(d: Derivation, args: tuple, v: jax.Array) -> jax.Array:
    """``fn(*args, v)`` of an ``hvp=True`` derivation, which must be shaped like ``v`` (a one-line error if not)."""
    hv = d.derived(*args, v)
    if jnp.shape(hv) != jnp.shape(v):
        raise CheckError(
            f"the Hessian-vector product returns shape {jnp.shape(hv)}, expected {jnp.shape(v)} "
            f"(hvp=True: fn(*args, v) = H v, with v and H v shaped like the argument {d.arg_names[d.wrt_index]!r})"
        )
    return hv


@functools.lru_cache(maxsize=256)
def materialized(d: Derivation, square: bool = False) -> Derivation:
    """``d`` with a dense derived function: an ``hvp=True`` derivation's products with the unit vectors.

    Column ``j`` of the matrix is ``fn(*args, e_j)``, shaped ``n × n`` (``square``, a definiteness
    claim's matrix) or ``x.shape * 2`` (a Hessian); a derivation that is already dense is returned
    as is (the same object, so compiled functions are reused).
    """
    if not d.claim.hvp:
        return d
    i = d.wrt_index

    def dense(*args):
        x = jnp.asarray(args[i])
        n = x.size
        basis = jnp.eye(n, dtype=x.dtype).reshape((n, *x.shape))
        rows = jax.vmap(lambda e: jnp.reshape(_product(d, args, e), (n,)))(basis)  # row j is H e_j
        h = rows.T
        return h if square else h.reshape(x.shape * 2)

    dense.__name__ = getattr(d.derived, "__name__", "derived")
    dense.__qualname__ = getattr(d.derived, "__qualname__", dense.__name__)
    return dataclasses.replace(d, derived=dense)


# ---------------------------------------------------------------------- the operators


def _operators(d: Derivation, args: tuple):
    """``(shape, derived_product, reference_product or None)`` of one trial, on vectors shaped ``shape``."""
    claim = d.claim
    i = d.wrt_index
    of = getattr(claim, "of", None)
    reference: Callable[[jax.Array], jax.Array] | None = None
    if of is not None:
        x = args[i]

        def f(z):
            return of(*args[:i], z, *args[i + 1 :])

        def hvp(v):
            return jax.jvp(jax.grad(f), (x,), (v,))[1]

        reference = hvp

    if claim.hvp:
        shape = tuple(jnp.shape(args[i]))

        def derived(v):
            return jnp.reshape(d.derived(*args, v), shape)

    else:
        h = jnp.asarray(d.derived(*args))
        n = int(math.prod(h.shape[: h.ndim // 2])) if h.ndim != 2 else h.shape[0]
        shape = tuple(jnp.shape(args[i])) if of is not None else (n,)
        matrix = h.reshape(n, n)

        def derived(v):
            return (matrix @ jnp.reshape(v, (n,))).reshape(shape)

    return shape, derived, reference


def lanczos(matvec, start: jax.Array, steps: int):
    """``k = steps`` Lanczos steps with full reorthogonalization from ``start`` (flat vectors).

    Returns ``(alpha, beta, ritz_values, residuals)``: the tridiagonal's diagonal
    and off-diagonal (``beta[k-1]`` is the final residual norm), its eigenvalues
    in ascending order, and each Ritz pair's residual bound ``|β_k s_{k,i}|``.
    When a step's new direction is numerically in the span of the previous ones
    (an invariant subspace), a fixed ±1 pattern orthogonalized against them
    takes its place with coupling 0, which is exact for the direct sum.
    """
    n = start.shape[0]
    dtype = start.dtype
    basis = jnp.zeros((steps, n), dtype)
    q0 = start / jnp.linalg.norm(start)
    basis = basis.at[0].set(q0)

    def orthogonalize(w, basis):
        for _ in range(2):  # twice is enough (Kahan, Parlett)
            w = w - basis.T @ (basis @ w)
        return w

    def step(j, carry):
        basis, alpha, beta = carry
        q = basis[j]
        w = matvec(q)
        alpha = alpha.at[j].set(jnp.vdot(q, w))
        once = w - basis.T @ (basis @ w)
        twice = once - basis.T @ (basis @ once)
        n1, n2 = jnp.linalg.norm(once), jnp.linalg.norm(twice)
        dependent = n2 <= n1 / jnp.sqrt(2.0)
        candidates = [orthogonalize(c, basis) for c in _restarts(n, j + 1, dtype)]
        norms = jnp.stack([jnp.linalg.norm(c) for c in candidates])
        restart = jnp.stack(candidates)[jnp.argmax(norms)]
        nxt = jnp.where(dependent, restart / jnp.linalg.norm(restart), twice / jnp.where(n2 > 0, n2, 1))
        beta = beta.at[j].set(jnp.where(dependent, 0.0, n2))
        last = jnp.minimum(j + 1, steps - 1)  # after the last step, rewrite the last row unchanged (in place)
        basis = basis.at[last].set(jnp.where(j + 1 < steps, nxt, basis[last]))
        return basis, alpha, beta

    alpha = jnp.zeros(steps, dtype)
    beta = jnp.zeros(steps, dtype)
    basis, alpha, beta = jax.lax.fori_loop(0, steps, step, (basis, alpha, beta))
    t = jnp.diag(alpha) + jnp.diag(beta[:-1], 1) + jnp.diag(beta[:-1], -1)
    theta, s = jnp.linalg.eigh(t)
    residuals = jnp.abs(beta[-1] * s[-1, :])
    return alpha, beta, theta, residuals


def _restarts(n: int, salt, dtype) -> list[jax.Array]:
    """Two restart directions that depend on ``salt``: a ±1 pattern (Knuth's multiplicative hash) and
    ``cos`` of distinct multiples of the golden angle; the one farther from the current span is used."""
    i = jnp.arange(n, dtype=jnp.uint32) + (jnp.asarray(salt, jnp.uint32) * jnp.uint32(7919))
    bits = (i * jnp.uint32(2654435761)) >> jnp.uint32(15)
    signs = jnp.where(bits & 1, 1.0, -1.0).astype(dtype)
    k = jnp.arange(1, n + 1, dtype=dtype)
    waves = jnp.cos(2.399963 * k * (1.0 + 0.618034 * jnp.asarray(salt, dtype)))
    return [signs, waves]


def kw_epsilon(n: int, steps: int, delta: float = FAILURE_PROBABILITY) -> float:
    """Kuczyński–Woźniakowski's relative accuracy ``ε`` reached with probability ``1 − δ`` (0 when ``k ≥ n``)."""
    if steps >= n:
        return 0.0
    return min(1.0, (math.log(KW_CONSTANT * math.sqrt(n) / delta) / (2 * steps - 1)) ** 2)


# ---------------------------------------------------------------------- the family


@dataclasses.dataclass(frozen=True)
class MatrixFree:
    """Hessian equality (``definiteness=None``) or a definiteness claim, by products with vectors."""

    definiteness: str | None = None
    probes: int = PROBES
    steps: int = STEPS
    extra_regime: str = "typical"  # probes and the start vector are iid N(0, 1) in every regime
    reference_name: str = REFERENCE

    @property
    def analysis(self) -> str:
        """Equality is diagnosed by value relations, definiteness in spectrum terms."""
        return "equality" if self.definiteness is None else "spectrum"

    def extra_inputs(self, d, args):
        shape = _vector_shape(d, args)
        dtype = args[d.wrt_index].dtype if (d.claim.hvp or d.claim.of is not None) else _derived_dtype(d, args)
        extra = {"probes": jax.ShapeDtypeStruct((self.probes, *shape), dtype)}
        if self.definiteness is not None:
            extra["start"] = jax.ShapeDtypeStruct(shape, dtype)
        return extra

    def validate(self, d, args, extra):
        claim = d.claim
        of = getattr(claim, "of", None)
        i = d.wrt_index
        refuse_complex(args, f"a {d.kind} claim")
        if of is not None:
            try:
                out = jax.eval_shape(lambda *a: of(*a), *args)
            except Exception as exc:
                raise CheckError(f"of= raised on the drawn inputs: {one_line(exc)}") from exc
            if out.shape != ():
                raise CheckError(f"of= returns shape {out.shape}; a Hessian needs a scalar function")
            if not jnp.issubdtype(args[i].dtype, jnp.inexact):
                raise CheckError(f"the differentiated argument must be floating point, got {args[i].dtype}")
        v = extra["probes"]
        vec = jax.ShapeDtypeStruct(v.shape[1:], v.dtype)
        try:
            if claim.hvp:
                raw = jax.eval_shape(lambda a, u: d.derived(*a, u), args, vec)
            else:
                raw = jax.eval_shape(lambda a: d.derived(*a), args)
        except Exception as exc:
            raise CheckError(f"derived function raised: {one_line(exc)}{jit_hint(exc)}") from exc
        n = math.prod(vec.shape)
        if claim.hvp and raw.shape != vec.shape:
            raise CheckError(
                f"derived function returns shape {raw.shape}; a Hessian-vector product has the shape of v, {vec.shape}"
            )
        if not claim.hvp and math.prod(raw.shape) != n * n:
            raise CheckError(f"derived function returns shape {raw.shape}, expected a {n} × {n} matrix")
        if not jnp.issubdtype(raw.dtype, jnp.floating):
            raise CheckError(f"derived function returns dtype {raw.dtype}, expected floats")
        if of is None:  # no reference: the derived matrix or products are judged at their own precision
            return str(min((jnp.dtype(raw.dtype), jnp.dtype(vec.dtype)), key=lambda t: t.itemsize))
        return judged_precision(raw, vec, self.reference_name)  # the reference has the probes' (input's) dtype

    # -- one trial

    def trial(self, d, args, extra):
        shape, derived, reference = _operators(d, args)
        probes = extra["probes"]
        dv = jax.vmap(derived)(probes)
        stats = {"finite_derived": jnp.all(jnp.isfinite(dv)), "finite_reference": jnp.asarray(True)}
        worst = 0
        rv = None
        if reference is not None:
            rv = jax.vmap(reference)(probes)
            err = jax.vmap(sup_norm)(dv - rv)
            scale = jnp.maximum(jax.vmap(sup_norm)(dv), jax.vmap(sup_norm)(rv))
            worst = jnp.argmax(err / jnp.maximum(scale, jnp.finfo(scale.dtype).tiny))
            stats.update(
                abs_err=err[worst].astype(jnp.float64),
                scale=scale[worst].astype(jnp.float64),
                finite_reference=jnp.all(jnp.isfinite(rv)),
            )
        if self.definiteness is not None:
            stats.update(self._spectrum_stats(d, args, extra, shape, derived, probes, dv))
        values = (dv[worst], None if rv is None else rv[worst])
        return stats, values

    def _spectrum_stats(self, d, args, extra, shape, derived, probes, dv):
        n = math.prod(shape)
        p = probes.reshape(probes.shape[0], n)
        hp = dv.reshape(dv.shape[0], n)
        gram = p @ hp.T  # (V^T H V)_ij = v_i^T H v_j
        eps = jnp.finfo(hp.dtype).eps
        cs = jnp.max(jnp.linalg.norm(p, axis=1)) * jnp.max(jnp.linalg.norm(hp, axis=1))
        steps = min(self.steps, n)
        flat = lambda v: derived(v.reshape(shape)).reshape(n)
        _, beta, theta, resid = lanczos(flat, extra["start"].reshape(n), steps)
        lam_scale = jnp.maximum(jnp.abs(theta[0]), jnp.abs(theta[-1]))
        spread = rounding_spread(derived, probes[0]) / jnp.maximum(sup_norm(probes[0]), jnp.finfo(hp.dtype).tiny)
        margin = definiteness_margin(n, eps, lam_scale, spread)
        kw = kw_epsilon(n, steps)
        # an invariant Krylov space from a random start holds every distinct eigenvalue: then θ are exact
        invariant = jnp.any(beta[: steps - 1] == 0)
        return {
            "kw_bound": jnp.where(invariant, 0.0, kw / (1 - kw) * (theta[-1] - theta[0])).astype(jnp.float64),
            "n": jnp.asarray(n),
            "steps": jnp.asarray(steps),
            "sym_err": jnp.max(jnp.abs(gram - gram.T)).astype(jnp.float64),
            "sym_scale": jnp.max(jnp.abs(gram)).astype(jnp.float64),
            "sym_rounding": (16 * jnp.sqrt(n) * eps * cs).astype(jnp.float64),
            "lambda_min": theta[0].astype(jnp.float64),
            "lambda_max": theta[-1].astype(jnp.float64),
            "resid_min": resid[0].astype(jnp.float64),
            "resid_max": resid[-1].astype(jnp.float64),
            "lambda_scale": lam_scale.astype(jnp.float64),
            "margin": margin.astype(jnp.float64),
            "finite_derived": jnp.all(jnp.isfinite(dv)) & jnp.all(jnp.isfinite(theta)),
        }

    def conditioning(self, d, args, extra):
        """Rounding scales of the equality test (see :mod:`derivcheck._compare`), the largest over the probes."""
        probes = extra["probes"]

        def ref(a, v):
            reference = _operators(d, a)[2]
            if reference is None:  # traced only when _operators_have_reference(d): of= is given
                raise CheckError("no reference Hessian-vector product: the claim has no of=")
            return reference(v)

        def der(a, v):
            return _operators(d, a)[1](v)

        if _operators_have_reference(d):
            terms = jax.vmap(lambda v: conditioning_scale(lambda a: ref(a, v), (args,)))(probes)
            s_ref = jax.vmap(lambda v: MCA_FACTOR * rounding_spread(lambda a: ref(a, v), args))(probes)
        else:
            terms = s_ref = jnp.zeros(probes.shape[0])
        s_der = jax.vmap(lambda v: MCA_FACTOR * rounding_spread(lambda a: der(a, v), args))(probes)
        return {"terms": jnp.max(terms).astype(jnp.float64), "rounding": jnp.max(s_ref + s_der).astype(jnp.float64)}

    # -- judging

    def judge(self, stats, tol):
        if self.definiteness is None:
            return judge_equality(stats, tol)
        kind = self.definiteness
        lo, hi, m = stats["lambda_min"], stats["lambda_max"], stats["margin"]
        asym = exceeds(stats["sym_err"], stats["sym_scale"], tol, np.asarray(stats["sym_rounding"]))
        failed = asym | _witnessed(stats, kind)
        rel = np.zeros(failed.shape)
        if "abs_err" in stats:
            eq_failed, rel, _ = judge_equality(stats, tol)
            failed = failed | eq_failed
        scale = np.where(stats["lambda_scale"] > 0, stats["lambda_scale"], 1.0)
        closeness = {"pd": m - lo, "psd": -m - lo, "nd": hi + m, "nsd": hi - m}[kind] / scale
        return failed, closeness + 10.0 * failed + rel, rel

    def undecided(self, stats) -> np.ndarray:
        """The trials with no witness against the claimed definiteness and no proof of it either
        (:func:`_witnessed`, :func:`_proven`); none for an equality claim."""
        if self.definiteness is None:
            return np.zeros(np.shape(stats["finite_reference"]), bool)
        return ~_witnessed(stats, self.definiteness) & ~_proven(stats, self.definiteness)

    def summarize(self, d: Derivation, run: Run):
        if self.definiteness is None:
            return self._summarize_equality(d, run)
        return self._summarize_definite(d, run, self.definiteness)

    def _summarize_equality(self, d, run):
        n, bad = run.trials, int(run.failed.sum())
        rel = run.rel_err[run.stats["finite_reference"]]
        what = f"{self.probes} probes × {n} trials, matrix-free"
        if not bad:
            return f"matches {REFERENCE} on {what}; max rel. error {np.nanmax(rel):.1e}", {}
        w = run.worst
        return (
            f"differs from {REFERENCE} in {bad} of {n} trials ({what}); worst rel. error "
            f"{w.rel_err:.2g} at {where(w.sizes, w.regime)}"
        ), {}

    def _summarize_definite(self, d, run, kind: str):
        s = run.stats
        i = int(np.argmax(run.badness))
        n, steps = int(s["n"][i]), int(s["steps"][i])
        lo, hi, margin = float(s["lambda_min"][i]), float(s["lambda_max"][i]), float(s["margin"][i])
        r_lo, r_hi = float(s["resid_min"][i]), float(s["resid_max"][i])
        found = _classify_ritz(lo, hi, margin, r_lo, r_hi)
        spectrum = Spectrum(
            n=n, lambda_min=lo, lambda_max=hi, rank=-1, margin=margin, found=found, min_rank=-1, max_rank=-1
        )
        how = _lanczos_words(n, steps)
        lam = f"Ritz values θ ∈ [{lo:.3g}, {hi:.3g}]"
        unsettled = {"pd": lo > margin >= lo - r_lo, "nd": hi < -margin <= hi + r_hi}.get(kind, False)
        if unsettled:  # the end Ritz value has the claimed sign, but its residual reaches zero
            end, r = (lo, r_lo) if kind == "pd" else (hi, r_hi)
            lam += f", the {'smallest' if kind == 'pd' else 'largest'} {end:.3g} within its residual {r:.2g} of 0"
        bad = int(run.failed.sum())
        open_ = self.undecided(s) & run.valid
        if not bad and open_.any():
            j = int(np.argmax(np.where(open_, s["kw_bound"], -np.inf)))
            edge = "smallest" if kind in ("psd", "pd") else "largest"
            how = _lanczos_words(int(s["n"][j]), int(s["steps"][j]))
            return (
                f"not decided on {int(open_.sum())} of {run.trials} trials: no Ritz value of the wrong sign, but "
                f"the {edge} eigenvalue is only known to within {s['kw_bound'][j]:.3g} of θ = "
                f"{s['lambda_min' if edge == 'smallest' else 'lambda_max'][j]:.3g} ({how}) at "
                f"{where(run.sizes[j], run.regimes[j])}, which does not settle {kind}; matrix_free=False "
                "settles it with every eigenvalue (n × n memory)"
            ), {"spectrum": spectrum}
        if not bad:
            if kw_epsilon(n, steps) > 0 and not np.asarray(s["kw_bound"])[run.valid].any():
                how = f"Lanczos, {steps} steps on n = {n}: the Krylov space became invariant, its Ritz values exact"
            return f"{DEFINITE_WORDS[kind]} on {run.trials} trials, matrix-free ({how}); closest: {lam}", {
                "spectrum": spectrum
            }
        asym = exceeds(s["sym_err"], s["sym_scale"], run.tol, np.asarray(s["sym_rounding"]))
        if asym.any():
            j = int(np.argmax(asym))
            at = where(run.sizes[j], run.regimes[j])
            reason = f"not symmetric (|vᵀHu − uᵀHv| = {s['sym_err'][j]:.2g} on probes) at {at}"
        elif "abs_err" in s and exceeds(s["abs_err"], s["scale"], run.tol).any() and np.nanmax(run.rel_err) > 0:
            j = int(np.nanargmax(run.rel_err))
            at = where(run.sizes[j], run.regimes[j])
            reason = f"differs from {REFERENCE} (rel. error {run.rel_err[j]:.2g}) at {at}"
        else:
            w = run.worst
            reason = f"{found}, not {kind}: {lam} ({how}) at {where(w.sizes, w.regime)}"
        return f"fails in {bad} of {run.trials} trials: {reason}", {"spectrum": spectrum}


def _lanczos_words(n: int, steps: int) -> str:
    """``Lanczos, 64 steps on n = 3000 (λ_min ≥ θ_min − 0.0081·(θ_max − θ_min) with prob. ≥ 99.9%)``."""
    eps = kw_epsilon(n, steps)
    bound = "" if eps == 0 else f" (λ_min ≥ θ_min − {eps / (1 - eps):.2g}·(θ_max − θ_min) with prob. ≥ 99.9%)"
    return f"Lanczos, {steps} steps on n = {n}{bound}"


def _witnessed(stats, kind: str) -> np.ndarray:
    """Trials whose end Ritz value refutes the claim: ``λ_min ≤ θ_min`` always, so ``θ_min < −margin``
    is a direction against PSD and ``θ_min ≤ margin`` one against PD (mirrored for NSD, ND)."""
    lo, hi, m = (np.asarray(stats[k]) for k in ("lambda_min", "lambda_max", "margin"))
    return {"psd": lo < -m, "nsd": hi > m, "pd": lo <= m, "nd": hi >= -m}[kind]


def _proven(stats, kind: str) -> np.ndarray:
    """Trials whose spectrum end is proven on the claimed side of the margin, with probability
    ``≥ 1 − δ``: ``λ_min ≥ θ_min − u`` with ``u`` the larger of the Kuczyński–Woźniakowski bound
    (module docstring; 0 once the Krylov space is the whole space) and the Ritz value's residual."""
    lo, hi, m = (np.asarray(stats[k]) for k in ("lambda_min", "lambda_max", "margin"))
    kw = np.asarray(stats["kw_bound"])
    u_lo, u_hi = np.maximum(kw, stats["resid_min"]), np.maximum(kw, stats["resid_max"])
    return {"psd": lo - u_lo >= -m, "nsd": hi + u_hi <= m, "pd": lo - u_lo > m, "nd": hi + u_hi < -m}[kind]


def _classify_ritz(lo: float, hi: float, margin: float, r_lo: float = 0.0, r_hi: float = 0.0) -> str:
    """The strongest definiteness the extreme Ritz values support: a definite one only when the end
    value is beyond the margin by more than its residual ``r`` (the judge's own test), since an
    eigenvalue lies within ``r`` of it."""
    if lo - r_lo > margin:
        return "pd"
    if hi + r_hi < -margin:
        return "nd"
    if lo >= -margin:
        return "zero" if hi <= margin else "psd"
    return "nsd" if hi <= margin else "indefinite"


def _operators_have_reference(d: Derivation) -> bool:
    return getattr(d.claim, "of", None) is not None


def _vector_shape(d: Derivation, args: tuple) -> tuple[int, ...]:
    if d.claim.hvp or getattr(d.claim, "of", None) is not None:
        return tuple(args[d.wrt_index].shape)
    out = jax.eval_shape(lambda *a: d.derived(*a), *args)
    return (math.isqrt(math.prod(out.shape)),)


def _derived_dtype(d: Derivation, args: tuple):
    return jax.eval_shape(lambda *a: d.derived(*a), *args).dtype


# ----------------------------------------------------------------------- Kind rows

SECOND_RUN_BYTES = 256 * 2**20
"""The Lanczos vectors the second run of an undecided definiteness claim may hold, over all trials."""


def check_definite(d: Derivation, config: CheckConfig) -> Result:
    """A definiteness claim along :func:`definite_plan`; a matrix-free run left undecided is run again with
    more Lanczos steps (:func:`more_steps`), whose smaller bound — or an invariant Krylov space — often
    decides it (a ridge Hessian ``XᵀX/m + λI`` has ``m + 1`` distinct eigenvalues)."""
    plan = definite_plan(d)
    result = run_plan(plan, config)
    family = plan.family
    if result.outcome != "inconclusive" or not isinstance(family, MatrixFree):
        return result
    steps = more_steps(dimension(d), family.steps, config.trials)
    if steps <= family.steps:
        return result
    return run_plan(plan._replace(family=dataclasses.replace(family, steps=steps)), config)


def more_steps(n: int, steps: int, trials: int) -> int:
    """The steps of the second Lanczos run: twice the first's (its work, quadratic in the steps with full
    reorthogonalization, four times), at most ``n``, and as many as :data:`SECOND_RUN_BYTES` of Lanczos
    vectors (``trials × steps × n`` float64) allow."""
    return int(min(n, 2 * steps, SECOND_RUN_BYTES // max(1, 8 * trials * n)))


KINDS = (
    batched(Hessian, hessian_plan, HESSIAN.name),
    Kind(claim=Definite, check=check_definite, plan=definite_plan, reference=DefiniteFamily.reference_name),
)
