"""The diagnosis is pure NumPy over the engine's evidence: hand-built evidence is diagnosed without a check."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck as dc
from derivcheck import _diagnose as diagnosis
from derivcheck._compare import Tolerance
from derivcheck._diagnose import STEPS, attach, diagnose
from derivcheck._diagnose.piecewise import case_masks
from derivcheck._result import Evidence, Result, SizeSetEvidence

TOL = Tolerance(rtol=1e-7, atol=1e-12)


def _derivation(reg):
    spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 4}])
    return dc.gradient(of=lambda x: jnp.sum(x**3), inputs=spec, registry=reg, name="planted")(lambda x: -3 * x**2)


def _evidence(d, derived, reference, analysis="equality", failed=None):
    k = len(derived)
    failed = np.ones(k, bool) if failed is None else failed
    x = np.random.default_rng(0).normal(size=(k, 4))
    size_set = SizeSetEvidence(
        sizes=(("n", 4),),
        regimes=np.array(["typical"] * k),
        failed=failed,
        valid=np.ones(k, bool),
        rel_err=np.where(failed, 2.0, 0.0),
        inputs={"x": x},
        stats={"abs_err": np.abs(derived - reference).max(axis=1), "finite_reference": np.ones(k, bool)},
        rows=np.flatnonzero(failed),
        derived=derived[failed],
        reference=reference[failed],
    )
    return Evidence(
        derivation=d,
        analysis=analysis,
        tol=TOL,
        size_sets=(size_set,),
        arg_names=("x",),
        worst_derived=derived[0],
        worst_reference=reference[0],
    )


def test_a_sign_error_is_read_from_arrays_alone(reg):
    r = np.random.default_rng(1).normal(size=(6, 4))
    diag = diagnose(_evidence(_derivation(reg), -r, r))
    assert diag.kind == "sign" and diag.failing == 6 and diag.trials == 6
    assert diag.worst_entries and diag.by_size[0].failures == 6


def test_the_family_decides_the_analysis_not_the_claim(reg):
    r = np.random.default_rng(1).normal(size=(6, 4))
    # "conditions": no value relation is tested; every trial fails, so no condition explains it
    assert diagnose(_evidence(_derivation(reg), -r, r, analysis="conditions")) is None


def test_evidence_that_could_not_be_gathered_says_why(reg):
    ev = Evidence(derivation=_derivation(reg), analysis="equality", tol=TOL, problem="CheckError: boom")
    diag = diagnose(ev)
    assert diag.kind == "unexplained" and diag.summary == "no diagnosis (CheckError: boom)"


def test_attach_diagnoses_and_drops_the_evidence(reg):
    d = _derivation(reg)
    r = np.random.default_rng(1).normal(size=(6, 4))
    result = Result(
        name=d.name, kind=d.kind, outcome="fails", expect=d.expect, message="m", evidence=_evidence(d, -r, r)
    )
    attached = attach(result)
    assert attached.evidence is None and attached.diagnosis.kind == "sign"
    relayed = attach(Result(name=d.name, kind=d.kind, outcome="fails", expect=d.expect, message="its own finding"))
    assert relayed.diagnosis.kind == "claim" and relayed.diagnosis.summary == "its own finding"


def test_the_steps_tuple_follows_the_docstring_table():
    names = [s.__name__ for s in STEPS]
    assert names == [
        "precision",
        "conjugate",
        "proportional",
        "swaps",
        "structure",
        "ignored_index",
        "exact_condition",
        "terms",
        "partial_condition",
    ]


def test_case_masks_label_every_comparison_of_a_piecewise_function():
    def leaky(u):
        return jnp.where(u >= 0, u, 0.1 * u) + jnp.maximum(u, 1.0)

    u = np.array([[-1.0, 0.5, 2.0], [3.0, -2.0, 0.0]])
    masks = dict(case_masks(leaky, [u], ["u"]))
    assert set(masks) == {"u ≥ 0", "u > 1"}
    assert masks["u ≥ 0"].tolist() == (u >= 0).tolist()
    assert masks["u > 1"].dtype == bool and masks["u > 1"].shape == u.shape


@pytest.mark.parametrize("dtype", [np.float64])
def test_case_masks_run_in_float64_as_the_check_did(dtype):
    u = np.array([[1e-300, -1e-300]], dtype=dtype)  # below float32's range: only float64 tells them apart
    masks = dict(case_masks(lambda v: jnp.abs(v), [u], ["u"]))
    assert masks["u ≥ 0"].tolist() == [[True, False]]


def test_one_failing_trial_names_no_factor(reg):
    """``c = ⟨D, R⟩/⟨R, R⟩`` of one trial is a ratio, not a factor: a constant factor would fail more than once."""
    r = np.random.default_rng(2).normal(size=(6, 4))
    failed = np.zeros(6, bool)
    failed[3] = True
    diag = diagnose(_evidence(_derivation(reg), 0.8314 * r, r, failed=failed))
    assert diag.kind not in ("factor", "sign") and "factor of" not in diag.summary
    assert any("too few trials" in line for line in diag.evidence)


def test_the_same_factor_on_several_trials_is_named(reg):
    r = np.random.default_rng(2).normal(size=(6, 4))
    diag = diagnose(_evidence(_derivation(reg), 0.8314 * r, r))
    assert diag.kind == "factor" and diag.expression == "0.8314"


def test_a_factor_equal_to_a_size_at_one_size_set_is_not_named_after_it(reg):
    """Every trial has n = 4: a factor of 16 is n² as much as any 16, so it is given as a number."""
    r = np.random.default_rng(3).normal(size=(6, 4))
    diag = diagnose(_evidence(_derivation(reg), 16 * r, r))
    assert diag.kind == "factor" and diag.expression == "16"
    assert any("equals n²" in line for line in diag.evidence)


def test_a_step_that_raises_leaves_the_others_to_speak(reg, monkeypatch):
    def broken(obs):
        raise IndexError("list index out of range")

    monkeypatch.setattr(diagnosis, "STEPS", (broken, *diagnosis.STEPS))
    r = np.random.default_rng(1).normal(size=(6, 4))
    diag = diagnose(_evidence(_derivation(reg), -r, r))
    assert diag.kind == "sign"


def test_an_analysis_that_raises_keeps_its_error_out_of_the_summary(reg, monkeypatch):
    def broken(obs):
        raise IndexError("list index out of range")

    monkeypatch.setattr(diagnosis, "analyse", broken)
    r = np.random.default_rng(1).normal(size=(6, 4))
    diag = diagnose(_evidence(_derivation(reg), -r, r))
    assert diag.kind == "unexplained" and diag.summary.startswith("no diagnosis")
    assert "IndexError" not in diag.summary and "index out of range" not in diag.summary


@jax.jit
def clip_at(u, c):
    return jnp.maximum(u, c)


def test_case_masks_name_constants_by_value_and_never_two_intermediates_alike():
    """A constant handed into a call body prints as its value; two unnamed intermediates get two names."""
    u = np.array([[-1.0, 0.5, 2.0], [3.0, -2.0, 0.0]])
    masks = dict(case_masks(lambda x: clip_at(x, 0.0) + jnp.maximum(2 * x, x**2), [u], ["x"]))
    assert set(masks) == {"x > 0 in clip_at", "u > v"}
    assert masks["u > v"].tolist() == (2 * u > u**2).tolist()


def _singular_evidence(reg, nulls, worst):
    """Hand-built definiteness evidence: failing ``pd`` claims, trial ``t`` singular along ``e_{nulls[t]}``."""
    d = dc.definite("pd", inputs=dc.inputs(x=dc.normal(3)), registry=reg, name="pd")(lambda x: jnp.eye(3))
    h = np.stack([np.diag([0.0 if i == z else 1.0 for i in range(3)]) for z in nulls])
    k = len(nulls)
    size_set = SizeSetEvidence(
        sizes=(),
        regimes=np.array(["typical"] * k),
        failed=np.ones(k, bool),
        valid=np.ones(k, bool),
        rel_err=np.zeros(k),
        inputs={"x": np.zeros((k, 3))},
        stats={"sym_err": np.zeros(k), "scale": np.ones(k), "margin": np.full(k, 1e-9)},
        rows=np.arange(k),
        derived=h,
        reference=None,
    )
    return Evidence(derivation=d, analysis="spectrum", tol=TOL, size_sets=(size_set,), worst_derived=h[worst])


def test_a_spectrum_headline_among_equally_common_modes_is_the_worst_trials(reg):
    """The message describes the worst trial's matrix: on a tie, the headline speaks of the same one."""
    diag = diagnose(_singular_evidence(reg, nulls=[1, 0], worst=1))
    assert diag.kind == "spectrum" and "along the coordinate axes e0" in diag.summary, diag.summary


