"""Sound verdicts: the rounding allowance measures the rounding present, printed errors are real, empty checks err.

Every planted error here was missed (held) or misreported before the Monte Carlo arithmetic allowance
(:func:`derivcheck._compare.rounding_spread`); every correct twin holds on several seeds.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck as dc
from derivcheck._compare import MCA_FACTOR, entry_spreads, rounding_spread

SEEDS = (0, 1, 2)


def _softplus_sum(w, x):
    return jnp.sum(jax.nn.softplus(x * w))


SATURATED = dc.inputs(w=dc.normal("n"), x=dc.normal("n"), sizes=[{"n": 32}], regimes=("large",))


def _naive_sigmoid(t):
    return 1.0 / (1.0 + jnp.exp(-t))  # exp(-t) reaches ~1e300 here: an intermediate that is only inverted


@pytest.mark.parametrize("seed", SEEDS)
def test_a_huge_intermediate_that_is_only_inverted_excuses_nothing(reg, seed):
    @dc.gradient(of=_softplus_sum, wrt="w", inputs=SATURATED, registry=reg, name="twice")
    def twice(w, x):
        return 2.0 * x * _naive_sigmoid(x * w)

    @dc.gradient(of=_softplus_sum, wrt="w", inputs=SATURATED, registry=reg, name="right")
    def right(w, x):
        return x * _naive_sigmoid(x * w)

    wrong = dc.check(twice, trials=40, seed=seed)
    assert wrong.outcome == "fails" and wrong.max_rel_err == pytest.approx(0.5, rel=1e-6)
    assert wrong.diagnosis is not None and wrong.diagnosis.kind == "factor"
    assert dc.check(right, trials=40, seed=seed).outcome == "holds"


def _logistic_nll(theta, X):
    z = X @ theta
    return jnp.sum(jnp.logaddexp(0.0, z))


HVP_IN = dc.inputs(theta=dc.normal("d"), X=dc.normal("m", "d"), sizes=[{"m": 9, "d": 4}], regimes=("large",))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_hessian_vector_product_wrong_in_one_row_fails_when_saturated(reg, seed):
    """``Xᵀ S X v``, ``S = diag(σ(z)(1 − σ(z)))`` with ``σ = 1/(1 + exp(−z))`` (``exp(−z)`` up to ~1e300
    at these inputs, only inverted); one row planted wrong."""

    def s_of(z):
        sig = _naive_sigmoid(z)
        return sig * (1.0 - sig)

    @dc.hessian(of=_logistic_nll, inputs=HVP_IN, hvp=True, registry=reg, name="hvp_wrong_row")
    def hvp_wrong_row(theta, X, v):
        hv = X.T @ (s_of(X @ theta) * (X @ v))
        return hv.at[-1].multiply(1.5)

    @dc.hessian(of=_logistic_nll, inputs=HVP_IN, hvp=True, registry=reg, name="hvp")
    def hvp(theta, X, v):
        return X.T @ (s_of(X @ theta) * (X @ v))

    assert dc.check(hvp_wrong_row, trials=40, seed=seed).outcome == "fails"
    assert dc.check(hvp, trials=40, seed=seed).outcome == "holds"


def test_the_printed_relative_error_is_the_real_one_in_the_tiny_regime(reg):
    """A factor 3.6 shows ``|3.6 R − R| / |3.6 R| = 0.72``, not a ratio against a floored denominator."""
    tiny = dc.inputs(x=dc.normal("n"), regimes=("tiny",))

    @dc.gradient(of=lambda x: jnp.sum(x**3), inputs=tiny, registry=reg, name="cube_factor")
    def cube_grad_factor(x):
        return 3.6 * 3 * x**2

    r = dc.check(cube_grad_factor, trials=30)
    assert r.outcome == "fails" and r.max_rel_err == pytest.approx(2.6 / 3.6, rel=1e-9)


def test_a_check_that_compares_nothing_is_an_error(reg):
    @dc.gradient(of=lambda x: jnp.sum(x**3), inputs=dc.inputs(x=dc.normal("n"), sizes=[{"n": 0}]), registry=reg)
    def empty_wrong(x):
        return 5 * x

    r = dc.check(empty_wrong, trials=10)
    assert r.outcome == "error" and "nothing to compare" in r.message


def _weight_decay(w):
    return 1e-6 * jnp.sum(w**2)


def _f32_draw(scale):
    return lambda key: scale * jax.random.normal(key, (64,), jnp.float32)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_check_whose_values_are_all_below_atol_decides_nothing(reg, seed):
    """float32's ``atol = 1e-5`` hides every value of a gradient ``2·10⁻⁶ w``: ``10⁻⁶ w`` (a factor 2 dropped)
    held, "max rel. error 7.8e-04". Now it is inconclusive, with the real relative error; drawn where the
    values exceed ``atol``, the same wrong formula fails and the right one holds."""
    half = lambda w: 1e-6 * w
    right = lambda w: 2e-6 * w
    outcomes = {}
    for label, fn, scale in (("half", half, 1.0), ("half", half, 1e3), ("right", right, 1e3)):
        d = dc.gradient(of=_weight_decay, inputs=_f32_draw(scale), registry=reg, name=f"{label}@{scale:g}")(fn)
        outcomes[label, scale] = dc.check(d, trials=40, seed=seed)
    small = outcomes["half", 1.0]
    assert small.outcome == "inconclusive" and not small.ok
    assert small.message.startswith("not decided: on every trial both sides are within atol=1e-05 of 0")
    assert "rel. error up to 0.5:" in small.message
    assert outcomes["half", 1e3].outcome == "fails" and outcomes["right", 1e3].outcome == "holds"


_SPIKE = 8


def _spiked(key):
    """``A = I + 2uuᵀ``: the top eigenvalue simple, the other seven all 1 (a spiked covariance)."""
    u = jax.random.normal(key, (_SPIKE,))
    return jnp.eye(_SPIKE) + 2.0 * jnp.outer(u, u) / jnp.sum(u**2)


def _lam_max(A):
    return jnp.linalg.eigvalsh(A)[-1]


@pytest.mark.parametrize("seed", SEEDS)
def test_a_value_rounding_decides_is_no_evidence_that_a_formula_holds(reg, seed):
    """``∇λ_max = v vᵀ`` written with the eigenvector of the repeated eigenvalue (``V[:, 0]``): ``eigh`` returns
    any basis of that eigenspace, so the measured rounding of the derived side is as large as the side
    itself, and that allowance excused an error of 1: it held on 20 trials ("max rel. error 6.2e-09"). Such a
    trial decides nothing; the right formula, whose eigenvector is simple, still holds."""

    @dc.gradient(of=_lam_max, inputs=_spiked, registry=reg, name="wrong")
    def wrong(A):
        V = jnp.linalg.eigh(A)[1]
        return jnp.outer(V[:, 0], V[:, 0])

    @dc.gradient(of=_lam_max, inputs=_spiked, registry=reg, name="right")
    def right(A):
        V = jnp.linalg.eigh(A)[1]
        return jnp.outer(V[:, -1], V[:, -1])

    got = dc.check(wrong, trials=20, seed=seed)
    assert got.outcome in ("fails", "inconclusive"), got.message
    if got.outcome == "inconclusive":
        assert got.message.startswith("not decided: on every trial rounding moves a side as far as its own size")
    assert dc.check(right, trials=20, seed=seed).outcome == "holds"


def _causal_scores(Q, K, fill):
    S = Q @ K.T / jnp.sqrt(Q.shape[1])
    return jnp.where(jnp.tril(jnp.ones((S.shape[0], S.shape[0]), bool)), S, fill)


def _attention_loss(Q, K, V):
    return jnp.sum((jax.nn.softmax(_causal_scores(Q, K, -jnp.inf), axis=-1) @ V) ** 2)


def _attention_dq(Q, K, V, scale=1.0, fill=-jnp.inf):
    P = jax.nn.softmax(_causal_scores(Q, K, fill), axis=-1)
    dP = (2 * P @ V) @ V.T
    return scale * (P * (dP - (dP * P).sum(-1, keepdims=True))) @ K / jnp.sqrt(Q.shape[1])


def test_a_minus_infinity_mask_is_not_perturbed_into_nan():
    """Monte Carlo arithmetic moved every result ``z`` to ``z + εξz``: a causal mask's ``−inf`` became
    ``−inf + inf = NaN``, the whole softmax row NaN, and its spread counted as none: a right attention
    gradient failed on rounding in the ``large`` regime (1 to 5 trials in 300). An infinite result is
    not rounded and is left as it is."""
    Q, K, V = (jax.random.normal(jax.random.PRNGKey(i), (6, 5)) * 10 for i in range(3))
    spreads = entry_spreads(_attention_dq, Q, K, V)[0]
    finite_fill = entry_spreads(lambda Q, K, V: _attention_dq(Q, K, V, fill=-1e9), Q, K, V)[0]
    assert float(jnp.min(finite_fill[:-1])) > 0  # every row but the last has masked scores
    assert float(jnp.min(spreads[:-1] / finite_fill[:-1])) > 0.1  # as -1e9 gives: the same order everywhere


@pytest.mark.parametrize("seed", SEEDS)
def test_attention_with_a_minus_infinity_mask_holds_when_large_and_a_slip_is_caught(reg, seed):
    spec = dc.inputs(
        Q=dc.normal("T", "d"),
        K=dc.normal("T", "d"),
        V=dc.normal("T", "d"),
        sizes=[{"T": 8, "d": 13}],
        regimes=("large",),
    )
    right = dc.gradient(of=_attention_loss, wrt="Q", inputs=spec, registry=reg, name="right")(_attention_dq)
    half = dc.gradient(of=_attention_loss, wrt="Q", inputs=spec, registry=reg, name="half")(
        lambda Q, K, V: _attention_dq(Q, K, V, 0.5)
    )
    assert dc.check(right, trials=200, seed=seed).outcome == "holds"
    assert dc.check(half, trials=40, seed=seed).outcome == "fails"


def test_sides_that_agree_exactly_at_zero_hold(reg):
    """An exact agreement is evidence at any size: a gradient that is 0 on every trial, written as 0."""

    @dc.gradient(of=lambda w: jnp.sum(w * 0.0), inputs=dc.inputs(w=dc.normal("n")), registry=reg, name="flat")
    def flat(w):
        return jnp.zeros_like(w)

    assert dc.check(flat, trials=20).outcome == "holds"


# ---- the spread itself


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def test_spread_of_an_inverted_huge_intermediate_is_rounding_of_the_result():
    t = jnp.array([-700.0, -30.0, 3.0, 50.0])
    result = _naive_sigmoid(t)
    spread = float(rounding_spread(_naive_sigmoid, t))
    assert spread <= 4 * np.finfo(np.float64).eps * float(jnp.max(result))


def test_spread_sees_cancellation_inside_a_sum_and_a_dot():
    big = jnp.array([1e16, 1.0, -1e16])
    assert float(rounding_spread(jnp.sum, big)) > 1.0  # the 1.0 is lost to rounding: the spread says so
    X, y = jnp.array([[1e8, 1.0, -1e8]]), jnp.ones(3)
    assert float(rounding_spread(lambda X, y: X @ y, X, y)) > 1e-9


def test_spread_is_deterministic_and_traceable():
    t = jnp.linspace(-5.0, 5.0, 7)
    f = lambda t: jnp.tanh(t) - t
    eager = rounding_spread(f, t)
    assert float(eager) == float(jax.jit(lambda t: rounding_spread(f, t))(t))
    batched = jax.vmap(lambda t: rounding_spread(f, t))(jnp.stack([t, t]))
    assert np.all(np.asarray(batched) == float(eager)) and MCA_FACTOR > 1


# ---- entry-wise judgement: small entries are judged at their own size

SCALES = jnp.array([1.0, 2.0, 1e-8, 3e-8, 1.0, 5e-9])
WEIGHTED = dc.inputs(x=dc.normal("n"), sizes=[{"n": 6}])


def _weighted_square(x):
    return 0.5 * jnp.sum(SCALES * x**2)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_gradient_wrong_by_half_in_entries_1e8_times_smaller_fails(reg, seed):
    """``∇ = s ⊙ x`` with ``s`` spanning eight orders: wrong by 50 % only in the small entries, the error is
    ``5e-9 ‖∇‖∞`` — inside the norm-wise ``rtol = 1e-7``, 10⁸ times over the small entries' own size."""

    @dc.gradient(of=_weighted_square, inputs=WEIGHTED, registry=reg, name="small_wrong")
    def small_wrong(x):
        return SCALES * x * jnp.where(SCALES < 1e-3, 1.5, 1.0)

    @dc.gradient(of=_weighted_square, inputs=WEIGHTED, registry=reg, name="small_right")
    def small_right(x):
        return x * SCALES

    wrong = dc.check(small_wrong, trials=60, seed=seed)
    assert wrong.outcome == "fails" and wrong.max_rel_err == pytest.approx(1 / 3, rel=1e-6)  # |1.5 − 1| / 1.5
    assert {c.regime for c in wrong.cells if c.failures} >= {"typical", "large", "shifted", "constant"}
    assert dc.check(small_right, trials=60, seed=seed).outcome == "holds"


