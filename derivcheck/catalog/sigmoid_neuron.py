"""A single sigmoid neuron with cross-entropy: deep-learning-assignment-2, Question 1.

``ŷ(x) = σ(wᵀx + b)`` and ``E_{w,b} = −Σ_n [y_n ln ŷ(x_n) + (1 − y_n) ln(1 − ŷ(x_n))]``,
``E_n`` the term of sample ``n``. The notes print the cost without brackets,
``−Σ_n y_n ln ŷ + (1 − y_n) ln(1 − ŷ)``; their first step
(``((1 − y)/(1 − ŷ) − y/ŷ) ∂ŷ/∂w``) shows the bracketed reading is meant, and
it is the one used here. The literal one (the minus binding only the first
term) is registered once, to show that the choice decides the verdict.

The notes derive ``∂E_n/∂w``, ``∂E_n/∂b`` and the two second derivatives
``∂²E/∂w∂wᵀ`` and ``∂²E/∂b²`` separately, then conclude from "``ŷ(1 − ŷ)``
is always positive and ``x_n x_nᵀ`` is PSD" that the Hessian is PSD. The
Hessian in ``θ = (w, b)`` jointly also has the cross block
``∂²E/∂w∂b = Σ_n ŷ(1 − ŷ) x_n``; PSD diagonal blocks do not by themselves
make a block matrix PSD, but here the joint Hessian ``Σ_n ŷ(1 − ŷ) x̃_n x̃_nᵀ``
(``x̃ = [x; 1]``) is PSD, which both checks show. ``ŷ(1 − ŷ) > 0`` holds in
exact arithmetic; in float64 it is 0 once ``|wᵀx + b| ≳ 37``. The existence
of a minimum and the descent rule are optimisation claims (``convexity``,
checked elsewhere); the gradients the rule uses are checked here.
"""

import jax
import jax.numpy as jnp

import derivcheck as dc

NOTES = "deep-learning-assignment-2"


def sample_cost(w, b, x, y):
    """``E_n = −[y ln ŷ + (1 − y) ln(1 − ŷ)]`` for one sample, in the stable form ``softplus(z) − yz``."""
    z = jnp.dot(w, x) + b
    return jnp.logaddexp(0.0, z) - y * z


def cost(w, b, X, y):
    """``E_{w,b} = Σ_n E_n`` over the rows ``x_n`` of ``X``."""
    z = X @ w + b
    return jnp.sum(jnp.logaddexp(0.0, z) - y * z)


def cost_literal_precedence(w, b, X, y):
    """The unbracketed cost read literally: ``Σ_n [−y_n ln ŷ_n + (1 − y_n) ln(1 − ŷ_n)]``."""
    z = X @ w + b
    log_p, log_q = -jnp.logaddexp(0.0, -z), -jnp.logaddexp(0.0, z)  # ln ŷ, ln(1 − ŷ)
    return jnp.sum(-y * log_p + (1 - y) * log_q)


def cost_joint(theta, X, y):
    """``E`` as a function of ``θ = [w; b]`` (length ``d + 1``)."""
    return cost(theta[:-1], theta[-1], X, y)


def _yhat(w, b, x):
    return jax.nn.sigmoid(jnp.dot(w, x) + b)


def _yhats(w, b, X):
    return jax.nn.sigmoid(X @ w + b)


SAMPLE = dc.inputs(w=dc.normal("d"), b=dc.normal(), x=dc.normal("d"), y=dc.bernoulli())
# the notes' chain-rule form divides by ŷ and 1 − ŷ: only where neither rounds to 0 in float64
SAMPLE_UNSATURATED = dc.inputs(
    w=dc.normal("d"), b=dc.normal(), x=dc.normal("d"), y=dc.bernoulli(), regimes=("typical", "tiny")
)
DATA = dc.inputs(w=dc.normal("d"), b=dc.normal(), X=dc.normal("m", "d"), y=dc.bernoulli("m"))
# fewer samples than features in two size sets: Σ_n x_n x_nᵀ is then singular
ANY_RANK = dc.inputs(
    w=dc.normal("d"),
    b=dc.normal(),
    X=dc.normal("m", "d"),
    y=dc.bernoulli("m"),
    sizes=[{"m": 1, "d": 3}, {"m": 4, "d": 6}, {"m": 13, "d": 8}],
)
JOINT_SIZES = [{"m": 1, "d": 1, "p": 2}, {"m": 5, "d": 3, "p": 4}, {"m": 13, "d": 8, "p": 9}]
JOINT = dc.inputs(theta=dc.normal("p"), X=dc.normal("m", "d"), y=dc.bernoulli("m"), sizes=JOINT_SIZES)


