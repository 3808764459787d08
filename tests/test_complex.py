"""Complex inputs (issue #15): complex specs, ``holomorphic=``, JAX's conventions for real-valued
functions of complex arguments, the ``conjugate`` diagnosis, and complex values through the
comparison, the shrink and every interface (CLI, pytest item, explain, JSON, notebook display).

JAX's conventions, as these tests pin them (run, not remembered): for a real-valued ``f`` of
``z = x + iy``, ``jax.grad(f)(z) = ∂f/∂x − i ∂f/∂y`` (``2·conj(z)`` for ``|z|²``); ``jax.vjp`` pulls
a cotangent back unconjugated (``ct · f′(z)`` for holomorphic ``f``); ``jax.jvp`` is ``f′(z) · t``.
"""

import json
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck as dc
from derivcheck._api import check_and_shrink, with_suggestions
from derivcheck._compare import ResolvedTolerance, entry_excess, real_precision, rounding_spread
from derivcheck._shrink import array_complexity, complexity
from derivcheck.cli import main

Z = dc.inputs(z=dc.normal("n", dtype="complex128"))
SQUARE = dc.inputs(a=dc.normal("n", "n", dtype="complex128"), sizes=[{"n": 3}, {"n": 4}])
TRIALS = 20


def abs2(z):
    return jnp.sum(jnp.abs(z) ** 2)


def sum_exp(z):
    return jnp.sum(jnp.exp(z))


def test_jax_conventions_are_the_ones_the_readme_states():
    with jax.enable_x64(True):
        z = jnp.asarray(3.0 + 4.0j)
        assert jax.grad(lambda z: jnp.abs(z) ** 2)(z) == 6.0 - 8.0j  # ∂f/∂x − i ∂f/∂y = 2 conj(z)
        assert jax.grad(lambda z: jnp.real(z**2))(z) == 6.0 + 8.0j  # x² − y²: 2x + 2iy
        ct = jnp.asarray(1.0 - 2.0j)
        assert jnp.allclose(jax.vjp(jnp.exp, z)[1](ct)[0], ct * jnp.exp(z))  # not conjugated
        assert jnp.allclose(jax.jvp(jnp.exp, (z,), (ct,))[1], jnp.exp(z) * ct)


# ----------------------------------------------------------------------------- specs


def test_a_complex_normal_draws_both_parts_independently_in_every_regime():
    spec = dc.normal("n", dtype="complex128")
    rng = np.random.default_rng(0)
    z = spec.sample(rng, 2000, {"n": 3}, "typical")
    assert z.dtype == np.complex128 and z.shape == (2000, 3)
    assert abs(np.corrcoef(z.real.ravel(), z.imag.ravel())[0, 1]) < 0.1
    assert 0.9 < z.real.std() < 1.1 and 0.9 < z.imag.std() < 1.1
    tiny = spec.sample(np.random.default_rng(0), 50, {"n": 3}, "tiny")
    assert np.abs(tiny).max() < 1e-3 and np.abs(tiny.imag).max() > 0
    const = spec.sample(np.random.default_rng(0), 5, {"n": 3}, "constant")
    assert np.all(const == const[:, :1]) and np.all(const.imag != 0)
    u = dc.uniform("n", low=1.0, high=2.0, dtype="complex64").sample(np.random.default_rng(1), 50, {"n": 2}, "typical")
    assert u.dtype == np.complex64 and (u.real >= 1).all() and (u.imag < 2).all() and (u.imag >= 1).all()


def test_complex_dtypes_only_on_specs_that_can_draw_them():
    with pytest.raises(dc.InputSpecError, match=r"positive\(\.\.\.\) draws real values.*normal\(\.\.\.\)"):
        dc.inputs(x=dc.positive("n", dtype="complex128"))
    with pytest.raises(dc.InputSpecError, match="give dtype='complex128'"):
        dc.constant(1 + 2j)
    assert dc.inputs(c=dc.constant(1 + 2j, dtype="complex128")).names == ("c",)


# ------------------------------------------------------------------ |z|² and exp, both ways


