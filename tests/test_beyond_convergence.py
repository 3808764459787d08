"""Convergence-order claims, both ways: true orders and constants hold on many seeds; a wrong order,
a wrong constant, a root the iteration does not reach and a divergent start are caught."""

import re

import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck as dc

# Newton for the square root: x ← (x + a/x)/2, root √a, order 2 with C = 1/(2√a)
SQRT = dc.inputs(x=dc.uniform(low=0.6, high=3.0), a=dc.uniform(low=1.0, high=4.0), regimes=("typical",))


def newton_sqrt(x, a):
    return (x + a / x) / 2


def sqrt_root(x, a):
    return jnp.sqrt(a)


def sqrt_constant(x_star, a):
    return 1 / (2 * x_star)


def cos_fixed_point(x, a):
    """``x ← cos x``: linear convergence to the Dottie number, ``C = sin x*``."""
    return jnp.cos(x)


@pytest.mark.parametrize("seed", range(8))
def test_newton_is_quadratic_with_its_constant_on_many_seeds(reg, seed):
    d = dc.convergence_order(2.0, constant=sqrt_constant, root=sqrt_root, inputs=SQRT, registry=reg, name="n")(
        newton_sqrt
    )
    r = dc.check(d, trials=60, seed=seed)
    assert r.outcome == "holds", r.message
    order = r.details["order"]
    assert abs(order["median"] - 2) < 0.05 and order["min"] > 1.8
    assert 0.97 < r.details["constant"]["ratio_min"] <= r.details["constant"]["ratio_max"] < 1.03


@pytest.mark.parametrize("wrong", [1.0, 3.0, 0.5])
def test_a_wrong_order_is_caught(reg, wrong):
    d = dc.convergence_order(wrong, root=sqrt_root, inputs=SQRT, registry=reg, name=f"p{wrong}")(newton_sqrt)
    r = dc.check(d, trials=40)
    assert r.outcome == "fails", r.message
    assert re.search(r"converges with order (1\.9[5-9]|2\.0)\d* .*, not " + f"{wrong:g} ", r.message), r.message
    assert abs(r.details["order"]["median"] - 2) < 0.05


def test_a_wrong_constant_is_caught(reg):
    d = dc.convergence_order(2.0, constant=lambda x_star, a: 1 / x_star, root=sqrt_root, inputs=SQRT, registry=reg)(
        newton_sqrt
    )
    r = dc.check(d, trials=40)
    assert r.outcome == "fails" and "constant" in r.message


def test_linear_convergence_and_the_root_from_the_last_iterate(reg):
    spec = dc.inputs(x=dc.uniform(low=0.0, high=1.5), a=dc.constant(0.0), regimes=("typical",))
    linear = dc.convergence_order(
        1.0, constant=lambda x_star, a: jnp.sin(x_star), inputs=spec, registry=reg, name="lin", steps=200
    )(cos_fixed_point)
    r = dc.check(linear, trials=40)
    assert r.outcome == "holds", r.message
    assert abs(r.details["constant"]["median"] - np.sin(0.7390851332151607)) < 1e-3
    quadratic = dc.convergence_order(2.0, inputs=spec, registry=reg, name="quad", steps=200)(cos_fixed_point)
    assert dc.check(quadratic, trials=40).outcome == "fails"


def test_vector_newton_is_quadratic(reg):
    """Newton for ∇g = 0 with g(x) = Σ log cosh(x_i − b_i) + ½‖x‖²/4 in R^d: order 2 in the 2-norm."""

    def step(x, b):
        grad = jnp.tanh(x - b) + x / 4
        hess = 1 - jnp.tanh(x - b) ** 2 + 1 / 4
        return x - grad / hess

    spec = dc.inputs(x=dc.normal("d", scale=0.3), b=dc.normal("d", scale=0.3), regimes=("typical",))
    r = dc.check(dc.convergence_order(2.0, inputs=spec, registry=reg, name="vec")(step), trials=60)
    assert r.outcome == "holds", r.message


