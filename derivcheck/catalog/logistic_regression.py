"""Binary logistic regression: logistic-softmax-regression (the first part of the notes).

The notes define ``J : R^{n+1} → R`` through its partial derivatives
``∂J/∂θ_j = (1/m) Σ_i (h_θ(x⁽ⁱ⁾) − y⁽ⁱ⁾) x_j⁽ⁱ⁾``, i.e. ``J`` is the *mean*
negative log-likelihood. The next lines collect the partials into
``g = Σ_i (μ_i − y_i) x⁽ⁱ⁾ = Xᵀ(μ − y)`` — without the ``1/m`` — and the
Hessian ``H = Xᵀ S X``, ``S = diag(μ_i(1 − μ_i))``, is derived from that
``g``, i.e. for the *summed* likelihood. Both readings of ``J`` are
registered: the vector forms hold for the sum and are off by a factor ``m``
for the mean the notes started from.

Rows of ``X`` are the instances ``x⁽ⁱ⁾ᵀ`` (``m × (n+1)``, here ``m × d``),
as in the notes' later ``X ∼ M × (n+1)``; their first sketch writes the
instances as the *columns* of an ``(n+1) × m`` matrix ``x``, for which
``xᵀ(μ − y)`` would not even be defined. The notes' intercept column
``x_0 = 1`` is not forced, since no formula depends on it.

Two lines of the Hessian derivation cannot be checked as a Hessian because
their shapes are not a Hessian's: the product of an ``(n+1) × m`` matrix with
a column ``[μ_i(1 − μ_i)]_{m×1}`` (an ``(n+1)``-vector; the factor ``X`` on the
right is missing), which the notes themselves cross out before writing
``H = XᵀSX``.
"""

import jax
import jax.numpy as jnp

import derivcheck as dc

NOTES = "logistic-softmax-regression"


def cost_mean(theta, X, y):
    """``J(θ) = (1/m) Σ_i [−y_i log σ(θᵀx_i) − (1 − y_i) log(1 − σ(θᵀx_i))]`` (stable form)."""
    z = X @ theta
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z)


def cost_sum(theta, X, y):
    """The summed negative log-likelihood ``m · J(θ)``, the reading ``g = Xᵀ(μ − y)`` implies."""
    z = X @ theta
    return jnp.sum(jnp.logaddexp(0.0, z) - y * z)


DATA = dc.inputs(theta=dc.normal("d"), X=dc.full_rank("m", "d"), y=dc.bernoulli("m"))


@dc.gradient(
    of=jax.nn.sigmoid,
    wrt="z",
    inputs=dc.inputs(z=dc.normal()),
    name="logistic.sigmoid_derivative",
    source=f"{NOTES}, Hessian step ∂σ(θᵀx)/∂θ_k = σ(1 − σ) x_k",
    statement=r"\sigma'(z) = \sigma(z)\,[1 - \sigma(z)]",
)
def sigmoid_derivative(z):
    """The local derivative the Hessian derivation uses."""
    s = jax.nn.sigmoid(z)
    return s * (1 - s)


@dc.gradient(
    of=cost_mean,
    wrt="theta",
    inputs=DATA,
    name="logistic.gradient_component",
    source=f"{NOTES}, ∂J/∂θ_j",
    statement=r"\frac{\partial J}{\partial \theta_j}(\theta) = \frac{1}{m} \sum_{i=1}^m \left[ h_\theta(x^{(i)}) - y^{(i)} \right] x_j^{(i)}",
)
def gradient_component(theta, X, y):
    """Each partial ``(1/m) Σ_i (h_θ(x⁽ⁱ⁾) − y⁽ⁱ⁾) x_j⁽ⁱ⁾``, for every ``j``."""
    m = X.shape[0]
    h = jax.nn.sigmoid(X @ theta)
    return jnp.sum((h - y)[:, None] * X, axis=0) / m


