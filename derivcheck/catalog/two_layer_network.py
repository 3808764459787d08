"""A two-layer LeakyReLU / dropout / softmax network: deep-learning-assignment-2, Question 3.

The network of the notes, for one input ``x`` (``d_x``), hidden width
``d_a`` and ``K`` classes with a one-hot label ``y``::

    z1 = W1 x + b1,  â = LeakyReLU(z1) (α = 0.01),  a = Dropout(â, p = 0.2),
    z2 = W2 a + b2,  ŷ = softmax(z2),  L = −Σ_i y_i log ŷ_i.

Conventions the notes leave implicit, and how they are read here:

* **Dropout.** The mask ``M`` (``d_a``) is a fixed input, ``M_j = 1`` with
  probability ``1 − p`` (drawn ``Bernoulli(0.8)``). The notes write
  ``∂a/∂â = ⊙M``, i.e. ``a = M ⊙ â`` (*unscaled* dropout). Common libraries
  use *inverted* dropout, ``a = M ⊙ â / (1 − p)``; where the reading decides
  the verdict both are registered.
* **LeakyReLU at 0.** The notes give the derivative ``0.01`` for ``z ≤ 0``;
  ``of=`` uses the same one-sided convention (``jnp.where(z > 0, z, αz)``, whose
  JAX derivative at 0 is ``α``; ``jax.nn.leaky_relu`` would give 1). Random
  inputs are never exactly 0; the case ``z ≤ 0`` includes an exact zero.
* **Layout.** Q3.3 writes ``∂z2/∂a1 = (W2)ᵀ`` and ``∂z1/∂W1 = xᵀ``: derivatives
  in the layout of a backward pass. They are checked as what they do in it
  (pull-backs ``δ ↦ W2ᵀδ`` and ``δ ↦ δxᵀ``).

Cases of piecewise results ("for i = k", "for i ≠ k") are checked one by one:
the reference differentiates the notes' function with the other entries held
constant (see :mod:`derivcheck.catalog._cases`).
"""

from typing import Any

import jax
import jax.numpy as jnp

import derivcheck as dc
from derivcheck.catalog._cases import other_entries, own_entry, vary_only

NOTES = "deep-learning-assignment-2"
ALPHA = 0.01
P_DROP = 0.2


def leaky_relu(z):
    """``LeakyReLU(z) = z`` for ``z > 0``, ``αz`` for ``z ≤ 0`` (α = 0.01), derivative ``α`` at 0."""
    return jnp.where(z > 0, z, ALPHA * z)


def cross_entropy(z2, y):
    """``L = −Σ_i y_i log softmax(z2)_i``."""
    return -jnp.sum(y * jax.nn.log_softmax(z2))


def loss(W1, b1, W2, b2, x, y, M):
    """The notes' network with unscaled dropout ``a = M ⊙ â``."""
    a = M * leaky_relu(W1 @ x + b1)
    return cross_entropy(W2 @ a + b2, y)


def loss_inverted_dropout(W1, b1, W2, b2, x, y, M):
    """The same network with inverted dropout ``a = M ⊙ â / (1 − p)``."""
    a = M * leaky_relu(W1 @ x + b1) / (1 - P_DROP)
    return cross_entropy(W2 @ a + b2, y)


def _softmax(z):
    e = jnp.exp(z - jnp.max(z))
    return e / jnp.sum(e)


def _leaky_relu_slope(z):
    """The notes' ``A``: 1 where ``z > 0``, 0.01 where ``z ≤ 0``."""
    return jnp.where(z > 0, 1.0, ALPHA)


# ------------------------------------------------------------------ Q3.1: ∂ŷ_k/∂z_i

LOGITS = dc.inputs(z=dc.normal("K"), sizes=[{"K": 2}, {"K": 3}, {"K": 7}])


@dc.jacobian(
    of=own_entry(jax.nn.softmax),
    wrt="z",
    inputs=LOGITS,
    name="two_layer.softmax_jacobian_same_index",
    source=f"{NOTES}, Q3.1 case i = k (restated in Q3.2)",
    statement=r"\frac{\partial \hat{y}_k}{\partial z_k^{(2)}} = \hat{y}_k(1 - \hat{y}_k)",
)
def softmax_jacobian_same_index(z):
    """The case ``i = k``: ``diag(ŷ_k(1 − ŷ_k))``."""
    y = _softmax(z)
    return jnp.diag(y * (1 - y))


