"""The ``inconclusive`` outcome: a second opinion when the reference may be the inaccurate side.

The planted inaccurate reference is a ``custom_jvp`` whose derivative rule is
the asymptotic series of the digamma function cut after the ``x⁻⁶`` term
(truncation error ``≈ 1/(240 x⁸)``: up to ``7e-7`` relative on ``[3, 20]``),
while its values are ``gammaln``'s, accurate to the last digits. A hand formula
``ψ(x)`` is then right and JAX is wrong by a little.
"""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import betaln, digamma, gammaln

import derivcheck as dc
from derivcheck import cli
from derivcheck._checks.second_opinion import DOUBT_BOUND, richardson
from derivcheck._report.explain import render
from derivcheck._report.html import result_html, results_html
from derivcheck._report.junit import junit_xml
from derivcheck._report.markdown import markdown
from derivcheck._report.table import plain_lines, run_grid
from derivcheck._report.text import details, failure_report, headline
from derivcheck._result import Results, summary

pytest_plugins = ["pytester"]

SEEDS = (0, 1, 2)


def _psi_asymptotic(x):
    return jnp.log(x) - 1 / (2 * x) - 1 / (12 * x**2) + 1 / (120 * x**4) - 1 / (252 * x**6)


@jax.custom_jvp
def lgamma_rough_grad(x):
    """``gammaln`` with accurate values and a derivative accurate to only ~1e-6."""
    return gammaln(x)


@lgamma_rough_grad.defjvp
def _lgamma_rough_grad_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return lgamma_rough_grad(x), _psi_asymptotic(x) * dx


POSITIVE = dc.inputs(x=dc.positive("n", low=3.0, high=20.0), sizes=[{"n": 4}, {"n": 7}], regimes=("typical",))


def _sum_rough(x):
    return jnp.sum(lgamma_rough_grad(x))


def _right(reg, name="right"):
    @dc.gradient(of=_sum_rough, inputs=POSITIVE, registry=reg, name=name)
    def right(x):
        return digamma(x)

    return right


@pytest.mark.parametrize("seed", SEEDS)
def test_a_right_formula_against_an_inaccurate_reference_is_inconclusive(reg, seed):
    r = dc.check(_right(reg), trials=60, seed=seed)
    assert r.outcome == "inconclusive" and not r.ok
    assert r.message.startswith("inconclusive: jax.grad differs")
    assert "central differences" in r.message and "rtol=" in r.message  # what was seen, what would settle it
    assert r.diagnosis is None  # the derivation is not diagnosed: the reference is in doubt
    assert 1e-7 < r.max_rel_err <= DOUBT_BOUND["float64"]


@pytest.mark.parametrize("seed", SEEDS)
def test_wrong_formulas_against_the_same_reference_still_fail(reg, seed):
    @dc.gradient(of=_sum_rough, inputs=POSITIVE, registry=reg, name="log_only")
    def log_only(x):  # the leading term of the series alone: wrong by 10 %
        return jnp.log(x)

    @dc.gradient(of=_sum_rough, inputs=POSITIVE, registry=reg, name="slightly_off")
    def slightly_off(x):  # wrong by 1e-6/x: as small as the reference's own error
        return digamma(x) + 1e-6 / x

    assert dc.check(log_only, trials=60, seed=seed).outcome == "fails"
    off = dc.check(slightly_off, trials=60, seed=seed)
    assert off.outcome == "fails" and any("second opinion" in n for n in off.notes)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_right_formula_against_an_accurate_reference_holds(reg, seed):
    @dc.gradient(of=lambda x: jnp.sum(gammaln(x)), inputs=POSITIVE, registry=reg, name="lgamma")
    def lgamma_grad(x):
        return digamma(x)

    assert dc.check(lgamma_grad, trials=60, seed=seed).outcome == "holds"


