"""Multinomial (softmax) regression: logistic-softmax-regression, Exercise 8.4 (a)–(c).

(a) ``v_k(η) = exp(η_k) / Σ_c exp(η_c)`` has ``∂v_k/∂η_j = v_k(δ_kj − v_j)``.

(b) ``l(w) = Σ_i Σ_k y_ik log μ_ik(w)``, the *log-likelihood* (no minus sign,
no ``1/m``), with ``w = [w_1 … w_C] ∈ R^{D×C}`` (one column per class),
``μ_ik = v_k(wᵀx_i)`` and one-hot ``y_ik = δ_{y_i k}``. Claimed:
``∇_{w_c} l = Σ_i (y_ic − μ_ic) x_i``, stacked as ``∇_w l = [∇_{w_1} l; …; ∇_{w_C} l]``.
The last step uses ``Σ_k y_ik = 1``; the line before it holds for any labels.

(c) ``Hl(w)`` is the ``C × C`` block matrix of ``D × D`` blocks
``H_{c,c'} = −Σ_i μ_ic (δ_{c,c'} − μ_ic') x_i x_iᵀ``, in the notes' ordering
of ``w``: the columns ``w_1, …, w_C`` stacked (class-major, ``vec(w)``).
The statement of (c) is right; the lines that derive it write ``δ_{c,c}``
(always 1) and ``∂v_c/∂η_{i,c}`` where ``c'`` is meant, which is wrong for
every block with ``c ≠ c'`` and harmless on the diagonal blocks. ``l`` is
concave, so ``Hl`` is negative semi-definite, singular along ``w_c = u`` for
every ``c`` (softmax is shift-invariant).

Instances are the rows of ``X`` (``m × D``). Sizes include ``C = 2`` and a
batch of one instance, with ``m``, ``D``, ``C`` distinct so that a transposed
block or a class/feature mix-up cannot hide.
"""

import jax
import jax.numpy as jnp

import derivcheck as dc
from derivcheck.catalog._cases import blocks_only, column_masks, off_blocks_only

NOTES = "logistic-softmax-regression"

SIZES = [
    {"m": 1, "D": 3, "C": 2, "DC": 6},
    {"m": 6, "D": 4, "C": 2, "DC": 8},
    {"m": 5, "D": 3, "C": 7, "DC": 21},
]


def log_likelihood(w, X, Y):
    """``l(w) = Σ_i Σ_k y_ik log μ_ik(w)``, ``μ_i = softmax(wᵀx_i)``; ``w`` is ``D × C``."""
    return jnp.sum(Y * jax.nn.log_softmax(X @ w, axis=-1))


def log_likelihood_stacked(wv, X, Y):
    """``l`` of the stacked columns ``wv = [w_1; …; w_C]`` (length ``D·C``, class-major)."""
    D, C = X.shape[1], Y.shape[1]
    return log_likelihood(wv.reshape(C, D).T, X, Y)


def _mu(w, X):
    return jax.nn.softmax(X @ w, axis=-1)


def _softmax(eta):
    e = jnp.exp(eta - jnp.max(eta))
    return e / jnp.sum(e)


# ----------------------------------------------------------------------------- (a)

ETA = dc.inputs(eta=dc.normal("C"), sizes=[{"C": 2}, {"C": 3}, {"C": 7}])


@dc.jacobian(
    of=jax.nn.softmax,
    wrt="eta",
    inputs=ETA,
    name="softmax_regression.softmax_jacobian",
    source=f"{NOTES}, Ex. 8.4(a)",
    statement=r"\frac{\partial v_k}{\partial n_j}(\eta) = v_k(\eta) (\delta_{kj} - v_j(\eta))",
)
def softmax_jacobian(eta):
    """Entry ``(k, j)``: ``v_k(δ_kj − v_j)``."""
    v = _softmax(eta)
    delta = jnp.eye(eta.shape[0])
    return v[:, None] * (delta - v[None, :])


