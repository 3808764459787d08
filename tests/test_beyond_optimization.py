"""Optimisation claims, both ways: convexity, existence of a minimum and descent hold where true on many
seeds; false convexity, false strictness, false existence and an ascent update are caught."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck as dc

POINTS = dc.inputs(x=dc.normal("n"), A=dc.normal("n", "n"), sizes=[{"n": 2}, {"n": 5}])


def log_sum_exp_plus_quadratic(x, A):
    """Convex: ``log Σ exp(Ax) + ½‖x‖²``."""
    return jax.nn.logsumexp(A @ x) + 0.5 * jnp.sum(x**2)


# declared once, so that every seed reuses the compiled checks
REG = dc.Registry()
CONVEX = dc.convex(wrt="x", inputs=POINTS, registry=REG, name="cvx")(log_sum_exp_plus_quadratic)
CONCAVE = dc.concave(wrt="x", inputs=POINTS, registry=REG, name="ccv")(lambda x, A: -log_sum_exp_plus_quadratic(x, A))
STRICT = dc.convex(wrt="x", strict=True, inputs=POINTS, registry=REG, name="strict")(log_sum_exp_plus_quadratic)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("d", [CONVEX, CONCAVE, STRICT], ids=["convex", "concave", "strict"])
def test_convex_and_concave_functions_hold_on_many_seeds(d, seed):
    r = dc.check(d, trials=60, seed=seed)
    assert r.outcome == "holds", f"{d.name}: {r.message}"


@pytest.mark.parametrize(
    ("fn", "words"),
    [
        (lambda x, A: jnp.sum(jnp.sin(3 * x)), "eigenvalue"),
        (lambda x, A: jnp.sum(x**4) - jnp.sum(x**2), "< 0"),
        (lambda x, A: -log_sum_exp_plus_quadratic(x, A), "eigenvalue"),
    ],
)
def test_false_convexity_is_caught(reg, fn, words):
    r = dc.check(dc.convex(wrt="x", inputs=POINTS, registry=reg, name="f")(fn), trials=60)
    assert r.outcome == "fails", r.message
    assert words in r.message and r.spectrum is not None and r.spectrum.lambda_min < 0
    assert {"x", "A", "x_chord_end", "chord_mix"} == set(r.worst.inputs)


def test_the_chord_test_catches_what_sampled_hessians_miss(reg):
    """``|x|``-like kinks: the Hessian is 0 wherever it exists, the chord test sees the concavity."""
    r = dc.check(dc.convex(wrt="x", inputs=POINTS, registry=reg, name="kink")(lambda x, A: -jnp.sum(jnp.abs(x))))
    assert r.outcome == "fails" and "chord test" in r.message


def test_false_strictness_is_caught_with_its_flat_direction(reg):
    def flat(x, A):  # constant along (1, …, 1)
        return jax.nn.logsumexp(x) + 0.0 * jnp.sum(A)

    assert dc.check(dc.convex(wrt="x", inputs=POINTS, registry=reg, name="c")(flat), trials=40).outcome == "holds"
    r = dc.check(dc.convex(wrt="x", strict=True, inputs=POINTS, registry=reg, name="s")(flat), trials=40)
    assert r.outcome == "fails" and "affine along its null direction" in r.message
    null = np.abs(r.spectrum.null_direction)
    # eigenvector accuracy ~ ε‖H‖ / gap: loose where the worst point is saturated (H ≈ 0)
    np.testing.assert_allclose(null, np.full(null.size, 1 / np.sqrt(null.size)), atol=1e-4)


def test_strict_convexity_with_a_singular_hessian_holds():
    """``Σ x⁴`` is strictly convex although its Hessian vanishes at 0: the flat-direction chord is curved."""
    reg = dc.Registry()
    spec = dc.inputs(x=dc.normal("n"), A=dc.normal("n", "n"), sizes=[{"n": 3}], regimes=("tiny", "typical"))
    r = dc.check(dc.convex(wrt="x", strict=True, inputs=spec, registry=reg, name="q")(lambda x, A: jnp.sum(x**4)))
    assert r.outcome == "holds", r.message


def _neg_logdet(S):
    return -jnp.linalg.slogdet(S)[1]


@pytest.mark.parametrize("seed", range(3))
def test_convexity_over_symmetric_inputs_is_judged_along_symmetric_directions(reg, seed):
    """``−log det`` is convex on the positive-definite matrices (a textbook result), but its Hessian over all
    ``n²`` entries is negative along antisymmetric directions, where ``dc.spd`` never draws: the claim failed.
    The planted wrong ones still fail: concavity, and a concave term added."""
    spd = dc.inputs(S=dc.spd("n"))
    assert dc.check(dc.convex(inputs=spd, registry=reg, name="c")(_neg_logdet), trials=40, seed=seed).ok
    strict = dc.convex(inputs=spd, strict=True, registry=reg, name="s")(_neg_logdet)
    assert dc.check(strict, trials=40, seed=seed).outcome == "holds"
    assert dc.check(dc.concave(inputs=spd, registry=reg, name="v")(_neg_logdet), trials=40, seed=seed).outcome == (
        "fails"
    )
    bent = dc.convex(inputs=spd, registry=reg, name="b")(lambda S: _neg_logdet(S) - 3.0 * jnp.sum(S**2))
    assert dc.check(bent, trials=40, seed=seed).outcome == "fails"
    # symmetric inputs: the Hessian of sum(A @ A) is indefinite on all matrices, PSD on the symmetric ones
    sym = dc.inputs(A=dc.symmetric("n"))
    assert dc.check(dc.convex(inputs=sym, registry=reg, name="q")(lambda A: jnp.sum(A @ A)), trials=40).ok


def test_a_flat_symmetric_direction_is_shown_as_a_symmetric_matrix(reg):
    """A strict claim that fails along a null direction names it as the argument is written (a matrix)."""
    sym = dc.inputs(A=dc.symmetric("n"), sizes=[{"n": 3}])
    r = dc.check(dc.convex(inputs=sym, strict=True, registry=reg, name="t")(lambda A: jnp.trace(A) ** 2), trials=20)
    assert r.outcome == "fails" and "affine along its null direction" in r.message
    null = np.asarray(r.spectrum.null_direction).reshape(3, 3)
    np.testing.assert_allclose(null, null.T, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(null), 1.0, rtol=1e-9)


# ------------------------------------------------------------------------ minimum


def logistic(theta, X, y):
    z = X @ theta
    return jnp.sum(jnp.logaddexp(0.0, z) - y * z)


DATA = dc.inputs(
    theta=dc.normal("d"), X=dc.normal("m", "d"), y=dc.bernoulli("m"), sizes=[{"m": 1, "d": 2}, {"m": 6, "d": 2}]
)


RIDGE = dc.has_minimum(wrt="theta", inputs=DATA, registry=REG, name="ridge")(
    lambda theta, X, y: logistic(theta, X, y) + 0.5 * jnp.sum(theta**2)
)


@pytest.mark.parametrize("seed", range(4))
def test_a_minimum_that_exists_is_found_on_many_seeds(seed):
    r = dc.check(RIDGE, trials=40, seed=seed)
    assert r.outcome == "holds", r.message


def test_false_existence_on_separable_data_is_caught(reg):
    r = dc.check(dc.has_minimum(wrt="theta", inputs=DATA, registry=reg, name="sep")(logistic), trials=40)
    assert r.outcome == "fails" and "not attained" in r.message
    # the counterexample: data the final iterate separates, with the loss still decreasing
    X, y, theta = (np.asarray(r.worst.inputs[k]) for k in ("X", "y", "theta"))
    final = np.asarray(r.worst.derived)
    assert np.all((2 * y - 1) * (X @ final) > 0)
    assert logistic(final, X, y) < logistic(theta, X, y)


def test_an_objective_unbounded_below_has_no_minimum(reg):
    r = dc.check(dc.has_minimum(wrt="x", inputs=POINTS, registry=reg, name="lin")(lambda x, A: jnp.sum(A @ x)))
    assert r.outcome == "fails"


@pytest.mark.parametrize(
    "fn",
    [
        lambda w: jnp.sum(w**2 + 0.01 * w**3),  # a local minimum at 0 whose basin holds every N(0, 1) start
        lambda w: jnp.sum(w**2) - 1e-4 * jnp.sum(w**2) ** 2,  # a quartic that turns down beyond ‖w‖ = 70
    ],
)
def test_a_local_minimum_does_not_hide_that_f_goes_lower_far_out(reg, fn):
    """Damped Newton from each start settles at the local minimum; the far probes find lower values
    and damped Newton from the lowest one runs off (it held before the probes)."""
    r = dc.check(dc.has_minimum(wrt="w", inputs=dc.inputs(w=dc.normal("n")), registry=reg, name="local")(fn), trials=40)
    assert r.outcome == "fails", r.message
    assert "f is lower far from where damped Newton first stopped" in r.message


@pytest.mark.parametrize(
    "fn, lower",
    [
        (lambda w: jnp.sum((w**2 - 1) ** 2), False),  # every far probe is higher: the first descent decides
        (lambda w: jnp.sum(w * jnp.sin(w)) + 1e-3 * jnp.sum(w**2), True),  # deeper wells far out: both descents
        (lambda w: jnp.sum(w**2 + 0.01 * w**3), True),  # unbounded far out: fails after the second descent
    ],
)
def test_the_second_descent_runs_only_where_a_far_probe_is_lower_and_changes_nothing_else(reg, fn, lower):
    """check_has_minimum first runs without the second descent; its result must be exactly that of
    the full trial (both descents) on the same draws, whichever way the probes come out."""
    from derivcheck._checks._engine import CheckConfig, run_batched
    from derivcheck._checks.optimization import Minimum

    d = dc.has_minimum(wrt="w", inputs=dc.inputs(w=dc.normal("n")), registry=reg, name="staged")(fn)
    staged = dc.check(d, trials=40)
    with jax.enable_x64(True):  # as dc.check runs it
        full = run_batched(d, CheckConfig(trials=40, seed=0), Minimum(steps=d.claim.steps))
    assert bool(full.per_trial["went_lower"].any()) == lower
    assert (staged.outcome, staged.message) == (full.outcome, full.message)
    for k in ("settled", "went_lower", "f_end", "norm_end", "grad_end"):
        np.testing.assert_array_equal(staged.per_trial[k], full.per_trial[k], err_msg=k)


@pytest.mark.parametrize(
    "fn",
    [
        lambda w: jnp.sum((w**2 - 1) ** 2),  # two wells of equal depth
        lambda w: jnp.sum(jnp.log(jnp.cosh(w - 1.0))) + 0.1 * jnp.sum(w**2),  # grows only linearly-plus far out
        lambda w: -jnp.sum(jnp.exp(-(w**2))) + 1e-3 * jnp.sum(w**2),  # a narrow well on a shallow bowl
    ],
)
def test_a_function_that_only_rises_far_out_still_has_its_minimum(reg, fn):
    r = dc.check(dc.has_minimum(wrt="w", inputs=dc.inputs(w=dc.normal("n")), registry=reg, name="ok")(fn), trials=40)
    assert r.outcome == "holds", r.message


def test_a_minimum_whose_curvature_vanishes_far_from_the_start_is_attained(reg):
    """Σ (w − 3)⁴: damped Newton reaches w = 3, farther than twice a small start, where the curvature
    vanishes; f rises beyond it, so it has not escaped to an infimum at infinity (it was called so)."""
    d = dc.has_minimum(wrt="w", inputs=dc.inputs(w=dc.normal("n")), registry=reg, name="quartic")(
        lambda w: jnp.sum((w - 3.0) ** 4)
    )
    r = dc.check(d, trials=40)
    assert r.outcome == "holds", r.message


def test_wells_that_deepen_without_end_have_no_minimum(reg):
    """Σ w sin w: the far probe finds a deeper well, and damped Newton settles in it only by the
    far point's own gradient; judged by the drawn start's, it has not settled (it held)."""
    d = dc.has_minimum(wrt="w", inputs=dc.inputs(w=dc.normal("n")), registry=reg, name="wsinw")(
        lambda w: jnp.sum(w * jnp.sin(w))
    )
    r = dc.check(d, trials=40)
    assert r.outcome == "fails" and "far" in r.message, r.message


# ------------------------------------------------------------------------ descent

STEP = dc.inputs(theta=dc.normal("d"), X=dc.normal("m", "d"), y=dc.bernoulli("m"), eta=dc.positive(low=0.1, high=1.0))


@dc.descent(of=logistic, wrt="theta", step="eta", inputs=STEP, registry=REG, name="gd")
def gradient_descent(theta, X, y, eta):
    return theta - eta * X.T @ (jax.nn.sigmoid(X @ theta) - y)


@pytest.mark.parametrize("seed", range(4))
def test_gradient_descent_decreases_the_loss(seed):
    r = dc.check(gradient_descent, trials=60, seed=seed)
    assert r.outcome == "holds", r.message
    assert r.details["max_cos"] < -0.999


@pytest.mark.parametrize(
    ("update", "words"),
    [
        (lambda theta, X, y, eta: theta + eta * X.T @ (jax.nn.sigmoid(X @ theta) - y), "does not decrease"),
        (lambda theta, X, y, eta: theta + 0.1 - eta * X.T @ (jax.nn.sigmoid(X @ theta) - y), "step size 0"),
    ],
)
def test_a_wrong_update_is_caught(reg, update, words):
    r = dc.check(dc.descent(of=logistic, wrt="theta", step="eta", inputs=STEP, registry=reg, name="u")(update))
    assert r.outcome == "fails" and words in r.message


@pytest.mark.parametrize(
    ("options", "words"),
    [({"step": "theta"}, "same argument"), ({"step": "rate"}, "names no argument"), ({"step": "X"}, "scalar")],
)
def test_bad_descent_declarations_are_errors(reg, options, words):
    d = dc.descent(of=logistic, wrt="theta", inputs=STEP, registry=reg, name="bad", **options)(
        lambda theta, X, y, eta: theta
    )
    r = dc.check(d, trials=10)
    assert r.outcome == "error" and words in r.message


def test_a_non_scalar_objective_is_an_error(reg):
    r = dc.check(dc.convex(wrt="x", inputs=POINTS, registry=reg, name="vec")(lambda x, A: A @ x))
    assert r.outcome == "error" and "scalar objective" in r.message


def test_a_descent_that_has_not_settled_yet_decides_nothing(reg):
    """Newton on ``Σ w⁴`` shrinks ``w`` by a third a step: in 3 steps it is still on its way to the minimum,
    neither settled nor running off. It failed ("no minimum found"); it is undecided, and more steps settle it."""
    spec = dc.inputs(w=dc.normal("n"), regimes=("typical",))
    outcomes = {}
    for steps in (3, 200):
        d = dc.has_minimum(wrt="w", inputs=spec, steps=steps, registry=reg, name=f"quartic{steps}")(
            lambda w: jnp.sum(w**4)
        )
        outcomes[steps] = r = dc.check(d, trials=8)
    assert outcomes[3].outcome == "inconclusive" and "steps=12 may settle it" in outcomes[3].message, r.message
    assert outcomes[200].outcome == "holds", outcomes[200].message


@pytest.mark.parametrize("steps", [0, -5, 2.5])
def test_a_step_count_that_is_not_a_count_is_a_declaration_error(reg, steps):
    """``steps=0`` leaked "IndexError: index is out of bounds" from inside the check."""
    d = dc.has_minimum(wrt="w", inputs=dc.inputs(w=dc.normal("n")), steps=steps, registry=reg, name="s")(
        lambda w: jnp.sum(w**2)
    )
    r = dc.check(d, trials=4)
    assert (
        r.outcome == "error"
        and r.message == f"has_minimum(steps=...): need an int >= 2 (damped Newton steps), got {steps}"
    )