@dc.jacobian(
    of=own_entry(jax.nn.softmax),
    wrt="z",
    inputs=LOGITS,
    name="two_layer.softmax_jacobian_same_index_quotient_step",
    source=f"{NOTES}, Q3.1 case i = k, quotient-rule step",
    statement=r"\frac{\partial \hat{y}_k}{\partial z_k^{(2)}} = \frac{e^{z_k^{(2)}} \sum_{i=1}^K e^{z_i^{(2)}}}{(\sum_{i=1}^K e^{z_i^{(2)}})^2} - \frac{e^{z_k^{(2)}}}{(\sum_{i=1}^K e^{z_i^{(2)}})^2}",
    expect=dc.fails(
        "the quotient rule's second term is e^{z_k}·e^{z_k}/Σ², not e^{z_k}/Σ² (a factor e^{z_k} is missing; the next step uses the right one)"
    ),
)
def softmax_jacobian_same_index_quotient_step(z):
    """The first expression of the case ``i = k`` as written: ``e^{z_k}Σ/Σ² − e^{z_k}/Σ²``."""
    e = jnp.exp(z)
    total = jnp.sum(e)
    return jnp.diag(e * total / total**2 - e / total**2)


@dc.jacobian(
    of=other_entries(jax.nn.softmax),
    wrt="z",
    inputs=LOGITS,
    name="two_layer.softmax_jacobian_other_index",
    source=f"{NOTES}, Q3.1 case i ≠ k (restated in Q3.2)",
    statement=r"\frac{\partial \hat{y}_k}{\partial z_j^{(2)}} = -\frac{e^{z_j^{(2)}}}{\sum_{i=1}^K e^{z_i^{(2)}}} \frac{e^{z_k^{(2)}}}{\sum_{i=1}^K e^{z_i^{(2)}}} = -\hat{y}_k \hat{y}_j",
)
def softmax_jacobian_other_index(z):
    """The case ``i ≠ k``: entry ``(k, j)`` is ``−ŷ_k ŷ_j`` off the diagonal (0 on it)."""
    y = _softmax(z)
    return -jnp.outer(y, y) * (1 - jnp.eye(z.shape[0]))


@dc.jacobian(
    of=jax.nn.softmax,
    wrt="z",
    inputs=LOGITS,
    name="two_layer.softmax_jacobian",
    source=f"{NOTES}, Q3.1 (both cases together)",
    statement=r"\frac{\partial \hat{y}_k}{\partial z_i^{(2)}} = \begin{cases} \hat{y}_k(1 - \hat{y}_k) & i = k \\ -\hat{y}_k \hat{y}_i & i \neq k \end{cases}",
)
def softmax_jacobian(z):
    """The full Jacobian assembled from the two cases: ``diag(ŷ) − ŷŷᵀ``."""
    y = _softmax(z)
    return jnp.diag(y) - jnp.outer(y, y)


# --------------------------------------------------------------- Q3.2: ∂L/∂z_i, one-hot y

LOGITS_LABEL = dc.inputs(z=dc.normal("K"), y=dc.one_hot(classes="K"), sizes=[{"K": 2}, {"K": 3}, {"K": 7}])


@dc.gradient(
    of=lambda yhat, y: -jnp.sum(y * jnp.log(yhat)),
    wrt="yhat",
    inputs=dc.inputs(yhat=dc.simplex("K"), y=dc.one_hot(classes="K"), sizes=[{"K": 2}, {"K": 3}, {"K": 7}]),
    name="two_layer.dL_dyhat",
    source=f"{NOTES}, Q3.2, ∂L/∂ŷ_i",
    statement=r"\frac{\partial L}{\partial \hat{y}_i} = \begin{cases} -\frac{1}{\hat{y}_k} & \text{if } i = k \\ 0 & \text{if } i \neq k \end{cases}",
)
def dL_dyhat(yhat, y):
    """With ``y_k = 1``: ``−1/ŷ_k`` at the true class, 0 elsewhere (``ŷ`` a free positive vector)."""
    return jnp.where(y > 0, -1.0 / yhat, 0.0)


