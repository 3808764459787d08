"""Optimisation claims of the notes: convexity, existence of a minimum, descent.

deep-learning-assignment-2, Question 1: the single sigmoid neuron's
cross-entropy ``E_{w,b}`` is convex (holds), "it has a global minimum" (false
as written: on linearly separable data ``E > 0`` while ``E → 0`` along a
separating direction, so the infimum is not attained and gradient descent
drives the weights to infinity; a single point is always separable, so the
smallest counterexample is ``m = 1``), and the descent rule
``w ← w − η Σ_n (ŷ(x_n) − y_n) x_n``, ``b ← b − η Σ_n (ŷ(x_n) − y_n)``
decreases ``E`` for small ``η`` (holds). Question 7b-iii: the softmax
cross-entropy is convex in ``z`` (holds).

logistic-softmax-regression: ``H = XᵀSX`` positive definite for a full-rank
design makes ``J`` strictly convex (holds, away from saturation) — at most one
minimiser, but not that one exists (separable data again). The multinomial
log-likelihood ``l(w)`` with Hessian blocks ``H_{c,c'}`` is concave, and not
strictly: adding one vector to every ``w_c`` leaves every ``μ_ic`` unchanged.

The neuron's parameters are stacked as ``θ = (w, b)``; the last column of
``X`` is replaced by the constant 1 that multiplies ``b`` (so ``d`` counts
the bias, and ``d = 1`` is a bias-only neuron).
"""

import jax
import jax.numpy as jnp

import derivcheck as dc

Q1 = "deep-learning-assignment-2, Q1"
Q7 = "deep-learning-assignment-2, Q7b-iii"
LSR = "logistic-softmax-regression"


def _with_bias(X):
    """``X`` with its last column set to 1: ``X θ = X_{:, :−1} w + b``."""
    return X.at[:, -1].set(1.0)


def _cross_entropy(z, y):
    """``−y ln σ(z) − (1 − y) ln(1 − σ(z)) = y softplus(−z) + (1 − y) softplus(z)``, accurate down to
    underflow (``softplus(z) − y z`` would cancel to rounding once ``|z| ≳ 35``)."""
    return y * jnp.logaddexp(0.0, -z) + (1 - y) * jnp.logaddexp(0.0, z)


def neuron_cost(theta, X, y):
    """``E_{w,b} = −Σ_n y_n ln ŷ_n + (1 − y_n) ln(1 − ŷ_n)``, ``ŷ_n = σ(wᵀx_n + b)``."""
    return jnp.sum(_cross_entropy(_with_bias(X) @ theta, y))


# m = 1 (a single point: always separable) and a batch of 7 points in the plane (with the bias: d = 3)
NEURON = dc.inputs(
    theta=dc.normal("d"), X=dc.normal("m", "d"), y=dc.bernoulli("m"), sizes=[{"m": 1, "d": 2}, {"m": 7, "d": 3}]
)


@dc.convex(
    wrt="theta",
    inputs=NEURON,
    name="convexity.sigmoid_neuron_cost_convex",
    source=f"{Q1} ('E_{{w,b}} is a convex function')",
    statement=r"E_{w,b} = -\sum_n y_n \ln \hat{y}(x_n) + (1 - y_n) \ln(1 - \hat{y}(x_n)) \text{ is convex in } (w, b)",
)
def sigmoid_neuron_cost(theta, X, y):
    """The neuron's cost, jointly in ``(w, b)`` (the notes argue from the ``w`` and ``b`` blocks separately)."""
    return neuron_cost(theta, X, y)


@dc.has_minimum(
    wrt="theta",
    inputs=NEURON,
    name="convexity.sigmoid_neuron_has_global_minimum_as_written",
    source=f"{Q1} ('E_{{w,b}} is convex and it has a global minimum')",
    statement=r"\exists\, (w^*, b^*): \; E_{w^*, b^*} = \inf_{w, b} E_{w,b}",
    expect=dc.fails(
        "convexity does not give existence: on linearly separable data (always when m ≤ d, e.g. a single point) E > 0 and E → 0 along a separating direction, so the infimum 0 is not attained and the weights diverge"
    ),
)
def sigmoid_neuron_has_minimum_as_written(theta, X, y):
    """The neuron's cost on any data: the claim the notes draw from convexity."""
    return neuron_cost(theta, X, y)