# ------------------------------------------------------------------ local derivatives


@dc.gradient(
    of=lambda w, b, x: jax.nn.sigmoid(jnp.dot(w, x) + b),
    wrt="w",
    inputs=dc.inputs(w=dc.normal("d"), b=dc.normal(), x=dc.normal("d")),
    name="sigmoid_neuron.dyhat_dw",
    source=f"{NOTES}, Q1, ∂ŷ/∂w",
    statement=r"\hat{y} = \frac{1}{1 + e^{-(w^T x + b)}} \rightarrow \frac{\partial \hat{y}}{\partial w} = \hat{y}(1 - \hat{y})x",
)
def dyhat_dw(w, b, x):
    """``ŷ(1 − ŷ) x``."""
    yhat = _yhat(w, b, x)
    return yhat * (1 - yhat) * x


@dc.gradient(
    of=lambda w, b, x: jax.nn.sigmoid(jnp.dot(w, x) + b),
    wrt="b",
    inputs=dc.inputs(w=dc.normal("d"), b=dc.normal(), x=dc.normal("d")),
    name="sigmoid_neuron.dyhat_db",
    source=f"{NOTES}, Q1, ∂ŷ/∂b",
    statement=r"\frac{\partial \hat{y}}{\partial b} = \hat{y}(1 - \hat{y})",
)
def dyhat_db(w, b, x):
    """``ŷ(1 − ŷ)``."""
    yhat = _yhat(w, b, x)
    return yhat * (1 - yhat)


# ------------------------------------------------------------- first derivatives of E_n


@dc.gradient(
    of=sample_cost,
    wrt="w",
    inputs=SAMPLE_UNSATURATED,
    name="sigmoid_neuron.dEn_dw_chain_rule",
    source=f"{NOTES}, Q1, ∂E_n/∂w chain-rule step",
    statement=r"\frac{\partial E_n}{\partial w} = \left(\frac{1 - y_n}{1 - \hat{y}} - \frac{y_n}{\hat{y}} \right) \frac{\partial \hat{y}}{\partial w}",
)
def dEn_dw_chain_rule(w, b, x, y):
    """``((1 − y)/(1 − ŷ) − y/ŷ) · ŷ(1 − ŷ)x``, evaluated as written (unsaturated inputs)."""
    yhat = _yhat(w, b, x)
    return ((1 - y) / (1 - yhat) - y / yhat) * (yhat * (1 - yhat) * x)


@dc.gradient(
    of=sample_cost,
    wrt="w",
    inputs=SAMPLE,
    name="sigmoid_neuron.dEn_dw",
    source=f"{NOTES}, Q1, ∂E_n/∂w",
    statement=r"\frac{\partial E_n}{\partial w} = (\hat{y} - y_n)x",
)
def dEn_dw(w, b, x, y):
    """``(ŷ − y_n) x``."""
    return (_yhat(w, b, x) - y) * x


@dc.gradient(
    of=sample_cost,
    wrt="b",
    inputs=SAMPLE_UNSATURATED,
    name="sigmoid_neuron.dEn_db_chain_rule",
    source=f"{NOTES}, Q1, ∂E_n/∂b chain-rule step",
    statement=r"\frac{\partial E_n}{\partial b} = \left(\frac{1 - y_n}{1 - \hat{y}} - \frac{y_n}{\hat{y}} \right) \frac{\partial \hat{y}}{\partial b}",
)
def dEn_db_chain_rule(w, b, x, y):
    """``((1 − y)/(1 − ŷ) − y/ŷ) · ŷ(1 − ŷ)``, evaluated as written (unsaturated inputs)."""
    yhat = _yhat(w, b, x)
    return ((1 - y) / (1 - yhat) - y / yhat) * (yhat * (1 - yhat))