def _centered_square(x):
    return 0.5 * jnp.sum((x - jnp.mean(x)) ** 2)


CENTERED = dc.inputs(x=dc.normal("n"), sizes=[{"n": 5}, {"n": 40}])


def _softmax_ce(z, y):
    return jax.nn.logsumexp(z) - jnp.dot(z, y)


SOFTMAX = dc.inputs(z=dc.normal("C"), y=dc.one_hot(classes="C"), sizes=[{"C": 3}, {"C": 30}])


@pytest.mark.parametrize("seed", SEEDS)
def test_right_formulas_with_entries_zero_by_cancellation_hold(reg, seed):
    """``x − x̄`` (exactly 0 in every entry of a constant vector, rounding of ``|x|`` otherwise) and
    ``softmax(z) − y`` (entries ``1 − 1`` at a saturated softmax), each computed in another order than JAX."""

    @dc.gradient(of=_centered_square, inputs=CENTERED, registry=reg, name="centered")
    def centered(x):
        return (x.shape[0] * x - jnp.sum(x)) / x.shape[0]

    @dc.gradient(of=_softmax_ce, wrt="z", inputs=SOFTMAX, registry=reg, name="softmax_ce")
    def softmax_ce(z, y):
        e = jnp.exp(z - jnp.max(z))
        return e / jnp.sum(e) - y

    @dc.gradient(of=_softmax_ce, wrt="z", inputs=SOFTMAX, registry=reg, name="softmax_ce_half")
    def softmax_ce_half(z, y):
        e = jnp.exp(z - jnp.max(z))
        return e / jnp.sum(e) - 0.5 * y

    for d in (centered, softmax_ce):
        r = dc.check(d, trials=80, seed=seed)
        assert r.outcome == "holds", r.message
    assert dc.check(softmax_ce_half, trials=80, seed=seed).outcome == "fails"