@dc.gradient(
    of=cost_mean,
    wrt="theta",
    inputs=DATA,
    name="logistic.gradient_vector_as_written",
    source=f"{NOTES}, g := [∂J/∂θ_0 … ∂J/∂θ_n] = Xᵀ(μ − y)",
    statement=r"g := \begin{bmatrix} \frac{\partial J}{\partial \theta_0} \\ \vdots \end{bmatrix} = \sum_{i=1}^m (\mu_i - y^{(i)}) x^{(i)} = X^T (\mu - y)",
    expect=dc.fails("the 1/m of ∂J/∂θ_j is dropped when the partials are stacked: g is m times the gradient of J"),
)
def gradient_vector_as_written(theta, X, y):
    """``g = Xᵀ(μ − y)`` claimed as the gradient of the ``J`` defined with ``1/m``."""
    mu = jax.nn.sigmoid(X @ theta)
    return X.T @ (mu - y)


@dc.gradient(
    of=cost_sum,
    wrt="theta",
    inputs=DATA,
    name="logistic.gradient_vector_sum",
    source=f"{NOTES}, g = Xᵀ(μ − y) (reading J as the summed likelihood)",
    statement=r"g = \sum_{i=1}^m (\mu_i - y^{(i)}) x^{(i)} = X^T (\mu - y)",
)
def gradient_vector_sum(theta, X, y):
    """``Xᵀ(μ − y)`` as the gradient of the summed negative log-likelihood."""
    mu = jax.nn.sigmoid(X @ theta)
    return X.T @ (mu - y)


@dc.hessian(
    of=cost_sum,
    wrt="theta",
    inputs=DATA,
    name="logistic.hessian_entry",
    source=f"{NOTES}, ∂²J/∂θ_k∂θ_j",
    statement=r"\frac{\partial^2 J}{\partial \theta_k \partial \theta_j}(\theta) = \sum_{i=1}^m \mu_i (1 - \mu_i) x_j^{(i)} x_k^{(i)}",
)
def hessian_entry(theta, X, y):
    """Entry ``(j, k)``: ``Σ_i μ_i(1 − μ_i) x_j⁽ⁱ⁾ x_k⁽ⁱ⁾`` (from the summed gradient)."""
    mu = jax.nn.sigmoid(X @ theta)
    return jnp.einsum("i,ij,ik->jk", mu * (1 - mu), X, X)


@dc.hessian(
    of=cost_mean,
    wrt="theta",
    inputs=DATA,
    name="logistic.hessian_entry_as_written",
    source=f"{NOTES}, ∂²J/∂θ_k∂θ_j (J with the 1/m it was defined with)",
    statement=r"\frac{\partial^2 J}{\partial \theta_k \partial \theta_j}(\theta) = \frac{\partial}{\partial \theta_k} \left( \sum_{i=1}^m (\mu_i - y_i) x_j^{(i)} \right) = \sum_{i=1}^m \mu_i (1 - \mu_i) x_j^{(i)} x_k^{(i)}",
    expect=dc.fails(
        "the derivation differentiates ∂J/∂θ_j without its 1/m: the entries are m times those of the Hessian of J"
    ),
)
def hessian_entry_as_written(theta, X, y):
    """Entry ``(j, k)``: ``Σ_i μ_i(1 − μ_i) x_j⁽ⁱ⁾ x_k⁽ⁱ⁾`` claimed for ``J`` as defined (the mean)."""
    mu = jax.nn.sigmoid(X @ theta)
    return jnp.einsum("i,ij,ik->jk", mu * (1 - mu), X, X)


def _xtsx(theta, X):
    mu = jax.nn.sigmoid(X @ theta)
    return X.T @ ((mu * (1 - mu))[:, None] * X)


@dc.hessian(
    of=cost_sum,
    wrt="theta",
    inputs=DATA,
    name="logistic.hessian",
    source=f"{NOTES}, H = XᵀSX",
    statement=r"H = X^T S X, \quad S = \operatorname{diag}(\mu_1(1-\mu_1), \dots, \mu_m(1-\mu_m))",
)
def hessian(theta, X, y):
    """``H = Xᵀ S X`` for the summed likelihood."""
    return _xtsx(theta, X)


