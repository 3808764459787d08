"""Planted errors: each known error pattern, put into a correct formula, is named by the diagnosis.

Every formula here mirrors one of the catalog's (logistic and softmax
regression, softmax cross-entropy, the mean-only batch norm, a two-layer net);
the planted error is the exact mistake the diagnosis must name. Trials are kept
small and size sets explicit, so the file runs in well under a minute.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck as dc
from derivcheck._diagnose._words import explain_factor
from derivcheck._result import KINDS

# ------------------------------------------------------------------ formulas


def nll_mean(theta, X, y):
    z = X @ theta
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z)


def nll_sum(theta, X, y):
    z = X @ theta
    return jnp.sum(jnp.logaddexp(0.0, z) - y * z)


def logistic_grad_sum(theta, X, y):
    return X.T @ (jax.nn.sigmoid(X @ theta) - y)


LOGISTIC = dc.inputs(
    theta=dc.normal("d"), X=dc.full_rank("m", "d"), y=dc.bernoulli("m"), sizes=[{"d": 3, "m": 5}, {"d": 4, "m": 9}]
)


def cross_entropy(z, y):
    return -jnp.sum(y * jax.nn.log_softmax(z))


LOGITS = dc.inputs(z=dc.normal("K"), y=dc.one_hot(classes="K"), sizes=[{"K": 3}, {"K": 5}])


def softmax_jacobian(z):
    p = jax.nn.softmax(z)
    return jnp.diag(p) - jnp.outer(p, p)


SOFTMAX = dc.inputs(z=dc.normal("K"), sizes=[{"K": 3}, {"K": 5}])


def log_likelihood(w, X, Y):
    """Softmax regression: ``l(w) = Σ_i Σ_c y_ic log μ_ic``, ``w`` of shape ``(D, C)``."""
    return jnp.sum(Y * jax.nn.log_softmax(X @ w, axis=-1))


def softmax_regression_hessian(w, X, delta):
    """``H[j, c, k, c'] = −Σ_i μ_ic (δ[c, c'] − μ_ic') x_ij x_ik`` (the layout of ``jax.hessian`` w.r.t. ``w``)."""
    mu = jax.nn.softmax(X @ w, axis=-1)
    coef = mu[:, :, None] * (delta[None] - mu[:, None, :])
    return -jnp.einsum("icd,ij,ik->jckd", coef, X, X)


REGRESSION = dc.inputs(
    w=dc.normal("D", "C"), X=dc.normal("m", "D"), Y=dc.one_hot("m", classes="C"), sizes=[{"D": 2, "C": 3, "m": 4}]
)


def mean_only_bn(x, gamma, beta):
    return gamma * (x - jnp.mean(x)) + beta


BN = dc.inputs(x=dc.normal("n"), gamma=dc.positive(), beta=dc.normal(), sizes=[{"n": 1}, {"n": 4}, {"n": 7}])


def check(reg, make, of, derived, inputs, trials=60, **claim):
    d = make(of=of, inputs=inputs, registry=reg, name="planted", **claim)(derived)
    return dc.check(d, trials=trials)


def diagnosed(result):
    assert result.outcome == "fails", result.message
    assert result.diagnosis is not None
    assert result.diagnosis.kind in KINDS
    return result.diagnosis


# ---------------------------------------------------------- a correct formula


def test_a_correct_derivation_gets_no_diagnosis(reg):
    r = check(reg, dc.gradient, nll_sum, logistic_grad_sum, LOGISTIC, wrt="theta")
    assert r.outcome == "holds" and r.diagnosis is None


# ------------------------------------------------------- sign, factors, axes


def test_sign_error(reg):
    r = check(reg, dc.gradient, nll_sum, lambda theta, X, y: -logistic_grad_sum(theta, X, y), LOGISTIC, wrt="theta")
    diag = diagnosed(r)
    assert diag.kind == "sign" and "−reference" in diag.summary