@dc.gradient(
    of=sample_cost,
    wrt="b",
    inputs=SAMPLE,
    name="sigmoid_neuron.dEn_db",
    source=f"{NOTES}, Q1, ∂E_n/∂b",
    statement=r"\frac{\partial E_n}{\partial b} = (\hat{y} - y_n)",
)
def dEn_db(w, b, x, y):
    """``ŷ − y_n``."""
    return _yhat(w, b, x) - y


# ----------------------------------------------------------------- gradients of E


@dc.gradient(
    of=cost,
    wrt="w",
    inputs=DATA,
    name="sigmoid_neuron.gradient_w",
    source=f"{NOTES}, Q1, the gradient in the update of w",
    statement=r"w_{n+1} = w_n - \eta \sum_n (\hat{y}(x_n) - y_n)x_n",
)
def gradient_w(w, b, X, y):
    """``∇_w E = Σ_n (ŷ(x_n) − y_n) x_n``."""
    return X.T @ (_yhats(w, b, X) - y)


@dc.gradient(
    of=cost,
    wrt="b",
    inputs=DATA,
    name="sigmoid_neuron.gradient_b",
    source=f"{NOTES}, Q1, the gradient in the update of b",
    statement=r"b_{n+1} = b_n - \eta \sum_n (\hat{y}(x_n) - y_n)",
)
def gradient_b(w, b, X, y):
    """``∂E/∂b = Σ_n (ŷ(x_n) − y_n)``."""
    return jnp.sum(_yhats(w, b, X) - y)


@dc.gradient(
    of=cost_literal_precedence,
    wrt="w",
    inputs=DATA,
    name="sigmoid_neuron.gradient_w_literal_precedence",
    source=f"{NOTES}, Q1, E_{{w,b}} read without brackets",
    statement=r"E_{w,b} = - \sum_n y_n \ln \hat{y}(x_n) + (1 - y_n) \ln(1 - \hat{y}(x_n)) \;\Rightarrow\; \nabla_w E = \sum_n (\hat{y}(x_n) - y_n)x_n",
    expect=dc.fails(
        "with the minus binding only y ln ŷ, E = Σ[−y ln ŷ + (1 − y) ln(1 − ŷ)] and its gradient is −Σ[y(1 − ŷ) + (1 − y)ŷ]x_n: the cost needs brackets"
    ),
)
def gradient_w_literal_precedence(w, b, X, y):
    """``Σ_n (ŷ − y_n) x_n`` against the cost as printed, without brackets."""
    return X.T @ (_yhats(w, b, X) - y)


# ---------------------------------------------------------------- second derivatives


@dc.hessian(
    of=sample_cost,
    wrt="w",
    inputs=SAMPLE,
    name="sigmoid_neuron.d2En_dw2",
    source=f"{NOTES}, Q1, ∂²E_n/∂w∂wᵀ",
    statement=r"\frac{\partial^2 E_n}{\partial w \partial w^T} = \frac{\partial}{\partial w} ((\hat{y} - y_n)x) = \hat{y}(1 - \hat{y})xx^T",
)
def d2En_dw2(w, b, x, y):
    """``ŷ(1 − ŷ) x xᵀ``."""
    yhat = _yhat(w, b, x)
    return yhat * (1 - yhat) * jnp.outer(x, x)


@dc.hessian(
    of=cost,
    wrt="w",
    inputs=DATA,
    name="sigmoid_neuron.d2E_dw2",
    source=f"{NOTES}, Q1, ∂²E_{{w,b}}/∂w∂wᵀ",
    statement=r"\frac{\partial^2 E_{w,b}}{\partial w \partial w^T} = \sum_n \hat{y}(1 - \hat{y})x_n x_n^T",
)
def d2E_dw2(w, b, X, y):
    """``Σ_n ŷ_n(1 − ŷ_n) x_n x_nᵀ``."""
    s = _yhats(w, b, X)
    return X.T @ ((s * (1 - s))[:, None] * X)


