"""Degenerate draws are not the derivation's fault: skipped with a note, an error only when none is usable.

A trial is degenerate when the reference is not finite, when it sits on a kink of ``of`` (``tests/test_kinks.py``)
or when the derived formula has a removable singularity there: ``det(A)·A⁻ᵀ`` is NaN at a singular ``A``
(a constant matrix), where ``jax.grad(det)`` is the finite adjugate, and right everywhere around it. Before,
such a trial made the check an error ("derived returns NaN or inf").
"""

import jax.numpy as jnp
import pytest

import derivcheck as dc

SEEDS = (0, 1, 2)
SOME_SINGULAR = dc.inputs(A=dc.normal("n", "n"), sizes=[{"n": 2}, {"n": 3}], regimes=("typical", "constant"))
ALL_SINGULAR = dc.inputs(A=dc.normal("n", "n"), sizes=[{"n": 3}], regimes=("constant",))


def _det_grad(A):
    return jnp.linalg.det(A) * jnp.linalg.inv(A).T


def _det_grad_untransposed(A):
    return jnp.linalg.det(A) * jnp.linalg.inv(A)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_right_det_gradient_holds_with_a_note_where_some_matrices_are_singular(reg, seed):
    d = dc.gradient(of=jnp.linalg.det, inputs=SOME_SINGULAR, registry=reg, name="det")(_det_grad)
    r = dc.check(d, trials=40, seed=seed)
    k = 40 - r.trials  # a constant matrix's LU may leave a pivot of 1e-16 instead of 0: a few are usable
    assert r.outcome == "holds" and 15 <= k <= 20, r.message
    assert r.notes == (
        f"{k} of 40 degenerate trials skipped: {k} with a singular point of the derived formula in regime constant",
    )


@pytest.mark.parametrize("n", [4, 8])
def test_a_rank_one_matrix_of_any_size_is_a_removable_singularity_too(reg, n):
    """The probes beside a trial moved ``A`` along a direction that is a rank-2 matrix: beside the rank-1
    ``c·11ᵀ`` the matrix stayed singular for ``n ≥ 4``, the formula was NaN there too, and the README's own
    example ``det(A)·A⁻ᵀ`` was an error ("derived returns NaN or inf") instead of holding with a note."""
    spec = dc.inputs(A=dc.normal("n", "n"), sizes=[{"n": n}], regimes=("typical", "constant"))
    d = dc.gradient(of=jnp.linalg.det, inputs=spec, registry=reg, name="det")(_det_grad)
    r = dc.check(d, trials=40)
    assert r.outcome == "holds", r.message
    assert r.notes and "with a singular point of the derived formula in regime constant" in r.notes[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_a_wrong_det_gradient_still_fails_and_its_nans_are_noted(reg, seed):
    d = dc.gradient(of=jnp.linalg.det, inputs=SOME_SINGULAR, registry=reg, name="det_wrong")(_det_grad_untransposed)
    r = dc.check(d, trials=40, seed=seed)
    assert r.outcome == "fails" and "differs from jax.grad in " in r.message
    assert r.notes[0].startswith("derived returns NaN or inf in ") and r.notes[0].endswith("already fail")


def test_no_usable_trial_is_an_error_with_a_one_line_reason(reg):
    d = dc.gradient(of=jnp.linalg.det, inputs=ALL_SINGULAR, registry=reg, name="det_all")(_det_grad)
    r = dc.check(d, trials=20)
    assert r.outcome == "error"
    assert r.message == (
        "no usable trial: all 20 are degenerate (20 with a singular point of the derived formula in regime "
        "constant); draw inputs away from such points"
    )
    wrong = dc.gradient(of=jnp.linalg.det, inputs=ALL_SINGULAR, registry=reg, name="det_all_wrong")(
        _det_grad_untransposed
    )
    r = dc.check(wrong, trials=20)
    assert r.outcome == "error" and r.message.startswith("derived returns NaN or inf in 20 of 20 trials")


def test_a_non_finite_reference_is_skipped_with_a_note_and_nan_derived_elsewhere_is_an_error(reg):
    spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 3}], regimes=("typical", "shifted"))  # sqrt' < 0: NaN
    d = dc.gradient(of=lambda x: jnp.sum(jnp.sqrt(x)), inputs=spec, registry=reg, name="sqrt")(
        lambda x: 0.5 / jnp.sqrt(x)
    )
    r = dc.check(d, trials=40)
    assert r.outcome == "holds" and 0 < r.trials < 40
    assert r.notes[0].startswith(f"{40 - r.trials} of 40 degenerate trials skipped: ")
    assert r.notes[0].endswith(" with non-finite reference in regime typical")  # shifted: all positive
    nan = dc.gradient(of=lambda x: jnp.sum(x**3), inputs=spec, registry=reg, name="nan")(lambda x: 3 * x**2 / (x - x))
    r = dc.check(nan, trials=20)
    assert r.outcome == "error" and "derived returns NaN or inf in 20 of 20 trials" in r.message
