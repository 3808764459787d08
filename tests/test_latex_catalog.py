"""The notes' statements read from their LaTeX agree with the hand transcriptions: same verdict, same values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck as dc
import derivcheck.catalog  # registers the catalog

TWINS = {
    "logistic.gradient_vector_sum_form_latex": "logistic.gradient_vector_sum",
    "logistic.hessian_entry_sigmoid_form_latex": "logistic.hessian_entry",
}
STACKED = {"softmax_regression.hessian_latex", "softmax_regression.hessian_as_written_latex"}
LATEX = [d.name for d in dc.registry().select("*_latex")]


def _hand(name):
    return dc.registry()[TWINS.get(name, name.removesuffix("_latex"))]


def test_at_least_twenty_statements_are_read_from_their_latex():
    assert len(LATEX) >= 20
    assert all(not dc.registry()[n].problem for n in LATEX)


@pytest.mark.parametrize("name", LATEX)
def test_same_verdict_as_the_hand_transcription(name):
    latex, hand = dc.registry()[name], _hand(name)
    # tests/test_catalog.py checks every catalog derivation, the LaTeX ones among them, and holds each
    # outcome to its expectation: the same expectation here means the same verdict, without checking
    # either side a second time
    assert latex.derived.__module__.startswith("derivcheck.catalog")  # so tests/test_catalog.py checks it
    assert latex.expect == hand.expect


def _draw(d, seed):
    spec = d.inputs
    sizes = spec.sizes[-1]
    arrays = spec.sample(seed, d.name, 1, sizes, spec.regimes[0], spec.names)
    return [jnp.asarray(a[0]) for a in arrays]


@pytest.fixture
def x64():
    """float64 for the direct calls below, scoped (never a global flag left on for later tests)."""
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("name", LATEX)
def test_both_derived_functions_agree_on_random_inputs(name, x64):
    latex, hand = dc.registry()[name], _hand(name)
    args = _draw(latex, 7)
    if latex.kind == "vjp":
        args.append(jnp.asarray(np.random.default_rng(1).normal(size=args[0].shape)))
    got = latex.derived(*args)
    if name in STACKED:  # the hand transcription takes the stacked columns [w_1; …; w_C]
        w, X, Y = args
        D, C = w.shape
        want = hand.derived(w.T.reshape(-1), X, Y).reshape(C, D, C, D).transpose(1, 0, 3, 2)
    else:
        want = hand.derived(*args)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-9, atol=1e-12)


def test_every_reading_is_echoed():
    for name in LATEX:
        reading = dc.reading_of(dc.registry()[name])
        assert reading is not None and reading.expression in reading.source
        assert "read from LaTeX as" in dc.registry()[name].doc