def test_constant_factor_one_half(reg):
    """∇(xᵀAx) = (A + Aᵀ)x, written as ½(A + Aᵀ)x."""
    spec = dc.inputs(x=dc.normal("n"), A=dc.normal("n", "n"), sizes=[{"n": 3}, {"n": 5}])
    r = check(reg, dc.gradient, lambda x, A: x @ A @ x, lambda x, A: 0.5 * (A + A.T) @ x, spec, wrt="x")
    diag = diagnosed(r)
    assert diag.kind == "factor" and diag.expression == "1/2"


def test_factor_equal_to_a_dimension_is_named(reg):
    """The notes' slip: Xᵀ(μ − y) claimed as the gradient of the *mean* cost: m times too large."""
    r = check(reg, dc.gradient, nll_mean, logistic_grad_sum, LOGISTIC, wrt="theta")
    diag = diagnosed(r)
    assert diag.kind == "factor" and diag.expression == "m"
    assert "m = 9 (rows of X)" in diag.summary


def test_factor_that_is_a_function_of_a_dimension(reg):
    """Sample variance (1/(n−1)) differentiated with 1/n: off by (n − 1)/n."""
    spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 3}, {"n": 6}])

    def variance(x):
        return jnp.sum((x - jnp.mean(x)) ** 2) / (x.shape[0] - 1)

    r = check(reg, dc.gradient, variance, lambda x: 2 * (x - jnp.mean(x)) / x.shape[0], spec)
    diag = diagnosed(r)
    assert diag.kind == "factor" and diag.expression == "(n − 1)/n"


def test_transposed_jacobian(reg):
    spec = dc.inputs(W=dc.normal("k", "k"), x=dc.normal("k"), sizes=[{"k": 3}, {"k": 4}])

    def jac_t(W, x):
        return ((1 - jnp.tanh(W @ x) ** 2)[:, None] * W).T

    r = check(reg, dc.jacobian, lambda W, x: jnp.tanh(W @ x), jac_t, spec, wrt="x")
    diag = diagnosed(r)
    assert diag.kind == "transpose" and "referenceᵀ" in diag.summary


def test_permuted_axes(reg):
    """The Jacobian of W ↦ WW with its first two axes exchanged."""
    spec = dc.inputs(W=dc.normal("k", "k"), sizes=[{"k": 2}, {"k": 3}])

    def jac(W):
        k = W.shape[0]
        eye = jnp.eye(k)
        right = jnp.einsum("ik,lj->ijkl", eye, W)  # ∂(WW)_ij/∂W_kl = δ_ik W_lj + W_ik δ_jl
        left = jnp.einsum("ik,jl->ijkl", W, eye)
        return jnp.transpose(right + left, (1, 0, 2, 3))

    r = check(reg, dc.jacobian, lambda W: W @ W, jac, spec)
    diag = diagnosed(r)
    assert diag.kind == "permutation" and "axes permuted" in diag.summary


# ------------------------------------------------------------------- swaps


def test_two_entries_swapped(reg):
    def swapped(theta, X, y):
        g = logistic_grad_sum(theta, X, y)
        return g.at[jnp.array([0, 1])].set(g[jnp.array([1, 0])])

    r = check(reg, dc.gradient, nll_sum, swapped, LOGISTIC, wrt="theta")
    diag = diagnosed(r)
    assert diag.kind == "swap" and "entries 0 and 1 swapped" in diag.summary


def test_two_class_blocks_swapped(reg):
    """Softmax-regression Hessian with classes 0 and 1 relabelled in both block indices."""

    def relabelled(w, X, Y):
        C = w.shape[1]
        order = jnp.array([1, 0, *range(2, C)])
        h = softmax_regression_hessian(w, X, jnp.eye(C))
        return h[:, order][:, :, :, order]

    r = check(reg, dc.hessian, log_likelihood, relabelled, REGRESSION, wrt="w")
    diag = diagnosed(r)
    assert diag.kind == "swap" and "blocks 0 and 1 swapped" in diag.summary


# ------------------------------------------------------ missing/extra terms


def test_missing_term_only_on_the_diagonal(reg):
    """Softmax Jacobian without its diag(ŷ) term: wrong on the diagonal only, where a term is missing."""

    def no_diag(z):
        p = jax.nn.softmax(z)
        return -jnp.outer(p, p)

    r = check(reg, dc.jacobian, jax.nn.softmax, no_diag, SOFTMAX)
    diag = diagnosed(r)
    assert diag.kind == "structure" and diag.where.startswith("the diagonal")