@dc.hessian(
    of=sample_cost,
    wrt="b",
    inputs=SAMPLE,
    name="sigmoid_neuron.d2En_db2",
    source=f"{NOTES}, Q1, ∂²E_n/∂b² (written ∂²E_n/∂²b)",
    statement=r"\frac{\partial^2 E_n}{\partial^2 b} = \frac{\partial}{\partial b} (\hat{y} - y_n) = \hat{y}(1 - \hat{y})",
)
def d2En_db2(w, b, x, y):
    """``ŷ(1 − ŷ)``."""
    yhat = _yhat(w, b, x)
    return yhat * (1 - yhat)


@dc.hessian(
    of=cost,
    wrt="b",
    inputs=DATA,
    name="sigmoid_neuron.d2E_db2",
    source=f"{NOTES}, Q1, ∂²E_{{w,b}}/∂b² (written ∂²E/∂²b)",
    statement=r"\frac{\partial^2 E_{w,b}}{\partial^2 b} = \sum_n \hat{y}(1 - \hat{y})",
)
def d2E_db2(w, b, X, y):
    """``Σ_n ŷ_n(1 − ŷ_n)``."""
    s = _yhats(w, b, X)
    return jnp.sum(s * (1 - s))


def _joint_hessian(theta, X):
    """``Σ_n ŷ_n(1 − ŷ_n) x̃_n x̃_nᵀ`` with ``x̃_n = [x_n; 1]``."""
    Xt = jnp.concatenate([X, jnp.ones((X.shape[0], 1))], axis=1)
    s = jax.nn.sigmoid(Xt @ theta)
    return Xt.T @ ((s * (1 - s))[:, None] * Xt)


@dc.hessian(
    of=cost_joint,
    wrt="theta",
    inputs=JOINT,
    name="sigmoid_neuron.hessian_joint",
    source=f"{NOTES}, Q1, Hessian in (w, b) jointly (not in the notes: its blocks are)",
    statement=r"\nabla^2_{(w,b)} E = \sum_n \hat{y}(1-\hat{y}) \begin{bmatrix} x_n x_n^T & x_n \\ x_n^T & 1 \end{bmatrix}",
)
def hessian_joint(theta, X, y):
    """The two blocks of the notes plus the cross block ``Σ_n ŷ(1 − ŷ) x_n``."""
    return _joint_hessian(theta, X)


@dc.hessian(
    of=cost_joint,
    wrt="theta",
    inputs=JOINT,
    name="sigmoid_neuron.hessian_joint_from_blocks",
    source=f"{NOTES}, Q1, the two second derivatives taken as the Hessian in (w, b)",
    statement=r"\nabla^2_{(w,b)} E = \begin{bmatrix} \sum_n \hat{y}(1 - \hat{y})x_n x_n^T & 0 \\ 0 & \sum_n \hat{y}(1 - \hat{y}) \end{bmatrix}",
    expect=dc.fails(
        "∂²E/∂w∂wᵀ and ∂²E/∂b² are only the diagonal blocks: the cross block ∂²E/∂w∂b = Σ_n ŷ(1 − ŷ) x_n is not zero"
    ),
)
def hessian_joint_from_blocks(theta, X, y):
    """``diag(∂²E/∂w∂wᵀ, ∂²E/∂b²)`` — the joint Hessian without its cross block."""
    d = X.shape[1]
    mask = jnp.ones((d + 1, d + 1)).at[:d, d].set(0.0).at[d, :d].set(0.0)
    return _joint_hessian(theta, X) * mask


# ------------------------------------------------------------------- definiteness


