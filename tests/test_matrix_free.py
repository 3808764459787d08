"""Matrix-free Hessian checks: Lanczos is exact when it exhausts the space, and the matrix-free and
dense paths reach the same verdicts — on correct Hessians, a planted wrong one, and indefinite matrices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck as dc
from derivcheck._checks import matrix_free


def nll(W, X, Y):
    """Softmax regression's negative log-likelihood ``−Σ_i Σ_c y_ic log softmax(W ᵀ x_i)_c``."""
    return -jnp.sum(Y * jax.nn.log_softmax(X @ W, axis=-1))


def nll_hvp(W, X, Y, V):
    """``H V`` with ``H = Σ_i (diag(μ_i) − μ_i μ_iᵀ) ⊗ x_i x_iᵀ``: ``Xᵀ(μ ⊙ A − μ ⊙ (μ ⊙ A)1)``, ``A = X V``."""
    mu = jax.nn.softmax(X @ W, axis=-1)
    a = X @ V
    return X.T @ (mu * a - mu * jnp.sum(mu * a, axis=-1, keepdims=True))


def nll_dense(W, X, Y):
    """The same Hessian as a dense ``(D, C, D, C)`` array."""
    mu = jax.nn.softmax(X @ W, axis=-1)
    c = W.shape[1]
    diag = jnp.einsum("ic,cd,ij,ik->jckd", mu, jnp.eye(c), X, X)
    return diag - jnp.einsum("ic,id,ij,ik->jckd", mu, mu, X, X)


SPEC = dc.inputs(
    W=dc.normal("D", "C"),
    X=dc.normal("m", "D"),
    Y=dc.one_hot("m", classes="C"),
    sizes=[{"D": 3, "C": 4, "m": 5}],
    regimes=("typical", "large"),
)


def _both_paths(reg, decorator, fn, name, **kw):
    return {
        mf: decorator(registry=reg, name=f"{name}[{mf}]", matrix_free=mf, inputs=SPEC, **kw)(fn) for mf in (False, True)
    }


def _verdicts(derivations):
    results = {mf: dc.check(d, trials=12, seed=3) for mf, d in derivations.items()}
    assert results[False].path == "dense" and results[True].path == "matrix-free"
    return {mf: r.outcome for mf, r in results.items()}, results


@pytest.mark.parametrize("n", [1, 2, 7, 12])
def test_lanczos_with_k_equal_n_finds_the_extreme_eigenvalues(n):
    rng = np.random.default_rng(n)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.concatenate([[-2.0], np.zeros(max(n - 3, 0)), np.full(min(n - 1, 2), 3.0)])[:n]  # repeated, zero
    a = (q * lam) @ q.T
    with jax.enable_x64(True):
        _, _, theta, resid = matrix_free.lanczos(lambda v: jnp.asarray(a) @ v, jnp.asarray(rng.standard_normal(n)), n)
    assert np.allclose([theta[0], theta[-1]], [lam.min(), lam.max()], atol=1e-12)
    assert np.all(np.asarray(resid) < 1e-10)


def test_lanczos_survives_an_invariant_start():
    """Start on an eigenvector of the identity-like matrix: the restart keeps the basis going (no NaN)."""
    a = np.diag([1.0, 1.0, 1.0, -1.0])
    with jax.enable_x64(True):
        _, beta, theta, _ = matrix_free.lanczos(lambda v: jnp.asarray(a) @ v, jnp.asarray([1.0, 0, 0, 0]), 4)
    assert np.isfinite(np.asarray(theta)).all()
    assert np.allclose([theta[0], theta[-1]], [-1.0, 1.0], atol=1e-12)
    assert float(beta[0]) == 0.0


@pytest.mark.parametrize(
    ("label", "fn", "hvp", "expected"),
    [
        ("dense derived", nll_dense, False, "holds"),
        ("hvp derived", nll_hvp, True, "holds"),
        ("planted factor 2", lambda W, X, Y, V: 2 * nll_hvp(W, X, Y, V), True, "fails"),
        ("planted dropped term", lambda W, X, Y, V: X.T @ (jax.nn.softmax(X @ W, axis=-1) * (X @ V)), True, "fails"),
    ],
)
def test_hessian_equality_agrees_between_paths(reg, label, fn, hvp, expected):
    derivations = _both_paths(reg, dc.hessian, fn, label, of=nll, wrt="W", hvp=hvp)
    outcomes, results = _verdicts(derivations)
    assert outcomes == {False: expected, True: expected}, {mf: r.message for mf, r in results.items()}


def _indefinite(W, X, Y, V):
    """``H − 0.5·11ᵀ/n`` applied to ``V``: a negative eigenvalue along the all-ones direction."""
    return nll_hvp(W, X, Y, V) - 0.5 * jnp.mean(V) * jnp.ones_like(V)