@dc.gradient(
    of=cross_entropy,
    wrt="z",
    inputs=LOGITS_LABEL,
    name="two_layer.dL_dz2_chain_rule_as_written",
    source=f"{NOTES}, Q3.2, chain rule ∂L/∂z_i = ∂L/∂ŷ_i · ∂ŷ_i/∂z_i",
    statement=r"\frac{\partial L}{\partial z_i^{(2)}} = \frac{\partial L}{\partial \hat{y}_i} \cdot \frac{\partial \hat{y}_i}{\partial z_i^{(2)}}",
    expect=dc.fails(
        "a one-term chain rule: ∂L/∂z_i = Σ_j ∂L/∂ŷ_j ∂ŷ_j/∂z_i; the written term is 0 for i ≠ k, where the notes' own case 2 uses the j = k term"
    ),
)
def dL_dz2_chain_rule_as_written(z, y):
    """``∂L/∂ŷ_i · ∂ŷ_i/∂z_i = (−y_i/ŷ_i) · ŷ_i(1 − ŷ_i)`` for every ``i``."""
    yhat = _softmax(z)
    return jnp.where(y > 0, -1.0 / yhat, 0.0) * yhat * (1 - yhat)


@dc.gradient(
    of=lambda z, y: cross_entropy(vary_only(z, y > 0), y),
    wrt="z",
    inputs=LOGITS_LABEL,
    name="two_layer.dL_dz2_true_class",
    source=f"{NOTES}, Q3.2 case i = k",
    statement=r"\frac{\partial L}{\partial z_k^{(2)}} = -\frac{1}{\hat{y}_k} \cdot \hat{y}_k(1 - \hat{y}_k) = \hat{y}_k - 1",
)
def dL_dz2_true_class(z, y):
    """The true class ``k`` (``y_k = 1``): ``ŷ_k − 1``; the reference varies only ``z_k``."""
    return y * (_softmax(z) - 1)


@dc.gradient(
    of=lambda z, y: cross_entropy(vary_only(z, y == 0), y),
    wrt="z",
    inputs=LOGITS_LABEL,
    name="two_layer.dL_dz2_other_class",
    source=f"{NOTES}, Q3.2 case i ≠ k",
    statement=r"\frac{\partial L}{\partial z_i^{(2)}} = -\frac{1}{\hat{y}_k} \cdot (-\hat{y}_i \hat{y}_k) = \hat{y}_i",
)
def dL_dz2_other_class(z, y):
    """Every other class ``i ≠ k``: ``ŷ_i``; the reference holds ``z_k`` constant."""
    return (1 - y) * _softmax(z)


@dc.gradient(
    of=cross_entropy,
    wrt="z",
    inputs=LOGITS_LABEL,
    name="two_layer.dL_dz2",
    source=f"{NOTES}, Q3.3, first line",
    statement=r"\frac{\partial L}{\partial z^{(2)}} = \hat{y} - y",
)
def dL_dz2(z, y):
    """Both cases of Q3.2 as one vector: ``ŷ − y``."""
    return _softmax(z) - y


# ------------------------------------------------------- Q3.3: the local derivatives


@dc.vjp(
    of=lambda a, W2, b2: W2 @ a + b2,
    wrt="a",
    inputs=dc.inputs(a=dc.normal("da"), W2=dc.normal("K", "da"), b2=dc.normal("K")),
    name="two_layer.dz2_da1",
    source=f"{NOTES}, Q3.3, ∂z⁽²⁾/∂a⁽¹⁾",
    statement=r"z^{(2)} = W^{(2)}a^{(1)} + b^{(2)} \implies \frac{\partial z^{(2)}}{\partial a^{(1)}} = (W^{(2)})^T",
)
def dz2_da1(a, W2, b2, ct):
    """``(W2)ᵀ`` as the backward pass uses it: ``δ ↦ (W2)ᵀ δ``."""
    return W2.T @ ct


@dc.vjp(
    of=lambda ahat, M: M * ahat,
    wrt="ahat",
    inputs=dc.inputs(ahat=dc.normal("da"), M=dc.bernoulli("da", p=1 - P_DROP)),
    name="two_layer.da1_dahat",
    source=f"{NOTES}, Q3.3, ∂a⁽¹⁾/∂â⁽¹⁾ (reading: unscaled dropout a = M ⊙ â)",
    statement=r"\frac{\partial a^{(1)}}{\partial \hat{a}^{(1)}} = \dots \odot M, \quad M = \begin{cases} 1, & \text{with probability } 1 - p \\ 0, & \text{with probability } p \end{cases}",
)
def da1_dahat(ahat, M, ct):
    """``δ ↦ δ ⊙ M``."""
    return ct * M