@dc.definite(
    "psd",
    of=sample_cost,
    wrt="w",
    inputs=SAMPLE,
    name="sigmoid_neuron.d2En_dw2_psd",
    source=f"{NOTES}, Q1, 'ŷ(1 − ŷ) is always positive and x_n x_nᵀ is PSD'",
    statement=r"\hat{y}(1 - \hat{y})xx^T \succeq 0",
)
def d2En_dw2_psd(w, b, x, y):
    """One sample's ``ŷ(1 − ŷ) x xᵀ``: PSD of rank 1, singular along every direction orthogonal to ``x``."""
    yhat = _yhat(w, b, x)
    return yhat * (1 - yhat) * jnp.outer(x, x)


@dc.definite(
    "psd",
    of=cost,
    wrt="w",
    inputs=ANY_RANK,
    name="sigmoid_neuron.d2E_dw2_psd",
    source=f"{NOTES}, Q1, 'Hessian matrix is PSD' (the w block)",
    statement=r"\frac{\partial^2 E_{w,b}}{\partial w \partial w^T} = \sum_n \hat{y}(1 - \hat{y})x_n x_n^T \succeq 0",
)
def d2E_dw2_psd(w, b, X, y):
    """``Σ_n ŷ(1 − ŷ) x_n x_nᵀ`` is PSD for any data; singular when the ``x_n`` do not span ``R^d``."""
    s = _yhats(w, b, X)
    return X.T @ ((s * (1 - s))[:, None] * X)


@dc.definite(
    "psd",
    of=cost_joint,
    wrt="theta",
    inputs=JOINT,
    name="sigmoid_neuron.hessian_joint_psd",
    source=f"{NOTES}, Q1, 'Hessian matrix is PSD' in (w, b) jointly",
    statement=r"\nabla^2_{(w,b)} E = \sum_n \hat{y}(1-\hat{y}) \tilde{x}_n \tilde{x}_n^T \succeq 0, \quad \tilde{x}_n = [x_n; 1]",
)
def hessian_joint_psd(theta, X, y):
    """The joint Hessian is PSD (a weighted sum of ``x̃ x̃ᵀ``), which is what convexity in ``(w, b)`` needs."""
    return _joint_hessian(theta, X)


def _b_curvature(w, b, X, y):
    s = _yhats(w, b, X)
    return jnp.sum(s * (1 - s)).reshape(1, 1)


@dc.definite(
    "pd",
    of=cost,
    wrt="b",
    inputs=dc.inputs(
        w=dc.normal("d"), b=dc.normal(), X=dc.normal("m", "d"), y=dc.bernoulli("m"), regimes=("typical", "tiny")
    ),
    name="sigmoid_neuron.d2E_db2_positive",
    source=f"{NOTES}, Q1, 'ŷ(1 − ŷ) is always positive' (condition: ŷ not saturated)",
    statement=r"\frac{\partial^2 E_{w,b}}{\partial^2 b} = \sum_n \hat{y}(1 - \hat{y}) > 0",
)
def d2E_db2_positive(w, b, X, y):
    """``Σ_n ŷ(1 − ŷ) > 0`` as a 1 × 1 matrix, where ``ŷ`` is away from 0 and 1."""
    return _b_curvature(w, b, X, y)


@dc.definite(
    "pd",
    of=cost,
    wrt="b",
    inputs=dc.inputs(w=dc.normal("d"), b=dc.normal(), X=dc.normal("m", "d"), y=dc.bernoulli("m"), regimes=("large",)),
    name="sigmoid_neuron.d2E_db2_positive_saturated",
    source=f"{NOTES}, Q1, 'ŷ(1 − ŷ) is always positive' (condition fails in float64: saturated ŷ)",
    statement=r"\frac{\partial^2 E_{w,b}}{\partial^2 b} = \sum_n \hat{y}(1 - \hat{y}) > 0",
    expect=dc.fails(
        "ŷ(1 − ŷ) > 0 only in exact arithmetic: once |wᵀx + b| ≳ 37, ŷ rounds to 1 in float64 and the curvature is 0"
    ),
)
def d2E_db2_positive_saturated(w, b, X, y):
    """The same claim where every ``|wᵀx_n + b|`` is large."""
    return _b_curvature(w, b, X, y)