# ---- definiteness margins and convexity tolerances: measured rounding, not the largest intermediate


DEF_IN = dc.inputs(theta=dc.normal("d"), X=dc.normal("m", "d"), sizes=[{"m": 9, "d": 4}], regimes=("large",))


def _pd_hvp(theta, X, v):
    """``Xᵀ S X v + 10⁻³ v`` with ``σ = 1/(1 + exp(−z))``: ``exp(−z)`` up to ~1e300 here, only inverted."""
    s = _naive_sigmoid(X @ theta)
    return X.T @ (s * (1 - s) * (X @ v)) + 1e-3 * v


def _rank_one_hvp(theta, X, v):
    """``(1 + σ(z₀)) u uᵀ v``, ``u = X₀``: PSD of rank 1, with the same huge intermediate."""
    u = X[0]
    return u * (u @ v) * (1 + _naive_sigmoid(X @ theta)[0])


def _indefinite_hvp(theta, X, v):
    """The PD product with ``2·10⁻³ v₀ e₀`` taken off: negative along ``e₀`` where ``(XᵀSX)₀₀`` is small."""
    return _pd_hvp(theta, X, v) - 2e-3 * v[0] * jnp.eye(4)[0]


@pytest.mark.parametrize("matrix_free", [False, True], ids=["dense", "lanczos"])
@pytest.mark.parametrize("seed", SEEDS)
def test_a_huge_intermediate_does_not_make_a_pd_matrix_numerically_zero(reg, seed, matrix_free):
    def declare(kind, fn, name):
        return dc.definite(kind, hvp=True, matrix_free=matrix_free, inputs=DEF_IN, registry=reg, name=name)(fn)

    pd = dc.check(declare("pd", _pd_hvp, "pd"), trials=40, seed=seed)
    assert pd.outcome == "holds", pd.message
    singular = dc.check(declare("pd", _rank_one_hvp, "rank_one"), trials=40, seed=seed)
    assert singular.outcome == "fails" and singular.spectrum is not None and singular.spectrum.found == "psd"
    assert dc.check(declare("psd", _rank_one_hvp, "rank_one_psd"), trials=40, seed=seed).outcome == "holds"
    indefinite = dc.check(declare("pd", _indefinite_hvp, "indefinite"), trials=40, seed=seed)
    assert indefinite.outcome == "fails" and indefinite.spectrum is not None
    assert indefinite.spectrum.found == "indefinite"