def test_jacobian_vjp_and_jvp_get_the_second_opinion_too(reg):
    @dc.jacobian(of=lgamma_rough_grad, inputs=POSITIVE, registry=reg, name="jac")
    def jac(x):
        return jnp.diag(digamma(x))

    @dc.vjp(of=lgamma_rough_grad, inputs=POSITIVE, registry=reg, name="vjp")
    def vjp(x, ct):
        return ct * digamma(x)

    @dc.jvp(of=lgamma_rough_grad, inputs=POSITIVE, registry=reg, name="jvp")
    def jvp(x, t):
        return digamma(x) * t

    @dc.vjp(of=lgamma_rough_grad, inputs=POSITIVE, registry=reg, name="vjp_wrong")
    def vjp_wrong(x, ct):
        return ct * jnp.log(x)

    for d in (jac, vjp, jvp):
        assert dc.check(d, trials=60).outcome == "inconclusive", d.name
    assert dc.check(vjp_wrong, trials=60).outcome == "fails"


BETA = dc.inputs(
    a=dc.positive("n", low=0.5, high=30.0),
    b=dc.positive("n", low=0.5, high=30.0),
    sizes=[{"n": 5}],
    regimes=("typical",),
)


def test_betaln_values_are_off_so_differences_side_with_jax(reg):
    """A finding, not a wish: JAX's ``betaln`` *values* are off by ~5e-8 relative (an asymptotic series for
    ``b ≥ 8``), smoothly, so central differences of ``of`` agree with ``jax.grad`` and the exact formula
    ``ψ(a) − ψ(a + b)`` still fails — with a note saying where the differences stand."""

    def of(a, b):
        return jnp.sum(betaln(a, b))

    @dc.gradient(of=of, wrt="a", inputs=BETA, registry=reg, name="beta_right")
    def beta_right(a, b):
        return digamma(a) - digamma(a + b)

    @dc.gradient(of=of, wrt="a", inputs=BETA, registry=reg, name="beta_wrong")
    def beta_wrong(a, b):
        return digamma(a)

    r = dc.check(beta_right, trials=100)
    assert r.outcome == "fails" and r.max_rel_err < 1e-5
    assert any("side with jax.grad" in n and "approximation" in n for n in r.notes)
    assert dc.check(beta_wrong, trials=100).outcome == "fails"


# ---- the outputs


@pytest.fixture(scope="module")
def inconclusive():
    reg = dc.Registry()
    return dc.check(_right(reg, name="lgamma.right"), trials=60)


def test_every_output_shows_the_word(inconclusive, tmp_path):
    r = inconclusive
    results = Results((r,), seed=0, trials=60, seconds=1.0)
    assert "1 inconclusive" in summary([r], 1.0, seed=0, trials=60) and "0 unexpected" in results.summary
    assert not results.ok
    assert headline(r).startswith("inconclusive: lgamma.right (gradient)")
    assert failure_report(r, "reproduce").startswith("inconclusive:")
    assert any(line.startswith("INCONCLUSIVE: lgamma.right") for line in details([r]))
    assert any("inconclusive" in line for line in plain_lines(run_grid([r])))
    assert json.loads(json.dumps(r.to_dict()))["outcome"] == "inconclusive"
    assert 'type="inconclusive"' in junit_xml([r], seed=0, trials=60, seconds=1.0)
    md = markdown([r], seed=0, trials=60, seconds=1.0)
    assert "1 inconclusive" in md and "❔" in md
    assert "inconclusive" in result_html(r) and "inconclusive" in results_html(results)
    d = dc.Registry()
    explained = "\n".join(render(_right(d, name="lgamma.right"), r, trials=60))
    assert "verdict: inconclusive" in explained


def test_expected_to_fail_it_is_ok_and_counted_on_its_own(reg):
    @dc.gradient(of=_sum_rough, inputs=POSITIVE, registry=reg, name="known", expect=dc.fails("reference is rough"))
    def known(x):
        return digamma(x)

    r = dc.check(known, trials=60)
    assert r.outcome == "inconclusive" and r.ok
    assert 'type="xfail"' in junit_xml([r], seed=0, trials=60, seconds=1.0)


