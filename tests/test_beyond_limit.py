"""Limits, special cases and identities, both ways: correct ones hold on many seeds, a wrong limit,
a wrong special value and a wrong identity are caught, for structured inputs as well as iid ones."""

import math

import jax
import jax.numpy as jnp
import pytest

import derivcheck as dc


def centering_backward(x, gamma, g):
    """``∂L/∂x`` of ``y = γ (x − mean(x))`` for upstream ``g``, by JAX."""
    return jax.vjp(lambda v: gamma * (v - jnp.mean(v)), x)[1](g)[0]


ALL_REGIMES = dc.inputs(x=dc.normal("n"), gamma=dc.positive(), g=dc.normal("n"))
ZERO_MEAN = dc.inputs(x=dc.normal("n"), gamma=dc.positive(), g=dc.normal("n"), regimes=("typical", "large", "tiny"))
SHORT = (4, 16, 64, 256, 1024, 2048, 4096)


def _limit(reg, fn, inputs, name, **options):
    return dc.limit(of=centering_backward, along="n", inputs=inputs, registry=reg, name=name, **options)(fn)


@pytest.mark.parametrize("seed", range(6))
def test_a_true_limit_holds_on_many_seeds(reg, seed):
    d = _limit(reg, lambda x, gamma, g: gamma * g, ZERO_MEAN, "ok")
    r = dc.check(d, trials=90, seed=seed)
    assert r.outcome == "holds", r.message
    rates = [c["rate"] for c in r.details["cells"]]
    assert all(0.3 < rate < 0.8 for rate in rates), rates  # the law of large numbers: ~n^{-1/2}


def test_structured_inputs_expose_a_limit_that_needs_zero_mean(reg):
    r = dc.check(_limit(reg, lambda x, gamma, g: gamma * g, ALL_REGIMES, "as_written"), trials=100)
    assert r.outcome == "fails"
    assert set(r.failing_regimes) == {"shifted", "constant"}
    assert "vanishes" in r.message and "typical" in r.message
    held = {c["regime"] for c in r.details["cells"] if c["holds"]}
    assert held == {"typical", "large", "tiny"}
    assert r.worst.regime in ("shifted", "constant") and r.worst.inputs["g"].shape == (4,)


@pytest.mark.parametrize(
    "wrong",
    [
        lambda x, gamma, g: g,  # γ dropped
        lambda x, gamma, g: gamma * (g + 0.3 * jnp.std(g)),  # off by a shift
        lambda x, gamma, g: 2 * gamma * g,  # a factor
    ],
)
def test_a_wrong_limit_is_caught_in_every_regime(reg, wrong):
    r = dc.check(_limit(reg, wrong, ZERO_MEAN, "wrong", points=SHORT), trials=60)
    assert r.outcome == "fails", r.message
    assert set(r.failing_regimes) == {"typical", "large", "tiny"}


def test_limits_along_an_argument(reg):
    """``t sin(x/t) → x`` as ``t → ∞``, and ``(e^{σx} − 1)/σ → x`` as ``σ → 0``."""
    spec = dc.inputs(x=dc.normal("k"), t=dc.uniform(low=1.0, high=2.0), regimes=("typical", "shifted"))

    def scaled_sine(x, t):
        return t * jnp.sin(x / t)

    inf_ok = dc.limit(of=scaled_sine, along="t", inputs=spec, registry=reg, name="t_inf")(lambda x, t: x)
    inf_bad = dc.limit(of=scaled_sine, along="t", inputs=spec, registry=reg, name="t_inf_bad")(lambda x, t: x * 1.01)
    zero_ok = dc.limit(of=lambda x, t: jnp.expm1(t * x) / t, along="t", to=0.0, inputs=spec, registry=reg, name="z")(
        lambda x, t: x
    )
    r = dc.check(inf_ok, trials=60)
    assert r.outcome == "holds", r.message
    # t sin(x/t) − x = O(t^{-2}); a cell may reach the float64 tolerance first (rate inf)
    assert all(c["rate"] == math.inf or abs(c["rate"] - 2) < 0.2 for c in r.details["cells"])
    assert dc.check(inf_bad, trials=60).outcome == "fails"
    r = dc.check(zero_ok, trials=60)
    assert r.outcome == "holds" and all(c["rate"] == math.inf or abs(c["rate"] - 1) < 0.2 for c in r.details["cells"])


