"""The tolerance inequality written once (bound/fits) and the equality judgement."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from derivcheck import _jaxpr
from derivcheck._compare import (
    Tolerance,
    bound,
    cancelled_terms,
    exceeds,
    fits,
    judge_equality,
    rounding_spread,
    twin,
    twins,
)
from derivcheck._spectrum import classify

TOL = Tolerance(rtol=1e-7, atol=1e-12)


@pytest.fixture
def x64():
    with jax.enable_x64(True):  # as every check runs
        yield


def test_bound_is_the_hand_written_inequality_bit_for_bit():
    rng = np.random.default_rng(0)
    scale = rng.lognormal(0, 8, 1000)
    rounding = rng.lognormal(-30, 5, 1000)
    assert np.array_equal(bound(TOL, scale), TOL.atol + TOL.rtol * scale)
    assert np.array_equal(bound(TOL, scale, rounding), TOL.atol + TOL.rtol * scale + rounding)
    for s, r in zip(scale[:20], rounding[:20], strict=True):  # floats, as the diagnosis passes them
        assert bound(TOL, float(s), float(r)) == TOL.atol + TOL.rtol * float(s) + float(r)


def test_fits_and_exceeds_are_the_two_sides_of_the_bound():
    err = np.array([0.0, 1e-12, 2e-7, 1.0, np.nan])
    scale = np.ones(5)
    assert fits(err, TOL, scale).tolist() == [True, True, False, False, False]
    assert exceeds(err, scale, TOL).tolist() == [False, False, True, True, False]  # a NaN error fails neither way
    assert exceeds(np.array([2e-7]), np.ones(1), TOL, rounding=1.0).tolist() == [False]


def test_bound_traces_without_an_extra_addition():
    jaxpr = jax.make_jaxpr(lambda s: bound(TOL, s))(1.0)
    assert [e.primitive.name for e in jaxpr.eqns] == ["mul", "add"]
    assert bool(jax.jit(lambda e, s: fits(e, TOL, s))(1e-8, 1.0))


def test_judge_equality_uses_the_rounding_allowance():
    stats = {"abs_err": np.array([1e-6, 1e-6]), "scale": np.ones(2), "rounding": np.array([0.0, 1e-5])}
    failed, _, rel = judge_equality(stats, TOL)
    assert failed.tolist() == [True, False]
    assert rel[0] == pytest.approx(1e-6)


def test_the_interpreter_enters_calls_only_when_asked(x64):
    @jax.jit
    def inner(x):
        return jnp.maximum(x, 0.0)

    def f(x):
        return inner(x) * 2

    closed = jax.make_jaxpr(f)(jnp.ones(3))
    seen: list[tuple[str, str]] = []
    outs = _jaxpr.run(
        closed.jaxpr,
        closed.consts,
        [jnp.array([-1.0, 2.0, 3.0])],
        on_equation=lambda e, i, s: seen.append((e.primitive.name, s)),
    )
    assert np.allclose(outs[0], [0.0, 4.0, 6.0])
    assert ("max", "") not in seen and seen[-1] == ("mul", "")
    seen.clear()
    _jaxpr.run(
        closed.jaxpr,
        closed.consts,
        [jnp.ones(3)],
        on_equation=lambda e, i, s: seen.append((e.primitive.name, s)),
        enter=True,
    )
    assert ("max", "inner") in seen


def test_classify_names_the_strongest_definiteness():
    assert [classify(*c) for c in [(3, 0, 3), (0, 3, 3), (0, 0, 3), (2, 0, 3), (0, 2, 3), (1, 1, 3)]] == [
        "pd",
        "nd",
        "zero",
        "psd",
        "nsd",
        "indefinite",
    ]


def test_judge_equality_adds_the_entry_wise_verdict_made_at_the_same_tolerance():
    stats = {
        "abs_err": np.array([1e-9, 1e-9, 1e-9]),
        "scale": np.ones(3),
        "entry_excess": np.array([1e-9, -1e-12, 1e-9]),
        "entry_rel": np.array([0.5, 0.0, 0.5]),
        "entry_rtol": np.array([TOL.rtol, TOL.rtol, TOL.rtol / 2]),  # the last judged at another tolerance
        "entry_atol": np.full(3, TOL.atol),
    }
    failed, _, rel = judge_equality(stats, TOL)
    assert failed.tolist() == [True, False, False]
    assert rel[0] == 0.5 and rel[1] < TOL.rtol  # a failing trial shows its worst entry's relative error


def test_data_movement_and_the_parts_of_a_complex_number_round_nothing(x64):
    """Splits, real/imag parts, conjugates and IEEE fmod are exact: the Monte Carlo pass must not perturb them
    (a perturbation would invent rounding a formula does not have); an operation that rounds still shows."""
    x = jnp.linspace(0.3, 7.0, 12)
    z = x + 1j * x[::-1]
    exact = {
        "split": lambda v: jnp.split(v, 3)[1],
        "complex parts": lambda v: jnp.real(jax.lax.complex(v, -v)),
        "fmod": lambda v: jnp.fmod(v, 1.5),
    }
    for name, fn in exact.items():
        assert float(rounding_spread(fn, x)) == 0.0, name
    assert float(rounding_spread(lambda w: jnp.imag(jnp.conj(w)), z)) == 0.0
    assert float(rounding_spread(lambda v: jnp.split(v, 3)[1] * 3.0, x)) > 0.0


def test_twins_of_several_points_are_each_points_twin(x64):
    """One sign pattern per leaf for several points, as :func:`twin` makes it for each point alone."""
    rng = np.random.default_rng(0)
    points = [({"a": rng.normal(size=(3, 2)), "k": np.arange(4)}, rng.normal(size=5)) for _ in range(3)]
    for shared, alone in zip(twins(*points), [twin(p) for p in points], strict=True):
        for s, a in zip(jax.tree.leaves(shared), jax.tree.leaves(alone), strict=True):
            assert np.array_equal(np.asarray(s), np.asarray(a))
    moved = jax.tree.leaves(twin(points[0]))
    assert not np.array_equal(moved[0], points[0][0]["a"]) and np.array_equal(moved[1], points[0][0]["k"])


def test_a_twin_outside_the_domain_excuses_nothing():
    """x near 1 in sqrt(1 − x²): the twin x(1 + 2⁻²⁰u) leaves the domain and the reference there is
    NaN. That NaN made the cancelled-terms scale T NaN, every comparison with it False, and a sign
    error held; now T counts only finite moves and the sign error fails on every trial."""
    import derivcheck as dc

    def near_one(key):
        gap = 10.0 ** jax.random.uniform(key, (4,), minval=-12.0, maxval=-8.0, dtype=jnp.float64)
        return (1.0 - gap,)

    with dc.scoped_registry():

        @dc.gradient(of=lambda x: jnp.sum(jnp.sqrt(1.0 - x**2)), inputs=near_one, name="edge")
        def wrong_sign(x):
            return x / jnp.sqrt(1.0 - x**2)

        r = dc.check(wrong_sign, trials=40)
    assert r.outcome == "fails" and sum(c.failures for c in r.cells) == r.trials, r.message
    with jax.enable_x64(True):
        assert cancelled_terms(jnp.array([1.0, 2.0]), jnp.array([1.0, jnp.nan])) == 0.0
