"""Mean-only batch normalisation, backward pass: deep-learning-assignment-2, Question 2c.

``μ = (1/n) Σ_j x_j``, ``x̂_i = x_i − μ``, ``y_i = γ x̂_i + β`` for a mini-batch
``x = [x_1 … x_n]``; ``L`` is any loss of ``y``. The notes compute
``∂x̂_i/∂x_k`` case by case, write a chain rule, and box
``∂L/∂x_i = γ(∂L/∂y_i − (1/n) Σ_k ∂L/∂y_k)``.

``L`` is left abstract, so ``∂L/∂y`` is an arbitrary upstream gradient: the
results about ``∂L/∂x`` are checked as VJPs of ``x ↦ y`` with random
cotangents ``∂L/∂y``, including non-zero-mean and constant ones (where the
boxed result is 0) and a batch of ``n = 1``. The ``n = 1`` and ``n → ∞``
cases of Q2d are limit claims, checked in their own topic.
"""

import jax.numpy as jnp

import derivcheck as dc
from derivcheck.catalog._cases import other_entries, own_entry

NOTES = "deep-learning-assignment-2"


def centre(x):
    """``x̂ = x − μ``, ``μ = (1/n) Σ_j x_j``."""
    return x - jnp.mean(x)


def mean_only_bn(x, gamma, beta):
    """``y_i = γ (x_i − μ) + β``."""
    return gamma * centre(x) + beta


BATCH = dc.inputs(x=dc.normal("n"))
BN = dc.inputs(x=dc.normal("n"), gamma=dc.normal(), beta=dc.normal())


@dc.jacobian(
    of=own_entry(centre),
    wrt="x",
    inputs=BATCH,
    name="batch_norm.dxhat_dx_same_index",
    source=f"{NOTES}, Q2c step 2, case i = k",
    statement=r"\frac{\partial \hat{x}_i}{\partial x_i} = 1 - \frac{1}{n}",
)
def dxhat_dx_same_index(x):
    """``∂x̂_i/∂x_i = 1 − 1/n`` (the reference varies only ``x_i`` in ``x̂_i``)."""
    n = x.shape[0]
    return (1 - 1 / n) * jnp.eye(n)


@dc.jacobian(
    of=other_entries(centre),
    wrt="x",
    inputs=BATCH,
    name="batch_norm.dxhat_dx_other_index",
    source=f"{NOTES}, Q2c step 2, case i ≠ k",
    statement=r"\frac{\partial \hat{x}_i}{\partial x_k} = -\frac{1}{n} \quad (i \neq k)",
)
def dxhat_dx_other_index(x):
    """``∂x̂_i/∂x_k = −1/n`` off the diagonal (0 on it)."""
    n = x.shape[0]
    return -(jnp.ones((n, n)) - jnp.eye(n)) / n


@dc.jacobian(
    of=centre,
    wrt="x",
    inputs=BATCH,
    name="batch_norm.dxhat_dx",
    source=f"{NOTES}, Q2c step 2 (both cases)",
    statement=r"\frac{\partial \hat{x}_i}{\partial x_k} = \delta_{ik} - \frac{1}{n}",
)
def dxhat_dx(x):
    """The two cases as one matrix: ``I − 11ᵀ/n``."""
    n = x.shape[0]
    return jnp.eye(n) - jnp.ones((n, n)) / n


@dc.vjp(
    of=lambda xhat, gamma, beta: gamma * xhat + beta,
    wrt="xhat",
    inputs=dc.inputs(xhat=dc.normal("n"), gamma=dc.normal(), beta=dc.normal()),
    name="batch_norm.dL_dxhat",
    source=f"{NOTES}, Q2c step 3, ∂L/∂x̂_k (index read as k)",
    statement=r"\frac{\partial L}{\partial \hat{x}_k} = \frac{\partial L}{\partial y_k} \cdot \gamma",
)
def dL_dxhat(xhat, gamma, beta, ct):
    """``∂L/∂x̂_k = γ ∂L/∂y_k``; the notes write ``∂L/∂y_i`` (an index slip, see ``chain_rule_as_written``)."""
    return gamma * ct


@dc.vjp(
    of=mean_only_bn,
    wrt="x",
    inputs=BN,
    name="batch_norm.chain_rule_as_written",
    source=f"{NOTES}, Q2c step 3, chain rule",
    statement=r"\frac{\partial L}{\partial x_i} = \frac{\partial L}{\partial \hat{x}_i} \cdot 1 + \sum_{k=1}^n \frac{\partial L}{\partial \hat{x}_k} \cdot \frac{\partial \hat{x}_k}{\partial x_i} - \frac{1}{n} \quad \& \quad \frac{\partial L}{\partial \hat{x}_k} = \frac{\partial L}{\partial y_i} \cdot \gamma",
    expect=dc.fails(
        "∂L/∂x̂_i·1 double-counts the k = i term of the sum, a stray −1/n is added, and ∂L/∂x̂_k = γ∂L/∂y_i (i for k) makes the sum vanish: literally γ∂L/∂y_i − 1/n"
    ),
)
def chain_rule_as_written(x, gamma, beta, ct):
    """Literally: ``γg_i·1 + Σ_k γg_i (δ_ki − 1/n) − 1/n`` with ``g = ∂L/∂y`` (the sum vanishes)."""
    n = x.shape[0]
    dxhat_dx_ki = jnp.eye(n) - 1 / n  # [k, i]
    dL_dxhat_k = gamma * ct[None, :] * jnp.ones((n, 1))  # [k, i]: γ ∂L/∂y_i for every k
    return gamma * ct + jnp.sum(dL_dxhat_k * dxhat_dx_ki, axis=0) - 1 / n


@dc.vjp(
    of=mean_only_bn,
    wrt="x",
    inputs=BN,
    name="batch_norm.chain_rule",
    source=f"{NOTES}, Q2c step 3, chain rule corrected",
    statement=r"\frac{\partial L}{\partial x_i} = \sum_{k=1}^n \frac{\partial L}{\partial \hat{x}_k} \frac{\partial \hat{x}_k}{\partial x_i}, \quad \frac{\partial L}{\partial \hat{x}_k} = \gamma \frac{\partial L}{\partial y_k}",
)
def chain_rule(x, gamma, beta, ct):
    """``Σ_k γ g_k (δ_ki − 1/n)``: the Jacobian ``I − 11ᵀ/n`` applied to ``γ g``."""
    n = x.shape[0]
    return (jnp.eye(n) - jnp.ones((n, n)) / n).T @ (gamma * ct)


@dc.vjp(
    of=mean_only_bn,
    wrt="x",
    inputs=BN,
    name="batch_norm.backward",
    source=f"{NOTES}, Q2c, result",
    statement=r"\frac{\partial L}{\partial x_i} = \gamma \left(\frac{\partial L}{\partial y_i} - \frac{1}{n} \sum_{k=1}^n \frac{\partial L}{\partial y_k} \right)",
)
def backward(x, gamma, beta, ct):
    """``γ(g_i − mean(g))``: 0 for a constant ``g`` and for ``n = 1``."""
    return gamma * (ct - jnp.mean(ct))