def test_a_spectrum_headline_of_another_mode_says_which_the_worst_trial_is(reg):
    diag = diagnose(_singular_evidence(reg, nulls=[1, 1, 0], worst=2))
    assert "along the coordinate axes e1" in diag.summary
    assert diag.evidence[0].startswith("the worst trial (the one the message shows) is another mode: ")
    assert "e0" in diag.evidence[0]


# ------------------------------------------------------------------ a pytree value's leaves

LEAVES = (("a", (2,)), ("b", (2,)))


def _with_leaves(ev):
    """``ev`` with its raveled value of 4 entries read as two leaves ``a`` and ``b`` of 2."""
    size_sets = tuple(dataclasses.replace(s, leaves=LEAVES) for s in ev.size_sets)
    return dataclasses.replace(ev, size_sets=size_sets, worst_leaves=LEAVES)


def test_an_error_confined_to_one_leaf_is_read_there_and_never_named_a_relation_it_is_not(reg):
    rng = np.random.default_rng(2)
    r = rng.normal(size=(6, 4))
    d = r.copy()
    d[:, 2:] = -r[:, 2:]
    diag = diagnose(_with_leaves(_evidence(_derivation(reg), d, r)))
    assert (diag.kind, diag.summary, diag.where) == ("sign", "in b: sign error: derived = −reference", "b")
    d[:, 2:] += 0.3 * rng.normal(size=(6, 2))  # no longer a sign: the leaf alone fits nothing
    diag = diagnose(_with_leaves(_evidence(_derivation(reg), d, r)))
    assert diag.kind == "unexplained" and diag.summary.startswith("in b: no simple relation fits"), diag.summary
    assert diag.summary.endswith(("at b[0]", "at b[1]")), diag.summary