@pytest.fixture(scope="module")
def creg():
    reg = dc.Registry()
    dc.gradient(of=abs2, inputs=Z, registry=reg, name="abs2")(lambda z: 2 * jnp.conj(z))
    dc.gradient(of=abs2, inputs=Z, registry=reg, name="abs2_slipped")(lambda z: 2 * z)
    dc.gradient(of=sum_exp, inputs=Z, holomorphic=True, registry=reg, name="exp_grad")(lambda z: jnp.exp(z))
    dc.gradient(of=sum_exp, inputs=Z, holomorphic=True, registry=reg, name="exp_grad_conj")(
        lambda z: jnp.exp(jnp.conj(z))
    )
    dc.jacobian(of=jnp.exp, inputs=Z, holomorphic=True, registry=reg, name="exp_jac")(lambda z: jnp.diag(jnp.exp(z)))
    dc.jacobian(of=jnp.exp, inputs=Z, holomorphic=True, registry=reg, name="exp_jac_twice")(
        lambda z: 2 * jnp.diag(jnp.exp(z))
    )
    dc.vjp(of=jnp.exp, inputs=Z, registry=reg, name="exp_vjp")(lambda z, ct: ct * jnp.exp(z))
    dc.vjp(of=jnp.exp, inputs=Z, registry=reg, name="exp_vjp_torch")(lambda z, ct: ct * jnp.conj(jnp.exp(z)))
    dc.vjp(of=lambda z: jnp.abs(z) ** 2, inputs=Z, registry=reg, name="abs2_vjp_slipped")(lambda z, ct: 2 * ct * z)
    dc.jvp(of=jnp.exp, inputs=Z, registry=reg, name="exp_jvp")(lambda z, t: t * jnp.exp(z))
    matvec = lambda a: a @ jnp.arange(1.0, a.shape[0] + 1)
    dc.gradient(of=lambda a: jnp.sum(jnp.abs(matvec(a)) ** 2), inputs=SQUARE, registry=reg, name="matvec")(
        lambda a: 2 * jnp.outer(jnp.conj(matvec(a)), jnp.arange(1.0, a.shape[0] + 1))
    )
    dc.gradient(of=lambda a: jnp.sum(jnp.abs(matvec(a)) ** 2), inputs=SQUARE, registry=reg, name="matvec_hermitian")(
        lambda a: 2 * jnp.outer(jnp.conj(matvec(a)), jnp.arange(1.0, a.shape[0] + 1)).conj().T
    )
    return reg


HOLD = ["abs2", "exp_grad", "exp_jac", "exp_vjp", "exp_jvp", "matvec"]


@pytest.mark.parametrize("name", HOLD)
@pytest.mark.parametrize("seed", range(5))
def test_right_complex_derivations_hold_on_several_seeds(creg, name, seed):
    r = dc.check(creg[name], trials=TRIALS, seed=seed)
    assert r.outcome == "holds", r.message


@pytest.mark.parametrize(
    ("name", "summary"),
    [
        ("abs2_slipped", "complex conjugate: derived = conj(reference)"),
        ("exp_grad_conj", "complex conjugate: derived = conj(reference)"),
        ("abs2_vjp_slipped", "complex conjugate: derived = conj(reference)"),
        ("matvec_hermitian", "conjugate transpose"),
        ("exp_vjp_torch", "the derivative is conjugated, the cotangent is not"),
    ],
)
def test_a_conjugation_slip_fails_and_the_diagnosis_names_it(creg, name, summary):
    r = dc.check(creg[name], trials=TRIALS)
    assert r.outcome == "fails" and r.diagnosis.kind == "conjugate", (r.message, r.diagnosis.summary)
    assert summary in r.diagnosis.summary


def test_other_planted_errors_in_complex_claims_get_their_own_diagnosis(creg):
    r = dc.check(creg["exp_jac_twice"], trials=TRIALS)
    assert r.outcome == "fails" and r.diagnosis.kind == "factor" and "2" in r.diagnosis.summary


def test_the_conjugate_relation_never_fires_on_real_claims(reg):
    spec = dc.inputs(x=dc.normal("n"))
    neg = dc.gradient(of=lambda x: jnp.sum(x**2), inputs=spec, registry=reg)(lambda x: -2 * x)
    r = dc.check(neg, trials=TRIALS)
    assert r.outcome == "fails" and r.diagnosis.kind == "sign"
    m = np.arange(9.0).reshape(3, 3) ** 2  # float64: a jnp array made outside the check would be float32
    jac = dc.jacobian(of=lambda x: m @ x, inputs=dc.inputs(x=dc.normal(3)), registry=reg)(lambda x: m.T)
    r = dc.check(jac, trials=TRIALS)
    assert r.outcome == "fails" and r.diagnosis.kind == "transpose"


