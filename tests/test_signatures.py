"""Signatures as people write them: defaulted parameters after a cotangent or tangent, and
``functools.partial`` fixing keyword arguments of ``of`` (shown readably everywhere)."""

import functools
import json

import jax
import jax.numpy as jnp
import pytest

import derivcheck as dc
from derivcheck._format import callable_name
from derivcheck.cli import main

MATRIX = dc.inputs(x=dc.normal("m", "n"))


def softmax(x, axis=-1):
    return jax.nn.softmax(x, axis=axis)


def softmax_vjp(x, ct, axis=-1):
    """``s ⊙ (ct − Σ_axis ct ⊙ s)``, ``s = softmax(x, axis)``."""
    s = jax.nn.softmax(x, axis=axis)
    return s * (ct - jnp.sum(ct * s, axis=axis, keepdims=True))


def softmax_vjp_sign_slip(x, ct, axis=-1):
    s = jax.nn.softmax(x, axis=axis)
    return s * (ct + jnp.sum(ct * s, axis=axis, keepdims=True))


def softmax_jvp(x, t, axis=-1):
    s = jax.nn.softmax(x, axis=axis)
    return s * (t - jnp.sum(t * s, axis=axis, keepdims=True))


@pytest.mark.parametrize("seed", range(3))
def test_a_default_after_the_cotangent_keeps_its_default(reg, seed):
    d = dc.vjp(of=softmax, inputs=MATRIX, registry=reg)(softmax_vjp)
    assert d.arg_names == ("x",) and not d.problem
    r = dc.check(d, trials=60, seed=seed)
    assert r.outcome == "holds", r.message


def test_a_default_after_the_cotangent_fails_when_wrong(reg):
    d = dc.vjp(of=softmax, inputs=MATRIX, registry=reg)(softmax_vjp_sign_slip)
    r = dc.check(d, trials=60)
    assert r.outcome == "fails" and "jax.vjp" in r.message


def test_a_default_after_the_tangent_keeps_its_default(reg):
    d = dc.jvp(of=softmax, inputs=MATRIX, registry=reg)(softmax_jvp)
    assert d.arg_names == ("x",)
    assert dc.check(d, trials=60).outcome == "holds"


def test_a_drawn_input_after_the_cotangent_is_named_as_the_problem(reg):
    d = dc.vjp(of=softmax, inputs=dc.inputs(x=dc.normal("n"), axis=dc.constant(0)), registry=reg)(softmax_vjp)
    assert "['axis']" in d.problem and "'ct'" in d.problem and "before" in d.problem
    r = dc.check(d)
    assert r.outcome == "error" and "\n" not in r.message


def test_a_defaulted_parameter_the_inputs_name_is_drawn(reg):
    def scaled(x, c=2.0):
        return jnp.sum(c * x**2)

    @dc.gradient(of=scaled, inputs=dc.inputs(x=dc.normal("n"), c=dc.positive()), registry=reg)
    def scaled_grad(x, c=2.0):
        return 2 * c * x

    assert scaled_grad.arg_names == ("x", "c")
    assert dc.check(scaled_grad, trials=40).outcome == "holds"

    @dc.gradient(of=scaled, inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="defaulted")
    def scaled_grad_default(x, c=2.0):
        return 2 * c * x

    assert scaled_grad_default.arg_names == ("x",)
    assert dc.check(scaled_grad_default, trials=40).outcome == "holds"


def test_a_missing_spec_still_names_the_parameter(reg):
    d = dc.vjp(of=lambda x, W: W @ x, inputs=dc.inputs(x=dc.normal("n")), registry=reg)(lambda x, W, ct: W.T @ ct)
    assert "no input spec for ['W']" in d.problem


def test_partial_fixes_a_keyword_of_of_both_ways(reg):
    of = functools.partial(softmax, axis=0)
    good = dc.vjp(of=of, inputs=MATRIX, registry=reg)(functools.partial(softmax_vjp, axis=0))
    bad = dc.vjp(of=of, inputs=MATRIX, registry=reg)(softmax_vjp)  # its default axis=-1: the wrong axis
    assert dc.check(good, trials=60).outcome == "holds"
    r = dc.check(bad, trials=60)
    assert r.outcome == "fails"
    assert "softmax(axis=0)" in dc.explanation(bad, trials=60, shrink=False)


def test_partial_is_shown_readably(reg):
    assert callable_name(functools.partial(softmax, axis=1)) == "softmax(axis=1)"
    d = dc.vjp(of=functools.partial(softmax, axis=0), inputs=MATRIX, registry=reg)(
        functools.partial(softmax_vjp, axis=0)
    )
    assert d.name == f"{__name__}.softmax_vjp(axis=0)"
    assert "partial" not in repr(d)


def test_partial_in_the_command_line_list_and_json(fresh_default_registry, tmp_path, capsys):
    dc.vjp(of=functools.partial(softmax, axis=0), inputs=MATRIX, name="sm_axis0")(softmax_vjp_sign_slip)
    dc.vjp(of=functools.partial(softmax, axis=0), inputs=MATRIX)(functools.partial(softmax_vjp, axis=0))
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "softmax_vjp(axis=0)" in listed and "functools.partial" not in listed
    out = tmp_path / "r.json"
    assert main(["run", "--all", "--no-shrink", "--trials", "40", "--json", str(out)]) == 1  # one derivation fails
    text = out.read_text()
    assert "functools.partial" not in text and "<function" not in text
    names = {r["name"]: r["outcome"] for r in json.loads(text)["results"]}
    assert names == {"sm_axis0": "fails", f"{__name__}.softmax_vjp(axis=0)": "holds"}