def test_sign_flipped_off_the_diagonal_only(reg):
    def wrong_off_diagonal(z):
        p = jax.nn.softmax(z)
        return jnp.diag(p - p**2) + (jnp.outer(p, p) - jnp.diag(p**2))

    r = check(reg, dc.jacobian, jax.nn.softmax, wrong_off_diagonal, SOFTMAX)
    diag = diagnosed(r)
    assert diag.kind == "structure" and "off-diagonal" in diag.where
    assert "sign is flipped" in diag.summary


def test_only_the_blocks_with_c_different_from_c_prime(reg):
    """The notes' δ_{c,c} for δ_{c,c'} in the softmax-regression Hessian (Ex. 8.4(c))."""

    def delta_cc(w, X, Y):
        return softmax_regression_hessian(w, X, jnp.ones((w.shape[1],) * 2))

    r = check(reg, dc.hessian, log_likelihood, delta_cc, REGRESSION, wrt="w")
    diag = diagnosed(r)
    assert diag.kind == "structure" and "c ≠ c′" in diag.where


def test_only_one_row_and_column(reg):
    """The joint Hessian of the sigmoid neuron in (w, b) without its cross block ∂²E/∂w∂b."""
    spec = dc.inputs(
        theta=dc.normal("p"),
        X=dc.normal("m", "d"),
        y=dc.bernoulli("m"),
        sizes=[{"p": 3, "d": 2, "m": 5}, {"p": 5, "d": 4, "m": 6}],
    )

    def cost(theta, X, y):
        z = X @ theta[:-1] + theta[-1]
        return jnp.sum(jnp.logaddexp(0.0, z) - y * z)

    def without_cross_block(theta, X, y):
        Xb = jnp.concatenate([X, jnp.ones((X.shape[0], 1))], axis=1)
        mu = jax.nn.sigmoid(Xb @ theta)
        h = Xb.T @ ((mu * (1 - mu))[:, None] * Xb)
        d = X.shape[1]
        return h * jnp.ones_like(h).at[:d, d].set(0.0).at[d, :d].set(0.0)

    r = check(reg, dc.hessian, cost, without_cross_block, spec)
    diag = diagnosed(r)
    assert diag.kind == "structure" and "the last row and column" in diag.where
    assert "a term is missing" in diag.summary


def test_wrong_only_off_the_true_class(reg):
    """ŷ_i − 1 for every class: right at the true class, off by −1 at the others."""
    r = check(reg, dc.gradient, cross_entropy, lambda z, y: jax.nn.softmax(z) - 1.0, LOGITS, wrt="z")
    diag = diagnosed(r)
    assert diag.kind == "structure" and "where y = 0" in diag.where
    assert "−1" in diag.summary


def test_missing_mean_term_of_a_backward_pass(reg):
    """Mean-only batch norm, ∂L/∂x = γ(g − mean(g)) written without the mean."""
    r = check(reg, dc.vjp, mean_only_bn, lambda x, gamma, beta, ct: gamma * ct, BN, wrt="x")
    diag = diagnosed(r)
    assert diag.kind == "term" and "gamma·mean(cotangent)" in diag.expression
    assert "the same in every entry" in diag.summary


def test_one_case_of_a_piecewise_formula(reg):
    """∂L/∂W for L = Σ leaky_relu(Wx) with the slope of the negative case dropped (ReLU's 0 for α)."""
    spec = dc.inputs(W=dc.normal("a", "b"), x=dc.normal("b"), sizes=[{"a": 3, "b": 2}, {"a": 5, "b": 4}])

    def of(W, x):
        return jnp.sum(jax.nn.leaky_relu(W @ x, 0.01))

    def relu_slope(W, x):
        return jnp.outer(jnp.where(W @ x >= 0, 1.0, 0.0), x)

    r = check(reg, dc.gradient, of, relu_slope, spec)
    diag = diagnosed(r)
    assert diag.kind == "piecewise" and "≥ 0" in diag.where and "leaky_relu" in diag.where