GRADED = dc.inputs(p=dc.simplex("n"), sizes=[{"n": 6}, {"n": 12}], regimes=("large",))


def _graded_nd(p):
    """``−diag(1/p)``, the Hessian of ``Σ log p``: entries from −1 to below −1e14 in the ``large`` regime."""
    return -jnp.diag(1.0 / p)


def _graded_hidden_positive(p):
    """``−diag(1/p)`` with the two largest ``p`` coupled by ``1.01/√(pᵢpⱼ)``: one eigenvalue ≈ ``0.01/p`` > 0,
    some 1e-14 of the largest ``|λ|``."""
    i, j = jnp.argsort(p)[-2:]
    c = 1.01 / jnp.sqrt(p[i] * p[j])
    return _graded_nd(p).at[i, j].set(c).at[j, i].set(c)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_graded_definite_matrix_is_confirmed_and_a_graded_slip_is_caught(reg, seed):
    """A true ``nd`` claim on ``−diag(1/p)`` spanning 14 orders of magnitude held in no trial where an
    eigenvalue near −1 sat inside the margin ``64 n ε ‖H‖₂`` (about 2): the signs read off the diagonally
    scaled matrix (same inertia, Sylvester) confirm it. Scaling cannot invent a sign: a rank-one graded
    matrix still is not ``pd``, and a positive eigenvalue hidden 1e-14 below the largest one is found."""

    def declare(kind, fn, name):
        return dc.definite(kind, inputs=GRADED, registry=reg, name=name)(fn)

    nd = dc.check(declare("nd", _graded_nd, "graded_nd"), trials=60, seed=seed)
    assert nd.outcome == "holds", nd.message
    flipped = declare("nd", lambda p: _graded_nd(p).at[0, 0].multiply(-1.0), "flipped")
    assert dc.check(flipped, trials=60, seed=seed).outcome == "fails"
    rank_one = dc.check(declare("pd", lambda p: jnp.outer(1 / p, 1 / p), "rank_one"), trials=60, seed=seed)
    assert rank_one.outcome == "fails" and rank_one.spectrum is not None and rank_one.spectrum.found == "psd"
    hidden = dc.check(declare("nd", _graded_hidden_positive, "hidden"), trials=60, seed=seed)
    assert hidden.outcome == "fails" and hidden.spectrum is not None
    assert hidden.spectrum.found == "indefinite", hidden.message


