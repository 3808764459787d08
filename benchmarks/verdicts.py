"""Planted set: derivations as users bring them, right and wrong, and whether each verdict is the expected one.

Issue #17 asks for the closing numbers "for the whole catalog and your own planted set: wrong caught, right
held, inconclusive, and the failing/passing time ratio". The catalog's are ``derivcheck run --all``'s; this
script is the planted set. It declares, in its own :class:`derivcheck.Registry` (nothing reaches the default
registry), derivations grouped by what makes them hard to judge:

* ``saturated``: sigmoid / softplus / log-sum-exp written the usual way (``1/(1 + exp(−t))``, whose
  ``exp(−t)`` reaches ~1e300 in the ``large`` regime and is only inverted), a clipped probability (wrong only
  where the sigmoid saturates), a logistic Hessian-vector product, a definiteness claim;
* ``tiny``: regime ``tiny`` (inputs ~1e-4, outputs ~1e-8 to 1e-12), factor errors at that scale;
* ``small_entries``: a gradient and a Hessian wrong by 50 % only in entries 1e8× smaller than the largest;
* ``cancellation``: ``softmax − y``, centred squares, the softmax VJP: entries that are differences of
  near-equal numbers; the right ones must hold;
* ``summation_order``: a right formula summed sorted, reversed or pairwise instead of as JAX sums;
* ``degenerate``: the ``constant`` regime, relu/abs/max kinks hit exactly, singular matrices for ``det``:
  the right ones hold with skipped-draw notes, the wrong ones at the kink fail;
* ``reference``: a ``jax.custom_jvp`` reference whose derivative rule is accurate to only ~7e-7 relative
  (the digamma series cut after ``x⁻⁶``): the exact formula is expected ``inconclusive``, wrong ones ``fails``;
* ``pytree``: a layer-norm backward (three cotangents) and a dict-of-parameters gradient, one leaf wrong;
* ``float32``: float32 inputs, judged at float32 precision (one gradient whose values all lie below ``atol``:
  ``inconclusive``);
* ``domain``: a Gaussian log-density through a Cholesky factor at a covariance of condition 1e14, where the
  input twin the conditioning pass perturbs is no longer positive definite (its Cholesky NaN);
* ``beyond``: limits (to 0, from tiny starts, an overstated order, an exact order, an oscillation, a wrong
  limit that levels off) and existence of a minimum
  (one far from the starts with vanishing curvature, an objective unbounded only far out).

Every claim kind of the differential family is present (gradient, jacobian, hessian, vjp, jvp) and the
definite kind. Each right derivation is checked on seeds ``0..4`` (``--seeds``), each wrong or
inconclusive one on seed 0. The table gives group, derivation, claim, expected, outcome(s), trials used
(fewer than asked when degenerate draws were skipped, more when rounded up to a multiple of the size sets ×
regimes) and the seconds of its first, cold check; the summary gives *wrong caught* k/n, *right held* k/n
(over derivation × seed), *inconclusive* k/n and the list of *unexpected* verdicts (empty when the package is
right on the whole set).

The failing/passing time ratio is the median over groups of (median seconds of a wrong derivation's check) ÷
(median seconds of a right one's first-seed check). Both are cold in-process: every derivation is new, so its
first check compiles; no persistent compilation cache (``DERIVCHECK_NO_CACHE=1``), no repair search
(``DERIVCHECK_SUGGEST=0``).

Not a test: ``tests/test_verdicts_benchmark.py`` runs it ``--tiny``. Usage::

    python benchmarks/verdicts.py                         # the whole set, 5 seeds, 100 trials (minutes)
    python benchmarks/verdicts.py --groups saturated,degenerate --seeds 3 --json out.json
    python benchmarks/verdicts.py --tiny                  # three groups, one pair each, 20 trials, 1 seed
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

os.environ.setdefault("DERIVCHECK_NO_CACHE", "1")  # cold compiles, as a new user's first run
os.environ.setdefault("DERIVCHECK_SUGGEST", "0")  # the repair search is timed by benchmarks/mutations.py

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln

import derivcheck as dc

EXPECTED = ("holds", "fails", "inconclusive")
COLUMNS = ("group", "derivation", "claim", "expected", "outcome(s)", "trials used", "seconds (cold)")
TINY_GROUPS = ("saturated", "degenerate", "reference")


@dataclasses.dataclass
class Planted:
    """One planted derivation: its group, the verdict a sound checker gives, and why."""

    group: str
    derivation: dc.Derivation
    expected: str
    why: str


class PlantedSet:
    """Collects the planted derivations of one registry: ``right``, ``wrong``, ``doubtful`` decorate."""

    def __init__(self) -> None:
        self.registry = dc.Registry()
        self.items: list[Planted] = []

    def _add(self, group: str, expected: str, decorator: Callable, why: str) -> Callable:
        def register(fn: Callable) -> dc.Derivation:
            d = decorator(registry=self.registry, name=f"{group}.{fn.__name__}")(fn)
            self.items.append(Planted(group, d, expected, why))
            return d

        return register

    def right(self, group: str, decorator: Callable, why: str = "") -> Callable:
        return self._add(group, "holds", decorator, why)

    def wrong(self, group: str, decorator: Callable, why: str) -> Callable:
        return self._add(group, "fails", decorator, why)

    def doubtful(self, group: str, decorator: Callable, why: str) -> Callable:
        """A formula the evidence cannot decide — its reference is the inaccurate side, or no trial could
        refute it: ``inconclusive``."""
        return self._add(group, "inconclusive", decorator, why)


def _bind(factory: Callable, *args, **kwargs) -> Callable:
    """``factory(*args, **kwargs, registry=…, name=…)``: a decorator of :mod:`derivcheck` with its options so far."""
    return lambda **more: factory(*args, **kwargs, **more)


# ---- saturated inputs: huge intermediates that are only inverted, exponentiated or logged


def naive_sigmoid(t):
    """``1/(1 + exp(−t))`` as users write it: ``exp(−t)`` ~1e300 at ``t ≈ −700``, only inverted."""
    return 1.0 / (1.0 + jnp.exp(-t))


def softplus_sum(w, x):
    return jnp.sum(jax.nn.softplus(x * w))


def logistic_nll(theta, X):
    return jnp.sum(jnp.logaddexp(0.0, X @ theta))


def lse(z):
    return jax.nn.logsumexp(z)


def _saturated(p: PlantedSet) -> None:
    vec = dc.inputs(w=dc.normal("n"), x=dc.normal("n"), sizes=[{"n": 3}, {"n": 32}], regimes=("large", "typical"))
    mat = dc.inputs(theta=dc.normal("d"), X=dc.normal("m", "d"), sizes=[{"m": 9, "d": 4}], regimes=("large",))
    logits = dc.inputs(z=dc.normal("C"), sizes=[{"C": 4}, {"C": 17}], regimes=("large", "typical"))
    g = _bind(dc.gradient, of=softplus_sum, wrt="w", inputs=vec)

    @p.right("saturated", g)
    def softplus_grad(w, x):
        return x * naive_sigmoid(x * w)

    @p.wrong("saturated", g, "twice the gradient")
    def softplus_grad_twice(w, x):
        return 2.0 * x / (1.0 + jnp.exp(-x * w))

    @p.wrong("saturated", g, "probability clipped to [1e-3, 1 − 1e-3]: wrong only where the sigmoid saturates")
    def softplus_grad_clipped(w, x):
        return x * jnp.clip(naive_sigmoid(x * w), 1e-3, 1 - 1e-3)

    h = _bind(dc.hessian, of=logistic_nll, inputs=mat, hvp=True)

    def s_of(z):
        sig = naive_sigmoid(z)
        return sig * (1.0 - sig)

    @p.right("saturated", h)
    def logistic_hvp(theta, X, v):
        return X.T @ (s_of(X @ theta) * (X @ v))

    @p.wrong("saturated", h, "last row of the Hessian-vector product × 1.5")
    def logistic_hvp_last_row(theta, X, v):
        return (X.T @ (s_of(X @ theta) * (X @ v))).at[-1].multiply(1.5)

    j = _bind(dc.jacobian, of=jax.nn.softmax, inputs=logits)

    @p.right("saturated", _bind(dc.gradient, of=lse, inputs=logits))
    def lse_grad(z):
        e = jnp.exp(z - jnp.max(z))
        return e / jnp.sum(e)

    @p.right("saturated", j)
    def softmax_jacobian(z):
        s = jnp.exp(z - jnp.max(z)) / jnp.sum(jnp.exp(z - jnp.max(z)))
        return jnp.diag(s) - jnp.outer(s, s)

    @p.wrong("saturated", j, "diag(s) − s sᵀ / 2: the outer product halved")
    def softmax_jacobian_half(z):
        s = jax.nn.softmax(z)
        return jnp.diag(s) - 0.5 * jnp.outer(s, s)

    pd = _bind(dc.definite, "pd", hvp=True, inputs=mat)

    @p.right("saturated", pd)
    def regularised_hvp_pd(theta, X, v):
        s = naive_sigmoid(X @ theta)
        return X.T @ (s * (1 - s) * (X @ v)) + 1e-3 * v

    @p.wrong("saturated", pd, "rank one (PSD, singular) declared PD, with the same huge intermediate")
    def rank_one_hvp_pd(theta, X, v):
        u = X[0]
        return u * (u @ v) * (1 + naive_sigmoid(X @ theta)[0])


# ---- tiny inputs and outputs


def _tiny(p: PlantedSet) -> None:
    tiny = dc.inputs(x=dc.normal("n"), sizes=[{"n": 2}, {"n": 9}], regimes=("tiny",))
    g = _bind(dc.gradient, of=lambda x: jnp.sum(x**3), inputs=tiny)

    @p.right("tiny", g)
    def cube_grad(x):
        return 3 * x**2

    @p.wrong("tiny", g, "a factor 3.6 on gradients of size ~1e-8")
    def cube_grad_factor(x):
        return 3.6 * 3 * x**2

    def x_tanh(x):
        return x * jnp.tanh(x)

    t = _bind(dc.jvp, of=x_tanh, inputs=tiny)

    @p.right("tiny", t)
    def x_tanh_jvp(x, v):
        th = jnp.tanh(x)
        return (th + x * (1 - th**2)) * v

    @p.wrong("tiny", t, "the product rule's second term × 1.5 (outputs ~1e-4)")
    def x_tanh_jvp_factor(x, v):
        th = jnp.tanh(x)
        return (th + 1.5 * x * (1 - th**2)) * v

    hs = _bind(dc.hessian, of=lambda x: jnp.sum(jnp.sin(x) * x**2), inputs=tiny)

    @p.right("tiny", hs)
    def sin_x2_hessian(x):
        return jnp.diag(2 * jnp.sin(x) + 4 * x * jnp.cos(x) - x**2 * jnp.sin(x))

    @p.wrong("tiny", hs, "4x cos x written 2x cos x: a factor error where every entry is ~1e-4")
    def sin_x2_hessian_factor(x):
        return jnp.diag(2 * jnp.sin(x) + 2 * x * jnp.cos(x) - x**2 * jnp.sin(x))


# ---- small entries: wrong only where the entries are 1e8 times smaller than the largest

SCALES = jnp.array([1.0, 2.0, 1e-8, 3e-8, 1.0, 5e-9])


def weighted_square(x):
    return 0.5 * jnp.sum(SCALES * x**2)


def weighted_quartic(x):
    return jnp.sum(SCALES * (0.5 * x**2 + x**4 / 12))


def _small_entries(p: PlantedSet) -> None:
    six = dc.inputs(x=dc.normal("n"), sizes=[{"n": 6}])
    small = SCALES < 1e-3
    g = _bind(dc.gradient, of=weighted_square, inputs=six)

    @p.right("small_entries", g)
    def scaled_grad(x):
        return x * SCALES

    @p.wrong("small_entries", g, "× 1.5 in the entries ~1e-8: 5e-9 of the largest, inside a norm-wise rtol")
    def scaled_grad_small_wrong(x):
        return SCALES * x * jnp.where(small, 1.5, 1.0)

    h = _bind(dc.hessian, of=weighted_quartic, inputs=six)

    @p.right("small_entries", h)
    def quartic_hessian(x):
        return jnp.diag(SCALES * (1 + x**2))

    @p.wrong("small_entries", h, "the x² term dropped in the small entries only")
    def quartic_hessian_small_wrong(x):
        return jnp.diag(SCALES * (1 + jnp.where(small, 0.0, x**2)))


# ---- cancellation: entries that are differences of near-equal numbers


def centered_square(x):
    return 0.5 * jnp.sum((x - jnp.mean(x)) ** 2)


def softmax_ce(z, y):
    return jax.nn.logsumexp(z) - jnp.dot(z, y)


def _cancellation(p: PlantedSet) -> None:
    centered = dc.inputs(x=dc.normal("n"), sizes=[{"n": 5}, {"n": 40}])
    onehot = dc.inputs(z=dc.normal("C"), y=dc.one_hot(classes="C"), sizes=[{"C": 3}, {"C": 30}])
    logits = dc.inputs(z=dc.normal("C"), sizes=[{"C": 3}, {"C": 30}])
    c = _bind(dc.gradient, of=centered_square, inputs=centered)

    @p.right("cancellation", c)
    def centered_grad(x):
        return (x.shape[0] * x - jnp.sum(x)) / x.shape[0]

    @p.wrong("cancellation", c, "(x − x̄)(1 − 1/n): the mean's own derivative counted")
    def centered_grad_shrunk(x):
        return (x - jnp.mean(x)) * (1 - 1 / x.shape[0])

    s = _bind(dc.gradient, of=softmax_ce, wrt="z", inputs=onehot)

    @p.right("cancellation", s)
    def softmax_ce_grad(z, y):
        e = jnp.exp(z - jnp.max(z))
        return e / jnp.sum(e) - y

    @p.wrong("cancellation", s, "softmax − y/2")
    def softmax_ce_grad_half(z, y):
        e = jnp.exp(z - jnp.max(z))
        return e / jnp.sum(e) - 0.5 * y

    v = _bind(dc.vjp, of=jax.nn.softmax, inputs=logits)

    @p.right("cancellation", v)
    def softmax_vjp(z, ct):
        s = jax.nn.softmax(z)
        return s * ct - s * jnp.dot(s, ct)

    @p.wrong("cancellation", v, "the cotangent's plain mean subtracted instead of its s-weighted mean")
    def softmax_vjp_mean(z, ct):
        s = jax.nn.softmax(z)
        return s * (ct - jnp.mean(ct))


# ---- summation order: a right formula summed otherwise than JAX sums


def pairwise_sum(x):
    """Sum by halving (pads with zeros to a power of two): another rounding than ``jnp.sum``."""
    n = 1 << max(0, (x.shape[0] - 1).bit_length())
    y = jnp.concatenate([x, jnp.zeros(n - x.shape[0], x.dtype)])
    while y.shape[0] > 1:
        y = y[0::2] + y[1::2]
    return y[0]


def sum_squared(x):
    return jnp.sum(x) ** 2


def x_times_sum(x):
    return x * jnp.sum(x)


def _summation_order(p: PlantedSet) -> None:
    vec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 7}, {"n": 64}])
    g = _bind(dc.gradient, of=sum_squared, inputs=vec)

    @p.right("summation_order", g)
    def sum_squared_grad_sorted(x):
        return 2 * jnp.sum(jnp.sort(x)) * jnp.ones_like(x)

    @p.right("summation_order", g)
    def sum_squared_grad_reversed(x):
        return 2 * jnp.sum(x[::-1]) * jnp.ones_like(x)

    @p.wrong("summation_order", g, "one term left out of the sum (off by one)")
    def sum_squared_grad_off_by_one(x):
        return 2 * jnp.sum(x[1:]) * jnp.ones_like(x)

    t = _bind(dc.jvp, of=x_times_sum, inputs=vec)

    @p.right("summation_order", t)
    def x_times_sum_jvp_pairwise(x, v):
        return v * pairwise_sum(x) + x * pairwise_sum(v)

    @p.wrong("summation_order", t, "the second term of the product rule dropped")
    def x_times_sum_jvp_one_term(x, v):
        return v * pairwise_sum(x)

    j = _bind(dc.jacobian, of=jnp.cumsum, inputs=vec)

    @p.right("summation_order", j)
    def cumsum_jacobian(x):
        return jnp.tril(jnp.ones((x.shape[0], x.shape[0]), x.dtype))

    @p.wrong("summation_order", j, "strictly lower triangular: the diagonal left out")
    def cumsum_jacobian_strict(x):
        return jnp.tril(jnp.ones((x.shape[0], x.shape[0]), x.dtype), -1)


# ---- degenerate draws: exact kinks, all-equal vectors, singular matrices

ALPHA = 0.01


def leaky_relu(z):
    return jnp.where(z > 0, z, ALPHA * z)


def first_entry_zero(key):
    """Five entries on ``[−4, 0)``, the first exactly 0: every trial sits on LeakyReLU's kink."""
    z = -jax.random.uniform(key, (5,), minval=1e-3, maxval=4.0)
    return (z.at[0].set(0.0),)