def test_an_ignored_index(reg):
    """∂(Wx)_i/∂x_j = W_ij written as W_i0: derived does not depend on j."""
    spec = dc.inputs(W=dc.normal("a", "b"), x=dc.normal("b"), sizes=[{"a": 3, "b": 2}, {"a": 4, "b": 5}])
    r = check(reg, dc.jacobian, lambda W, x: W @ x, lambda W, x: jnp.broadcast_to(W[:, :1], W.shape), spec, wrt="x")
    diag = diagnosed(r)
    assert diag.kind == "index" and "ignores the index" in diag.summary


# ------------------------------------------------------------- conditions


def test_error_only_for_a_batch_of_one(reg):
    """A backward pass that special-cases n = 1 wrongly (the notes' limit n = 1 gives 0)."""

    def special_cased(x, gamma, beta, ct):
        correct = gamma * (ct - jnp.mean(ct))
        return gamma * ct if x.shape[0] == 1 else correct

    r = check(reg, dc.vjp, mean_only_bn, special_cased, BN, wrt="x")
    diag = diagnosed(r)
    assert diag.kind == "condition" and diag.where == "n = 1"
    assert "batch" not in diag.summary or "n = 1" in diag.summary


def test_error_only_when_labels_are_not_normalised(reg):
    spec = dc.inputs(z=dc.normal("K"), y=dc.bernoulli("K"), sizes=[{"K": 2}, {"K": 4}])
    r = check(reg, dc.gradient, cross_entropy, lambda z, y: jax.nn.softmax(z) - y, spec, trials=120, wrt="z")
    diag = diagnosed(r)
    assert diag.kind == "condition" and "Σ y ≠ 1" in diag.summary


def test_error_only_in_the_saturated_regime(reg):
    """σ(z) computed on a clipped z: right unless |z| > 5, i.e. in the large-magnitude regime."""
    spec = dc.inputs(z=dc.normal("n"), sizes=[{"n": 3}, {"n": 6}])
    r = check(
        reg, dc.gradient, lambda z: jnp.sum(jnp.logaddexp(0.0, z)), lambda z: jax.nn.sigmoid(jnp.clip(z, -5, 5)), spec
    )
    diag = diagnosed(r)
    assert diag.kind == "condition" and "large" in diag.summary
    assert "typical" not in diag.regimes and "large" in diag.regimes


# --------------------------------------------------------- precision, rest


def test_a_rounding_level_error_is_called_a_precision_problem(reg):
    def nearly(theta, X, y):
        return logistic_grad_sum(theta, X, y) * (1 + 3e-7)

    r = check(reg, dc.gradient, nll_sum, nearly, LOGISTIC, wrt="theta")
    diag = diagnosed(r)
    assert diag.kind == "precision"


def test_a_small_error_confined_to_some_inputs_is_located_not_called_precision(reg):
    """A clamp copied from an overflow guard makes the softplus gradient wrong by ~3e-7 only where
    x > 15: central differences side with jax.grad there, so it is the formula's error, and the
    piecewise step names the condition (it was called "a precision problem" before)."""
    spec = dc.inputs(x=dc.normal("n", scale=30.0), sizes=[{"n": 3}, {"n": 8}], regimes=("typical",))
    r = check(
        reg, dc.gradient, lambda x: jnp.sum(jnp.logaddexp(x, 0.0)), lambda x: jax.nn.sigmoid(jnp.minimum(x, 15.0)), spec
    )
    diag = diagnosed(r)
    assert r.max_rel_err < 1e-5 and diag.kind != "precision", diag
    assert "15" in diag.summary, diag.summary


def test_an_unstructured_error_reports_where_the_error_is(reg):
    spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 3}, {"n": 6}])
    r = check(
        reg, dc.gradient, lambda x: jnp.sum(jnp.sin(x)), lambda x: jnp.cos(x) + 0.1 + 0.1 * jnp.sin(3 * x) ** 2, spec
    )
    diag = diagnosed(r)
    assert diag.kind == "unexplained"
    assert diag.worst_entries and diag.worst_entries[0].error != 0
    assert any("largest errors" in e for e in diag.evidence)


# ----------------------------------------------------------- definiteness


