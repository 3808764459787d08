"""The engine, both ways: correct derivations hold on many seeds, planted errors are caught."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck as dc


def nll(theta, X, y):
    z = X @ theta
    return jnp.sum(jnp.logaddexp(0.0, z) - y * z)


DATA = dc.inputs(theta=dc.normal("d"), X=dc.full_rank("m", "d"), y=dc.bernoulli("m"))


def logistic_grad(theta, X, y):
    return X.T @ (jax.nn.sigmoid(X @ theta) - y)


def logistic_hess(theta, X, y):
    mu = jax.nn.sigmoid(X @ theta)
    return X.T @ ((mu * (1 - mu))[:, None] * X)


# planted errors in known-correct formulas: each must be caught
PLANTED_GRADIENTS = {
    "sign": lambda theta, X, y: -logistic_grad(theta, X, y),
    "missing factor 1/2": lambda theta, X, y: 0.5 * logistic_grad(theta, X, y),
    "dropped term": lambda theta, X, y: X.T @ jax.nn.sigmoid(X @ theta),
    "extra factor m": lambda theta, X, y: X.shape[0] * logistic_grad(theta, X, y),
}


@pytest.mark.parametrize("seed", range(12))
def test_correct_gradient_and_hessian_hold_on_many_seeds(reg, seed):
    g = dc.gradient(of=nll, wrt="theta", inputs=DATA, registry=reg, name="g")(logistic_grad)
    h = dc.hessian(of=nll, wrt="theta", inputs=DATA, registry=reg, name="h")(logistic_hess)
    for d in (g, h):
        r = dc.check(d, trials=200, seed=seed)
        assert r.outcome == "holds", r.message
        assert r.ok and r.max_rel_err < 1e-7


@pytest.mark.parametrize("error", sorted(PLANTED_GRADIENTS))
def test_planted_gradient_errors_are_caught(reg, error):
    d = dc.gradient(of=nll, wrt="theta", inputs=DATA, registry=reg, name=error)(PLANTED_GRADIENTS[error])
    r = dc.check(d, trials=100)
    assert r.outcome == "fails", r.message
    assert not r.ok
    assert r.worst is not None and set(r.worst.inputs) == {"theta", "X", "y"}
    assert r.worst.derived.shape == r.worst.reference.shape
    assert "differs from jax.grad" in r.message


def test_planted_transpose_in_a_jacobian_is_caught(reg):
    spec = dc.inputs(W=dc.normal("k", "k"), x=dc.normal("k"), sizes=[{"k": 3}, {"k": 5}])

    @dc.jacobian(of=lambda W, x: jnp.tanh(W @ x), wrt="x", inputs=spec, registry=reg, name="jac")
    def jac_transposed(W, x):
        return ((1 - jnp.tanh(W @ x) ** 2)[:, None] * W).T

    r = dc.check(jac_transposed, trials=60)
    assert r.outcome == "fails"

    @dc.jacobian(of=lambda W, x: jnp.tanh(W @ x), wrt="x", inputs=spec, registry=reg, name="jac_ok")
    def jac(W, x):
        return (1 - jnp.tanh(W @ x) ** 2)[:, None] * W

    assert dc.check(jac, trials=60).outcome == "holds"


def test_vjp_with_random_cotangents(reg):
    def center(x, gamma):
        return gamma * (x - jnp.mean(x))

    spec = dc.inputs(x=dc.normal("n"), gamma=dc.positive())

    @dc.vjp(of=center, wrt="x", inputs=spec, registry=reg, name="ok")
    def center_vjp(x, gamma, ct):
        return gamma * (ct - jnp.mean(ct))

    @dc.vjp(of=center, wrt="x", inputs=spec, registry=reg, name="no_mean_term")
    def center_vjp_wrong(x, gamma, ct):
        return gamma * ct

    ok = dc.check(center_vjp)
    assert ok.outcome == "holds", ok.message
    bad = dc.check(center_vjp_wrong)
    assert bad.outcome == "fails"
    # the dropped term is the mean of the cotangent: the non-zero-mean regime must expose it
    assert any(c.failures for c in bad.cells if c.regime == "shifted")
    assert "cotangent" in bad.worst.inputs


@pytest.mark.parametrize(
    ("kind", "matrix", "holds"),
    [
        ("pd", lambda a: a @ a.T + jnp.eye(a.shape[0]), True),
        ("psd", lambda a: a[:, :1] @ a[:, :1].T, True),
        ("pd", lambda a: a[:, :1] @ a[:, :1].T, False),
        ("nd", lambda a: -(a @ a.T) - jnp.eye(a.shape[0]), True),
        ("nsd", lambda a: a @ a.T, False),
        ("psd", lambda a: a + a.T, False),
    ],
)
def test_definiteness_both_ways(reg, kind, matrix, holds):
    spec = dc.inputs(a=dc.normal("n", "n"), sizes=[{"n": 2}, {"n": 4}])
    d = dc.definite(kind, inputs=spec, registry=reg, name="m")(lambda a: matrix(a))
    r = dc.check(d, trials=80)
    assert r.outcome == ("holds" if holds else "fails"), r.message
    assert r.spectrum is not None and r.spectrum.n in (2, 4)


def test_psd_reports_rank_and_null_direction(reg):
    def softmax_hessian(z):
        p = jax.nn.softmax(z)
        return jnp.diag(p) - jnp.outer(p, p)

    spec = dc.inputs(z=dc.normal("K"), sizes=[{"K": 4}], regimes=("typical",))
    d = dc.definite("psd", inputs=spec, registry=reg, name="sm")(softmax_hessian)
    r = dc.check(d, trials=40)
    assert r.outcome == "holds"
    assert r.spectrum.rank == 3 and r.spectrum.max_rank == 3
    np.testing.assert_allclose(np.abs(r.spectrum.null_direction), np.full(4, 0.5), atol=1e-8)
    assert "singular" in r.message


def test_asymmetric_matrix_fails_definiteness(reg):
    spec = dc.inputs(a=dc.normal("n", "n"), sizes=[{"n": 3}])
    d = dc.definite("psd", inputs=spec, registry=reg, name="asym")(lambda a: a @ a.T + jnp.triu(a, 1))
    r = dc.check(d, trials=20)
    assert r.outcome == "fails" and "not symmetric" in r.message


def test_definite_with_of_also_checks_equality(reg):
    def f(x):
        return jnp.sum(x**4)

    spec = dc.inputs(x=dc.normal("n"))
    wrong = dc.definite("psd", of=f, inputs=spec, registry=reg, name="w")(lambda x: jnp.diag(4 * x**2))
    r = dc.check(wrong, trials=60)
    assert r.outcome == "fails" and "jax.hessian" in r.message


@pytest.mark.parametrize(
    ("fn", "words"),
    [
        (lambda theta, X, y: X @ theta, "shape"),
        (lambda theta, X, y: (X.T @ y).astype(jnp.int32), "dtype"),
        (lambda theta, X, y: jnp.full_like(theta, jnp.nan), "NaN"),
        (lambda theta, X, y: 1 / 0, "ZeroDivisionError"),
        (lambda theta, X, y: theta if theta[0] > 0 else -theta, "jax.jit"),
    ],
)
def test_broken_derived_functions_are_errors_not_crashes(reg, fn, words):
    d = dc.gradient(of=nll, wrt="theta", inputs=DATA, registry=reg, name="broken")(fn)
    r = dc.check(d, trials=30)
    assert r.outcome == "error"
    assert not r.ok
    assert words in r.message
    assert "\n" not in r.message


def test_declaration_problems_become_error_results(reg):
    wrong_wrt = dc.gradient(of=nll, wrt="beta", inputs=DATA, registry=reg, name="a")(logistic_grad)
    assert dc.check(wrong_wrt).outcome == "error"
    assert "names no argument" in dc.check(wrong_wrt).message

    mismatch = dc.gradient(of=nll, wrt=0, inputs=dc.inputs(theta=dc.normal("d")), registry=reg, name="b")(logistic_grad)
    r = dc.check(mismatch)
    assert r.outcome == "error" and "no input spec" in r.message

    bad_kind = dc.definite("positive", inputs=DATA, registry=reg, name="c")(logistic_hess)
    assert "pd, psd, nd, nsd" in dc.check(bad_kind).message


def test_duplicate_names_are_reported_and_the_first_kept(reg):
    first = dc.gradient(of=nll, wrt="theta", inputs=DATA, registry=reg, name="same")(logistic_grad)
    dc.gradient(of=nll, wrt="theta", inputs=DATA, registry=reg, name="same")(
        lambda theta, X, y: -logistic_grad(theta, X, y)
    )
    assert reg["same"] is first
    dups = [d for d in reg if d.name.startswith("same#duplicate")]
    assert len(dups) == 1 and "duplicate name" in dc.check(dups[0]).message


def test_float32_derivation_is_judged_at_float32_with_a_note(reg):
    spec = dc.inputs(x=dc.normal("n", dtype="float32"))
    d = dc.gradient(of=lambda x: jnp.sum(jnp.sin(x)), inputs=spec, registry=reg, name="f32")(jnp.cos)
    r = dc.check(d)
    assert r.outcome == "holds" and r.rtol == dc.DEFAULT_TOLERANCES["float32"].rtol
    assert any("float32" in n for n in r.notes)


def test_custom_input_callable(reg):
    def draw(key):
        k1, k2 = jax.random.split(key)
        return jax.random.normal(k1, (4,)), jax.random.uniform(k2, (), minval=0.5, maxval=2.0)

    d = dc.gradient(of=lambda x, s: s * jnp.sum(x**2), inputs=draw, registry=reg, name="custom")(lambda x, s: 2 * s * x)
    assert dc.check(d, trials=50).outcome == "holds"


def test_same_seed_same_inputs_and_verdict(reg):
    d = dc.gradient(of=nll, wrt="theta", inputs=DATA, registry=reg, name="g")(PLANTED_GRADIENTS["sign"])
    a, b = dc.check(d, seed=3), dc.check(d, seed=3)
    c = dc.check(d, seed=4)
    assert a.worst.index == b.worst.index
    np.testing.assert_array_equal(a.worst.inputs["X"], b.worst.inputs["X"])
    assert a.max_rel_err == b.max_rel_err
    assert not np.array_equal(a.worst.inputs["X"], c.worst.inputs["X"]) or a.worst.sizes != c.worst.sizes


def test_results_carry_regime_cells(reg):
    d = dc.gradient(of=nll, wrt="theta", inputs=DATA, registry=reg, name="g")(logistic_grad)
    r = dc.check(d, trials=150)
    assert {c.regime for c in r.cells} == set(dc.REGIMES)
    assert {dict(c.sizes)["m"] for c in r.cells} >= {1}
    assert r.trials >= 150


def test_saturated_correct_formula_does_not_fail_on_rounding(reg):
    # a few huge logits: sigmoid saturates and mu - y cancels; the formula is still correct
    spec = dc.inputs(theta=dc.normal("d", scale=30.0), X=dc.full_rank("m", "d"), y=dc.bernoulli("m"))
    d = dc.gradient(of=nll, wrt="theta", inputs=spec, registry=reg, name="sat")(logistic_grad)
    for seed in range(5):
        r = dc.check(d, trials=300, seed=seed)
        assert r.outcome == "holds", r.message


def test_a_non_deterministic_hessian_vector_product_is_an_error(reg):
    """The non-determinism guard calls ``fn(*args, v)`` (it called ``fn(*args)``, raised and skipped it)."""
    calls = []

    @dc.hessian(of=lambda x: jnp.sum(x**2), inputs=dc.inputs(x=dc.normal("n")), hvp=True, registry=reg)
    def drifting(x, v):
        calls.append(1)
        return 2 * v * (1 + 1e-10 * len(calls))  # a trace-time counter: within tolerance, not a function

    r = dc.check(drifting, trials=20)
    assert r.outcome == "error" and r.message.startswith("derived function is not deterministic"), r.message