def zeros_sometimes(key):
    """Four normal entries, two of them exactly 0 in about half of the trials."""
    k1, k2 = jax.random.split(key)
    x = jax.random.normal(k1, (4,))
    return (jnp.where((jax.random.uniform(k2) < 0.5) & (jnp.arange(4) < 2), 0.0, x),)


def _causal_scores(Q, K):
    S = Q @ K.T / jnp.sqrt(Q.shape[1])
    return jnp.where(jnp.tril(jnp.ones((S.shape[0], S.shape[0]), bool)), S, -jnp.inf)


def causal_attention_loss(Q, K, V):
    return jnp.sum((jax.nn.softmax(_causal_scores(Q, K), axis=-1) @ V) ** 2)


def _causal_attention_dq(Q, K, V):
    P = jax.nn.softmax(_causal_scores(Q, K), axis=-1)
    dP = (2 * P @ V) @ V.T
    return (P * (dP - (dP * P).sum(-1, keepdims=True))) @ K / jnp.sqrt(Q.shape[1])


def _degenerate(p: PlantedSet) -> None:
    j = _bind(dc.jacobian, of=leaky_relu, wrt="z", inputs=first_entry_zero)

    @p.right("degenerate", j, "JAX's own convention at the kink (slope α at 0)")
    def leaky_jacobian(z):
        return ALPHA * jnp.eye(z.shape[0])

    @p.wrong("degenerate", j, "2α·I: wrong in every entry, also away from the kink")
    def leaky_jacobian_twice(z):
        return 2 * ALPHA * jnp.eye(z.shape[0])

    @p.wrong("degenerate", j, "α·ones: off-diagonal entries")
    def leaky_jacobian_ones(z):
        return ALPHA * jnp.ones((z.shape[0], z.shape[0]))

    relu = _bind(dc.gradient, of=lambda x: jnp.sum(jax.nn.relu(x)), inputs=zeros_sometimes)

    @p.right("degenerate", relu, "the other subgradient at 0: the trials at 0 are skipped with a note")
    def relu_grad_right_slope(x):
        return (x >= 0).astype(x.dtype)

    @p.wrong("degenerate", relu, "the indicator of x < 0")
    def relu_grad_flipped(x):
        return (x < 0).astype(x.dtype)

    ab = _bind(dc.gradient, of=lambda x: jnp.sum(jnp.abs(x)), inputs=zeros_sometimes)

    @p.right("degenerate", ab, "sign(0) = 0: a subgradient")
    def abs_grad_sign(x):
        return jnp.sign(x)

    @p.wrong("degenerate", ab, "the sign dropped: right only where x > 0")
    def abs_grad_unsigned(x):
        return jnp.ones_like(x)

    mx = _bind(dc.gradient, of=jnp.max, inputs=dc.inputs(x=dc.normal("n"), sizes=[{"n": 7}]))

    @p.right("degenerate", mx, "one of the tied pieces in the constant regime")
    def max_grad_one_hot(x):
        return jax.nn.one_hot(jnp.argmax(x), x.shape[0])

    @p.wrong("degenerate", mx, "one_hot of argmin")
    def max_grad_argmin(x):
        return jax.nn.one_hot(jnp.argmin(x), x.shape[0])

    det = _bind(
        dc.gradient,
        of=jnp.linalg.det,
        inputs=dc.inputs(A=dc.normal("n", "n"), sizes=[{"n": 2}, {"n": 3}], regimes=("typical", "constant")),
    )

    @p.right("degenerate", det, "det(A) A⁻ᵀ: NaN at a singular A, skipped with a note")
    def det_grad(A):
        return jnp.linalg.det(A) * jnp.linalg.inv(A).T

    @p.wrong("degenerate", det, "the transpose forgotten")
    def det_grad_untransposed(A):
        return jnp.linalg.det(A) * jnp.linalg.inv(A)

    det8 = _bind(
        dc.gradient,
        of=jnp.linalg.det,
        inputs=dc.inputs(A=dc.normal("n", "n"), sizes=[{"n": 8}], regimes=("typical", "constant")),
    )

    @p.right("degenerate", det8, "det(A) A⁻ᵀ at n = 8: a rank-one constant A, probed along a full-rank direction")
    def det_grad_8(A):
        return jnp.linalg.det(A) * jnp.linalg.inv(A).T

    attention = _bind(
        dc.gradient,
        of=causal_attention_loss,
        wrt="Q",
        inputs=dc.inputs(
            Q=dc.normal("T", "d"), K=dc.normal("T", "d"), V=dc.normal("T", "d"), sizes=[{"T": 8, "d": 13}]
        ),
    )

    @p.right("degenerate", attention, "a causal mask of −inf: no result perturbed into NaN by the rounding pass")
    def causal_attention_dq(Q, K, V):
        return _causal_attention_dq(Q, K, V)

    @p.wrong("degenerate", attention, "the 1/√d of the scores forgotten in the backward pass")
    def causal_attention_dq_unscaled(Q, K, V):
        return _causal_attention_dq(Q, K, V) * jnp.sqrt(Q.shape[1])

    cs = _bind(dc.gradient, of=centered_square, inputs=dc.inputs(x=dc.normal("n"), regimes=("constant", "typical")))

    @p.right("degenerate", cs, "x − x̄ is exactly 0 on every constant vector")
    def centered_grad_constant(x):
        return x - jnp.mean(x)


