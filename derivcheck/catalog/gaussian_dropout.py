"""Gaussian dropout: deep-learning-assignment-2, Question 5.

``J_1 = ½ (y_d − Σ_k δ_k W_k x_k)²`` with ``δ_k ~ N(1, σ²)`` independent. The
notes compute ``E[∂J_1/∂W_i] = −x_i (y_d − (1 + σ²) W_i x_i − Σ_{k≠i} W_k x_k)``
— right, checked here by Monte Carlo (autodiff inside the expectation) and
exactly, as the gradient of the closed form

.. math::

    E[J_1] = \\tfrac12 \\big(y_d - \\textstyle\\sum_k W_k x_k\\big)^2
             + \\tfrac{\\sigma^2}{2} \\textstyle\\sum_k W_k^2 x_k^2 .

The regularisation part then goes wrong as written: the difference between
the expected gradient and the gradient of ``J_non-reg`` is ``+σ² W_i x_i²``,
not "the term ``−σ² W_i x_i``", and the conclusion "dropout adds noise to the
weights" misses that in expectation it adds the data-dependent L2 penalty
``(σ²/2) Σ W_k² x_k²``: minimising ``E[J_1]`` is not minimising ``J_non-reg``.
Both readings are registered as written, next to the corrected forms.

σ is drawn in ``[0.3, 1.5]``: the regulariser ``σ² W x²`` is then a visible
fraction of the gradient (with σ → 0 every claim here reduces to the
noise-free one and none could fail).
"""

import jax
import jax.numpy as jnp

import derivcheck as dc

NOTES = "deep-learning-assignment-2"

# W and x: the weights and inputs; y: the target y_d; sigma: the dropout noise level.
# The size n runs 1 (a single weight) and 6; each check takes up to 30 draws.
DATA = dc.inputs(
    W=dc.normal("n"),
    x=dc.normal("n"),
    y=dc.normal(),
    sigma=dc.uniform(low=0.3, high=1.5),
    sizes=[{"n": 1}, {"n": 6}],
)


def cost(W, x, y, sigma, delta):
    """``J_1 = ½ (y_d − Σ_k δ_k W_k x_k)²`` for one draw of the noise ``δ``."""
    return 0.5 * (y - jnp.sum(delta * W * x)) ** 2


def gaussian_noise(key, W, x, y, sigma):
    """``δ_k ~ N(1, σ²)``, independent, one per weight."""
    return 1.0 + sigma * jax.random.normal(key, jnp.shape(W))


def expected_cost(W, x, y, sigma):
    """``E[J_1] = J_non-reg + (σ²/2) Σ_k W_k² x_k²`` (the variance of ``Σ δ_k W_k x_k``)."""
    return nonregularised(W, x, y, sigma) + 0.5 * sigma**2 * jnp.sum(W**2 * x**2)


def nonregularised(W, x, y, sigma):
    """The notes' ``J_non-reg = ½ (y_d − Σ_k W_k x_k)²`` (σ unused: the noise-free cost)."""
    return 0.5 * (y - jnp.sum(W * x)) ** 2


@dc.expected_gradient(
    of=cost,
    noise=gaussian_noise,
    wrt="W",
    exact=expected_cost,
    inputs=DATA,
    name="gaussian_dropout.expected_gradient",
    source=f"{NOTES}, Q5",
    statement=r"\mathbb{E}\left[\frac{\partial J_1}{\partial W_i}\right] = -x_i \Big(y_d - (1 + \sigma^2) W_i x_i - \sum_{k \neq i} W_k x_k\Big)",
)
def expected_gradient(W, x, y, sigma):
    """The notes' result: ``−x_i (y_d − (1 + σ²) W_i x_i − Σ_{k≠i} W_k x_k)`` for every ``i``."""
    others = jnp.sum(W * x) - W * x
    return -x * (y - (1 + sigma**2) * W * x - others)


def noise_products(W, x, y, sigma, delta):
    """``δ δᵀ`` for one draw of the noise."""
    return jnp.outer(delta, delta)