def definite(reg, kind, fn, spec, of=None, trials=40):
    d = dc.definite(kind, inputs=spec, of=of, registry=reg, name="planted")(fn)
    return dc.check(d, trials=trials)


def test_psd_claimed_pd_is_singular_along_ones(reg):
    diag = diagnosed(definite(reg, "pd", softmax_jacobian, SOFTMAX))
    assert diag.kind == "spectrum" and "all-ones" in diag.summary and "rank K − 1" in diag.summary


def test_rank_deficient_design_is_singular_along_its_null_space(reg):
    spec = dc.inputs(theta=dc.normal("d"), X=dc.rank_deficient("m", "d"), sizes=[{"d": 3, "m": 5}])

    def xtsx(theta, X):
        mu = jax.nn.sigmoid(X @ theta)
        return X.T @ ((mu * (1 - mu))[:, None] * X)

    diag = diagnosed(definite(reg, "pd", xtsx, spec))
    assert diag.kind == "spectrum" and "null space of X" in diag.summary


def test_one_negative_eigenvalue(reg):
    spec = dc.inputs(a=dc.normal("n", "n"), sizes=[{"n": 3}, {"n": 4}])

    def one_negative(a):
        q, _ = jnp.linalg.qr(a)
        lam = jnp.arange(1.0, a.shape[0] + 1).at[0].set(-1.0)
        return (q * lam) @ q.T

    diag = diagnosed(definite(reg, "psd", one_negative, spec))
    assert diag.kind == "spectrum" and diag.summary.startswith("indefinite: 1 negative eigenvalue")


def test_negative_definite_claimed_positive_is_a_flipped_sign(reg):
    spec = dc.inputs(a=dc.normal("n", "n"), sizes=[{"n": 3}])
    diag = diagnosed(definite(reg, "pd", lambda a: -(a @ a.T) - jnp.eye(a.shape[0]), spec))
    assert diag.kind == "spectrum" and "sign is flipped" in diag.summary


def test_asymmetric_matrix(reg):
    spec = dc.inputs(a=dc.normal("n", "n"), sizes=[{"n": 3}])
    diag = diagnosed(definite(reg, "psd", lambda a: a @ a.T + jnp.triu(a, 1), spec))
    assert diag.kind == "asymmetric" and diag.summary.startswith("not symmetric")


def test_definite_matrix_that_is_not_the_hessian_is_diagnosed_as_a_difference(reg):
    spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 3}])
    diag = diagnosed(definite(reg, "psd", lambda x: jnp.diag(4 * x**2), spec, of=lambda x: jnp.sum(x**4)))
    assert diag.summary.startswith("differs from jax.hessian(of): off by a factor of 1/3")


# ---------------------------------------------------------------- records


def test_diagnosis_json_is_stable_and_serialisable(reg):
    r = check(reg, dc.gradient, nll_mean, logistic_grad_sum, LOGISTIC, wrt="theta")
    doc = json.loads(json.dumps(r.to_dict(), allow_nan=False))["diagnosis"]
    assert set(doc) == {
        "kind",
        "summary",
        "evidence",
        "where",
        "expression",
        "factor",
        "regimes",
        "failing",
        "trials",
        "worst_entries",
        "by_size",
    }
    assert doc["kind"] == "factor" and doc["failing"] > 0 and doc["trials"] >= doc["failing"]
    assert set(doc["worst_entries"][0]) == {"index", "derived", "reference", "error"}
    assert set(doc["by_size"][0]) == {"sizes", "trials", "failures", "median_rel_err"}


@pytest.mark.parametrize(
    ("c", "sizes", "text"),
    [
        ([1 / 5, 1 / 13], {"m": [5, 13], "d": [3, 8]}, "1/m"),
        ([4.0, 12.0], {"m": [5, 13], "d": [3, 8]}, "m − 1"),
        ([2.0, 2.0], {"m": [5, 13]}, "2"),
        ([3 / 4, 8 / 2], {"C": [3, 8], "d": [4, 2]}, "C/d"),
        ([-5.0, -13.0], {"m": [5, 13]}, "−m"),
    ],
)
def test_explain_factor_names_size_expressions(c, sizes, text):
    assert explain_factor(np.array(c), sizes, {}).text == text