POINTS = dc.inputs(x=dc.normal("n"), sizes=[{"n": 5}], regimes=("large",))


def _naive_softplus(t):
    """``log(1 + exp(t))``: ``exp(t)`` up to ~1e120 here (its square, in the Hessian, stays finite), only logged."""
    return jnp.log(1.0 + jnp.exp(t))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_huge_intermediate_excuses_no_negative_curvature(reg, seed):
    """``Σ softplus(7 x) − 0.01 Σ x²`` is concave wherever softplus has flattened (most of the ``large``
    regime): caught at every point (the largest-intermediate margin excused it at most of them), while
    ``Σ softplus(7 x) + 0.01 Σ x²`` (convex) holds."""

    @dc.convex(inputs=POINTS, registry=reg, name="not_convex")
    def not_convex(x):
        return jnp.sum(_naive_softplus(7.0 * x)) - 0.01 * jnp.sum(x**2)

    @dc.convex(inputs=POINTS, registry=reg, name="convex")
    def convex(x):
        return jnp.sum(_naive_softplus(7.0 * x)) + 0.01 * jnp.sum(x**2)

    r = dc.check(not_convex, trials=40, seed=seed)
    # ∇²f has −0.02 on the diagonal wherever |xᵢ| > 1.1: at every point but with probability ~5e-6
    assert r.outcome == "fails" and sum(c.failures for c in r.cells) == r.trials, r.message
    assert dc.check(convex, trials=40, seed=seed).outcome == "holds"