@dc.expectation(
    of=noise_products,
    noise=gaussian_noise,
    inputs=DATA,
    name="gaussian_dropout.second_moments",
    source=f"{NOTES}, Q5 (E[δ_i δ_k])",
    statement=r"\mathbb{E}[\delta_i \delta_k] = \begin{cases} 1 + \sigma^2, & i = k \\ 1, & \text{otherwise} \end{cases}",
)
def second_moments(W, x, y, sigma):
    """The step the expected gradient rests on: ``E[δδᵀ] = 11ᵀ + σ² I``."""
    n = jnp.shape(W)[0]
    return jnp.ones((n, n)) + sigma**2 * jnp.eye(n)


@dc.expected_gradient(
    of=cost,
    noise=gaussian_noise,
    wrt="W",
    inputs=DATA,
    name="gaussian_dropout.difference_term_as_written",
    source=f"{NOTES}, Q5 ('comparing the gradient of J_non-reg with J_1 we see the term −σ² W_i x_i')",
    statement=r"\mathbb{E}\left[\frac{\partial J_1}{\partial W_i}\right] = \frac{\partial J_{\text{non-reg}}}{\partial W_i} - \sigma^2 W_i x_i",
    expect=dc.fails(
        "the expected gradient exceeds ∂J_non-reg/∂W_i by +σ² W_i x_i², not −σ² W_i x_i: the sign is flipped and a factor x_i is missing"
    ),
)
def difference_term_as_written(W, x, y, sigma):
    """``∂J_non-reg/∂W_i`` plus the term the notes read off: ``−σ² W_i x_i``."""
    return -x * (y - jnp.sum(W * x)) - sigma**2 * W * x


@dc.expected_gradient(
    of=cost,
    noise=gaussian_noise,
    wrt="W",
    exact=expected_cost,
    inputs=DATA,
    name="gaussian_dropout.difference_term_corrected",
    source=f"{NOTES}, Q5 (the difference of the gradients, corrected)",
    statement=r"\mathbb{E}\left[\frac{\partial J_1}{\partial W_i}\right] = \frac{\partial J_{\text{non-reg}}}{\partial W_i} + \sigma^2 W_i x_i^2",
)
def difference_term_corrected(W, x, y, sigma):
    """``∂J_non-reg/∂W_i + σ² W_i x_i²``: the gradient of the penalty ``(σ²/2) Σ W_k² x_k²``."""
    return -x * (y - jnp.sum(W * x)) + sigma**2 * W * x**2


@dc.equivalent_objective(
    of=cost,
    noise=gaussian_noise,
    wrt="W",
    inputs=DATA,
    name="gaussian_dropout.objective_is_nonregularised_as_written",
    source=f"{NOTES}, Q5 ('J_non-reg = ½(y_d − Σ W_k x_k)²'; 'dropout is added noise to weights')",
    statement=r"\min_W \mathbb{E}[J_1] \equiv \min_W J_{\text{non-reg}} = \tfrac12 \Big(y_d - \sum_k W_k x_k\Big)^2",
    expect=dc.fails(
        "the noise does not average out: E[J_1] = J_non-reg + (σ²/2) Σ W_k² x_k², so Gaussian dropout minimises the non-regularised cost plus a data-dependent L2 penalty"
    ),
)
def objective_as_written(W, x, y, sigma):
    """The reading "dropout only adds noise to the weights": in expectation, the noise-free cost."""
    return nonregularised(W, x, y, sigma)


@dc.equivalent_objective(
    of=cost,
    noise=gaussian_noise,
    wrt="W",
    inputs=DATA,
    name="gaussian_dropout.objective_is_ridge",
    source=f"{NOTES}, Q5 (the regularisation interpretation, corrected)",
    statement=r"\mathbb{E}[J_1] = J_{\text{non-reg}} + \frac{\sigma^2}{2} \sum_k W_k^2 x_k^2",
)
def objective_is_ridge(W, x, y, sigma):
    """The non-regularised cost plus the penalty ``(σ²/2) Σ_k W_k² x_k²`` (ridge weighted by ``x_k²``)."""
    return expected_cost(W, x, y, sigma)