def test_explain_factor_gives_up_on_an_arbitrary_varying_factor():
    assert explain_factor(np.array([0.37, 1.91]), {"m": [5, 13]}, {}) is None


# ------------------------------------------------- degenerate draws, crashes


def gru_step(h, x, U, W):
    z = jax.nn.sigmoid(W @ x + U @ h)
    n = jnp.tanh(W @ x + U @ (z * h))
    return (1 - z) * n + z * h


def gru_vjp_transposed(h, x, U, W, ct):
    """The pull-back of ``gru_step`` w.r.t. ``h`` by hand, with ``U`` written where ``Uᵀ`` belongs (twice)."""
    z = jax.nn.sigmoid(W @ x + U @ h)
    n = jnp.tanh(W @ x + U @ (z * h))
    g = U @ (ct * (1 - z) * (1 - n**2))
    da = (ct * (h - n) + g * h) * z * (1 - z)
    return ct * z + g * z + U @ da


GRU = dc.inputs(h=dc.normal("k"), x=dc.normal("k"), U=dc.normal("k", "k"), W=dc.normal("k", "k"))


def test_holding_only_in_degenerate_regimes_is_not_a_finding(reg):
    """``U`` for ``Uᵀ`` agrees on constant ``U`` and through saturated gates: that is not where the error is."""
    diag = diagnosed(check(reg, dc.vjp, gru_step, gru_vjp_transposed, GRU, trials=100, wrt="h"))
    assert diag.kind != "condition" and "holds only in regime" not in diag.summary
    assert any("says nothing about the error" in line for line in diag.evidence)
    right = check(
        reg,
        dc.vjp,
        gru_step,
        lambda h, x, U, W, ct: jax.vjp(lambda v: gru_step(v, x, U, W), h)[1](ct)[0],
        GRU,
        trials=100,
        wrt="h",
    )
    assert right.outcome == "holds"


def layer_norm(x):
    """Normalised over the last axis of a 2-D ``x`` of shape ``(n, d)``."""
    mu = jnp.mean(x, -1, keepdims=True)
    return (x - mu) / jnp.sqrt(jnp.var(x, -1, keepdims=True) + 1e-5)


def layer_norm_vjp_without_the_variance_term(x, ct):
    inv = 1 / jnp.sqrt(jnp.var(x, -1, keepdims=True) + 1e-5)
    return inv * (ct - jnp.mean(ct, -1, keepdims=True))  # drops − x̂ · mean(ct · x̂)


def test_a_two_dimensional_layer_norm_vjp_is_diagnosed_without_an_internal_error(reg):
    """Default sizes: the all-ones size set holds, so it keeps no values; the diagnosis must still read the rest."""
    spec = dc.inputs(x=dc.normal("n", "d"))
    diag = diagnosed(check(reg, dc.vjp, layer_norm, layer_norm_vjp_without_the_variance_term, spec, trials=40))
    assert not diag.summary.startswith("no diagnosis") and "Error" not in diag.summary


def test_holding_only_where_every_size_is_1_names_no_dimension(reg):
    """An extra ``X − mean(X)`` vanishes where X has one entry (n = d = 1): "fails when d > 1" is a confound.

    The first size set puts every dimension to 1, so nothing tells d = 1 from n = 1 there; the
    diagnosis must go on to the real finding, the extra term.
    """
    spec = dc.inputs(X=dc.normal("n", "d"), sizes=[{"n": 1, "d": 1}, {"n": 2, "d": 3}, {"n": 3, "d": 4}])
    r = check(reg, dc.gradient, lambda X: jnp.sum(X**3), lambda X: 3 * X**2 + (X - jnp.mean(X)), spec)
    diag = diagnosed(r)
    assert "d > 1" not in diag.summary and "n > 1" not in diag.summary
    assert diag.kind == "term" and "mean(X)" in diag.summary


