"""Mean-only batch normalisation at n = 1 and n → ∞: deep-learning-assignment-2, Question 2d.

With ``x̂_i = x_i − μ``, ``μ = (1/n) Σ_j x_j`` and ``y_i = γ x̂_i + β``, the
backward pass is ``∂L/∂x_i = γ (∂L/∂y_i − (1/n) Σ_k ∂L/∂y_k)`` (part c). The
reference here is JAX's VJP of the layer with the upstream gradient
``g = ∂L/∂y`` drawn as an input.

* ``n = 1``: ``x̂_1 = 0`` whatever ``x_1``, so ``∂L/∂x_1 = 0`` — holds.
* ``n → ∞``: the notes argue that ``∂μ/∂x_i = 1/n → 0`` and conclude
  ``∂L/∂x_i → γ ∂L/∂y_i``. Each term vanishes but there are ``n`` of them:
  the difference is ``γ (1/n) Σ_k ∂L/∂y_k``, the mean upstream gradient, which
  vanishes only when that mean tends to 0 (zero-mean iid upstream gradients,
  by the law of large numbers). A non-zero-mean or constant upstream gradient —
  e.g. every output pushed the same way — keeps it at ``γ ḡ``; with a constant
  ``g`` the true gradient is exactly 0 for every ``n``. So the limit fails as
  written and holds only under that condition; both are registered.
"""

import jax
import jax.numpy as jnp

import derivcheck as dc

NOTES = "deep-learning-assignment-2"


def mean_only_batch_norm(x, gamma, beta):
    """``y_i = γ (x_i − (1/n) Σ_j x_j) + β``."""
    return gamma * (x - jnp.mean(x)) + beta


def backward(x, gamma, beta, g):
    """``∂L/∂x`` for upstream gradient ``g = ∂L/∂y``: JAX's VJP of the layer (the reference)."""
    return jax.vjp(lambda v: mean_only_batch_norm(v, gamma, beta), x)[1](g)[0]


LAYER = dc.inputs(x=dc.normal("n"), gamma=dc.positive(), beta=dc.normal(), g=dc.normal("n"))


@dc.special_case(
    of=backward,
    at={"n": 1},
    inputs=LAYER,
    name="batch_norm_limits.single_example",
    source=f"{NOTES}, Q2d (n = 1)",
    statement=r"n = 1:\; \mu = x_1,\; \hat{x}_1 = 0 \;\Rightarrow\; \frac{\partial L}{\partial x_1} = 0",
)
def single_example(x, gamma, beta, g):
    """``∂L/∂x_1 = 0``: with one example the normalised output does not depend on it."""
    return jnp.zeros_like(x)


@dc.limit(
    of=backward,
    along="n",
    inputs=LAYER,
    name="batch_norm_limits.large_batch_as_written",
    source=f"{NOTES}, Q2d (n → ∞)",
    statement=r"n \to \infty:\; \frac{\partial L}{\partial x_i} = \frac{\partial L}{\partial y_i} \cdot \gamma",
    expect=dc.fails(
        "∂μ/∂x_i = 1/n → 0 but n such terms remain: ∂L/∂x_i − γ ∂L/∂y_i = −γ (1/n) Σ_k ∂L/∂y_k, which stays γ ḡ for a non-zero-mean upstream gradient (and the whole gradient is 0 for a constant one)"
    ),
)
def large_batch_as_written(x, gamma, beta, g):
    """The notes' limit ``∂L/∂x_i → γ ∂L/∂y_i``, tried on every kind of upstream gradient."""
    return gamma * g


@dc.limit(
    of=backward,
    along="n",
    inputs=dc.inputs(
        x=dc.normal("n"), gamma=dc.positive(), beta=dc.normal(), g=dc.normal("n"), regimes=("typical", "large", "tiny")
    ),
    name="batch_norm_limits.large_batch_zero_mean_upstream",
    source=f"{NOTES}, Q2d (n → ∞, condition: zero-mean iid upstream gradient)",
    statement=r"\frac{1}{n}\sum_k \frac{\partial L}{\partial y_k} \to 0 \;\Rightarrow\; \frac{\partial L}{\partial x_i} \to \gamma \frac{\partial L}{\partial y_i}",
)
def large_batch_zero_mean_upstream(x, gamma, beta, g):
    """The same limit where its condition holds: the difference shrinks like ``n^{-1/2}``."""
    return gamma * g