def test_an_error_in_every_leaf_is_read_on_the_whole_value_its_entries_named_by_leaf(reg):
    r = np.random.default_rng(3).normal(size=(6, 4))
    d = r + np.random.default_rng(4).normal(size=(6, 4))
    diag = diagnose(_with_leaves(_evidence(_derivation(reg), d, r)))
    assert diag.kind == "unexplained" and diag.where == "", diag.summary
    j = int(np.argmax(np.abs(d[0] - r[0])))
    assert diag.summary.endswith(f"the largest error is at {'ab'[j // 2]}[{j % 2}]"), diag.summary


def test_a_leaf_is_judged_at_the_whole_values_scale_as_the_check_judged_it(reg):
    """``a`` ~ 10⁶ with a sign slip, ``b`` ~ 1 off by 10⁻²: below ``rtol ‖D‖∞ = 0.1``, the check passes ``b``,
    so the error is confined to ``a``; read at ``b``'s own scale, ``b`` would count as wrong too. And a relation
    in ``b`` fits as far as the check's bound of the whole value allows, not ``b``'s own."""
    rng = np.random.default_rng(5)
    r = rng.normal(size=(6, 4))
    r[:, :2] *= 1e6
    d = r.copy()
    d[:, :2] = -r[:, :2]
    d[:, 2:] += 1e-2
    diag = diagnose(_with_leaves(_evidence(_derivation(reg), d, r)))
    assert diag.summary == "in a: sign error: derived = −reference", diag.summary
    d = r.copy()  # b = −reference within 10⁻³: X = (R_a, −R_b) passes the check's test of the whole value
    d[:, 2:] = -r[:, 2:] + 1e-3
    diag = diagnose(_with_leaves(_evidence(_derivation(reg), d, r)))
    assert diag.summary == "in b: sign error: derived = −reference", diag.summary