# ---- references less accurate than the formula


def psi_asymptotic(x):
    """Digamma's asymptotic series cut after ``x⁻⁶``: error ``≈ 1/(240 x⁸)``, up to ~7e-7 relative on [3, 20]."""
    return jnp.log(x) - 1 / (2 * x) - 1 / (12 * x**2) + 1 / (120 * x**4) - 1 / (252 * x**6)


@jax.custom_jvp
def lgamma_rough(x):
    """``gammaln`` with accurate values and a derivative rule accurate to only ~7e-7 relative."""
    return gammaln(x)


@lgamma_rough.defjvp
def _lgamma_rough_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return lgamma_rough(x), psi_asymptotic(x) * dx


def sum_lgamma_rough(x):
    return jnp.sum(lgamma_rough(x))


def _reference(p: PlantedSet) -> None:
    pos = dc.inputs(x=dc.positive("n", low=3.0, high=20.0), sizes=[{"n": 4}, {"n": 7}], regimes=("typical",))
    g = _bind(dc.gradient, of=sum_lgamma_rough, inputs=pos)
    why = "ψ(x) exact; jax.grad follows the rough custom_jvp rule (~7e-7 off)"

    @p.doubtful("reference", g, why)
    def lgamma_grad(x):
        return digamma(x)

    @p.doubtful("reference", _bind(dc.vjp, of=lgamma_rough, inputs=pos), why)
    def lgamma_vjp(x, ct):
        return ct * digamma(x)

    @p.doubtful("reference", _bind(dc.jvp, of=lgamma_rough, inputs=pos), why)
    def lgamma_jvp(x, t):
        return digamma(x) * t

    @p.wrong("reference", g, "the series' leading term alone: 10 % off")
    def lgamma_grad_log(x):
        return jnp.log(x)

    @p.wrong("reference", g, "ψ(x) + 1e-6/x: as small as the reference's own error, on the other side")
    def lgamma_grad_slightly_off(x):
        return digamma(x) + 1e-6 / x

    @p.right("reference", _bind(dc.gradient, of=lambda x: jnp.sum(gammaln(x)), inputs=pos), "accurate reference")
    def lgamma_grad_accurate_ref(x):
        return digamma(x)