def test_special_case_both_ways(reg):
    ok = dc.special_case(of=centering_backward, at={"n": 1}, inputs=ALL_REGIMES, registry=reg, name="n1")(
        lambda x, gamma, g: jnp.zeros_like(x)
    )
    bad = dc.special_case(of=centering_backward, at={"n": 1}, inputs=ALL_REGIMES, registry=reg, name="n1_bad")(
        lambda x, gamma, g: gamma * g
    )
    r = dc.check(ok, trials=50)
    assert r.outcome == "holds" and {dict(c.sizes)["n"] for c in r.cells} == {1}
    r = dc.check(bad, trials=50)
    assert r.outcome == "fails" and "at n = 1" in r.message


def test_special_value_of_an_argument(reg):
    spec = dc.inputs(x=dc.normal("k"), s=dc.positive())
    ok = dc.special_case(of=lambda x, s: x * jnp.exp(-s * x**2), at={"s": 0.0}, inputs=spec, registry=reg, name="s0")(
        lambda x, s: x
    )
    assert dc.check(ok, trials=30).outcome == "holds"


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"along": "m"}, "names neither"),
        ({"along": "n", "to": 0.0}, "special_case"),
        ({"along": "n", "points": (8, 4, 16)}, "increasing"),
        ({"along": "x"}, "scalar"),
        ({"along": "gamma", "to": -math.inf}, "toward −∞, claim the limit of t ↦ of(−t) toward math.inf"),
        ({"along": "gamma", "to": math.nan}, "a number or math.inf, got nan"),
    ],
)
def test_bad_limits_are_one_line_errors(reg, options, words):
    d = dc.limit(of=centering_backward, inputs=ALL_REGIMES, registry=reg, name="bad", **options)(
        lambda x, gamma, g: gamma * g
    )
    r = dc.check(d, trials=10)
    assert r.outcome == "error" and words in r.message and "\n" not in r.message


def test_bad_special_cases_are_errors(reg):
    d = dc.special_case(of=centering_backward, at={"m": 1}, inputs=ALL_REGIMES, registry=reg, name="m")(
        lambda x, gamma, g: g
    )
    assert "names neither" in dc.check(d).message
    d = dc.special_case(of=centering_backward, at={}, inputs=ALL_REGIMES, registry=reg, name="empty")(
        lambda x, gamma, g: g
    )
    assert dc.check(d).outcome == "error"


# --------------------------------------------------------------------- identities


def psi(p, c):
    u, v, z = p
    return c[0] * u**2 * v + c[1] * jnp.sin(u * z) + c[2] * v * z**3 + c[3] * jnp.exp(c[4] * u) * v


POINT = dc.inputs(p=dc.normal(3), c=dc.normal(5), regimes=("typical", "tiny", "shifted"))


@pytest.mark.parametrize("seed", range(4))
def test_identity_between_transforms_holds(reg, seed):
    d = dc.identity(of=lambda p, c: jax.jacfwd(jax.grad(psi))(p, c), inputs=POINT, registry=reg, name="h")(
        lambda p, c: jax.hessian(psi)(p, c)
    )
    r = dc.check(d, trials=60, seed=seed)
    assert r.outcome == "holds", r.message