def test_complex_valued_derived_equal_to_a_real_reference_holds_and_an_imaginary_part_fails(reg):
    spec = dc.inputs(x=dc.normal("n"))
    right = dc.gradient(of=lambda x: jnp.sum(x**2), inputs=spec, registry=reg)(lambda x: (2 * x).astype(jnp.complex128))
    assert dc.check(right, trials=TRIALS).outcome == "holds"
    wrong = dc.gradient(of=lambda x: jnp.sum(x**2), inputs=spec, registry=reg)(lambda x: 2 * x + 1j * x)
    assert dc.check(wrong, trials=TRIALS).outcome == "fails"


# ------------------------------------------------------------ errors that say what to do


@pytest.mark.parametrize(
    ("declare", "words"),
    [
        (
            lambda r: dc.gradient(of=sum_exp, inputs=Z, registry=r)(lambda z: jnp.exp(z)),
            "pass holomorphic=True if of is holomorphic",
        ),
        (
            lambda r: dc.gradient(
                of=lambda x: jnp.sum(x**2), inputs=dc.inputs(x=dc.normal("n")), holomorphic=True, registry=r
            )(lambda x: 2 * x),
            "to take and return complex values, but its argument is real",
        ),
        (
            lambda r: dc.jacobian(of=jnp.exp, inputs=Z, registry=r)(lambda z: jnp.diag(jnp.exp(z))),
            "a Jacobian of a complex argument",
        ),
        (
            lambda r: dc.hessian(of=abs2, inputs=Z, registry=r)(lambda z: 2 * jnp.eye(z.shape[0])),
            "a Hessian claim of complex",
        ),
        (
            lambda r: dc.definite("psd", inputs=Z, registry=r)(lambda z: jnp.outer(z, jnp.conj(z))),
            "a definiteness claim",
        ),
        (
            lambda r: dc.gradient(of=abs2, inputs=Z, registry=r)(lambda z: jnp.ones(z.shape, jnp.int32)),
            "expected complex",
        ),
        (
            lambda r: dc.gradient(of=abs2, inputs=Z, holomorphic="yes", registry=r)(lambda z: z),
            "holomorphic= must be True or False",
        ),
    ],
)
def test_what_jax_cannot_differentiate_is_a_one_line_error_that_does_not_contradict_itself(reg, declare, words):
    r = dc.check(declare(reg), trials=4)
    assert r.outcome == "error" and words in r.message and "\n" not in r.message, r.message
    assert "float array like" not in r.message and "expected real floats (complex" not in r.message


# ------------------------------------------------------------- comparison and rounding


def test_complex_values_are_compared_by_modulus_at_their_real_precision():
    assert real_precision("complex64") == np.float32 and real_precision("complex128") == np.float64
    tol = ResolvedTolerance(rtol=1e-7, atol=1e-12)
    with jax.enable_x64(True):
        r = jnp.array([1.0 + 1.0j, 1e-3j])
        assert entry_excess(r, r, tol, 0.005)[0] <= 0
        assert entry_excess(jnp.conj(r), r, tol, 0.005)[0] > 0  # only the imaginary parts differ
        assert entry_excess(r * (1 + 1e-12), r, tol, 0.005)[0] <= 0


def test_rounding_is_measured_on_both_parts_of_a_complex_computation():
    with jax.enable_x64(True):
        z = jnp.array([0.3 + 0.7j, -1.1 + 0.2j, 2.0 - 0.5j])
        cancel = rounding_spread(lambda z: jnp.sum(z * z) - jnp.sum(z * z) * (1 - 2**-40), z)  # rounds
        exact = rounding_spread(lambda z: -z, z)  # a sign change rounds nothing
        assert 0 < float(cancel) < 1e-10 and float(exact) == 0.0
        spread_im = rounding_spread(lambda z: jnp.imag(jnp.exp(z)), z)
        assert 0 < float(spread_im) < 1e-13


# -------------------------------------------------------------------------- shrink


def test_complex_entries_are_simpler_part_by_part():
    assert complexity(0j) == 0 and complexity(1j) == complexity(1.0) and complexity(2 - 1j) == 5
    assert array_complexity(np.array([1j, 0.5 + 0j])) == 1 + 100.5


@pytest.fixture(scope="module")
def shrunk(creg):
    return check_and_shrink(creg["abs2_slipped"], trials=TRIALS, seed=0, shrink=True, seconds=10)


def test_a_conjugation_slip_shrinks_to_a_simple_complex_counterexample(shrunk):
    cx = shrunk.counterexample
    assert cx is not None and cx.inputs["z"].dtype == np.complex128
    assert array_complexity(cx.inputs["z"]) <= 2, cx.inputs["z"]  # e.g. z = [1j]


# ---------------------------------------------------------------------- interfaces


