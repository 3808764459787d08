"""Expectation claims, both ways: correct ones hold on many seeds with a bounded false-alarm rate,
planted wrong expected values (sign, factor, dropped term, wrong closed form) are caught."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck as dc

# Gaussian dropout on a linear unit: J = ½ (y − Σ δ_k w_k x_k)², δ_k ~ N(1, σ²)
SPEC = dc.inputs(
    w=dc.normal("n"),
    x=dc.normal("n"),
    y=dc.normal(),
    sigma=dc.uniform(low=0.5, high=1.2),
    sizes=[{"n": 3}],
    regimes=("typical", "shifted"),
)
FEW = {"draws": 8}


def cost(w, x, y, sigma, delta):
    return 0.5 * (y - jnp.sum(delta * w * x)) ** 2


def noise(key, w, x, y, sigma):
    return 1.0 + sigma * jax.random.normal(key, w.shape)


def expected_cost(w, x, y, sigma):
    return 0.5 * (y - jnp.sum(w * x)) ** 2 + 0.5 * sigma**2 * jnp.sum(w**2 * x**2)


def expected_grad(w, x, y, sigma):
    return -x * (y - jnp.sum(w * x)) + sigma**2 * w * x**2


def _expected_gradient(reg, fn, name, **options):
    return dc.expected_gradient(of=cost, noise=noise, wrt="w", inputs=SPEC, registry=reg, name=name, **options)(fn)


PLANTED = {
    "sign of the penalty": lambda w, x, y, sigma: -x * (y - jnp.sum(w * x)) - sigma**2 * w * x**2,
    "missing factor x_i": lambda w, x, y, sigma: -x * (y - jnp.sum(w * x)) + sigma**2 * w * x,
    "dropped penalty": lambda w, x, y, sigma: -x * (y - jnp.sum(w * x)),
    "25% too large": lambda w, x, y, sigma: 1.25 * expected_grad(w, x, y, sigma),
}


@pytest.mark.parametrize("seed", range(6))
def test_correct_expected_gradient_holds_on_many_seeds(reg, seed):
    d = _expected_gradient(reg, expected_grad, "ok", exact=expected_cost, **FEW)
    r = dc.check(d, seed=seed)
    assert r.outcome == "holds", r.message
    worst = r.details["worst"]
    assert set(worst) >= {"estimate", "standard_error", "z"}
    assert len(worst["estimate"]) == len(worst["standard_error"]) == 4  # 3 gradient entries + E[J] (closed form)
    assert r.details["z_max"] <= r.details["z_crit"]
    assert r.details["exact_max_rel_err"] < 1e-12


@pytest.mark.parametrize("error", sorted(PLANTED))
def test_planted_wrong_expected_gradients_are_caught(reg, error):
    d = _expected_gradient(reg, PLANTED[error], error, **FEW)
    r = dc.check(d, seed=1)
    assert r.outcome == "fails", r.message
    assert "differs from the Monte Carlo E[∇cost]" in r.message
    assert abs(max(r.details["worst"]["z"], key=abs)) > r.details["z_crit"]
    assert r.worst is not None and set(r.worst.inputs) >= {"w", "x", "y", "sigma", "noise_key"}


def test_the_closed_form_catches_what_the_monte_carlo_cannot_resolve(reg):
    def off_by_a_millionth(w, x, y, sigma):
        return expected_grad(w, x, y, sigma) * (1 + 1e-6)

    r = dc.check(_expected_gradient(reg, off_by_a_millionth, "tiny", exact=expected_cost, **FEW), seed=2)
    assert r.outcome == "fails"
    assert "closed form" in r.message and "below its resolution" in r.message


def test_a_wrong_closed_form_is_caught_by_the_monte_carlo(reg):
    def no_penalty(w, x, y, sigma):  # the closed form without its variance term
        return 0.5 * (y - jnp.sum(w * x)) ** 2

    def its_gradient(w, x, y, sigma):
        return -x * (y - jnp.sum(w * x))

    r = dc.check(_expected_gradient(reg, its_gradient, "wrong_exact", exact=no_penalty, **FEW), seed=3)
    assert r.outcome == "fails"  # derived equals ∇(exact) exactly, but E[J] ≠ exact


def test_false_alarm_rate_is_bounded_and_standard_errors_are_calibrated(reg):
    """At α = 0.2, a correct claim may fail in at most ~20% of seeds; its z-scores must look N(0, 1).

    40 seeds: P(Binomial(40, 0.2) ≥ 16) < 0.003, so 16 or more failures would
    mean the bound does not hold. Over the ~480 z-scores, the fraction beyond
    1.96 must be 5% within ±3.5 points (≥ 3 binomial standard deviations).
    """
    d = _expected_gradient(reg, expected_grad, "calibration", false_alarm=0.2, **FEW)
    outcomes, zs = [], []
    for seed in range(40):
        r = dc.check(d, seed=seed)
        outcomes.append(r.outcome)
        zs.append(np.asarray(r.per_trial["z"], float).ravel())
    failures = outcomes.count("fails")
    assert outcomes.count("error") == 0
    assert failures < 16, f"{failures} of 40 seeds failed at a stated false-alarm rate of 0.2"
    z = np.concatenate(zs)
    z = z[np.isfinite(z)]
    beyond = np.mean(np.abs(z) > 1.96)
    assert 0.015 <= beyond <= 0.085, f"{beyond:.3f} of {z.size} z-scores beyond 1.96"


def test_sample_count_is_chosen_for_the_stated_power(reg):
    d = _expected_gradient(reg, expected_grad, "power", effect=0.02, max_samples=2**17, **FEW)
    r = dc.check(d, seed=4)
    assert r.outcome == "holds", r.message
    _, hi = r.details["samples"]
    assert hi > 1024  # a 2% effect needs more than the pilot
    # where the cap did not bind, the resolution reached is the stated effect (pilot noise allowed)
    uncapped = r.per_trial["samples"] < 2**17
    assert np.all(r.per_trial["resolution"][uncapped] <= 0.02 * 1.25)


def test_expectation_of_a_value_both_ways(reg):
    def outer(w, x, y, sigma, delta):
        return jnp.outer(delta, delta)

    def second_moments(w, x, y, sigma):
        return jnp.ones((w.size, w.size)) + sigma**2 * jnp.eye(w.size)

    def without_variance(w, x, y, sigma):
        return jnp.ones((w.size, w.size))

    ok = dc.expectation(of=outer, noise=noise, inputs=SPEC, registry=reg, name="m2", **FEW)(second_moments)
    bad = dc.expectation(of=outer, noise=noise, inputs=SPEC, registry=reg, name="m2_bad", **FEW)(without_variance)
    assert dc.check(ok, seed=5).outcome == "holds"
    r = dc.check(bad, seed=5)
    assert r.outcome == "fails" and r.worst.derived.shape == (3, 3)


def test_equivalent_objective_both_ways(reg):
    def nonregularised(w, x, y, sigma):
        return 0.5 * (y - jnp.sum(w * x)) ** 2

    def shifted_ridge(w, x, y, sigma):  # the right objective plus a constant in w
        return expected_cost(w, x, y, sigma) + 7.0

    ridge = dc.equivalent_objective(of=cost, noise=noise, wrt="w", inputs=SPEC, registry=reg, name="r", **FEW)
    plain = dc.equivalent_objective(of=cost, noise=noise, wrt="w", inputs=SPEC, registry=reg, name="p", **FEW)
    exact = dc.equivalent_objective(of=cost, noise=noise, wrt="w", inputs=SPEC, registry=reg, name="c", **FEW)
    loose = dc.equivalent_objective(
        of=cost, noise=noise, wrt="w", inputs=SPEC, up_to_constant=True, registry=reg, name="u", **FEW
    )
    assert dc.check(ridge(expected_cost), seed=6).outcome == "holds"
    assert dc.check(plain(nonregularised), seed=6).outcome == "fails"
    assert dc.check(exact(shifted_ridge), seed=6).outcome == "fails"  # the values differ by 7
    assert dc.check(loose(shifted_ridge), seed=6).outcome == "holds"  # the gradients agree


def test_result_json_carries_the_estimate(reg):
    r = dc.check(_expected_gradient(reg, expected_grad, "json", **FEW), seed=7)
    doc = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert {"estimate", "standard_error", "z"} <= set(doc["details"]["worst"])


@pytest.mark.parametrize(
    ("fn", "options", "words"),
    [
        (lambda w, x, y, sigma: jnp.sum(w), {}, "shape"),
        (lambda w, x, y, sigma: w.astype(jnp.int32), {}, "dtype"),
        (expected_grad, {"exact": lambda w, x, y, sigma: w}, "exact="),
    ],
)
def test_bad_declarations_are_one_line_errors(reg, fn, options, words):
    d = _expected_gradient(reg, fn, "broken", **options, **FEW)
    r = dc.check(d)
    assert r.outcome == "error" and words in r.message and "\n" not in r.message


def test_a_non_scalar_loss_and_bad_options_are_errors(reg):
    vector = dc.expected_gradient(
        of=lambda w, x, y, sigma, delta: delta * w, noise=noise, wrt="w", inputs=SPEC, registry=reg, name="v"
    )(expected_grad)
    assert "scalar loss" in dc.check(vector).message
    bad = _expected_gradient(reg, expected_grad, "opts", power=1.5)
    r = dc.check(bad)
    assert r.outcome == "error" and "power" in r.message


def test_the_monte_carlo_test_uses_the_derivations_own_tolerance(reg):
    """``rtol=`` enters the z-test's allowance, as it does the closed form's (it used the float64 default).

    With noise that is always 0 the estimate is exact (standard error 0), so only the tolerance
    separates a derived value off by ``1e-5`` (relative) from a wrong one.
    """

    def no_noise(key, w, x, y, sigma):
        return jnp.zeros_like(w)

    def slightly_off(w, x, y, sigma):
        return (1 + 1e-5) * cost(w, x, y, sigma, 0.0)

    strict = dc.expectation(of=cost, noise=no_noise, inputs=SPEC, registry=reg, name="strict", **FEW)(slightly_off)
    loose = dc.expectation(of=cost, noise=no_noise, inputs=SPEC, registry=reg, name="loose", rtol=1e-3, **FEW)(
        slightly_off
    )
    assert dc.check(strict).outcome == "fails"
    r = dc.check(loose)
    assert r.outcome == "holds", r.message
    assert r.rtol == 1e-3


def test_noise_that_ignores_its_key_is_an_error_not_a_failure(reg):
    """NumPy's random numbers in ``noise=`` run once, at trace time: every sample saw one constant, the
    estimate had no spread and the right ``E[x + z] = x`` failed ("± 0")."""
    spec = dc.inputs(x=dc.normal("d"), regimes=("typical",))
    keyless = dc.expectation(
        of=lambda x, z: x + z,
        noise=lambda key, x: jnp.asarray(np.random.randn(*x.shape)),
        inputs=spec,
        registry=reg,
        name="keyless",
    )(lambda x: x)
    keyed = dc.expectation(
        of=lambda x, z: x + z,
        noise=lambda key, x: jax.random.normal(key, x.shape),
        inputs=spec,
        registry=reg,
        name="keyed",
    )(lambda x: x)
    r = dc.check(keyless, trials=10)
    assert r.outcome == "error" and "gives the same draw for two different keys" in r.message, r.message
    assert dc.check(keyed, trials=10).outcome == "holds"
