"""Optimisation claims: convexity, existence of a global minimum, descent of an update.

==============  ==================================================================
claim           checked as
==============  ==================================================================
convex          at every drawn point ``x``: ``∇²f(x)`` is PSD (``jnp.linalg.eigvalsh``
                of ``jax.hessian``), and the chord (Jensen) test
                ``f(λa + (1−λ)b) ≤ λf(a) + (1−λ)f(b)`` on a chord from ``a = x`` to an
                independent draw ``b`` of the same argument, ``λ ~ U(0.1, 0.9)``;
                ``strict``: also, where ``∇²f(x)`` is singular, the midpoint gap
                along its null direction ``v`` must be positive:
                ``(f(x + sv) + f(x − sv))/2 − f(x) > 0`` (a zero gap on a chord
                means ``f`` is affine on it); concave claims use ``−f``
has minimum     damped Newton with backtracking (a gradient step where no Newton
                step is accepted) from the drawn start: holds when it reaches a
                stationary point (``‖∇f‖∞ ≤ 1e-7 max(1, ‖∇f(x₀)‖∞)``); fails when the
                iterates run off — still moving out with ``f`` still decreasing, or
                already far out (``‖x‖ > 2 max(1, ‖x₀‖)``), lower, on a plateau whose
                curvature vanished (``‖∇²f‖ ≤ 1e-8 ‖∇²f(x₀)‖``: the infimum is
                approached only in the limit, which float64 reaches by underflow);
                then ``f`` is probed far out (:func:`_far_probe`) and, where it is
                lower there, damped Newton runs again from the lowest probe and decides;
                (where it does not settle either, ``f`` goes lower without end: fails);
                a first descent that neither settles nor runs off in ``steps`` steps
                is *undecided*, and a check with one and no failure ``inconclusive``
descent         the update ``u(η)`` (the derived function, step size ``η``) must
                return ``x`` at ``η = 0`` and
                ``d/dη f(u(η))|_{η=0} = ∇f · u'(0) < 0`` wherever ``∇f(x) ≠ 0``
                (``jax.jvp`` through the update); the largest grid step
                ``η_0 2^{-j}`` from which every smaller one decreases ``f`` is reported
==============  ==================================================================

Rounding, measured at each point by Monte Carlo arithmetic (``ρ_g = 16 ×`` the
spread of :func:`derivcheck._compare.rounding_spread`, the equality claims'
allowance, for whatever ``g`` is evaluated). A Jensen gap
``λ f(a) + (1−λ) f(b) − f(m)`` is called negative only beyond
``λ ρ_f(a) + (1−λ) ρ_f(b) + ρ_f(m) + 4 ε (|λ f(a)| + |(1−λ) f(b)| + |f(m)|)``
(the three values' rounding, and that of combining them); the strict test's
midpoint gap likewise. A Hessian eigenvalue counts as zero within
``64 n ε ‖H‖₂ + n ρ_H`` — as in :mod:`derivcheck._checks.definite`, ``ρ_H`` the
rounding of ``jax.hessian(f)``'s entries: at a saturated softmax ``H ≈ 0`` is
computed from terms of size 1, and its eigenvalues of order ``ε`` are rounding,
not non-convexity — unless the diagonally scaled Hessian shows its sign
(:func:`derivcheck._checks.definite.graded_signs`: the same inertia, a margin
relative to each entry's own scale), so ``Σ pᵢ log pᵢ`` is strictly convex where
``p`` spans many orders of magnitude. (Modelling ``ρ_H`` by
``ρ_f / max(1, ‖x‖∞)²`` instead would halve the cost of a convexity check, but
fails the catalog's concave softmax log-likelihood at three saturated points:
an eigenvalue of ``−7e-15``.) A gradient below ``ρ_∇f`` is rounding (the point
is stationary: a descent claim has nothing to show there). Unlike a bound by the
largest intermediate, none of these grows with a huge intermediate that is only
inverted, exponentiated or compared (a naive ``log(1 + e^t)`` at saturated
``t``), so such an intermediate excuses no negative curvature or ascent."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from derivcheck._checks._engine import CheckConfig, CheckError, Run, run_batched, where
from derivcheck._checks._kind import Kind
from derivcheck._checks.definite import certain_signs, classify, matrix_spread
from derivcheck._checks.identity import eval_shape_or_raise, failing_regimes_text, fname, require_float_array
from derivcheck._checks.robust import fixed_direction
from derivcheck._compare import MCA_FACTOR, ROUNDING_FACTOR, exceeds, rounding_spread
from derivcheck._derivation import Convex, Derivation, DerivationError, HasMinimum, resolve_wrt
from derivcheck._derivation import Descent as DescentClaim
from derivcheck._inputs import Inputs, Uniform
from derivcheck._result import Result, Spectrum
from derivcheck._structured import SPD, Symmetric

CHORD_END = "{}_chord_end"
CHORD_MIX = "chord_mix"
ARMIJO = 1e-4
BACKTRACKS = 40
SETTLED = 1e-9
STATIONARY = 1e-7
PROGRESS = 1e-6
FLAT = 1e-8
DAMPING = 1e-8


def _objective(d: Derivation, args: tuple, sign: float = 1.0):
    """``f`` as a function of the ``wrt`` argument alone (``sign = −1`` for a concave claim)."""
    i = d.wrt_index
    return lambda x: sign * d.derived(*args[:i], x, *args[i + 1 :])


def _with_rounding(f, z):
    """``(f(z), ρ)``: the value and its measured rounding, ``16 ×`` the Monte Carlo arithmetic spread."""
    return f(z), MCA_FACTOR * rounding_spread(f, z)


def _combination_rounding(*terms):
    """``4 ε Σ|terms|``: the rounding of adding a few already-rounded terms."""
    total = sum(jnp.abs(t) for t in terms)
    return 4 * jnp.finfo(jnp.result_type(total)).eps * total


def _flat_hessian(f, x):
    n = int(np.prod(jnp.shape(x)))
    return jax.hessian(f)(x).reshape(n, n)


def _require_scalar_objective(d: Derivation, args: tuple) -> str:
    out = eval_shape_or_raise("the objective (derived function)", d.derived, *args)
    require_float_array("the objective (derived function)", out)
    if out.shape != ():
        raise CheckError(f"the objective returns shape {out.shape}; an optimisation claim needs a scalar objective")
    if not jnp.issubdtype(args[d.wrt_index].dtype, jnp.floating):
        raise CheckError(f"argument {d.arg_names[d.wrt_index]} must be floats to optimise over")
    return str(out.dtype)


# ----------------------------------------------------------------------- convexity


@functools.lru_cache(maxsize=256)
def with_chord_inputs(d: Derivation) -> Derivation:
    """``d`` with two more inputs: a second draw of ``wrt`` (the chord's end) and the mix ``λ``."""
    if not isinstance(d.inputs, Inputs):
        raise CheckError("a convexity claim needs dc.inputs(...) with named specs (to draw chords)")
    wrt = d.arg_names[d.wrt_index]
    spec = dict(d.inputs.specs)[wrt]
    specs = (*d.inputs.specs, (CHORD_END.format(wrt), spec), (CHORD_MIX, Uniform((), 0.1, 0.9)))
    names = (*d.arg_names, CHORD_END.format(wrt), CHORD_MIX)
    return dataclasses.replace(d, inputs=dataclasses.replace(d.inputs, specs=specs), arg_names=names)


@dataclasses.dataclass(frozen=True)
class Convexity:
    """The family of claims "``f`` is (strictly) convex / concave in ``wrt``"."""

    claim: Convex

    def extra_inputs(self, d, args):
        return {}

    def validate(self, d, args, extra):
        return _require_scalar_objective(d, args[:-2])

    def _points(self, d, args):
        """``f`` (signed) and the points it is evaluated at: ``x``, the chord ends and the flat-direction chord."""
        claim = self.claim
        args, b, lam = args[:-2], args[-2], args[-1]
        f = _objective(d, args, -1.0 if claim.concave else 1.0)
        return f, args[d.wrt_index], b, lam

    def trial(self, d, args, extra):
        f, x, b, lam = self._points(d, args)
        h = _flat_hessian(f, x)
        spread = matrix_spread(lambda z: _flat_hessian(f, z), (x,), h)
        basis = _symmetric_basis(d, jnp.shape(x))
        if basis is not None:  # curvature along the symmetric matrices only
            h, spread = basis.restrict(h), basis.restrict(spread)
        n = h.shape[0]
        eps = jnp.finfo(h.dtype).eps
        sym = (h + h.T) / 2
        eig, vecs = jnp.linalg.eigh(sym)
        (fa, ra), (fb, rb), (fm, rm) = (_with_rounding(f, z) for z in (x, b, lam * x + (1 - lam) * b))
        signs = certain_signs(sym, eig, spread, eps)
        stats = {
            "n": jnp.asarray(n),
            "eps": jnp.asarray(eps, jnp.float64),
            "lambda_min": eig[0],
            "lambda_max": eig[-1],
            **signs,
            "gap": lam * fa + (1 - lam) * fb - fm,
            "gap_tol": lam * ra + (1 - lam) * rb + rm + _combination_rounding(lam * fa, (1 - lam) * fb, fm),
            "finite_derived": jnp.all(jnp.isfinite(h)) & jnp.isfinite(fa) & jnp.isfinite(fb) & jnp.isfinite(fm),
            "finite_reference": jnp.asarray(True),
        }
        if self.claim.strict:
            null = vecs[:, 0] if basis is None else basis.matrix(vecs[:, 0])
            (fp, rp), (fq, rq) = (_with_rounding(f, z) for z in _flat_chord(x, null))
            stats["flat_gap"] = (fp + fq) / 2 - fa
            stats["flat_tol"] = (rp + rq) / 2 + ra + _combination_rounding(fp / 2, fq / 2, fa)
        return stats, (h, None)

    def judge(self, stats, tol):
        margin = stats["margin"]
        hess_bad = stats["n_neg"] > 0
        chord_bad = stats["gap"] < -stats["gap_tol"]
        failed = hess_bad | chord_bad
        if self.claim.strict:
            failed = failed | ((stats["n_pos"] < stats["n"]) & (stats["flat_gap"] <= stats["flat_tol"]))
        scale = np.maximum(np.maximum(np.abs(stats["lambda_max"]), margin), np.finfo(np.float64).tiny)
        informative = np.abs(stats["lambda_max"]) > margin
        badness = 10.0 * failed + 1.0 * informative + np.clip(-stats["lambda_min"] / scale, -1.0, 1.0)
        return failed, badness, np.zeros(failed.shape)

    def summarize(self, d: Derivation, run: Run):
        s, w, claim = run.stats, run.worst, self.claim
        i = int(np.argmax(run.badness))
        h = np.asarray(w.derived, dtype=np.float64)
        _, vecs = np.linalg.eigh((h + h.T) / 2)
        n = h.shape[0]
        margin = float(s["margin"][i])
        n_pos, n_neg = int(s["n_pos"][i]), int(s["n_neg"][i])
        null = vecs[:, 0] * np.sign(vecs[np.argmax(np.abs(vecs[:, 0])), 0]) if n_pos + n_neg < n else None
        basis = _symmetric_basis(d, np.shape(w.inputs[d.arg_names[d.wrt_index]]))
        if null is not None and basis is not None:  # the direction as a matrix, as the argument is written
            null = np.asarray(basis.matrix(null))
        spectrum = Spectrum(
            n=n,
            lambda_min=float(s["lambda_min"][i]),
            lambda_max=float(s["lambda_max"][i]),
            rank=n_pos + n_neg,
            margin=margin,
            found=classify(n_pos, n_neg, n),
            null_direction=null,
        )
        details = {
            "lambda_min": float(s["lambda_min"].min()),
            "min_chord_gap": float(s["gap"].min()),
            "singular_points": int((s["n_pos"] < s["n"]).sum()),
        }
        sign = "−" if claim.concave else ""
        word = claim.kind
        at = where(w.sizes, w.regime)
        if not run.failed.any():
            extra = ""
            if claim.strict and details["singular_points"]:
                extra = f"; ∇²({sign}f) singular at {details['singular_points']} points, curved along its null space"
            return (
                f"{word} on {run.trials} points: ∇²({sign}f) PSD (smallest eigenvalue {details['lambda_min']:.3g}, "
                f"within rounding of 0 at most), every chord above the graph "
                f"(min gap {details['min_chord_gap']:.3g}){extra}"
            ), {"spectrum": spectrum, "details": details}
        head = f"not {word} in {int(run.failed.sum())} of {run.trials} points ({failing_regimes_text(run)})"
        if n_neg:
            reason = f"∇²({sign}f) has eigenvalue {spectrum.lambda_min:.3g} < 0 at {at}"
        elif s["gap"][i] < -s["gap_tol"][i]:
            reason = f"the chord test fails (gap {s['gap'][i]:.3g} < 0) at {at}"
        else:
            reason = (
                f"∇²({sign}f) is singular (rank {n_pos} of {n}) and {sign}f is affine along its null direction "
                f"{_vec(null)} at {at} (midpoint gap {s['flat_gap'][i]:.2g}, rounding level {s['flat_tol'][i]:.2g})"
            )
        return f"{head}: {reason}", {"spectrum": spectrum, "details": details}


def _symmetric_basis(d: Derivation, shape: tuple[int, ...]) -> SymmetricBasis | None:
    """The basis of ``wrt``'s domain (:class:`SymmetricBasis`) when it is drawn as a symmetric matrix
    (``dc.symmetric``, ``dc.spd``) of ``shape``; ``None`` otherwise."""
    specs = dict(d.inputs.specs) if isinstance(d.inputs, Inputs) else {}
    return SymmetricBasis(shape[-1]) if isinstance(specs.get(d.arg_names[d.wrt_index]), Symmetric | SPD) else None


class SymmetricBasis:
    """The orthonormal basis ``E_ii``, ``(E_ij + E_ji)/√2`` (``i < j``) of the symmetric ``n × n`` matrices.

    A convexity claim over symmetric inputs is a claim on that subspace: ``−log det S`` is convex on the
    positive-definite matrices, while its Hessian over all ``n²`` entries, ``H[ij, kl] = S⁻¹_li S⁻¹_jk``, is
    negative along every antisymmetric direction ``E`` (``d²/dt² (−log det(I + tE)) = tr E² = −‖E‖²``),
    where no input is ever drawn. So the curvature checked is ``Qᵀ H Q`` (``Q`` this basis, ``n(n+1)/2``
    columns): ``(Qᵀ H Q)_{pq} = w_p w_q H̄[i,j,k,l]`` for ``p = (i ≤ j)``, ``q = (k ≤ l)``, ``H̄`` the average of
    ``H`` over the four index orders, ``w = 1`` on the diagonal and ``√2`` off it; the entries' rounding
    is carried the same way (each of the four terms weighs ``w_p w_q / 4``).
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.rows, self.cols = np.triu_indices(n)
        self.weights = np.where(self.rows == self.cols, 1.0, np.sqrt(2.0))

    def restrict(self, h):
        """``Qᵀ H Q`` of an ``n² × n²`` matrix ``H`` (traceable)."""
        n = self.n
        h4 = h.reshape(n, n, n, n)
        mean = (h4 + h4.transpose(1, 0, 2, 3) + h4.transpose(0, 1, 3, 2) + h4.transpose(1, 0, 3, 2)) / 4
        w = jnp.asarray(self.weights, h.dtype)
        return mean[self.rows, self.cols][:, self.rows, self.cols] * w[:, None] * w[None, :]

    def matrix(self, v):
        """``Q v``: the symmetric matrix (raveled, unit norm) of coordinates ``v``."""
        upper = (
            jnp.zeros((self.n, self.n), jnp.result_type(v))
            .at[self.rows, self.cols]
            .set(v / jnp.asarray(self.weights, jnp.result_type(v)))
        )
        return (upper + upper.T - jnp.diag(jnp.diag(upper))).ravel()


def _flat_chord(x, v):
    """The chord ``x ± s v`` along a (unit) null direction ``v``, ``s = max(1, ‖x‖∞)``."""
    s = jnp.maximum(1.0, jnp.max(jnp.abs(x)))
    v = v.reshape(jnp.shape(x))
    return x + s * v, x - s * v


def _vec(v, k: int = 6) -> str:
    if v is None:
        return "-"
    vals = ", ".join(f"{x:.2f}" for x in np.ravel(v)[:k])
    return f"[{vals}{', …' if np.size(v) > k else ''}]"


def check_convexity(d: Derivation, config: CheckConfig) -> Result:
    """Hessian PSD and chord test at every drawn point (strict: curvature along null directions)."""
    return run_batched(with_chord_inputs(d), config, Convexity(d.claim))


# ------------------------------------------------------------------ has a minimum


def _armijo(f, x, fx, g, p):
    """The largest ``α = 2^{-k}`` (``k < 40``) with ``f(x + αp) ≤ f(x) + 10⁻⁴ α ∇f·p``, or 0."""
    alphas = 2.0 ** -jnp.arange(BACKTRACKS, dtype=jnp.float64)
    values = jax.vmap(lambda a: f(x + a * p.reshape(jnp.shape(x))))(alphas)
    ok = jnp.isfinite(values) & (values <= fx + ARMIJO * alphas * jnp.vdot(g, p))
    return jnp.where(ok.any(), alphas[jnp.argmax(ok)], 0.0)


def _newton_step(f, x):
    """One damped Newton step with Armijo backtracking; where no Newton step is accepted (a Hessian
    that vanishes, as in saturated regions), a backtracked gradient step of up to ``max(1, ‖x‖∞)``.
    Returns the new point and the curvature ``‖∇²f(x)‖₂`` at the old one."""
    n = int(np.prod(jnp.shape(x)))
    fx = f(x)
    g = jax.grad(f)(x).reshape(n)
    h = _flat_hessian(f, x)
    eig = jnp.linalg.eigvalsh((h + h.T) / 2)
    mu = 2.0 * jnp.maximum(0.0, -eig[0]) + DAMPING * jnp.maximum(jnp.max(jnp.abs(eig)), 1e-300)
    p = -jnp.linalg.solve(h + mu * jnp.eye(n), g)
    p = jnp.where(jnp.vdot(g, p) < 0, p, -g)
    alpha = _armijo(f, x, fx, g, p)
    g_max = jnp.max(jnp.abs(g))
    q = -g * jnp.maximum(1.0, jnp.max(jnp.abs(x))) / jnp.where(g_max > 0, g_max, 1.0)
    beta = _armijo(f, x, fx, g, q)
    step = jnp.where(alpha > 0, alpha * p, beta * q)
    return x + step.reshape(jnp.shape(x)), jnp.max(jnp.abs(eig))


FAR_RADII = (1e1, 1e2, 1e3, 1e4, 1e6)
FAR_DIRECTIONS = 4


def _probed_words(stats: dict[str, np.ndarray]) -> str:
    """What the far probes found, for a claim that holds."""
    lower = int(np.asarray(stats["went_lower"], bool).sum())
    if not lower:
        return ", and no far probe finds f lower"
    return f"; from {lower} starts a far probe found f lower, and damped Newton settled again from there"


def _far_probe(f, x) -> tuple[jax.Array, jax.Array]:
    """The lowest of ``f(x ± r (1 + ‖x‖∞) v)`` over :data:`FAR_RADII` and ``v`` among ``x``'s own
    direction and :data:`FAR_DIRECTIONS` fixed ones (:func:`~derivcheck._checks.robust.fixed_direction`,
    normalized), with its point; non-finite values do not count.

    Damped Newton finds a stationary point near its start; a function unbounded below far away
    (``Σ w² + w³/100``, whose basin at 0 holds every start drawn from ``N(0, 1)``) must be seen as
    such. Both signs of each direction are tried: along one of them an odd power goes down.
    """
    n = int(np.prod(jnp.shape(x)))
    norm = jnp.sqrt(jnp.sum(x**2))
    own = jnp.where(norm > 0, x.reshape(n) / jnp.where(norm > 0, norm, 1.0), jnp.ones(n) / np.sqrt(n))
    fixed = [fixed_direction((n,), jnp.float64, phase=j) for j in range(FAR_DIRECTIONS)]
    dirs = jnp.stack([own] + [v / jnp.sqrt(jnp.sum(v**2)) for v in fixed])
    dirs = jnp.concatenate([dirs, -dirs])
    reach = (1.0 + jnp.max(jnp.abs(x))) * jnp.asarray(FAR_RADII)
    points = x.reshape(1, 1, n) + reach[None, :, None] * dirs[:, None, :]
    points = points.reshape(-1, *jnp.shape(x))
    values = jax.vmap(f)(points)
    values = jnp.where(jnp.isfinite(values), values, jnp.inf)
    i = jnp.argmin(values)
    return points[i].astype(x.dtype), values[i]


@dataclasses.dataclass(frozen=True)
class Minimum:
    """The family of claims "``f`` attains its infimum over ``wrt``"."""

    steps: int = 60
    again: bool = True
    """Whether the trial runs the second descent (from a lower far probe). Without it the trial
    computes only the first descent and the probes, and ``went_lower`` says where the second one
    would run (see :func:`check_has_minimum`)."""

    def extra_inputs(self, d, args):
        return {}

    def validate(self, d, args, extra):
        return _require_scalar_objective(d, args)

    def trial(self, d, args, extra):
        """Damped Newton from the drawn start; then, from the lowest of the far probes
        (:func:`_far_probe`) when it is lower than where Newton stopped, damped Newton again: a
        start in the basin of a local minimum must not hide that ``f`` goes lower far out."""
        f = _objective(d, args)
        x0 = args[d.wrt_index]
        f0, g0 = f(x0), jnp.max(jnp.abs(jax.grad(f)(x0)))
        first = self._descend(f, x0, g0)
        far, f_far = _far_probe(f, first["x"])
        lower = f_far < first["f_end"] - PROGRESS * (1 + jnp.abs(first["f_end"]))
        second = self._descend(f, jnp.where(lower, far, first["x"]), g0) if self.again else first
        stats = {k: jnp.where(lower, second[k], first[k]) for k in first if k != "x"}
        stats.update(
            {
                "went_lower": lower,
                "f_first": first["f_end"],
                "f_far": f_far,
                "f_start": f0,
                "norm_start": jnp.sqrt(jnp.sum(x0**2)),
                "input_size": jnp.asarray(sum(int(np.prod(jnp.shape(a))) for a in args)),
                "finite_derived": jnp.isfinite(f0),
                "finite_reference": jnp.asarray(True),
            }
        )
        return stats, (jnp.where(lower, second["x"], first["x"]), None)

    def _descend(self, f, x0, g0) -> dict:
        """:attr:`steps` damped Newton steps from ``x0``, and how they ended: settled at a stationary
        point (``‖∇f‖∞ ≤ 1e-7 max(1, g0)``, ``g0`` the gradient's size at the drawn start, also when
        this descent starts from a far probe), running off, or escaped (the module docstring)."""

        def step(x, _):
            nxt, curvature = _newton_step(f, x)
            return nxt, (jnp.sqrt(jnp.sum(nxt**2)), f(nxt), jnp.sqrt(jnp.sum((nxt - x) ** 2)), curvature)

        x, (norms, values, steps, curvatures) = jax.lax.scan(step, x0, None, length=self.steps)
        half = self.steps // 2
        stalled = steps[-1] <= SETTLED * (1 + norms[-1])
        g = jnp.max(jnp.abs(jax.grad(f)(x)))
        stationary = g <= STATIONARY * jnp.maximum(1.0, g0)
        # still moving out (‖x‖ up by more than 1e-6 relative) and still decreasing f (by more than 1e-6
        # relative): what a minimiser's rounding-level jitter never does
        growing = norms[-1] > norms[half] + PROGRESS * (1 + norms[half])
        decreasing = values[-1] < values[half] - PROGRESS * jnp.abs(values[half])
        running_off = ~stalled & growing & decreasing
        # or it already ran off: far out, lower, and on a plateau whose curvature has vanished (f flattened
        # to its infimum in float64, as a saturated logistic loss does), unlike a genuine minimiser
        h0, h = curvatures[0], curvatures[-1]  # at the start and at the last point stepped from
        norm0 = jnp.sqrt(jnp.sum(x0**2))
        # … and f does not rise farther out (at 2x): a minimiser whose curvature vanishes (Σ (w − 3)⁴ at w = 3)
        # sits far from a small start too, but f grows away from it
        flat_beyond = f(2 * x) <= values[-1] + PROGRESS * (1 + jnp.abs(values[-1]))
        escaped = (norms[-1] > 2 * jnp.maximum(1.0, norm0)) & (values[-1] < f(x0)) & (h <= FLAT * h0) & flat_beyond
        return {
            "x": x,
            "settled": ~running_off & ~escaped & stationary & jnp.isfinite(values[-1]),
            "running_off": running_off,
            "escaped": escaped & ~running_off,
            "unbounded": values[-1] < -1e100,
            "f_half": values[half],
            "f_end": values[-1],
            "norm_half": norms[half],
            "norm_end": norms[-1],
            "step_half": steps[half],
            "step_end": steps[-1],
            "grad_end": g,
        }

    def judge(self, stats, tol):
        """Fails where damped Newton shows that the infimum is not attained (it runs off, escapes to a
        plateau, or ``f`` is unbounded); the worst is the smallest such input (then the one running off
        farthest), the simplest counterexample. A trial that neither settles nor shows that is
        :meth:`undecided`."""
        failed = _against(stats)
        farthest = np.log1p(np.nan_to_num(stats["norm_end"], posinf=1e300)) / 1e3
        badness = (failed + 0.5 * self.undecided(stats)) * (1.0 + 1.0 / stats["input_size"] + farthest)
        return failed, badness, np.zeros(failed.shape)

    def undecided(self, stats) -> np.ndarray:
        """Trials where damped Newton neither reached a stationary point nor showed the infimum is not
        attained within :attr:`steps` steps (still moving, or oscillating): more steps decide them."""
        return ~np.asarray(stats["settled"], bool) & ~_against(stats)

    def summarize(self, d: Derivation, run: Run):
        s, w = run.stats, run.worst
        i = int(np.argmax(run.badness))
        details = {
            "steps": self.steps,
            "settled": int(s["settled"].sum()),
            "running_off": int(s["running_off"].sum()),
            "escaped": int(s["escaped"].sum()),
            "unbounded": int(s["unbounded"].sum()),
            "worst": {k: float(s[k][i]) for k in ("f_start", "f_half", "f_end", "norm_half", "norm_end", "step_end")},
        }
        open_ = self.undecided(s) & run.valid
        if not run.failed.any() and open_.any():
            j = int(np.argmax(np.where(open_, run.badness, -np.inf)))
            return (
                f"not decided on {int(open_.sum())} of {run.trials} trials: damped Newton neither settles nor runs "
                f"off in {self.steps} steps (last step {s['step_end'][j]:.2g}, f = {s['f_end'][j]:.4g}, "
                f"‖∇f‖∞ = {s['grad_end'][j]:.2g}) at {where(run.sizes[j], run.regimes[j])}; "
                f"steps={4 * self.steps} may settle it"
            ), {"details": details}
        if not run.failed.any():
            return (
                f"attained from all {run.trials} starts: damped Newton reaches a stationary point "
                f"(‖∇f‖∞ ≤ {STATIONARY:g} max(1, ‖∇f(x₀)‖∞); at most {s['grad_end'].max():.2g}) without running off"
                + _probed_words(s)
            ), {"details": details}
        far = (
            f"f is lower far from where damped Newton first stopped ({s['f_first'][i]:.3g} there, "
            f"{s['f_far'][i]:.3g} far out); from there, "
            if s["went_lower"][i]
            else ""
        )
        at = where(w.sizes, w.regime)
        head = f"in {int(run.failed.sum())} of {run.trials} trials ({failing_regimes_text(run)})"
        half = self.steps // 2
        if s["unbounded"][i]:
            return f"unbounded below {head}: {far}f reaches {s['f_end'][i]:.3g} at {at}", {"details": details}
        if s["running_off"][i]:
            direction = np.asarray(w.derived).ravel()
            direction = direction / max(np.linalg.norm(direction), 1e-300)
            return (
                f"the infimum is not attained {head}: {far}damped Newton keeps decreasing f "
                f"({s['f_half'][i]:.3g} at step {half} → {s['f_end'][i]:.3g} at step {self.steps}) while ‖x‖ grows "
                f"from {s['norm_half'][i]:.3g} (by {s['norm_end'][i] - s['norm_half'][i]:.2g}) with steps that do not "
                f"settle (last {s['step_end'][i]:.2g}), running off along {_vec(direction)} at {at}"
            ), {"details": details}
        if s["escaped"][i]:
            direction = np.asarray(w.derived).ravel()
            direction = direction / max(np.linalg.norm(direction), 1e-300)
            return (
                f"the infimum is not attained {head}: {far}damped Newton ran off to ‖x‖ = {s['norm_end'][i]:.3g} "
                f"(from a start of norm {s['norm_start'][i]:.3g}) where f = {s['f_end'][i]:.3g} "
                f"(from {s['f_start'][i]:.3g}) has flattened — its curvature vanished (float64 sees the limit), "
                f"along {_vec(direction)} at {at}"
            ), {"details": details}
        return (
            f"no minimum found {head}: {far}damped Newton does not settle in {self.steps} steps "
            f"(last step {s['step_end'][i]:.2g}, f = {s['f_end'][i]:.4g}) at {at}"
        ), {"details": details}


def _against(stats) -> np.ndarray:
    """Trials whose descent shows the infimum is not attained: running off, escaped, unbounded, or not
    settled after a far probe found ``f`` lower than where the first descent stopped (wells that deepen
    farther out, ``Σ w sin w``)."""
    keys = ("running_off", "escaped", "unbounded")
    shown = np.logical_or.reduce([np.asarray(stats[k], bool) for k in keys])
    return shown | (np.asarray(stats["went_lower"], bool) & ~np.asarray(stats["settled"], bool))


def check_has_minimum(d: Derivation, config: CheckConfig) -> Result:
    """Run damped Newton from every drawn start; the infimum must be attained (iterates settle).

    First without the second descent (:attr:`Minimum.again`): where no far probe is lower than
    where Newton stopped — the usual case — the second descent would start where the first
    stopped and change nothing, so that result is the check's, for half the program (compiled
    and run: under ``vmap`` a descent taken by no trial still runs for every one). Where some far
    probe is lower, the same trials (same seed, same draws) are checked again with both descents.
    """
    first = run_batched(d, config, Minimum(steps=d.claim.steps, again=False))
    if first.per_trial is None or not first.per_trial["went_lower"].any():
        return first
    return run_batched(d, config, Minimum(steps=d.claim.steps))


# ------------------------------------------------------------------------ descent


def _step_index(d: Derivation) -> int:
    try:
        return resolve_wrt(d.claim.step, d.arg_names, d.name)
    except DerivationError as exc:
        raise CheckError(str(exc).replace("wrt", "step", 1)) from exc


@dataclasses.dataclass(frozen=True)
class Descent:
    """The family of claims "this update decreases ``of`` for every small enough step size"."""

    grid: int = 48

    def extra_inputs(self, d, args):
        return {}

    def validate(self, d, args, extra):
        s, i = _step_index(d), d.wrt_index
        if s == i:
            raise CheckError("descent: step= and wrt= name the same argument")
        if args[s].shape != ():
            raise CheckError(f"descent: the step size {d.arg_names[s]} must be a scalar, got shape {args[s].shape}")
        out = eval_shape_or_raise(f"of= {fname(d.claim.of)}", d.claim.of, *_without_step(args, s))
        if getattr(out, "shape", None) != ():
            raise CheckError(f"of= {fname(d.claim.of)} must return a scalar loss")
        new = eval_shape_or_raise("the derived update", d.derived, *args)
        require_float_array("the derived update", new)
        if new.shape != args[i].shape:
            raise CheckError(f"the derived update returns shape {new.shape}, expected the shape {args[i].shape} of wrt")
        return str(new.dtype)

    def _sides(self, d, args):
        """``(loss, update, x, η_0)``: the objective of ``wrt`` alone and the update as a function of ``η``."""
        s, i = _step_index(d), d.wrt_index
        rest = _without_step(args, s)
        j = i if i < s else i - 1

        def loss(z):
            return d.claim.of(*rest[:j], z, *rest[j + 1 :])

        def update(eta):
            return d.derived(*args[:s], eta, *args[s + 1 :])

        return loss, update, args[i], args[s]

    def trial(self, d, args, extra):
        loss, update, x, eta0 = self._sides(d, args)
        at_zero = update(jnp.zeros_like(eta0))
        _, direction = jax.jvp(update, (jnp.zeros_like(eta0),), (jnp.ones_like(eta0),))
        g = jax.grad(loss)(x)
        eps = jnp.finfo(jnp.result_type(g)).eps
        slope = jnp.vdot(g, direction)
        f0 = loss(x)
        etas = eta0 * 2.0 ** -jnp.arange(self.grid, dtype=jnp.float64)
        after = jax.vmap(lambda e: loss(update(e)))(etas)
        change = after - f0
        resolvable = jnp.abs(change) > ROUNDING_FACTOR * eps * jnp.maximum(jnp.abs(f0), jnp.abs(after))
        tail_good = jnp.flip(jnp.cumprod(jnp.flip((change < 0) | ~resolvable)))
        gn = g / jnp.where(jnp.max(jnp.abs(g)) > 0, jnp.max(jnp.abs(g)), 1.0)  # rescaled: no underflow
        dn = direction / jnp.where(jnp.max(jnp.abs(direction)) > 0, jnp.max(jnp.abs(direction)), 1.0)
        norm = jnp.sqrt(jnp.sum(gn**2)) * jnp.sqrt(jnp.sum(dn**2))
        stats = {
            "slope": slope,
            "slope_tol": ROUNDING_FACTOR * eps * jnp.sum(jnp.abs(g * direction)),
            "grad_max": jnp.max(jnp.abs(g)),
            # rounding in ∇f, measured (see the module docstring)
            "grad_noise": MCA_FACTOR * rounding_spread(jax.grad(loss), x),
            "dir_l1": jnp.sum(jnp.abs(direction)),
            # the slope in units of ‖∇f‖∞ ‖u'(0)‖∞: its sign survives where the plain product underflows
            "slope_unit": jnp.vdot(gn, dn),
            "slope_unit_tol": ROUNDING_FACTOR * eps * jnp.sum(jnp.abs(gn * dn)),
            "dir_unit_l1": jnp.sum(jnp.abs(dn)),
            "cos": jnp.where(norm > 0, jnp.vdot(gn, dn) / jnp.where(norm > 0, norm, 1.0), 0.0),
            "zero_step_err": jnp.max(jnp.abs(at_zero - x), initial=0.0),
            "x_scale": jnp.max(jnp.abs(x), initial=0.0),
            "eta_max": jnp.max(jnp.where((tail_good > 0) & (change < 0), etas, 0.0)),
            "finite_derived": jnp.all(jnp.isfinite(direction)) & jnp.all(jnp.isfinite(at_zero)),
            "finite_reference": jnp.all(jnp.isfinite(g)),
        }
        return stats, (direction, -g)

    def judge(self, stats, tol):
        """Fails where ``∇f ≠ 0`` beyond rounding and ``∇f · u'(0) ≥ −(rounding)``, or ``u(0) ≠ x``."""
        noise = stats["grad_noise"]
        stationary = stats["grad_max"] <= noise
        # judged in units of ‖∇f‖∞ ‖u'(0)‖∞ (a saturated loss has ∇f ~ 1e-300: ∇f · u'(0) underflows to 0)
        unit_noise = noise / np.maximum(stats["grad_max"], np.finfo(np.float64).tiny)
        slope_tol = stats["slope_unit_tol"] + unit_noise * stats["dir_unit_l1"]
        ascent = ~stationary & (stats["slope_unit"] >= -slope_tol)
        moves = exceeds(stats["zero_step_err"], stats["x_scale"], tol)
        failed = ascent | moves
        return failed, stats["cos"] + 10.0 * failed, np.where(failed, 1.0, 0.0)

    def summarize(self, d: Derivation, run: Run):
        s, w = run.stats, run.worst
        i = int(np.argmax(run.badness))
        moving = s["grad_max"] > 0
        details = {
            "max_cos": float(s["cos"][moving].max()) if moving.any() else None,
            "stationary_points": int((~moving).sum()),
            "eta_max_median": float(np.median(s["eta_max"][moving])) if moving.any() else None,
        }
        at = where(w.sizes, w.regime)
        if not run.failed.any():
            return (
                f"decreases of= {fname(d.claim.of)} for small steps at all {run.trials} points: "
                f"d/dη f(update) < 0 at η = 0 (cos(∇f, direction) ≤ {details['max_cos']:.3g}); the largest grid "
                f"step from which every smaller one decreases f has median {details['eta_max_median']:.2g}"
                + (f"; {details['stationary_points']} points stationary" if details["stationary_points"] else "")
            ), {"details": details}
        head = f"in {int(run.failed.sum())} of {run.trials} points ({failing_regimes_text(run)})"
        if s["zero_step_err"][i] > 0 and exceeds(s["zero_step_err"][i : i + 1], s["x_scale"][i : i + 1], run.tol)[0]:
            return (
                f"the update does not return the point at step size 0 {head} "
                f"(moves it by {s['zero_step_err'][i]:.3g}) at {at}"
            ), {"details": details}
        return (
            f"does not decrease of= {fname(d.claim.of)} for small steps {head}: d/dη f(update) at η = 0 is "
            f"{s['slope'][i]:.3g} ≥ 0 (cos(∇f, direction) = {s['cos'][i]:+.3f}) at {at}"
        ), {"details": details}


def _without_step(args: tuple, s: int) -> tuple:
    return (*args[:s], *args[s + 1 :])


def check_descent(d: Derivation, config: CheckConfig) -> Result:
    """The update's directional derivative of ``of`` at step 0 must be negative (where ``∇of ≠ 0``)."""
    return run_batched(d, config, Descent())


# ----------------------------------------------------------------------- Kind rows

KINDS = (  # judged by their own statistics: not shrunk
    Kind(Convex, check_convexity, reference="jax.hessian"),
    Kind(HasMinimum, check_has_minimum, reference="damped Newton"),
    Kind(DescentClaim, check_descent, reference="jax.jvp"),
)