# ---- pytrees and VJPs


def layer_norm(x, gamma, beta):
    mu = jnp.mean(x, -1, keepdims=True)
    return gamma * (x - mu) / jnp.sqrt(jnp.mean((x - mu) ** 2, -1, keepdims=True) + 1e-5) + beta


def _layer_norm_parts(x, gamma, ct):
    mu = jnp.mean(x, -1, keepdims=True)
    sigma = jnp.sqrt(jnp.mean((x - mu) ** 2, -1, keepdims=True) + 1e-5)
    xhat = (x - mu) / sigma
    g = ct * gamma
    dx = (g - jnp.mean(g, -1, keepdims=True) - xhat * jnp.mean(g * xhat, -1, keepdims=True)) / sigma
    return dx, xhat


def mlp(params, x):
    return jnp.sum(jnp.tanh(params["W"] @ x + params["b"]) ** 2)


def _mlp_g(params, x):
    h = jnp.tanh(params["W"] @ x + params["b"])
    return 2 * h * (1 - h**2)


def _pytree(p: PlantedSet) -> None:
    ln = _bind(
        dc.vjp,
        of=layer_norm,
        wrt=("x", "gamma", "beta"),
        inputs=dc.inputs(x=dc.normal("m", "n"), gamma=dc.normal("n"), beta=dc.normal("n")),
    )

    @p.right("pytree", ln)
    def layer_norm_vjp(x, gamma, beta, ct):
        dx, xhat = _layer_norm_parts(x, gamma, ct)
        return dx, jnp.sum(ct * xhat, 0), jnp.sum(ct, 0)

    @p.wrong("pytree", ln, "dγ from the centred, unnormalised x: one leaf of three wrong")
    def layer_norm_vjp_dgamma(x, gamma, beta, ct):
        dx, _ = _layer_norm_parts(x, gamma, ct)
        return dx, jnp.sum(ct * (x - jnp.mean(x, -1, keepdims=True)), 0), jnp.sum(ct, 0)

    @p.wrong("pytree", ln, "dx without the projection on x̂: the first leaf wrong")
    def layer_norm_vjp_dx(x, gamma, beta, ct):
        _, xhat = _layer_norm_parts(x, gamma, ct)
        g = ct * gamma
        sigma = jnp.sqrt(jnp.var(x, -1, keepdims=True) + 1e-5)
        return (g - jnp.mean(g, -1, keepdims=True)) / sigma, jnp.sum(ct * xhat, 0), jnp.sum(ct, 0)

    m = _bind(
        dc.gradient,
        of=mlp,
        wrt="params",
        inputs=dc.inputs(params={"W": dc.normal("m", "n"), "b": dc.normal("m")}, x=dc.normal("n")),
    )

    @p.right("pytree", m)
    def mlp_grad(params, x):
        g = _mlp_g(params, x)
        return {"W": jnp.outer(g, x), "b": g}

    @p.wrong("pytree", m, "the b leaf negated")
    def mlp_grad_b_negated(params, x):
        g = _mlp_g(params, x)
        return {"W": jnp.outer(g, x), "b": -g}