@dc.vjp(
    of=lambda ahat, M: M * ahat / (1 - P_DROP),
    wrt="ahat",
    inputs=dc.inputs(ahat=dc.normal("da"), M=dc.bernoulli("da", p=1 - P_DROP)),
    name="two_layer.da1_dahat_inverted_dropout",
    source=f"{NOTES}, Q3.3, ∂a⁽¹⁾/∂â⁽¹⁾ (reading: inverted dropout a = M ⊙ â/(1 − p))",
    statement=r"\frac{\partial a^{(1)}}{\partial \hat{a}^{(1)}} = \dots \odot M",
    expect=dc.fails("inverted dropout scales the kept units by 1/(1 − p) = 1.25; ⊙M alone misses that factor"),
)
def da1_dahat_inverted_dropout(ahat, M, ct):
    """``δ ↦ δ ⊙ M`` against the inverted-dropout layer."""
    return ct * M


@dc.jacobian(
    of=leaky_relu,
    wrt="z",
    inputs=dc.inputs(z=dc.normal("da")),
    name="two_layer.dahat_dz1",
    source=f"{NOTES}, Q3.3, ∂â⁽¹⁾/∂z⁽¹⁾ = A",
    statement=r"\frac{\partial \hat{a}^{(1)}}{\partial z_i^{(1)}} = A = \begin{cases} 1, & z_i^{(1)} > 0 \\ 0.01 & z_i^{(1)} \leq 0 \end{cases}",
)
def dahat_dz1(z):
    """LeakyReLU acts entrywise: its Jacobian is ``diag(A)``."""
    return jnp.diag(_leaky_relu_slope(z))


def _positive_z(key):
    """Five entries uniform on ``(0, 4)``."""
    return (jax.random.uniform(key, (5,), minval=1e-3, maxval=4.0),)


def _nonpositive_z(key):
    """Five entries on ``[−4, 0]``, the first exactly 0 (the kink, assigned to this case by the notes)."""
    z = -jax.random.uniform(key, (5,), minval=1e-3, maxval=4.0)
    return (z.at[0].set(0.0),)


@dc.jacobian(
    of=leaky_relu,
    wrt="z",
    inputs=_positive_z,
    name="two_layer.dahat_dz1_positive",
    source=f"{NOTES}, Q3.3, A case z > 0",
    statement=r"A = 1, \quad z_i^{(1)} > 0",
)
def dahat_dz1_positive(z):
    """Where ``z > 0`` the slope is 1."""
    return jnp.eye(z.shape[0])


@dc.jacobian(
    of=leaky_relu,
    wrt="z",
    inputs=_nonpositive_z,
    name="two_layer.dahat_dz1_nonpositive",
    source=f"{NOTES}, Q3.3, A case z ≤ 0 (z = 0 by the notes' convention)",
    statement=r"A = 0.01, \quad z_i^{(1)} \leq 0",
)
def dahat_dz1_nonpositive(z):
    """Where ``z ≤ 0`` the slope is α = 0.01 (at the kink ``z = 0`` by convention, matched by ``of=``)."""
    return ALPHA * jnp.eye(z.shape[0])


@dc.vjp(
    of=lambda W1, x, b1: W1 @ x + b1,
    wrt="W1",
    inputs=dc.inputs(W1=dc.normal("da", "dx"), x=dc.normal("dx"), b1=dc.normal("da")),
    name="two_layer.dz1_dW1",
    source=f"{NOTES}, Q3.3, ∂z⁽¹⁾/∂W⁽¹⁾",
    statement=r"z^{(1)} = W^{(1)}x + b^{(1)} \implies \frac{\partial z^{(1)}}{\partial W^{(1)}} = x^T",
)
def dz1_dW1(W1, x, b1, ct):
    """``xᵀ`` as the backward pass uses it: ``δ ↦ δ xᵀ`` (a ``d_a × d_x`` matrix)."""
    return jnp.outer(ct, x)


# ---------------------------------------------------------------- Q3.3: ∂L/∂W⁽¹⁾

NET: dict[str, Any] = dict(  # the argument specs, passed on as dc.inputs(**NET, sizes=...)
    W1=dc.normal("da", "dx"),
    b1=dc.normal("da"),
    W2=dc.normal("K", "da"),
    b2=dc.normal("K"),
    x=dc.normal("dx"),
    y=dc.one_hot(classes="K"),
    M=dc.bernoulli("da", p=1 - P_DROP),
)
NET_SIZES = [{"dx": 1, "da": 1, "K": 2}, {"dx": 3, "da": 5, "K": 2}, {"dx": 4, "da": 3, "K": 6}]
NETWORK = dc.inputs(**NET, sizes=NET_SIZES)
# the as-written product (ŷ − y)(W2)ᵀ is defined only when d_a = K
NETWORK_SQUARE = dc.inputs(
    **NET, sizes=[{"dx": 1, "da": 2, "K": 2}, {"dx": 5, "da": 3, "K": 3}, {"dx": 3, "da": 6, "K": 6}]
)