def _asymmetric(W, X, Y, V):
    return nll_hvp(W, X, Y, V) + 0.3 * jnp.roll(V, 1)


@pytest.mark.parametrize(
    ("kind", "fn", "of", "expected"),
    [
        ("psd", nll_hvp, nll, "holds"),  # PSD, and equal to jax.hessian(nll)
        ("nsd", lambda *a: -nll_hvp(*a), None, "holds"),
        ("pd", nll_hvp, None, "fails"),  # singular: softmax is shift-invariant in each row of W
        ("psd", _indefinite, None, "fails"),
        ("nsd", _indefinite, None, "fails"),
        ("psd", _asymmetric, None, "fails"),
        ("psd", lambda *a: 2 * nll_hvp(*a), nll, "fails"),  # PSD but not the Hessian of nll
    ],
)
def test_definiteness_agrees_between_paths(reg, kind, fn, of, expected):
    derivations = _both_paths(reg, lambda **kw: dc.definite(kind, **kw), fn, f"{kind}-{fn.__name__}", of=of, hvp=True)
    outcomes, results = _verdicts(derivations)
    assert outcomes == {False: expected, True: expected}, {mf: r.message for mf, r in results.items()}
    mf = results[True]
    if expected == "fails" and fn is _indefinite:
        assert mf.spectrum.lambda_min < -mf.spectrum.margin
        assert "not psd" in mf.message or "not nsd" in mf.message


def test_the_path_is_chosen_by_size(reg, monkeypatch):
    spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 40}], regimes=("typical",))

    def quartic(x):
        return jnp.sum(x**4) / 4

    @dc.hessian(of=quartic, inputs=spec, registry=reg, name="q")
    def quartic_hvp_dense(x):
        return jnp.diag(3 * x**2)

    assert dc.check(quartic_hvp_dense, trials=4).path == "dense"
    monkeypatch.setattr(matrix_free, "THRESHOLD", 39)
    result = dc.check(quartic_hvp_dense, trials=4)
    assert result.path == "matrix-free" and result.outcome == "holds", result.message
    forced = dc.hessian(of=quartic, inputs=spec, registry=reg, name="q-dense", matrix_free=False)(quartic_hvp_dense)
    assert dc.check(forced, trials=4).path == "dense"


def test_an_hvp_of_the_wrong_shape_is_an_error(reg):
    @dc.hessian(of=nll, wrt="W", inputs=SPEC, registry=reg, name="bad-shape", hvp=True, matrix_free=True)
    def flat_hvp(W, X, Y, V):
        return nll_hvp(W, X, Y, V).ravel()

    result = dc.check(flat_hvp, trials=4)
    assert result.outcome == "error" and "shape" in result.message


def test_path_options_are_validated(reg):
    d = dc.hessian(of=nll, wrt="W", inputs=SPEC, registry=reg, name="opt", matrix_free="yes")(nll_dense)
    assert "matrix_free=" in d.problem


def test_kuczynski_wozniakowski_bound():
    assert matrix_free.kw_epsilon(10, 10) == 0.0  # the Krylov space is the whole space
    eps = matrix_free.kw_epsilon(10**6, 64)
    assert 0 < eps < 0.02
    assert matrix_free.kw_epsilon(10**6, 128) < eps


def test_the_classification_of_ritz_values_counts_their_residual():
    """A smallest Ritz value above the margin but within its residual of 0 proves no PD: the message
    must not call it "pd" while the verdict says it is not (it read "pd, not pd" before)."""
    assert matrix_free._classify_ritz(3e-5, 170.0, 1e-9, r_lo=7e-4) == "psd"
    assert matrix_free._classify_ritz(3e-5, 170.0, 1e-9, r_lo=1e-6) == "pd"
    assert matrix_free._classify_ritz(-170.0, -3e-5, 1e-9, r_hi=7e-4) == "nsd"


def test_a_pd_claim_on_a_wide_design_fails_with_a_consistent_message(reg):
    def logreg(theta, X, y):
        z = X @ theta
        return jnp.sum(jnp.logaddexp(0.0, z) - y * z)

    spec = dc.inputs(
        theta=dc.normal("d"),
        X=dc.normal("m", "d"),
        y=dc.bernoulli("m"),
        sizes=[{"m": 30, "d": 120}],
        regimes=("typical",),
    )

    @dc.definite("pd", of=logreg, wrt="theta", hvp=True, matrix_free=True, inputs=spec, registry=reg, name="wide")
    def hvp(theta, X, y, v):
        s = jax.nn.sigmoid(X @ theta)
        return X.T @ (s * (1 - s) * (X @ v))

    r = dc.check(hvp, trials=4)
    assert r.outcome == "fails" and r.path == "matrix-free", r.message
    assert "pd, not pd" not in r.message and ", not pd" in r.message, r.message