# ---- float32


def _float32(p: PlantedSet) -> None:
    f32 = dc.inputs(x=dc.normal("n", dtype="float32"), sizes=[{"n": 3}, {"n": 50}])
    g = _bind(dc.gradient, of=lambda x: jnp.sum(jnp.sin(x) * x), inputs=f32)

    @p.right("float32", g)
    def x_sin_grad32(x):
        return jnp.sin(x) + x * jnp.cos(x)

    @p.wrong("float32", g, "the product rule's second term × 1.01: 1 % off")
    def x_sin_grad32_off(x):
        return jnp.sin(x) + 1.01 * x * jnp.cos(x)

    sat = dc.inputs(
        w=dc.normal("n", dtype="float32"),
        x=dc.normal("n", dtype="float32"),
        sizes=[{"n": 3}, {"n": 32}],
        regimes=("large", "typical"),
    )
    sp = _bind(dc.gradient, of=softplus_sum, wrt="w", inputs=sat)

    @p.right("float32", sp, "exp(−t) overflows to inf in float32, and 1/(1 + inf) = 0 is the right limit")
    def softplus_grad32(w, x):
        return x * naive_sigmoid(x * w)

    decay = _bind(
        dc.gradient, of=lambda w: 1e-6 * jnp.sum(w**2), inputs=lambda key: jax.random.normal(key, (64,), jnp.float32)
    )

    @p.doubtful("float32", decay, "2e-6 w written 1e-6 w; every value is below float32's atol 1e-5, where 0 passes too")
    def weight_decay_grad_half(w):
        return 1e-6 * w

    @p.wrong("float32", sp, "probability clipped to [1e-3, 1 − 1e-3]: wrong only where the sigmoid saturates")
    def softplus_grad32_clipped(w, x):
        return x * jnp.clip(naive_sigmoid(x * w), 1e-3, 1 - 1e-3)

    t = _bind(dc.vjp, of=jnp.tanh, inputs=f32)

    @p.right("float32", t)
    def tanh_vjp32(x, ct):
        return ct * (1 - jnp.tanh(x) ** 2)

    @p.wrong("float32", t, "1 − tanh instead of 1 − tanh²")
    def tanh_vjp32_unsquared(x, ct):
        return ct * (1 - jnp.tanh(x))