@dc.has_minimum(
    wrt="theta",
    inputs=NEURON,
    name="convexity.sigmoid_neuron_has_minimum_non_separable",
    source=f"{Q1} (condition: data not separable)",
    statement=r"\exists\, \min_{w,b} E_{w,b} \quad \text{when no } (w, b) \text{ separates the classes}",
)
def sigmoid_neuron_has_minimum_non_separable(theta, X, y):
    """The cost on data where every ``x_n`` appears with both labels: no direction separates them."""
    both = jnp.concatenate([X, X])
    return neuron_cost(theta, both, jnp.concatenate([y, 1 - y]))


@dc.has_minimum(
    wrt="theta",
    inputs=NEURON,
    name="convexity.sigmoid_neuron_has_minimum_with_l2",
    source=f"{Q1} (condition: with an L2 penalty)",
    statement=r"\exists\, \min_{w,b} \; E_{w,b} + \tfrac{\lambda}{2} \|(w, b)\|^2 \quad (\lambda = 0.1)",
)
def sigmoid_neuron_has_minimum_with_l2(theta, X, y):
    """``E + (λ/2)‖θ‖²`` with ``λ = 0.1``: strongly convex, hence coercive, on any data."""
    return neuron_cost(theta, X, y) + 0.05 * jnp.sum(theta**2)


@dc.descent(
    of=neuron_cost,
    wrt="theta",
    step="eta",
    inputs=dc.inputs(
        theta=dc.normal("d"), X=dc.normal("m", "d"), y=dc.bernoulli("m"), eta=dc.positive(low=0.1, high=1.0)
    ),
    name="convexity.sigmoid_neuron_descent_rule",
    source=f"{Q1} (the update rule)",
    statement=r"w_{n+1} = w_n - \eta \sum_n (\hat{y}(x_n) - y_n) x_n \quad \& \quad b_{n+1} = b_n - \eta \sum_n (\hat{y}(x_n) - y_n)",
)
def sigmoid_neuron_descent_rule(theta, X, y, eta):
    """One step of the notes' rule on ``θ = (w, b)``: the summed gradient times ``η``."""
    Xb = _with_bias(X)
    y_hat = jax.nn.sigmoid(Xb @ theta)
    return theta - eta * Xb.T @ (y_hat - y)


def softmax_cross_entropy(z, y):
    """``L(z, y) = −Σ_k y_k log softmax(z)_k``."""
    return -jnp.sum(y * jax.nn.log_softmax(z))


@dc.convex(
    wrt="z",
    inputs=dc.inputs(z=dc.normal("K"), y=dc.one_hot(classes="K")),
    name="convexity.softmax_ce_convex_in_z",
    source=Q7,
    statement=r"L(\mathbf{z}, \mathbf{y}) = -\sum_k y_k \log \hat{y}_k \text{ is convex in } \mathbf{z}",
)
def softmax_ce_convex(z, y):
    """Q7b-iii: the loss itself, convex because its Hessian ``diag(ŷ) − ŷŷᵀ`` is PSD everywhere."""
    return softmax_cross_entropy(z, y)


def logistic_cost(theta, X, y):
    """The notes' ``J(θ) = (1/m) Σ_i [−y_i log σ(θᵀx_i) − (1 − y_i) log(1 − σ(θᵀx_i))]``."""
    return jnp.mean(_cross_entropy(X @ theta, y))


# Full column rank, predictions away from saturation (at |θᵀx| ≳ 37, μ(1 − μ) underflows: see
# logistic.hessian_pd_saturated).
FULL_RANK = dc.inputs(
    theta=dc.normal("d"), X=dc.full_rank("m", "d"), y=dc.bernoulli("m"), regimes=("typical", "tiny", "constant")
)