def test_a_tolerance_above_the_references_error_silences_it(reg):
    @dc.gradient(of=_sum_rough, inputs=POSITIVE, registry=reg, name="loose", rtol=1e-4)
    def loose(x):
        return digamma(x)

    assert dc.check(loose, trials=60).outcome == "holds"


def test_the_advised_tolerance_is_the_one_a_pass_needs(reg):
    """The message's rtol comes from the check's own relative errors, rounded up to a power of ten: it
    makes the check hold, and a tenth of it does not (it came from a directional gap, ~100x too loose)."""
    r = dc.check(_right(reg), trials=60)
    assert r.outcome == "inconclusive", r.message
    advised = float(re.search(r"pass rtol=(\S+) if", r.message).group(1))
    assert r.max_rel_err <= advised < 10 * r.max_rel_err, (advised, r.max_rel_err)

    def again(rtol, name):
        return dc.gradient(of=_sum_rough, inputs=POSITIVE, registry=reg, name=name, rtol=rtol)(digamma)

    assert dc.check(again(advised, "advised"), trials=60).outcome == "holds"
    assert dc.check(again(advised / 10, "tighter"), trials=60).outcome == "inconclusive"


def test_the_command_exits_1_on_inconclusive(tmp_path):
    user = tmp_path / "rough.py"
    user.write_text(ROUGH_MODULE)
    out = tmp_path / "out.json"
    assert cli.main(["run", "--load", str(user), "rough.*", "--trials", "40", "--json", str(out)]) == 1
    doc = {r["name"]: r for r in json.loads(out.read_text())["results"]}
    assert doc["rough.right"]["outcome"] == "inconclusive" and doc["rough.right"]["ok"] is False
    assert doc["rough.known"]["outcome"] == "inconclusive" and doc["rough.known"]["ok"] is True


ROUGH_MODULE = """
import jax, jax.numpy as jnp
from jax.scipy.special import digamma, gammaln
import derivcheck as dc

@jax.custom_jvp
def rough(x):
    return gammaln(x)

@rough.defjvp
def _(p, t):
    (x,), (dx,) = p, t
    return rough(x), (jnp.log(x) - 1 / (2 * x) - 1 / (12 * x**2) + 1 / (120 * x**4) - 1 / (252 * x**6)) * dx

SPEC = dc.inputs(x=dc.positive("n", low=3.0, high=20.0), sizes=[{"n": 4}], regimes=("typical",))

@dc.gradient(of=lambda x: jnp.sum(rough(x)), inputs=SPEC, name="rough.right")
def right(x):
    return digamma(x)

@dc.gradient(of=lambda x: jnp.sum(rough(x)), inputs=SPEC, name="rough.known", expect=dc.fails("rough reference"))
def known(x):
    return digamma(x)
"""


def test_pytest_fails_an_inconclusive_item_with_a_report_that_begins_inconclusive(pytester, fresh_default_registry):
    pytester.makepyfile(derivations_rough=ROUGH_MODULE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rA", "--derivcheck-trials", "40")
    result.assert_outcomes(failed=1, xfailed=1)
    result.stdout.fnmatch_lines(["inconclusive: rough.right (gradient), expected to hold — jax.grad differs*rtol=*"])


# ---- the differences themselves


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def test_richardson_is_accurate_and_says_how_accurate():
    x = jnp.asarray(1.3)
    estimate, err = richardson(lambda t: jnp.sin(x + t) * jnp.exp(x + t), jnp.asarray(2.0**-5))
    truth = float(jnp.exp(x) * (jnp.sin(x) + jnp.cos(x)))
    assert abs(float(estimate) - truth) <= float(err) < 1e-9


def test_richardson_is_undecided_outside_the_domain():
    _, err = richardson(lambda t: jnp.log(t), jnp.asarray(2.0**-5))
    assert not np.isfinite(float(err))