def test_conditions_that_mark_the_same_trials_are_named_together(reg):
    """Kronecker factors swapped in a softmax-regression Hessian coincide where d = 1: the one size set
    that holds has d = m = 1 (and Σ Y = m = 1), so no single one of them may be named as the cause."""

    def softreg(W, X, Y):
        Z = X @ W.T
        return jnp.mean(jax.nn.logsumexp(Z, axis=1) - jnp.sum(Y * Z, axis=1))

    def swapped(W, X, Y):
        P = jax.nn.softmax(X @ W.T, axis=1)
        A = jax.vmap(lambda p: jnp.diag(p) - jnp.outer(p, p))(P)
        K = jax.vmap(lambda x, a: jnp.kron(jnp.outer(x, x), a))(X, A).sum(0) / X.shape[0]
        return K.reshape(*W.shape, *W.shape)

    spec = dc.inputs(W=dc.normal("C", "d"), X=dc.normal("m", "d"), Y=dc.one_hot("m", classes="C"))
    diag = diagnosed(check(reg, dc.hessian, softreg, swapped, spec, trials=100, wrt="W"))
    assert diag.kind == "condition" and "d > 1" in diag.summary and "m > 1" in diag.summary, diag.summary
    assert any("mark the same trials" in line for line in diag.evidence)


def test_a_symmetric_input_stays_a_finding_with_a_caveat_when_only_degenerate_draws_have_it():
    """The notes' ``W2`` for ``W2ᵀ`` (catalog ``two_layer.dL_dW1_as_written``): only constant or size-1 ``W2``
    are symmetric, yet symmetry is exactly where that slip vanishes: kept, with what would confirm it."""
    diag = diagnosed(dc.check("two_layer.dL_dW1_as_written", trials=300))
    assert diag.kind == "condition" and "W2 is not symmetric" in diag.summary
    assert any("degenerate draw" in line for line in diag.evidence)


# ------------------------------------- relations judged by the test that failed

SCALES = np.array([1e8, 1.0, 1.0, 1.0])  # one entry 1e8 times the others: the norm-wise bound (~20) hides them


@pytest.mark.parametrize(
    ("slip", "kind", "expression"),
    [
        # the small entries 50 % too large: D − R = w there, 0 in the large one; no term fits entry-wise
        (lambda w: 2 * (SCALES + np.array([0.0, 0.5, 0.5, 0.5])) * w, "unexplained", ""),
        # a constant 1 added to every entry: a true term, and it fits entry-wise as well
        (lambda w: 2 * SCALES * w + 1.0, "term", "1"),
    ],
)
def test_a_relation_is_named_only_when_it_fits_entry_wise_like_the_check(reg, slip, kind, expression):
    """The gradient of ``Σ s_i w_i²`` with ``s = [1e8, 1, 1, 1]`` fails only by the entry-wise test; a term
    that fits within the norm-wise bound (``rtol · 2e8``) but leaves the small entries wrong is no finding."""
    r = check(reg, dc.gradient, lambda w: jnp.sum(SCALES * w**2), slip, dc.inputs(w=dc.normal(4)), trials=40)
    diag = diagnosed(r)
    assert diag.kind == kind, diag.summary
    assert diag.expression == expression
    if kind == "unexplained":
        assert any("fail only entry by entry" in line for line in diag.evidence), diag.evidence


# ------------------------------- conditions from draws degenerate in another sense

SQUARE_SIZES = [{"n": 1}, {"n": 3}, {"n": 4}]


@pytest.mark.parametrize("spec", [dc.normal("n", "n"), dc.spd("n")], ids=["normal", "spd"])
def test_symmetry_is_no_finding_where_the_holding_draws_also_commute(reg, spec):
    """``2 A dA`` for the JVP ``A dA + dA A`` of ``A²`` holds exactly where ``A`` and ``dA`` commute: ``n = 1``,
    and the constant regime (``c·11ᵀ`` with ``c′·11ᵀ``, or ``c·I`` for an SPD ``A``), where the inputs also
    happen to be symmetric. A random symmetric pair does not commute, so "holds when symmetric" is false."""
    inputs = dc.inputs(A=spec, sizes=SQUARE_SIZES)
    diag = diagnosed(check(reg, dc.jvp, lambda A: A @ A, lambda A, dA: 2 * A @ dA, inputs, trials=40))
    assert diag.kind != "condition" and "symmetric" not in diag.summary, diag.summary
    right = check(dc.Registry(), dc.jvp, lambda A: A @ A, lambda A, dA: A @ dA + dA @ A, inputs, trials=40)
    assert right.outcome == "holds"