@dc.jacobian(
    of=jax.nn.softmax,
    wrt="eta",
    inputs=ETA,
    name="softmax_regression.softmax_jacobian_quotient_rule",
    source=f"{NOTES}, Ex. 8.4(a), quotient-rule step",
    statement=r"\frac{\partial v_k}{\partial n_j}(\eta) = \frac{\delta_{kj} \exp(n_k) \sum - \exp(n_k) \exp(n_j)}{\sum^2}",
)
def softmax_jacobian_quotient_rule(eta):
    """The step before simplifying: ``(δ_kj e^{η_k} Σ − e^{η_k} e^{η_j}) / Σ²``, ``Σ = Σ_c e^{η_c}``."""
    e = jnp.exp(eta)
    total = jnp.sum(e)
    delta = jnp.eye(eta.shape[0])
    return (delta * e[:, None] * total - e[:, None] * e[None, :]) / total**2


# ----------------------------------------------------------------------------- (b)


@dc.jacobian(
    of=lambda w, x: jax.nn.softmax(w.T @ x),
    wrt="w",
    inputs=dc.inputs(
        w=dc.normal("D", "C"), x=dc.normal("D"), sizes=[{"D": 1, "C": 2}, {"D": 4, "C": 2}, {"D": 3, "C": 7}]
    ),
    name="softmax_regression.dmu_dw",
    source=f"{NOTES}, Ex. 8.4(b), chain rule for μ_ik = v_k ∘ g_i",
    statement=r"\frac{\partial v_k \circ g_i}{\partial w_{cr}}(w) = \mu_{ik}(w) (\delta_{kc} - \mu_{ic}(w)) x_{ir}",
)
def dmu_dw(w, x):
    """``∂μ_k/∂w_{cr} = μ_k(δ_kc − μ_c) x_r`` for one instance; ``w_{cr}`` is entry ``r`` of column ``c``."""
    mu = _softmax(w.T @ x)
    delta = jnp.eye(mu.shape[0])
    # index order of the result: (k, r, c), as the Jacobian of μ (C,) w.r.t. w (D, C)
    return mu[:, None, None] * (delta[:, None, :] - mu[None, None, :]) * x[None, :, None]


ONE_HOT = dc.inputs(w=dc.normal("D", "C"), X=dc.normal("m", "D"), Y=dc.one_hot("m", classes="C"), sizes=SIZES)


@dc.gradient(
    of=log_likelihood,
    wrt="w",
    inputs=ONE_HOT,
    name="softmax_regression.gradient_class",
    source=f"{NOTES}, Ex. 8.4(b) (condition: one-hot y)",
    statement=r"\nabla_{w_c} l (w) = \sum_{i=1}^m (y_{ic} - \mu_{ic}(w)) x_i",
)
def gradient_class(w, X, Y):
    """``∇_{w_c} l = Σ_i (y_ic − μ_ic) x_i`` for each class ``c``, placed in column ``c``."""
    mu = _mu(w, X)
    columns = [jnp.sum((Y[:, c] - mu[:, c])[:, None] * X, axis=0) for c in range(w.shape[1])]
    return jnp.stack(columns, axis=1)


@dc.gradient(
    of=log_likelihood_stacked,
    wrt="wv",
    inputs=dc.inputs(wv=dc.normal("DC"), X=dc.normal("m", "D"), Y=dc.one_hot("m", classes="C"), sizes=SIZES),
    name="softmax_regression.gradient_stacked",
    source=f"{NOTES}, Ex. 8.4(b), ∇_w l = [∇_{{w_1}} l; …; ∇_{{w_C}} l]",
    statement=r"\nabla_w l = \begin{bmatrix} \nabla_{w_1} l \\ \vdots \\ \nabla_{w_C} l \end{bmatrix}",
)
def gradient_stacked(wv, X, Y):
    """The class gradients stacked in the order of ``w = [w_1 … w_C]``: ``vec(Xᵀ(Y − μ))``."""
    D, C = X.shape[1], Y.shape[1]
    mu = _mu(wv.reshape(C, D).T, X)
    return (X.T @ (Y - mu)).T.reshape(-1)