@dc.convex(
    wrt="theta",
    strict=True,
    inputs=FULL_RANK,
    name="convexity.logistic_cost_strictly_convex_full_rank",
    source=f"{LSR}, H = XᵀSX positive definite when rank(X) = n+1",
    statement=r"a^\top H a = (Xa)^\top S (Xa) > 0 \;\Rightarrow\; J \text{ strictly convex}",
)
def logistic_strictly_convex(theta, X, y):
    """``J`` with a full-rank design: PD Hessian, strictly convex (at most one minimiser)."""
    return logistic_cost(theta, X, y)


@dc.convex(
    wrt="theta",
    strict=True,
    inputs=dc.inputs(
        theta=dc.normal("d"), X=dc.rank_deficient("m", "d"), y=dc.bernoulli("m"), regimes=("typical", "tiny")
    ),
    name="convexity.logistic_cost_strictly_convex_rank_deficient",
    source=f"{LSR}, strict convexity (condition rank(X) = n+1 violated)",
    statement=r"J \text{ strictly convex} \quad (\operatorname{rank} X < n+1)",
    expect=dc.fails("without full column rank J is constant along the null space of X: convex, not strictly"),
)
def logistic_strictly_convex_rank_deficient(theta, X, y):
    """Strict convexity where its condition fails."""
    return logistic_cost(theta, X, y)


@dc.has_minimum(
    wrt="theta",
    inputs=dc.inputs(theta=dc.normal("d"), X=dc.full_rank("m", "d"), y=dc.bernoulli("m")),
    name="convexity.logistic_minimiser_exists_full_rank",
    source=f"{LSR}, H positive definite (what it does not give: a minimiser)",
    statement=r"\operatorname{rank} X = n+1 \;\Rightarrow\; \exists!\, \theta^* = \arg\min J",
    expect=dc.fails(
        "strict convexity gives at most one minimiser, not one: on separable data (always when m ≤ n+1) J → 0 = inf J along a separating direction and no θ attains it"
    ),
)
def logistic_minimiser_exists(theta, X, y):
    """The reading "PD Hessian ⇒ a unique minimiser" on any full-rank data."""
    return logistic_cost(theta, X, y)


def softmax_loglik(W, X, Y):
    """``l(w) = Σ_i Σ_k y_ik log μ_ik(w)``, ``μ_i = softmax(Wᵀx_i)``, ``W = [w_1 … w_C]`` (``D × C``)."""
    return jnp.sum(Y * jax.nn.log_softmax(X @ W, axis=-1))


# W has D·C entries and the Hessian (D·C)²: sizes kept small.
SOFTMAX = dc.inputs(
    W=dc.normal("D", "C"),
    X=dc.full_rank("m", "D"),
    Y=dc.one_hot("m", classes="C"),
    sizes=[{"D": 1, "C": 2, "m": 1}, {"D": 3, "C": 4, "m": 5}],
)


@dc.concave(
    wrt="W",
    inputs=SOFTMAX,
    name="convexity.softmax_regression_loglik_concave",
    source=f"{LSR}, Ex. 8.4(c) (H_cc' = −Σ_i μ_ic(δ_cc' − μ_ic') x_i x_iᵀ is NSD)",
    statement=r"l(w) = \sum_{i=1}^m \sum_{k=1}^C y_{ik} \log \mu_{ik}(w) \text{ is concave}",
)
def softmax_regression_concave(W, X, Y):
    """The multinomial log-likelihood: concave (its Hessian is ``−Σ_i (diag μ_i − μ_i μ_iᵀ) ⊗ x_i x_iᵀ``)."""
    return softmax_loglik(W, X, Y)


@dc.concave(
    wrt="W",
    strict=True,
    inputs=SOFTMAX,
    name="convexity.softmax_regression_loglik_strictly_concave",
    source=f"{LSR}, Ex. 8.4(c) (by analogy with the binary case: PD ⇒ strict)",
    statement=r"l(w) \text{ strictly concave} \quad (\operatorname{rank} X = D)",
    expect=dc.fails(
        "l is invariant to adding one vector v to every w_c (μ_ic unchanged): flat along (v, …, v) even with a full-rank X, so concave but not strictly"
    ),
)
def softmax_regression_strictly_concave(W, X, Y):
    """The stronger claim, which fails even for a full-rank design."""
    return softmax_loglik(W, X, Y)