def test_a_case_of_the_derived_function_itself_is_named_as_its_own(reg):
    """A clamp ``x > 1`` written into the derived gradient of ``Σ max(x, 0)²``: the error is exactly that case
    of the derived function, inside the larger case ``x > 0`` of ``of``; the smaller, and its owner, are named."""
    spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 5}, {"n": 8}])
    r = check(
        reg,
        dc.gradient,
        lambda x: jnp.sum(jnp.maximum(x, 0.0) ** 2),
        lambda x: jnp.where(x > 1.0, 2.0, 2 * jnp.maximum(x, 0.0)),
        spec,
        trials=40,
    )
    diag = diagnosed(r)
    assert diag.kind == "piecewise", diag.summary
    assert diag.where == "`x > 1` is true (in the derived function)"


# ---------------------------------------------------------- an error confined to some leaves of a pytree


def pair(a, b):
    return jnp.sum(a**2 * b + jnp.sin(b))


def pair_grad(a, b):
    return 2 * a * b, a**2 + jnp.cos(b)


PAIR = dc.inputs(a=dc.normal("n"), b=dc.normal("n"), sizes=[{"n": 1}, {"n": 4}])


@pytest.mark.parametrize(
    ("derived", "kind", "summary", "where"),
    [
        (lambda a, b: (-2 * a * b, a**2 + jnp.cos(b)), "sign", "in a: sign error: derived = −reference", "a"),
        (lambda a, b: (-2 * a * b, -(a**2) - jnp.cos(b)), "sign", "sign error: derived = −reference", ""),
    ],
    ids=["one-leaf", "both-leaves"],
)
def test_a_slip_confined_to_one_leaf_is_read_on_that_leaf_alone(reg, derived, kind, summary, where):
    """``wrt=("a", "b")``: a sign slip in ``a``'s leaf alone is the sign step's finding on that leaf (the
    whole raveled value is no multiple of the reference); spread over both leaves, the whole value is read."""
    diag = diagnosed(check(reg, dc.gradient, pair, derived, PAIR, trials=40, wrt=("a", "b")))
    assert (diag.kind, diag.summary, diag.where) == (kind, summary, where)
    assert ("the other leaves (b) match" in diag.evidence[0]) == bool(where)


@pytest.mark.parametrize("seed", range(2))
def test_a_right_gradient_of_several_arguments_holds(reg, seed):
    d = dc.gradient(of=pair, wrt=("a", "b"), inputs=PAIR, registry=reg, name="right")(pair_grad)
    r = dc.check(d, trials=40, seed=seed)
    assert r.outcome == "holds" and r.diagnosis is None, r.message


def scaled_mean(x, w):
    """``w · mean(x)`` (shape ``(m,)``): its VJP is ``dx = ⟨w, ct⟩/m · 1``, ``dw = mean(x) · ct``."""
    return w * jnp.mean(x)


def test_a_factor_in_one_leaf_of_a_vjp_is_named_in_that_leaf(reg):
    inputs = dc.inputs(x=dc.normal("m"), w=dc.normal("m"), sizes=[{"m": 3}, {"m": 5}])

    def forgot_1_over_m(x, w, ct):
        return jnp.full_like(x, jnp.dot(w, ct)), jnp.mean(x) * ct

    diag = diagnosed(check(reg, dc.vjp, scaled_mean, forgot_1_over_m, inputs, trials=40, wrt=("x", "w")))
    assert diag.kind == "factor" and diag.expression == "m", diag.summary
    assert diag.summary.startswith("in x: off by a factor of m") and diag.where == "x"


def test_a_wrong_output_leaf_of_a_jvp_is_diagnosed_in_that_leaf(reg):
    inputs = dc.inputs(x=dc.normal("n"), sizes=[{"n": 3}, {"n": 4}])
    diag = diagnosed(
        check(reg, dc.jvp, lambda x: (jnp.sin(x), x**2), lambda x, t: (jnp.cos(x) * t, x * t), inputs, trials=40)
    )
    assert diag.kind == "factor" and diag.summary.startswith("in output[1]: off by a factor of 1/2"), diag.summary