MULTI_HOT = dc.inputs(w=dc.normal("D", "C"), X=dc.normal("m", "D"), Y=dc.bernoulli("m", "C"), sizes=SIZES)


@dc.gradient(
    of=log_likelihood,
    wrt="w",
    inputs=MULTI_HOT,
    name="softmax_regression.gradient_any_labels",
    source=f"{NOTES}, Ex. 8.4(b), the line before Σ_k y_ik = 1 is used",
    statement=r"\nabla_{w_c} l(w) = \sum_{i=1}^m \left[ y_{ic} - \left( \sum_{k=1}^C y_{ik} \right) \mu_{ic}(w) \right] x_i",
)
def gradient_any_labels(w, X, Y):
    """``Σ_i [y_ic − (Σ_k y_ik) μ_ic] x_i``: true for any labels, checked on multi-hot ones."""
    mu = _mu(w, X)
    return X.T @ (Y - jnp.sum(Y, axis=1, keepdims=True) * mu)


@dc.gradient(
    of=log_likelihood,
    wrt="w",
    inputs=MULTI_HOT,
    name="softmax_regression.gradient_multi_hot_labels",
    source=f"{NOTES}, Ex. 8.4(b) (condition fails: multi-hot labels, Σ_k y_ik ≠ 1)",
    statement=r"\nabla_{w_c} l (w) = \sum_{i=1}^m (y_{ic} - \mu_{ic}(w)) x_i \quad (\textstyle\sum_k y_{ik} \neq 1)",
    expect=dc.fails(
        "the last step uses Σ_k y_ik = 1; for multi-hot labels the gradient is Σ_i [y_ic − (Σ_k y_ik) μ_ic] x_i"
    ),
)
def gradient_multi_hot_labels(w, X, Y):
    """The final form of (b) where its condition fails: 0/1 labels that need not sum to 1."""
    return X.T @ (Y - _mu(w, X))


@dc.gradient(
    of=log_likelihood,
    wrt="w",
    inputs=dc.inputs(w=dc.normal("D", "C"), X=dc.normal("m", "D"), Y=dc.simplex("m", "C"), sizes=SIZES),
    name="softmax_regression.gradient_soft_labels",
    source=f"{NOTES}, Ex. 8.4(b) (condition: Σ_k y_ik = 1, with soft labels)",
    statement=r"\nabla_{w_c} l (w) = \sum_{i=1}^m (y_{ic} - \mu_{ic}(w)) x_i \quad (\textstyle\sum_k y_{ik} = 1)",
)
def gradient_soft_labels(w, X, Y):
    """What (b) needs is ``Σ_k y_ik = 1``, not one-hot: probability-vector labels also satisfy it."""
    return X.T @ (Y - _mu(w, X))


# ----------------------------------------------------------------------------- (c)

STACKED = dc.inputs(wv=dc.normal("DC"), X=dc.normal("m", "D"), Y=dc.one_hot("m", classes="C"), sizes=SIZES)


def _blocks(w, X, delta):
    """``B[c, c'] = −Σ_i μ_ic (δ[c, c'] − μ_ic') x_i x_iᵀ`` as a ``(C, D, C, D)`` array."""
    mu = _mu(w, X)
    coef = mu[:, :, None] * (delta[None, :, :] - mu[:, None, :])  # (m, c, c')
    return -jnp.einsum("icd,ij,ik->cjdk", coef, X, X)


def _block_matrix(wv, X, Y, delta_of):
    D, C = X.shape[1], Y.shape[1]
    blocks = _blocks(wv.reshape(C, D).T, X, delta_of(C))
    return blocks.reshape(C * D, C * D)


def _kronecker_delta(C):
    return jnp.eye(C)


def _delta_cc(C):
    """``δ_{c,c}`` as the notes' last lines write it: 1 for every pair ``(c, c')``."""
    return jnp.ones((C, C))