def _hidden(W1, b1, x):
    z1 = W1 @ x + b1
    return z1, leaky_relu(z1)


def _output_error(W1, b1, W2, b2, x, y, M, scale=1.0):
    z1, ahat = _hidden(W1, b1, x)
    yhat = _softmax(W2 @ (M * ahat * scale) + b2)
    return z1, yhat - y


@dc.gradient(
    of=loss,
    wrt="W1",
    inputs=NETWORK_SQUARE,
    name="two_layer.dL_dW1_as_written",
    source=f"{NOTES}, Q3.3, conclusion",
    statement=r"\frac{\partial L}{\partial W^{(1)}} = ((\hat{y} - y)(W^{(2)})^T \odot M \odot A)x^T",
    expect=dc.fails(
        "(ŷ − y)(W⁽²⁾)ᵀ is only defined when d_a = K, and there it is W⁽²⁾(ŷ − y); the backward pass needs (W⁽²⁾)ᵀ(ŷ − y) (factors in the wrong order)"
    ),
)
def dL_dW1_as_written(W1, b1, W2, b2, x, y, M):
    """As literally as shapes allow: ``(ŷ − y)`` a row, ``@ W2ᵀ`` (needs ``d_a = K``), ``⊙ M ⊙ A``, then ``· xᵀ`` as an outer product."""
    z1, err = _output_error(W1, b1, W2, b2, x, y, M)
    return jnp.outer((err @ W2.T) * M * _leaky_relu_slope(z1), x)


@dc.gradient(
    of=loss,
    wrt="W1",
    inputs=NETWORK,
    name="two_layer.dL_dW1",
    source=f"{NOTES}, Q3.3, conclusion corrected (reading: unscaled dropout)",
    statement=r"\frac{\partial L}{\partial W^{(1)}} = \left( (W^{(2)})^T(\hat{y} - y) \odot M \odot A \right) x^T",
)
def dL_dW1(W1, b1, W2, b2, x, y, M):
    """``((W2)ᵀ(ŷ − y) ⊙ M ⊙ A) xᵀ`` for ``a = M ⊙ â``."""
    z1, err = _output_error(W1, b1, W2, b2, x, y, M)
    return jnp.outer((W2.T @ err) * M * _leaky_relu_slope(z1), x)


@dc.gradient(
    of=loss_inverted_dropout,
    wrt="W1",
    inputs=NETWORK,
    name="two_layer.dL_dW1_inverted_dropout",
    source=f"{NOTES}, Q3.3, conclusion corrected (reading: inverted dropout)",
    statement=r"\frac{\partial L}{\partial W^{(1)}} = \left( (W^{(2)})^T(\hat{y} - y) \odot M \odot A \right) x^T",
    expect=dc.fails(
        "with inverted dropout a = M ⊙ â/(1 − p), the gradient has a factor 1/(1 − p) = 1.25 that ⊙M omits"
    ),
)
def dL_dW1_inverted_dropout(W1, b1, W2, b2, x, y, M):
    """The corrected order with the notes' ``⊙ M``, against the inverted-dropout network."""
    z1, err = _output_error(W1, b1, W2, b2, x, y, M, scale=1 / (1 - P_DROP))
    return jnp.outer((W2.T @ err) * M * _leaky_relu_slope(z1), x)


@dc.gradient(
    of=loss_inverted_dropout,
    wrt="W1",
    inputs=NETWORK,
    name="two_layer.dL_dW1_inverted_dropout_scaled",
    source=f"{NOTES}, Q3.3, conclusion corrected with the 1/(1 − p) factor (reading: inverted dropout)",
    statement=r"\frac{\partial L}{\partial W^{(1)}} = \frac{1}{1-p} \left( (W^{(2)})^T(\hat{y} - y) \odot M \odot A \right) x^T",
)
def dL_dW1_inverted_dropout_scaled(W1, b1, W2, b2, x, y, M):
    """``((W2)ᵀ(ŷ − y) ⊙ M/(1 − p) ⊙ A) xᵀ`` for ``a = M ⊙ â/(1 − p)``."""
    z1, err = _output_error(W1, b1, W2, b2, x, y, M, scale=1 / (1 - P_DROP))
    return jnp.outer((W2.T @ err) * M / (1 - P_DROP) * _leaky_relu_slope(z1), x)