def test_a_wrong_identity_is_caught(reg):
    # the Jacobian of a non-symmetric map is not its own transpose
    def field(p, c):
        u, v, z = p
        return jnp.stack([c[0] * u * v, c[1] * z**2, c[2] * jnp.sin(u)])

    d = dc.identity(of=lambda p, c: jax.jacfwd(field)(p, c).T, inputs=POINT, registry=reg, name="sym")(
        lambda p, c: jax.jacfwd(field)(p, c)
    )
    r = dc.check(d, trials=30)
    assert r.outcome == "fails" and r.worst.derived.shape == (3, 3)
    shape = dc.identity(of=lambda p, c: p, inputs=POINT, registry=reg, name="shape")(lambda p, c: c)
    r = dc.check(shape)
    assert r.outcome == "error" and "shape" in r.message


def test_limit_claim_records_are_validated():
    with pytest.raises(dc.DerivationError):
        dc.Limit(of=centering_backward, along="n", min_rate=0.0)
    assert dc.Limit(of=centering_backward, along="n").to == math.inf


def test_a_limit_is_judged_at_the_derivations_own_tolerance(reg):
    """``rtol=``/``atol=`` apply to a limit (they were ignored: the float64 defaults were used).

    ``x (1 + t) → x (1 + 1e-5)`` as ``t → 0`` (down to ``t ≈ 1e-10``) is off by ``1e-5`` (relative): a
    wrong limit at the default ``rtol = 1e-7``, within an author's ``rtol = 1e-3``.
    """
    spec = dc.inputs(x=dc.normal("k"), t=dc.uniform(low=0.5, high=1.0), regimes=("typical",))
    points = tuple(10.0**-j for j in range(1, 11))
    of = lambda x, t: x * (1 + t)
    close = lambda x, t: x * (1 + 1e-5)
    options = {"of": of, "along": "t", "to": 0.0, "points": points, "inputs": spec, "registry": reg}
    strict = dc.limit(name="strict", **options)(close)
    loose = dc.limit(name="loose", rtol=1e-3, **options)(close)
    assert dc.check(strict, trials=30).outcome == "fails"
    r = dc.check(loose, trials=30)
    assert r.outcome == "holds", r.message
    assert (r.rtol, r.atol) == (1e-3, dc.DEFAULT_TOLERANCES["float64"].atol)


def test_a_limit_of_zero_is_judged_by_how_fast_the_difference_vanishes(reg):
    """``1/t → 0`` and a sample mean → 0: the claimed limit is 0, so a difference relative to
    ``max(‖D‖, ‖R‖)`` at each point would be 1 everywhere; relative to the path's scale it vanishes."""
    spec = dc.inputs(t=dc.uniform(low=1.0, high=3.0))
    inverse = dc.limit(of=lambda t: 1.0 / t, along="t", inputs=spec, registry=reg, name="inv")(lambda t: 0 * t)
    r = dc.check(inverse, trials=60)
    assert r.outcome == "holds" and all(abs(c["rate"] - 1) < 0.1 for c in r.details["cells"]), r.message
    mean = dc.inputs(x=dc.normal("n"), regimes=("typical", "large", "tiny"))
    lln = dc.limit(of=jnp.mean, along="n", inputs=mean, registry=reg, name="lln")(lambda x: jnp.zeros(()))
    assert dc.check(lln, trials=60).outcome == "holds"
    not_zero = dc.limit(of=lambda t: 1.0 + 1.0 / t, along="t", inputs=spec, registry=reg, name="nz")(lambda t: 0 * t)
    assert dc.check(not_zero, trials=60).outcome == "fails"


def central(x, h):
    return (jnp.sin(x + h) - jnp.sin(x - h)) / (2 * h)


@pytest.mark.parametrize(("claimed", "outcome"), [(1.8, "holds"), (3.0, "fails"), (4.0, "fails")])
def test_an_order_is_measured_before_rounding_takes_over(reg, claimed, outcome):
    """A central difference is of order 2, and reaches the float64 tolerance within the path: the
    points there carry no rate, so an overstated order fails instead of reading "exact"."""
    spec = dc.inputs(x=dc.normal(), h=dc.uniform(low=0.1, high=1.0))
    d = dc.limit(of=central, along="h", to=0.0, min_rate=claimed, inputs=spec, registry=reg, name=f"c{claimed}")(
        lambda x, h: jnp.cos(x)
    )
    r = dc.check(d, trials=60)
    assert r.outcome == outcome, r.message
    assert all(abs(c["rate"] - 2) < 0.2 for c in r.details["cells"]), r.details["cells"]