@dc.hessian(
    of=log_likelihood_stacked,
    wrt="wv",
    inputs=STACKED,
    name="softmax_regression.hessian",
    source=f"{NOTES}, Ex. 8.4(c), statement",
    statement=r"\mathcal{H}\ell(w) = \big[ H_{c,c'} \ell(w) \big]_{c,c'=1}^C, \quad H_{c,c'} \ell(w) = - \sum_{i=1}^m \mu_{ic}(w) (\delta_{c,c'} - \mu_{i,c'}(w)) x_i x_i^T",
)
def hessian(wv, X, Y):
    """The full ``DC × DC`` block matrix, blocks ``H_{c,c'}`` in the order of ``[w_1; …; w_C]``."""
    return _block_matrix(wv, X, Y, _kronecker_delta)


@dc.hessian(
    of=log_likelihood_stacked,
    wrt="wv",
    inputs=STACKED,
    name="softmax_regression.hessian_as_written",
    source=f"{NOTES}, Ex. 8.4(c), last lines (δ_{{c,c}})",
    statement=r"H_{c,c'}(w) = - \sum_{i=1}^m \mu_{ic}(w) (\delta_{c,c} - \mu_{i,c'}(w)) x_i x_i^\top",
    expect=dc.fails(
        "δ_{c,c} = 1 for every pair: the blocks with c ≠ c' get −Σ μ_ic(1 − μ_ic')x_i x_iᵀ instead of +Σ μ_ic μ_ic' x_i x_iᵀ (δ_{c,c'} is meant)"
    ),
)
def hessian_as_written(wv, X, Y):
    """The block matrix with ``δ_{c,c}`` (= 1) where ``δ_{c,c'}`` belongs."""
    return _block_matrix(wv, X, Y, _delta_cc)


def _same_class_part(w, X, Y):
    return blocks_only(log_likelihood, column_masks(*w.shape))(w, X, Y)


def _cross_class_part(w, X, Y):
    return off_blocks_only(log_likelihood, column_masks(*w.shape))(w, X, Y)


def _as_4d(blocks):
    """``(C, D, C, D)`` blocks → the ``(D, C, D, C)`` layout of ``jax.hessian`` w.r.t. a ``D × C`` ``w``."""
    return jnp.transpose(blocks, (1, 0, 3, 2))


@dc.hessian(
    of=_same_class_part,
    wrt="w",
    inputs=ONE_HOT,
    name="softmax_regression.hessian_block_same_class",
    source=f"{NOTES}, Ex. 8.4(c), blocks c = c' (as written: δ_{{c,c}} = δ_{{c,c'}} there)",
    statement=r"H_{c,c} \ell(w) = - \sum_{i=1}^m \mu_{ic}(w) (1 - \mu_{ic}(w)) x_i x_i^T",
)
def hessian_block_same_class(w, X, Y):
    """The diagonal blocks ``∂²l/∂w_c∂w_cᵀ`` (zero elsewhere); the reference varies one class at a time."""
    C = w.shape[1]
    return _as_4d(_blocks(w, X, jnp.eye(C)) * jnp.eye(C)[:, None, :, None])


@dc.hessian(
    of=_cross_class_part,
    wrt="w",
    inputs=ONE_HOT,
    name="softmax_regression.hessian_block_cross_class",
    source=f"{NOTES}, Ex. 8.4(c), blocks c ≠ c'",
    statement=r"H_{c,c'} \ell(w) = \sum_{i=1}^m \mu_{ic}(w) \mu_{i,c'}(w) x_i x_i^T \quad (c \neq c')",
)
def hessian_block_cross_class(w, X, Y):
    """The off-diagonal blocks ``∂²l/∂w_c∂w_c'ᵀ``, ``c ≠ c'`` (zero on the diagonal blocks)."""
    C = w.shape[1]
    return _as_4d(_blocks(w, X, jnp.eye(C)) * (1 - jnp.eye(C))[:, None, :, None])