def test_json_writes_complex_numbers_as_re_im(shrunk):
    doc = json.loads(json.dumps(shrunk.to_dict()))
    z = doc["counterexample"]["inputs"]["z"]["values"][0]
    assert set(z) == {"re", "im"}
    entry = doc["diagnosis"]["worst_entries"][0]
    assert entry["error"]["re"] == pytest.approx(0, abs=1e-12) and entry["error"]["im"] != 0
    assert doc["diagnosis"]["kind"] == "conjugate"


def test_the_notebook_display_shows_complex_values_and_the_diagnosis(shrunk):
    html = shrunk._repr_html_()
    assert "complex conjugate" in html and "j" in html


USER_FILE = textwrap.dedent(
    """
    import jax.numpy as jnp
    import derivcheck as dc

    Z = dc.inputs(z=dc.normal("n", dtype="complex128"))

    @dc.gradient(of=lambda z: jnp.sum(jnp.abs(z) ** 2), inputs=Z, name="cx.abs2")
    def abs2(z):
        return 2 * jnp.conj(z)

    @dc.gradient(of=lambda z: jnp.sum(jnp.abs(z) ** 2), inputs=Z, name="cx.abs2_slipped")
    def abs2_slipped(z):
        return 2 * z

    # a structured input through the same interfaces: ∇ log det Σ over symmetric positive-definite Σ
    SPD = dc.inputs(S=dc.spd("n", condition=20.0))

    @dc.gradient(of=lambda S: jnp.linalg.slogdet(S)[1], inputs=SPD, name="spd.logdet")
    def logdet(S):
        return jnp.linalg.inv(S)

    @dc.gradient(of=lambda S: jnp.linalg.slogdet(S)[1], inputs=SPD, name="spd.logdet_doubled")
    def logdet_doubled(S):  # as if differentiating log det(Σ Σ)
        return 2 * jnp.linalg.inv(S)
    """
)


def test_cli_run_and_explain_with_complex_and_spd_inputs(tmp_path, capsys, fresh_default_registry):
    path = tmp_path / "cx_derivations.py"
    path.write_text(USER_FILE)
    out = tmp_path / "out.json"
    args = ["--load", str(path), "--trials", "10", "--no-suggest"]
    assert main(["run", "--all", "--jobs", "1", "--json", str(out), *args]) == 1
    text = capsys.readouterr().out
    assert "complex conjugate: derived = conj(reference)" in text and "+" in text and "j" in text
    results = {r["name"]: r for r in json.loads(out.read_text())["results"]}
    names = ("cx.abs2", "cx.abs2_slipped", "spd.logdet", "spd.logdet_doubled")
    assert [results[n]["outcome"] for n in names] == ["holds", "fails", "holds", "fails"]
    assert results["cx.abs2_slipped"]["worst"]["inputs"]["z"]["values"][0].keys() == {"re", "im"}
    main(["explain", "cx.abs2_slipped", "--no-shrink", *args])
    text = capsys.readouterr().out
    assert "diagnosis: complex conjugate" in text and "Traceback" not in text
    main(["explain", "spd.logdet_doubled", "--no-shrink", *args])
    text = capsys.readouterr().out
    assert "diagnosis: off by a factor of 2" in text and "Traceback" not in text


pytest_plugins = ["pytester"]


def test_complex_and_spd_derivations_are_pytest_items(pytester, fresh_default_registry):
    (pytester.path / "derivations_cx.py").write_text(USER_FILE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rA", "--derivcheck-trials", "10")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*cx.abs2_slipped*fails*", "*complex conjugate*"], consecutive=False)
    result.stdout.fnmatch_lines(["*spd.logdet_doubled*fails*"], consecutive=False)


def test_a_complex_failure_by_little_gets_no_second_opinion_and_says_so(reg):
    """A relative error of 1e-6 would ask the second opinion in float64 (DOUBT_BOUND 1e-5); its
    central differences and real inner products are not JAX's complex conventions, so the failure stands."""
    d = dc.gradient(of=abs2, inputs=Z, registry=reg)(lambda z: 2 * (1 + 1e-6) * jnp.conj(z))
    r = dc.check(d, trials=TRIALS)
    assert r.outcome == "fails" and any("no second opinion" in n for n in r.notes), r.notes


def test_the_repair_search_is_not_run_on_complex_values_and_says_so(creg, shrunk):
    r = with_suggestions(shrunk, creg["abs2_slipped"])
    assert r.repair is not None and not len(r.repair) and "complex values" in r.repair.message
    assert r.diagnosis is not None and r.diagnosis.kind == "conjugate"