# ---- domain: inputs near the edge of of='s domain, where a perturbed twin leaves it


def gauss_loglik(mu, Sigma, x):
    """A Gaussian log-density through a Cholesky factor: NaN once ``Σ`` is not positive definite."""
    L = jnp.linalg.cholesky(Sigma)
    z = jax.scipy.linalg.solve_triangular(L, x - mu, lower=True)
    return -0.5 * jnp.sum(z**2) - jnp.sum(jnp.log(jnp.diag(L)))


def _domain(p: PlantedSet) -> None:
    spec = dc.inputs(mu=dc.normal("n"), Sigma=dc.spd("n", condition=1e14), x=dc.normal("n"), sizes=[{"n": 8}])
    g = _bind(dc.gradient, of=gauss_loglik, wrt="mu", inputs=spec)

    @p.right("domain", g)
    def gauss_grad_mu(mu, Sigma, x):
        return jnp.linalg.solve(Sigma, x - mu)

    @p.wrong("domain", g, "a sign error; the twin of Σ (condition 1e14) is no longer PD, its Cholesky NaN")
    def gauss_grad_mu_negated(mu, Sigma, x):
        return -jnp.linalg.solve(Sigma, x - mu)

    def near_one(key):  # 1 − x ∈ [1e-12, 1e-8]: x(1 + 2⁻²⁰) leaves the domain of sqrt(1 − x²)
        return (1.0 - 10.0 ** jax.random.uniform(key, (4,), minval=-12.0, maxval=-8.0, dtype=jnp.float64),)

    edge = _bind(dc.gradient, of=lambda x: jnp.sum(jnp.sqrt(1.0 - x**2)), inputs=near_one)

    @p.right("domain", edge)
    def circle_grad(x):
        return -x / jnp.sqrt(1.0 - x**2)

    @p.wrong("domain", edge, "a sign error at the edge of the domain")
    def circle_grad_negated(x):
        return x / jnp.sqrt(1.0 - x**2)