@dc.hessian(
    of=_cross_class_part,
    wrt="w",
    inputs=ONE_HOT,
    name="softmax_regression.hessian_block_cross_class_as_written",
    source=f"{NOTES}, Ex. 8.4(c), blocks c ≠ c' of the last lines (δ_{{c,c}})",
    statement=r"H_{c,c'}(w) = - \sum_{i=1}^m \mu_{ic}(w) (\delta_{c,c} - \mu_{i,c'}(w)) x_i x_i^\top \quad (c \neq c')",
    expect=dc.fails("δ_{c,c} = 1 where δ_{c,c'} = 0: the block gets an extra −Σ μ_ic x_i x_iᵀ"),
)
def hessian_block_cross_class_as_written(w, X, Y):
    """The off-diagonal blocks with ``δ_{c,c}``."""
    C = w.shape[1]
    return _as_4d(_blocks(w, X, jnp.ones((C, C))) * (1 - jnp.eye(C))[:, None, :, None])


@dc.hessian(
    of=_cross_class_part,
    wrt="w",
    inputs=ONE_HOT,
    name="softmax_regression.hessian_block_cross_class_eta_typo",
    source=f"{NOTES}, Ex. 8.4(c), line (9): ∂v_c/∂η_{{i,c}} for ∂v_c/∂η_{{i,c'}}",
    statement=r"H_{c,c'}[j,k] = - \sum_{i=1}^m x_{ij} \left[ \frac{\partial v_c}{\partial n_{i,c}} (g_i(w)) x_{ik} \right] \quad (c \neq c')",
    expect=dc.fails(
        "differentiates v_c by η_{i,c} instead of η_{i,c'}: every block c ≠ c' becomes the diagonal block −Σ μ_ic(1 − μ_ic) x_i x_iᵀ"
    ),
)
def hessian_block_cross_class_eta_typo(w, X, Y):
    """The off-diagonal blocks with ``∂v_c/∂η_c = v_c(1 − v_c)`` in place of ``∂v_c/∂η_c'``."""
    C = w.shape[1]
    mu = _mu(w, X)
    same = -jnp.einsum("ic,ij,ik->cjk", mu * (1 - mu), X, X)  # (c, D, D), the same for every c'
    blocks = jnp.broadcast_to(same[:, :, None, :], (C, X.shape[1], C, X.shape[1]))
    return _as_4d(blocks * (1 - jnp.eye(C))[:, None, :, None])


@dc.definite(
    "nsd",
    of=log_likelihood_stacked,
    wrt="wv",
    inputs=STACKED,
    name="softmax_regression.hessian_nsd",
    source=f"{NOTES}, Ex. 8.4(c) (sign: l is a log-likelihood, concave)",
    statement=r"\mathcal{H}\ell(w) = -\sum_{i=1}^m \left(\operatorname{diag}(\mu_i) - \mu_i \mu_i^\top\right) \otimes x_i x_i^\top \preceq 0",
)
def hessian_nsd(wv, X, Y):
    """The stated ``Hl`` is negative semi-definite, never definite: ``Hl (1_C ⊗ u) = 0`` for every ``u``."""
    return _block_matrix(wv, X, Y, _kronecker_delta)


@dc.definite(
    "nd",
    inputs=STACKED,
    name="softmax_regression.hessian_not_nd",
    source=f"{NOTES}, Ex. 8.4(c) (is l strictly concave? not claimed by the notes)",
    statement=r"\mathcal{H}\ell(w) \prec 0",
    expect=dc.fails(
        "Hl is singular: softmax is shift-invariant, so Hl (1_C ⊗ u) = 0 for every u ∈ R^D and l is not strictly concave"
    ),
)
def hessian_not_nd(wv, X, Y):
    """The stronger claim, negative *definite*: the spectrum shows the null directions ``w_c = u`` for all ``c``."""
    return _block_matrix(wv, X, Y, _kronecker_delta)
