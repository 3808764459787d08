"""Softmax cross-entropy: deep-learning-assignment-2, Question 7.

``L(z, y) = -Σ_k y_k log ŷ_k`` with ``ŷ = softmax(z)`` and a one-hot ``y``.
The notes prove ``∇_z L = ŷ − y`` (a), compute the Hessian
``H = diag(ŷ) − ŷŷᵀ`` (b-i) and show it is PSD (b-ii). Convexity (b-iii) is
an optimisation claim, checked with the claims beyond derivatives.
"""

import jax
import jax.numpy as jnp

import derivcheck as dc

NOTES = "deep-learning-assignment-2"


def cross_entropy(z, y):
    """``L(z, y) = -Σ_k y_k log softmax(z)_k`` (the notes' loss, summed over classes)."""
    return -jnp.sum(y * jax.nn.log_softmax(z))


# logits z in every regime (large = saturated softmax), one-hot labels, K >= 2 classes
LOGITS_ONE_HOT = dc.inputs(z=dc.normal("K"), y=dc.one_hot(classes="K"))


@dc.gradient(
    of=cross_entropy,
    wrt="z",
    inputs=LOGITS_ONE_HOT,
    name="softmax_ce.gradient",
    source=f"{NOTES}, Q7a",
    statement=r"\nabla_{\mathbf{z}} L = \hat{\mathbf{y}} - \mathbf{y}",
)
def gradient(z, y):
    """The notes' result (a): ``ŷ − y``."""
    return jax.nn.softmax(z) - y


@dc.gradient(
    of=cross_entropy,
    wrt="z",
    inputs=LOGITS_ONE_HOT,
    name="softmax_ce.gradient_component_as_written",
    source=f"{NOTES}, Q7a (derivation) and Q7b-i ('we know ∂L/∂z_i = ŷ_i − 1')",
    statement=r"\frac{\partial}{\partial z_i} L(\mathbf{z}, \mathbf{y}) = \hat{y}_i - 1",
    expect=dc.fails(
        "∂L/∂z_i = ŷ_i − 1 holds only for the true class i = k; for i ≠ k it is ŷ_i (ŷ_i − y_i in general)"
    ),
)
def gradient_component_as_written(z, y):
    """The component the derivation of (a) ends on and (b-i) starts from: ``ŷ_i − 1`` for every ``i``."""
    return jax.nn.softmax(z) - 1.0


@dc.gradient(
    of=cross_entropy,
    wrt="z",
    inputs=dc.inputs(z=dc.normal("K"), y=dc.bernoulli("K")),
    name="softmax_ce.gradient_needs_normalized_labels",
    source=f"{NOTES}, Q7a (condition: y one-hot)",
    statement=r"\nabla_{\mathbf{z}} L = \hat{\mathbf{y}} - \mathbf{y} \quad (\textstyle\sum_k y_k \neq 1)",
    expect=dc.fails("ŷ − y needs Σ_k y_k = 1 (one-hot or soft labels); in general ∇L = (Σ_k y_k) ŷ − y"),
)
def gradient_multi_hot(z, y):
    """(a) applied outside its condition: multi-hot 0/1 labels that do not sum to 1."""
    return jax.nn.softmax(z) - y


def _hessian_matrix(z):
    p = jax.nn.softmax(z)
    return jnp.diag(p) - jnp.outer(p, p)


@dc.hessian(
    of=cross_entropy,
    wrt="z",
    inputs=LOGITS_ONE_HOT,
    name="softmax_ce.hessian",
    source=f"{NOTES}, Q7b-i",
    statement=r"H = \begin{bmatrix} \hat{y}_1(1-\hat{y}_1) & -\hat{y}_1\hat{y}_2 & \dots \\ \vdots & \ddots \end{bmatrix} = \operatorname{diag}(\hat{y}) - \hat{y}\hat{y}^\top",
)
def hessian(z, y):
    """(b-i): ``H_ii = ŷ_i(1 − ŷ_i)``, ``H_ij = −ŷ_i ŷ_j``."""
    return _hessian_matrix(z)


@dc.definite(
    "psd",
    of=cross_entropy,
    wrt="z",
    inputs=LOGITS_ONE_HOT,
    name="softmax_ce.hessian_psd",
    source=f"{NOTES}, Q7b-ii",
    statement=r"x^\top H x = \sum_i \hat{y}_i x_i^2 - (\hat{y}^\top x)^2 \ge 0",
)
def hessian_psd(z, y):
    """(b-ii): ``diag(ŷ) − ŷŷᵀ`` is PSD (Cauchy–Schwarz with weights ŷ); singular along ``1``."""
    return _hessian_matrix(z)


@dc.definite(
    "pd",
    inputs=LOGITS_ONE_HOT,
    name="softmax_ce.hessian_not_pd",
    source=f"{NOTES}, Q7b-ii (strengthened: is it PD?)",
    statement=r"H = \operatorname{diag}(\hat{y}) - \hat{y}\hat{y}^\top \succ 0",
    expect=dc.fails("H is only PSD: H·1 = ŷ − ŷ(Σŷ) = 0, so it is singular along the all-ones direction"),
)
def hessian_not_pd(z, y):
    """The stronger claim the notes do not make: PD. Softmax is shift-invariant, so it fails."""
    return _hessian_matrix(z)