# ---- beyond: limits, orders and minima, where a finite search must not mislead


def central(x, h):
    return (jnp.sin(x + h) - jnp.sin(x - h)) / (2 * h)


def trapezoid(a, u):
    """The composite trapezoid rule for ``∫₀¹ e^{a s} ds`` on ``len(u)`` intervals (``u`` only sets the size)."""
    n = u.shape[0]
    f = jnp.exp(a * jnp.linspace(0.0, 1.0, n + 1))
    return (jnp.sum(f) - 0.5 * (f[0] + f[-1])) / n


def _beyond(p: PlantedSet) -> None:
    positive = dc.inputs(t=dc.positive())
    step = dc.inputs(x=dc.normal(), h=dc.uniform(low=0.1, high=1.0))
    wells = dc.inputs(w=dc.normal("n"))

    @p.right("beyond", _bind(dc.limit, of=lambda t: 1.0 / t, along="t", inputs=positive))
    def inverse_to_zero(t):
        return 0 * t

    @p.right("beyond", _bind(dc.limit, of=lambda t: (1 - jnp.cos(t)) / t**2, along="t", to=0.0, inputs=positive))
    def one_minus_cos_over_square(t):
        return 0.5 + 0 * t

    @p.wrong("beyond", _bind(dc.limit, of=central, along="h", to=0.0, min_rate=4.0, inputs=step), "order 2, not 4")
    def central_difference_order_4(x, h):
        return jnp.cos(x)

    osc = dc.inputs(t=dc.uniform(low=0.1, high=0.9))

    @p.wrong("beyond", _bind(dc.limit, of=jnp.sin, along="t", inputs=osc), "sin t oscillates as t → ∞")
    def sine_to_zero(t):
        return 0 * t

    near = dc.inputs(a=dc.normal("d"), t=dc.uniform(low=0.1, high=1.0), regimes=("typical", "large"))

    @p.wrong(
        "beyond",
        _bind(dc.limit, of=lambda a, t: a * jnp.sin(t) / t, along="t", to=0.0, inputs=near),
        "a sin t / t → a, claimed a (1 + 5e-5): the difference decays like t², then levels off",
    )
    def sinc_limit_off(a, t):
        return a * (1 + 5e-5)

    grid = dc.inputs(a=dc.uniform(low=0.5, high=2.0), u=dc.normal("n"), regimes=("typical",))

    @p.right(
        "beyond",
        _bind(dc.limit, of=trapezoid, along="n", min_rate=2.0, inputs=grid),
        "the trapezoid rule is order 2 exactly: its measured rate creeps up to 2 from below",
    )
    def trapezoid_order_2(a, u):
        return jnp.expm1(a) / a

    @p.right("beyond", _bind(dc.has_minimum, inputs=wells))
    def quartic_far(w):
        return jnp.sum((w - 3.0) ** 4)

    @p.wrong("beyond", _bind(dc.has_minimum, inputs=wells), "unbounded below far out; every start in 0's basin")
    def quadratic_plus_small_cubic(w):
        return jnp.sum(w**2 + 0.01 * w**3)


GROUPS: dict[str, Callable[[PlantedSet], None]] = {
    "saturated": _saturated,
    "tiny": _tiny,
    "small_entries": _small_entries,
    "cancellation": _cancellation,
    "summation_order": _summation_order,
    "degenerate": _degenerate,
    "reference": _reference,
    "pytree": _pytree,
    "float32": _float32,
    "domain": _domain,
    "beyond": _beyond,
}


def planted(groups: tuple[str, ...] = tuple(GROUPS)) -> list[Planted]:
    """The planted set of ``groups``, each derivation declared fresh (nothing compiled yet)."""
    p = PlantedSet()
    for g in groups:
        GROUPS[g](p)
    return p.items


def tiny_selection(items: list[Planted]) -> list[Planted]:
    """The smoke test's few: per group of :data:`TINY_GROUPS`, the first of each expected verdict."""
    seen: set[tuple[str, str]] = set()
    out = []
    for it in items:
        if it.group in TINY_GROUPS and (it.group, it.expected) not in seen:
            seen.add((it.group, it.expected))
            out.append(it)
    return out