def test_divergence_and_a_wrong_limit_are_caught_with_the_start(reg):
    far = dc.inputs(x=dc.normal(scale=10.0), a=dc.uniform(low=1.0, high=4.0), regimes=("typical",))

    def newton_arctan(x, a):  # Newton on arctan(x − a): diverges from |x − a| ≳ 1.39
        return x - jnp.arctan(x - a) * (1 + (x - a) ** 2)

    r = dc.check(dc.convergence_order(None, root=lambda x, a: a, inputs=far, registry=reg, name="far")(newton_arctan))
    assert r.outcome == "fails" and "diverges" in r.message and "x0 =" in r.message
    assert abs(float(r.worst.inputs["x"]) - float(r.worst.inputs["a"])) > 1.3

    wrong_root = dc.convergence_order(2.0, root=lambda x, a: a, inputs=SQRT, registry=reg, name="root")(newton_sqrt)
    r = dc.check(wrong_root, trials=30)
    assert r.outcome == "fails" and "another point" in r.message


def test_an_order_float64_cannot_measure_is_an_error_not_a_verdict(reg):
    def halley_sqrt(x, a):  # cubic: from starts this close, too few errors stay above the float64 floor
        return x * (x**2 + 3 * a) / (3 * x**2 + a)

    close = dc.inputs(x=dc.uniform(low=1.0, high=1.01), a=dc.constant(1.0), regimes=("typical",))
    r = dc.check(dc.convergence_order(3.0, inputs=close, registry=reg, name="halley")(halley_sqrt), trials=20)
    assert r.outcome == "error" and "farther from the root" in r.message


@pytest.mark.parametrize(
    ("step", "words"),
    [
        (lambda x, a: jnp.stack([x, x]), "shape"),
        (lambda x, a: x if x > 1 else a, "jax.jit"),
    ],
)
def test_broken_steps_are_one_line_errors(reg, step, words):
    r = dc.check(dc.convergence_order(2.0, inputs=SQRT, registry=reg, name="broken")(step), trials=10)
    assert r.outcome == "error" and words in r.message and "\n" not in r.message


def test_bad_claims_are_reported(reg):
    r = dc.check(dc.convergence_order(-1.0, inputs=SQRT, registry=reg, name="neg")(newton_sqrt))
    assert r.outcome == "error" and "order" in r.message
    r = dc.check(dc.convergence_order(None, constant=0.5, inputs=SQRT, registry=reg, name="c")(newton_sqrt))
    assert r.outcome == "error" and "constant" in r.message


def test_the_counterexample_of_a_failure_is_a_failing_start(reg):
    """The secant method stalls only where its two points coincide (the constant regime); a start that
    converges, however far its measured order wanders from 1.618, must not be the one shown."""

    def secant(x, a):
        xk, xp = x[0], x[1]
        fk, fp = xk**2 - a, xp**2 - a
        den = fk - fp
        nxt = jnp.where(den == 0, xk, xk - fk * (xk - xp) / jnp.where(den == 0, 1.0, den))
        return jnp.stack([nxt, xk])

    spec = dc.inputs(x=dc.uniform(2, low=1.0, high=3.0), a=dc.uniform(low=0.5, high=4.0))
    d = dc.convergence_order(1.618, root=lambda x, a: jnp.sqrt(a) * jnp.ones_like(x), inputs=spec, registry=reg)(secant)
    r = dc.check(d, trials=300)
    assert r.outcome == "fails" and r.failing_regimes == ("constant",), r.message
    assert r.worst.regime == "constant" and "[constant]" in r.message, r.message


def test_landing_exactly_on_the_root_then_0_over_0_is_convergence(reg):
    """Newton at a double root converges linearly with C = 1/2, lands on the root exactly, and the next
    step is 0/0: the errors had reached the floor before the NaN, so it converged (it read "diverges")."""

    def newton(x):
        f, df = (x - 1) ** 2 * (x + 2), 2 * (x - 1) * (x + 2) + (x - 1) ** 2
        return x - f / df

    spec = dc.inputs(x=dc.uniform(low=1.5, high=4.0), regimes=("typical",))
    d = dc.convergence_order(1.0, constant=0.5, root=lambda x: jnp.asarray(1.0), inputs=spec, registry=reg)(newton)
    r = dc.check(d, trials=60)
    assert r.outcome == "holds", r.message
    diverging = dc.convergence_order(1.0, root=lambda x: jnp.asarray(1.0), inputs=spec, registry=reg, name="div")(
        lambda x: jnp.where(x > 0, 2 * x + jnp.nan * (x > 1e300), x)
    )
    assert dc.check(diverging, trials=60).outcome == "fails"