def test_a_limit_is_approached_from_starts_of_every_regime(reg):
    """σ(t) → 1 as t → ∞ and (e^t − 1)/t → 1 as t → 0, from tiny and large starts too: eleven
    doublings of a tiny start never passed t = 0.1, and halvings of a large one stayed 0.01 away."""
    positive = dc.inputs(t=dc.positive())
    at_inf = dc.limit(of=jax.nn.sigmoid, along="t", inputs=positive, registry=reg, name="sig")(
        lambda t: jnp.ones_like(t)
    )
    r = dc.check(at_inf, trials=60)
    assert r.outcome == "holds", r.message
    wrong = dc.limit(of=jax.nn.sigmoid, along="t", inputs=positive, registry=reg, name="sig_bad")(
        lambda t: 0.99 * jnp.ones_like(t)
    )
    assert dc.check(wrong, trials=60).outcome == "fails"
    at_zero = dc.limit(of=lambda t: jnp.expm1(t) / t, along="t", to=0.0, inputs=positive, registry=reg, name="e")(
        lambda t: jnp.ones_like(t)
    )
    r = dc.check(at_zero, trials=60)
    assert r.outcome == "holds", r.message


def test_a_limit_toward_infinity_from_a_negative_start_is_a_clear_error(reg):
    spec = dc.inputs(t=dc.normal())
    d = dc.limit(of=jax.nn.sigmoid, along="t", inputs=spec, registry=reg, name="neg")(lambda t: jnp.ones_like(t))
    r = dc.check(d, trials=60)
    assert r.outcome == "error" and "draw t from dc.positive()" in r.message and "\n" not in r.message


def test_an_oscillation_does_not_converge_from_starts_moved_toward_the_limit(reg):
    """sin t as t → ∞ and sin(1/t) as t → 0: moving each start toward the limit point keeps its
    mantissa, so the paths differ and the oscillation shows (one common start made them hold)."""
    inf = dc.limit(of=jnp.sin, along="t", inputs=dc.inputs(t=dc.uniform(low=0.1, high=0.9)), registry=reg, name="s")(
        lambda t: 0 * t
    )
    assert dc.check(inf, trials=60).outcome == "fails"
    zero = dc.limit(
        of=lambda t: jnp.sin(1 / t), along="t", to=0.0, inputs=dc.inputs(t=dc.uniform(low=1.5, high=3.0)), registry=reg
    )(lambda t: 0 * t)
    assert dc.check(zero, trials=60).outcome == "fails"


def test_cancellation_near_the_limit_point_is_rounding_not_a_difference(reg):
    """(1 − cos t)/t² → 1/2 and a second difference quotient → −sin x: halving tiny starts down to
    ~1e-7 makes both ε/t² noisy; measured as rounding, the points there carry no rate."""
    spec = dc.inputs(t=dc.positive())
    half = dc.limit(of=lambda t: (1 - jnp.cos(t)) / t**2, along="t", to=0.0, inputs=spec, registry=reg, name="c")(
        lambda t: 0.5 + 0 * t
    )
    r = dc.check(half, trials=60)
    assert r.outcome == "holds", r.message
    wrong = dc.limit(of=lambda t: (1 - jnp.cos(t)) / t**2, along="t", to=0.0, inputs=spec, registry=reg, name="w")(
        lambda t: 0.49 + 0 * t
    )
    assert dc.check(wrong, trials=60).outcome == "fails"