# ---- the determinism guard: summation order is rounding, randomness is not

GRAPH_IN = dc.inputs(x=dc.normal("n"), sizes=[{"n": 5}], regimes=("typical",))


def _rotating_order():
    """A derived gradient of ``Σ x²`` that adds its four terms in another order on every call, as summing over a
    Python ``set`` of graph nodes does when the set is rebuilt (``2x = (10⁶ x + x) − 10⁶ x + x``: the order
    changes the result by ~1e-10 relative, far beyond 16 ulps, far inside the check's tolerance)."""
    calls = itertools.count()

    def derived(x):
        terms = [1e6 * x, x, -1e6 * x, x]
        k = next(calls) % len(terms)
        total = jnp.zeros_like(x)
        for term in terms[k:] + terms[:k]:
            total = total + term
        return total

    return derived


def test_a_change_of_summation_order_is_not_nondeterminism(reg):
    derived = _rotating_order()
    x = jnp.asarray(np.random.default_rng(0).normal(size=5))
    assert not np.array_equal(np.asarray(derived(x)), np.asarray(derived(x)))  # the calls differ indeed
    d = dc.gradient(of=lambda x: jnp.sum(x**2), inputs=GRAPH_IN, registry=reg, name="set_order")(derived)
    r = dc.check(d, trials=30)
    assert r.outcome == "holds", r.message


def test_a_global_counter_is_still_nondeterminism(reg):
    calls = itertools.count()

    @dc.gradient(of=lambda x: jnp.sum(x**2), inputs=GRAPH_IN, registry=reg, name="counter")
    def counter(x):  # a tiny drift per call: 1e-9 relative, yet far beyond the rounding of 2x
        return 2 * x * (1 + 1e-9 * next(calls))

    r = dc.check(counter, trials=30)
    assert r.outcome == "error" and "not deterministic" in r.message, r.message


def test_a_random_draw_is_still_nondeterminism(reg):
    rng = np.random.default_rng(0)

    @dc.gradient(of=lambda x: jnp.sum(x**2), inputs=GRAPH_IN, registry=reg, name="random")
    def random_draw(x):
        return 2 * x + 1e-9 * rng.normal()

    r = dc.check(random_draw, trials=30)
    assert r.outcome == "error" and "not deterministic" in r.message, r.message
