"""A kink of ``of`` excuses only a trial whose error it explains: right on both sides, within the jump.

The LeakyReLU Jacobian ``α·I`` on inputs whose first entry is exactly 0, written wrong as ``−α·I``,
``2α·I`` or ``α·ones``, was excused before as "of= is not differentiable at the sampled point", although
it is wrong in every entry away from the kink (the jump across the kink was compared with the error in
sup-norm over the whole output). See :mod:`derivcheck._checks.robust`.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck as dc
from derivcheck._checks.robust import at_kink

ALPHA = 0.01
SEEDS = (0, 1, 2)


def leaky_relu(z):
    return jnp.where(z > 0, z, ALPHA * z)


def _first_zero(key):
    """Five entries on ``[−4, 0)``, the first exactly 0: every trial sits on the kink."""
    z = -jax.random.uniform(key, (5,), minval=1e-3, maxval=4.0)
    return (z.at[0].set(0.0),)


def _first_zero_sometimes(key):
    """As :func:`_first_zero` in about half of the trials, all entries away from 0 in the others."""
    k1, k2 = jax.random.split(key)
    z = -jax.random.uniform(k1, (5,), minval=1e-3, maxval=4.0)
    return (z.at[0].set(jnp.where(jax.random.uniform(k2) < 0.5, 0.0, z[0])),)


WRONG = {
    "minus": lambda z: -ALPHA * jnp.eye(5),
    "twice": lambda z: 2 * ALPHA * jnp.eye(5),
    "ones": lambda z: ALPHA * jnp.ones((5, 5)),
    "outside_the_jump": lambda z: jnp.diag(jnp.where(z >= 0, 5.0, ALPHA)),  # 5 is no slope of LeakyReLU
}


@pytest.mark.parametrize("name", sorted(WRONG))
@pytest.mark.parametrize("seed", SEEDS)
def test_wrong_leaky_relu_jacobians_fail_although_every_trial_sits_on_the_kink(reg, name, seed):
    d = dc.jacobian(of=leaky_relu, wrt="z", inputs=_first_zero, registry=reg, name=name)(WRONG[name])
    r = dc.check(d, trials=30, seed=seed)
    assert r.outcome == "fails", r.message
    assert r.trials == 30 and not r.notes


@pytest.mark.parametrize("seed", SEEDS)
def test_right_leaky_relu_jacobians_hold_or_are_excused_at_the_kink(reg, seed):
    right = dc.jacobian(of=leaky_relu, wrt="z", inputs=_first_zero, registry=reg, name="right")(
        lambda z: ALPHA * jnp.eye(5)
    )
    assert dc.check(right, trials=30, seed=seed).outcome == "holds"  # JAX's own convention at 0

    def other_slope(z):  # the slope from the right at the kink: as valid a subgradient
        return jnp.diag(jnp.where(z >= 0, 1.0, ALPHA))

    some = dc.jacobian(of=leaky_relu, wrt="z", inputs=_first_zero_sometimes, registry=reg, name="some")(other_slope)
    r = dc.check(some, trials=40, seed=seed)
    assert r.outcome == "holds" and 0 < r.trials < 40
    assert r.notes == (
        f"{40 - r.trials} of 40 degenerate trials skipped: {40 - r.trials} with a kink of of= in regime custom",
    )

    every = dc.jacobian(of=leaky_relu, wrt="z", inputs=_first_zero, registry=reg, name="every")(other_slope)
    r = dc.check(every, trials=30, seed=seed)
    assert r.outcome == "error"
    assert r.message == (
        "no usable trial: all 30 are degenerate (30 with a kink of of= in regime custom); "
        "draw inputs away from such points"
    )


def _zeros_sometimes(key):
    """Four normal entries, two of them exactly 0 in about half of the trials."""
    k1, k2 = jax.random.split(key)
    x = jax.random.normal(k1, (4,))
    return (jnp.where((jax.random.uniform(k2) < 0.5) & (jnp.arange(4) < 2), 0.0, x),)


@pytest.mark.parametrize("seed", SEEDS)
def test_abs_and_relu_gradients_at_exact_zeros_are_reported_as_kinks(reg, seed):
    """JAX takes ``|x|' = 1`` and ``relu'(0) = 0`` at 0; ``sign(0) = 0`` and ``1`` are subgradients too."""
    l1 = dc.gradient(of=lambda x: jnp.sum(jnp.abs(x)), inputs=_zeros_sometimes, registry=reg, name="abs")(jnp.sign)
    relu = dc.gradient(of=lambda x: jnp.sum(jax.nn.relu(x)), inputs=_zeros_sometimes, registry=reg, name="relu")(
        lambda x: (x >= 0).astype(x.dtype)
    )
    for d in (l1, relu):
        r = dc.check(d, trials=40, seed=seed)
        assert r.outcome == "holds" and r.trials < 40, r.message
        assert "with a kink of of= in regime custom" in r.notes[0]
    wrong = dc.gradient(of=lambda x: jnp.sum(jnp.abs(x)), inputs=_zeros_sometimes, registry=reg, name="abs_wrong")(
        lambda x: jnp.where(x > 0, 1.0, 1.0)  # the sign dropped: right only where x > 0
    )
    assert dc.check(wrong, trials=40, seed=seed).outcome == "fails"


def test_a_tie_of_many_entries_is_a_kink_when_the_derivation_is_right_beside_it(reg):
    """``max`` of a constant vector: JAX splits the gradient evenly, ``one_hot(argmax)`` picks one of the
    ``n`` tied pieces; the probe crosses only two of them, but the derivation is right on both sides."""
    spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 7}], regimes=("typical", "constant"))
    d = dc.gradient(of=jnp.max, inputs=spec, registry=reg, name="max")(lambda x: jax.nn.one_hot(jnp.argmax(x), 7))
    r = dc.check(d, trials=40)
    assert r.outcome == "holds" and r.notes == (
        "20 of 40 degenerate trials skipped: 20 with a kink of of= in regime constant",
    )


def test_at_kink_needs_a_jump_the_derivation_right_beside_and_the_error_within_the_jump():
    base = {"abs_err": np.full(4, 0.5), "jump_narrow": np.ones(4), "jump_wide": np.ones(4), "right_beside": np.ones(4)}
    assert at_kink(base).all()
    assert not at_kink({**base, "right_beside": np.zeros(4)}).any()  # wrong away from the kink
    assert not at_kink({**base, "abs_err": np.full(4, 1.5)}).any()  # more than the jump
    assert not at_kink({**base, "jump_narrow": np.full(4, 1 / 64)}).any()  # continuous: shrinks with the step
    assert not at_kink({k: v for k, v in base.items() if k != "right_beside"}).any()