def test_a_limit_of_a_function_that_uses_at_updates(reg):
    def of(x):
        return x.at[0].set(0.0).sum() / x.shape[0]

    d = dc.limit(of=of, along="n", inputs=dc.inputs(x=dc.normal("n"), regimes=("typical",)), registry=reg, name="at")(
        lambda x: jnp.zeros(())
    )
    assert dc.check(d, trials=40).outcome == "holds"


SINC = dc.inputs(a=dc.normal("d"), t=dc.uniform(low=0.1, high=1.0), regimes=("typical",))


def _sinc(a, t):
    return a * jnp.sin(t) / t


@pytest.mark.parametrize("seed", (0, 1))
def test_a_limit_wrong_by_a_little_levels_off_and_fails(reg, seed):
    """``lim a sin t / t = a (1 + c)``: the difference decays like ``t²``, then levels off at ``c``. The fit over
    the tail still saw the decay (rate 0.32 for ``c = 2·10⁻⁵``) and the wrong limit held; the path's end is flat."""
    outcomes = []
    for c in (0.0, 2e-5, 5e-5):
        d = dc.limit(of=_sinc, along="t", to=0.0, inputs=SINC, registry=reg, name=f"sinc{c:g}")(
            lambda a, t, c=c: a * (1 + c)
        )
        r = dc.check(d, trials=40, seed=seed)
        outcomes.append(r.outcome)
        if c:
            assert "where the path ends, below the claimed 0.25" in r.message, r.message
    assert outcomes == ["holds", "fails", "fails"]


def _trapezoid(a, u):
    n = u.shape[0]
    f = jnp.exp(a * jnp.linspace(0.0, 1.0, n + 1))
    return (jnp.sum(f) - 0.5 * (f[0] + f[-1])) / n


def _simpson(a, u):
    n = 2 * u.shape[0]
    f = jnp.exp(a * jnp.linspace(0.0, 1.0, n + 1))
    w = jnp.ones(n + 1).at[1:-1:2].set(4.0).at[2:-1:2].set(2.0)
    return jnp.sum(w * f) / (3 * n)


QUADRATURE = dc.inputs(a=dc.uniform(low=0.5, high=2.0), u=dc.normal("n"), regimes=("typical",))


@pytest.mark.parametrize(
    ("rule", "order", "outcome"),
    [
        (_trapezoid, 2.0, "holds"),  # measured 1.9999…: failed "rate 2.00 < 2"
        (_trapezoid, 3.0, "fails"),
        (_simpson, 4.0, "inconclusive"),  # at the tolerance after two points: only a lower bound, 1.5
    ],
)
def test_a_quadrature_order_is_judged_to_the_resolution_of_a_rate(reg, rule, order, outcome):
    exact = lambda a, u: jnp.expm1(a) / a
    d = dc.limit(of=rule, along="n", inputs=QUADRATURE, min_rate=order, registry=reg, name=f"{rule.__name__}{order}")(
        exact
    )
    r = dc.check(d, trials=20)
    assert r.outcome == outcome, r.message


def test_a_sample_means_rate_claimed_near_its_truth_is_never_failed(reg):
    """``n^{-1/2}`` measured over 100 trials is ``1/2 ± 0.1``: a claim of 0.4 or 0.5 failed on some seeds; the
    resampled interval leaves it undecided instead, and a claim of 1 still fails."""
    spec = dc.inputs(x=dc.normal("n"), regimes=("typical",))
    mean = lambda x: jnp.mean(x)
    zero = lambda x: jnp.zeros(())
    for claimed, allowed in ((0.4, {"holds", "inconclusive"}), (0.5, {"holds", "inconclusive"}), (1.0, {"fails"})):
        d = dc.limit(of=mean, along="n", inputs=spec, min_rate=claimed, registry=reg, name=f"mean{claimed}")(zero)
        for seed in range(4):
            r = dc.check(d, trials=100, seed=seed)
            assert r.outcome in allowed, (claimed, seed, r.message)
