"""Softmax cross-entropy: deep-learning-assignment-2, Question 7.

``L(z, y) = -Σ_k y_k log ŷ_k`` with ``ŷ = softmax(z)`` and a one-hot ``y``.
The notes prove ``∇_z L = ŷ − y`` (a), compute the Hessian
``H = diag(ŷ) − ŷŷᵀ`` (b-i) entry by entry (``i = j`` and ``i ≠ j``) and show
it is PSD (b-ii). The derivation of (a) slips an index (``z_i`` for ``z_k``,
``z_i`` for ``e^{z_i}``) and ends on ``∂L/∂z_i = ŷ_i − 1``, which (b-i) then
differentiates; the Hessian survives because the constant drops out. (b-ii)
argues that ``Σ_i ŷ_i x_i² − (ŷᵀx)²`` is "always positive", i.e. that ``H`` is
positive *definite*; it is only PSD. Convexity (b-iii) is an optimisation
claim, checked with the claims beyond derivatives.
"""

import jax
import jax.numpy as jnp

import derivcheck as dc
from derivcheck.catalog._cases import blocks_only, off_blocks_only

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
    source=f"{NOTES}, Q7a (condition: y one-hot)",
    statement=r"\nabla_{\mathbf{z}} L = \hat{\mathbf{y}} - \mathbf{y}",
)
def gradient(z, y):
    """The notes' result (a): ``ŷ − y``."""
    return jax.nn.softmax(z) - y


@dc.gradient(
    of=cross_entropy,
    wrt="z",
    inputs=LOGITS_ONE_HOT,
    name="softmax_ce.gradient_step_as_written",
    source=f"{NOTES}, Q7a, derivation (second line)",
    statement=r"\frac{\partial}{\partial z_i} \left( - \sum_{k=1}^K y_k z_i + \sum_{k=1}^K y_k \log \sum_{j=1}^K e^{z_j} \right) = - \sum_{k=1}^K y_k + \sum_{k=1}^K y_k \left( \frac{z_i}{\sum_{j=1}^K e^{z_j}} \right)",
    expect=dc.fails(
        "z_i/Σ_j e^{z_j} where e^{z_i}/Σ_j e^{z_j} is meant, and −Σ_k y_k z_i (i for k) differentiates to −1 in every component instead of −y_i"
    ),
)
def gradient_step_as_written(z, y):
    """The step of the derivation of (a), as written: ``−Σ_k y_k + Σ_k y_k · z_i / Σ_j e^{z_j}``."""
    total = jnp.sum(y)
    return -total + total * z / jnp.sum(jnp.exp(z))


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
    source=f"{NOTES}, Q7a (condition fails: multi-hot y, Σ_k y_k ≠ 1)",
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


def _diagonal_part(z, y):
    return blocks_only(cross_entropy, jnp.eye(z.shape[0], dtype=bool))(z, y)


def _off_diagonal_part(z, y):
    return off_blocks_only(cross_entropy, jnp.eye(z.shape[0], dtype=bool))(z, y)


@dc.hessian(
    of=_diagonal_part,
    wrt="z",
    inputs=LOGITS_ONE_HOT,
    name="softmax_ce.hessian_diagonal",
    source=f"{NOTES}, Q7b-i, ∂²L/∂z_i²",
    statement=r"\frac{\partial^2}{\partial z_i^2} L(\mathbf{z}, \mathbf{y}) = \frac{\partial}{\partial z_i} (\hat{y}_i - 1) = \hat{y}_i (1 - \hat{y}_i)",
)
def hessian_diagonal(z, y):
    """The case ``i = j``: ``diag(ŷ_i(1 − ŷ_i))``; the reference varies one ``z_i`` at a time."""
    p = jax.nn.softmax(z)
    return jnp.diag(p * (1 - p))


@dc.hessian(
    of=_off_diagonal_part,
    wrt="z",
    inputs=LOGITS_ONE_HOT,
    name="softmax_ce.hessian_off_diagonal",
    source=f"{NOTES}, Q7b-i, ∂²L/∂z_i∂z_j (i ≠ j)",
    statement=r"\frac{\partial^2}{\partial z_i \partial z_j} L(\mathbf{z}, \mathbf{y}) = \frac{\partial}{\partial z_j} (\hat{y}_i - 1) = -\hat{y}_i \hat{y}_j",
)
def hessian_off_diagonal(z, y):
    """The case ``i ≠ j``: ``−ŷ_i ŷ_j`` off the diagonal, 0 on it."""
    p = jax.nn.softmax(z)
    return -jnp.outer(p, p) * (1 - jnp.eye(z.shape[0]))


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
    name="softmax_ce.hessian_pd_as_written",
    source=f"{NOTES}, Q7b-ii ('Σ ŷ_i x_i² − (ŷᵀx)² is always positive')",
    statement=r"\sum_{i=1}^K \hat{y}_i x_i^2 - (\hat{y}^T x)^2 > 0 \quad (x \neq 0)",
    expect=dc.fails("H is only PSD: H·1 = ŷ − ŷ(Σŷ) = 0, so xᵀHx = 0 for x = 1 and the strict inequality fails"),
)
def hessian_pd_as_written(z, y):
    """The strict inequality the proof of (b-ii) states, i.e. PD. Softmax is shift-invariant, so it fails."""
    return _hessian_matrix(z)