# ---- running and reporting


def _check(d: dc.Derivation, trials: int, seed: int) -> tuple[dc.Result, float]:
    t = time.perf_counter()
    r = dc.check(d, trials=trials, seed=seed)
    return r, time.perf_counter() - t


def measure(items: list[Planted], trials: int, seeds: int) -> list[dict]:
    """Check every planted derivation: the right ones on seeds ``0..seeds−1``, the others on seed 0."""
    rows = []
    for it in items:
        n_seeds = seeds if it.expected == "holds" else 1
        results = [_check(it.derivation, trials, seed) for seed in range(n_seeds)]
        first, first_s = results[0]
        outcomes = [r.outcome for r, _ in results]
        rows.append(
            {
                "group": it.group,
                "derivation": it.derivation.name,
                "claim": first.claim or first.kind,
                "expected": it.expected,
                "why": it.why,
                "outcomes": outcomes,
                "unexpected": [s for s, o in enumerate(outcomes) if o != it.expected],
                "trials": trials,
                "trials_used": [r.trials for r, _ in results],
                "seconds": [s for _, s in results],
                "first_seconds": first_s,
                "messages": [r.message for r, _ in results],
                "notes": [list(r.notes) for r, _ in results],
            }
        )
        print(f"  {it.derivation.name}: {' '.join(outcomes)} ({first_s:.2f} s cold)", file=sys.stderr, flush=True)
    return rows


def _outcomes_cell(outcomes: list[str]) -> str:
    if len(set(outcomes)) == 1:
        return outcomes[0] + (f" ×{len(outcomes)}" if len(outcomes) > 1 else "")
    return " ".join(outcomes)


def _trials_cell(row: dict) -> str:
    used = row["trials_used"]
    return f"{min(used)}–{max(used)}/{row['trials']}" if min(used) != max(used) else f"{used[0]}/{row['trials']}"


def ratio(rows: list[dict]) -> dict:
    """Median over groups of (median cold seconds of a wrong one) ÷ (median first-seed seconds of a right one)."""
    per_group = {}
    for g in dict.fromkeys(r["group"] for r in rows):
        wrong = [r["first_seconds"] for r in rows if r["group"] == g and r["expected"] == "fails"]
        right = [r["first_seconds"] for r in rows if r["group"] == g and r["expected"] == "holds"]
        if wrong and right:
            per_group[g] = statistics.median(wrong) / statistics.median(right)
    return {"per_group": per_group, "median": statistics.median(per_group.values()) if per_group else float("nan")}


def summary(rows: list[dict]) -> dict:
    def count(expected: str) -> tuple[int, int]:
        pairs = [(o, expected) for r in rows if r["expected"] == expected for o in r["outcomes"]]
        return sum(o == e for o, e in pairs), len(pairs)

    unexpected = [
        f"{r['derivation']} seed {s}: {r['outcomes'][s]} (expected {r['expected']}): {r['messages'][s]}"
        for r in rows
        for s in r["unexpected"]
    ]
    return {
        "wrong_caught": count("fails"),
        "right_held": count("holds"),
        "inconclusive": count("inconclusive"),
        "unexpected": unexpected,
        "ratio": ratio(rows),
    }


def report(rows: list[dict], s: dict) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|---|---|---|---|---:|---:|"]
    for r in rows:
        cells = [r["group"], r["derivation"], r["claim"], r["expected"], _outcomes_cell(r["outcomes"])]
        lines.append("| " + " | ".join([*cells, _trials_cell(r), f"{r['first_seconds']:.2f}"]) + " |")
    (wk, wn), (rk, rn), (ik, i_n) = s["wrong_caught"], s["right_held"], s["inconclusive"]
    per_group = ", ".join(f"{g} {v:.2f}×" for g, v in s["ratio"]["per_group"].items())
    lines += [
        "",
        f"wrong caught {wk}/{wn}; right held {rk}/{rn} (derivation × seed); inconclusive {ik}/{i_n}",
        f"unexpected: {len(s['unexpected'])}" + "".join(f"\n  {u}" for u in s["unexpected"]),
        f"failing/passing time ratio (cold): median over groups {s['ratio']['median']:.2f}× ({per_group})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--seeds", type=int, default=5, help="right derivations are checked on seeds 0..SEEDS−1")
    p.add_argument("--groups", default=",".join(GROUPS), help=f"comma-separated, of {', '.join(GROUPS)}")
    p.add_argument("--tiny", action="store_true", help="three groups, one of each verdict, 20 trials, one seed")
    p.add_argument("--json", help="write the rows and the summary here")
    args = p.parse_args(argv)
    groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or args.trials < 1 or args.seeds < 1:
        p.error(f"unknown groups {unknown}" if unknown else "--trials and --seeds must be at least 1")
    items = planted(groups)
    if args.tiny:
        items, args.trials, args.seeds = tiny_selection(items), 20, 1
    rows = measure(items, args.trials, args.seeds)
    s = summary(rows)
    print(report(rows, s))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "summary": s, "trials": args.trials, "seeds": args.seeds}, f, indent=1)
    return 0 if not s["unexpected"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