@dc.hessian(
    of=cost_mean,
    wrt="theta",
    inputs=DATA,
    name="logistic.hessian_of_mean_cost",
    source=f"{NOTES}, H = XᵀSX (reading J with the 1/m it was defined with)",
    statement=r"H = X^T S X",
    expect=dc.fails("XᵀSX is the Hessian of the summed likelihood; for J with its 1/m it is (1/m) XᵀSX"),
)
def hessian_of_mean_cost(theta, X, y):
    """``XᵀSX`` claimed as the Hessian of ``J`` with the ``1/m`` it was defined with."""
    return _xtsx(theta, X)


# Full column rank and predictions away from saturation: the notes' conditions.
UNSATURATED = dc.inputs(
    theta=dc.normal("d"), X=dc.full_rank("m", "d"), y=dc.bernoulli("m"), regimes=("typical", "tiny", "constant")
)


@dc.definite(
    "pd",
    of=cost_sum,
    wrt="theta",
    inputs=UNSATURATED,
    name="logistic.hessian_pd_full_rank",
    source=f"{NOTES}, H positive definite (condition: rank(X) = n+1)",
    statement=r"a^T H a = (Xa)^T S (Xa) = \sum_{i=1}^m \mu_i(1-\mu_i) b_i^2 > 0 \quad (a \neq 0)",
)
def hessian_pd_full_rank(theta, X, y):
    """``XᵀSX`` is PD when ``X`` has full column rank (``Xa ≠ 0`` for ``a ≠ 0``) and ``S > 0``."""
    return _xtsx(theta, X)


@dc.definite(
    "pd",
    inputs=dc.inputs(
        theta=dc.normal("d"),
        X=dc.rank_deficient("m", "d"),
        y=dc.bernoulli("m"),
        regimes=("typical", "tiny", "constant"),
    ),
    name="logistic.hessian_pd_rank_deficient",
    source=f"{NOTES}, H positive definite (condition fails: rank(X) < n+1)",
    statement=r"H = X^T S X \succ 0 \quad (\operatorname{rank} X < n+1)",
    expect=dc.fails(
        "without full column rank, Xa = 0 for some a ≠ 0 and aᵀHa = 0: H is singular along the null space of X"
    ),
)
def hessian_pd_rank_deficient(theta, X, y):
    """The PD claim where its condition fails: a rank-deficient design."""
    return _xtsx(theta, X)


@dc.definite(
    "psd",
    inputs=dc.inputs(theta=dc.normal("d"), X=dc.rank_deficient("m", "d"), y=dc.bernoulli("m")),
    name="logistic.hessian_psd_any_rank",
    source=f"{NOTES}, aᵀHa = (Xa)ᵀS(Xa) ≥ 0 (no condition on X)",
    statement=r"a^T H a = \sum_i \mu_i (1 - \mu_i) (Xa)_i^2 \ge 0",
)
def hessian_psd_any_rank(theta, X, y):
    """What does hold for any ``X``: ``XᵀSX`` is PSD."""
    return _xtsx(theta, X)


@dc.definite(
    "pd",
    inputs=dc.inputs(theta=dc.normal("d"), X=dc.full_rank("m", "d"), y=dc.bernoulli("m"), regimes=("large",)),
    name="logistic.hessian_pd_saturated",
    source=f"{NOTES}, H positive definite (condition fails in float64: saturated μ_i, S rounds to 0)",
    statement=r"S = \operatorname{diag}(\mu_i(1-\mu_i)),\ \mu_i(1-\mu_i) > 0",
    expect=dc.fails(
        "μ_i(1 − μ_i) > 0 only in exact arithmetic: when |θᵀx_i| ≳ 37, μ_i rounds to 1 in float64, S to 0, and H is numerically singular"
    ),
)
def hessian_pd_saturated(theta, X, y):
    """The PD claim on saturated predictions (large ``|θᵀx|``)."""
    return _xtsx(theta, X)