def _diagonal(lo: float):
    """``H = diag(linspace(lo, 100, n))`` as a product, ``n`` beyond the Lanczos steps: a dense spectrum whose
    smallest eigenvalue 64 steps (and the second run's 128) may not reach (the Kuczyński–Woźniakowski bound is
    ~0.65 and ~0.16 here)."""
    return lambda x, v: jnp.linspace(lo, 100.0, x.shape[0]) * v


WIDE = dc.inputs(x=dc.normal("n"), sizes=[{"n": 300}], regimes=("typical",))


@pytest.mark.parametrize(
    ("kind", "lo", "allowed"),
    [
        ("psd", -0.003, {"fails", "inconclusive"}),  # wrong, by less than the bound: held before
        ("psd", -0.5, {"fails"}),  # wrong beyond the bound: a Ritz value is a witness
        ("pd", 0.01, {"inconclusive"}),  # right, but not provable in 64 steps: failed before
        ("psd", 0.0, {"inconclusive"}),  # right and singular: only k = n proves it
        ("pd", 50.0, {"holds"}),  # right, and the bound proves it
    ],
)
def test_a_definiteness_the_bound_cannot_prove_is_inconclusive_never_held(reg, kind, lo, allowed):
    d = dc.definite(kind, hvp=True, matrix_free=True, inputs=WIDE, registry=reg, name=f"diag[{kind},{lo}]")(
        _diagonal(lo)
    )
    for seed in (0, 1) if len(allowed) > 1 else (0,):  # a second seed where the outcome may go either way
        r = dc.check(d, trials=8, seed=seed)
        assert r.path == "matrix-free" and r.outcome in allowed, (seed, r.message)
        if r.outcome == "inconclusive":
            assert r.message.startswith("not decided on ") and "matrix_free=False settles it" in r.message


def test_the_dense_path_settles_what_lanczos_leaves_open(reg):
    spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 300}], regimes=("typical",))
    decided = {
        mf: dc.check(
            dc.definite("pd", hvp=True, matrix_free=mf, inputs=spec, registry=reg, name=f"pd[{mf}]")(_diagonal(0.01)),
            trials=2,
        ).outcome
        for mf in (True, False)
    }
    assert decided == {True: "inconclusive", False: "holds"}


def test_a_dense_hvp_of_the_wrong_shape_says_so_not_that_the_function_raised(reg):
    """An ``hvp=True`` product of the wrong shape read "derived function raised: TypeError: cannot reshape"."""
    spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 3}])
    d = dc.definite("psd", hvp=True, inputs=spec, registry=reg, name="short")(lambda x, v: (x**2 * v)[:1])
    r = dc.check(d, trials=4)
    assert r.outcome == "error" and r.message == (
        "the Hessian-vector product returns shape (1,), expected (3,) "
        "(hvp=True: fn(*args, v) = H v, with v and H v shaped like the argument 'x')"
    ), r.message


def _ridge(theta, X, y, lam):
    return 0.5 * jnp.mean((X @ theta - y) ** 2) + 0.5 * lam * jnp.sum(theta**2)


@pytest.mark.parametrize(("lam", "m", "outcome"), [(0.1, 40, "holds"), (-0.1, 40, "fails"), (0.1, 64, "holds")])
def test_a_krylov_space_that_becomes_invariant_gives_exact_ritz_values(reg, lam, m, outcome):
    """``XᵀX/m + λI`` with ``m = 40`` samples below the 64 steps has 41 distinct eigenvalues: the Krylov space of a
    random start is invariant after 41 steps and holds them all, so λ_min = θ_min exactly (it was "not decided").
    With ``m = 64`` the 64 steps leave it undecided, and the second run, with more steps, decides it."""
    spec = dc.inputs(
        theta=dc.normal("d"),
        X=dc.normal("m", "d"),
        y=dc.normal("m"),
        lam=dc.constant(lam),
        sizes=[{"m": m, "d": 600}],
        regimes=("typical", "constant"),
    )

    @dc.definite("pd", of=_ridge, wrt="theta", hvp=True, inputs=spec, registry=reg, name=f"ridge{lam}")
    def ridge_hvp(theta, X, y, lam, v):
        return X.T @ (X @ v) / X.shape[0] + lam * v

    r = dc.check(ridge_hvp, trials=8)
    assert r.path == "matrix-free" and r.outcome == outcome, r.message
    if outcome == "holds":
        assert "the Krylov space became invariant, its Ritz values exact" in r.message
        assert ("Lanczos, 64 steps" in r.message) == (m < 64), r.message
