"""``dc.jvp``, the claim kind added through the ``Kind`` table alone: it holds, it fails with a
diagnosis, it shrinks, and it runs from the command line, in JSON, ``explain`` and pytest."""

import importlib
import json
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck as dc
from derivcheck.cli import main
from derivcheck.testing import assert_jvp

pytest_plugins = ["pytester"]

LAYER = dc.inputs(x=dc.normal("n"), W=dc.normal("m", "n"), sizes=[{"m": 1, "n": 1}, {"m": 2, "n": 3}, {"m": 4, "n": 2}])
SQUARE = dc.inputs(X=dc.normal("k", "k"), A=dc.normal("k", "k"), sizes=[{"k": 2}, {"k": 3}])


def layer(x, W):
    return jnp.tanh(W @ x)


def layer_jvp(x, W, t):
    """``d tanh(Wx) [t] = (1 − tanh²(Wx)) ⊙ (W t)``."""
    return (1 - jnp.tanh(W @ x) ** 2) * (W @ t)


def product(X, A):
    return X @ A


def _jvp(reg, fn, of=layer, wrt="x", inputs=LAYER, name="layer.jvp", **options):
    return dc.jvp(of=of, wrt=wrt, inputs=inputs, registry=reg, name=name, **options)(fn)


@pytest.mark.parametrize("seed", range(4))
def test_a_correct_jvp_holds_on_many_seeds(reg, seed):
    r = dc.check(_jvp(reg, layer_jvp), trials=120, seed=seed)
    assert r.outcome == "holds", r.message
    assert r.claim == "jvp" and r.kind == "jvp" and r.path == "dense" and "jax.jvp" in r.message
    assert r.worst.inputs["tangent"].shape == r.worst.inputs["x"].shape  # drawn like args[wrt]


def test_the_tangent_is_the_trailing_argument_not_an_input(reg):
    d = _jvp(reg, layer_jvp)
    assert d.arg_names == ("x", "W") and d.claim.extra_arg == "tangent" and not d.problem


@pytest.mark.parametrize(
    "wrong, inputs, of, wrt, kind",
    [
        (lambda x, W, t: -layer_jvp(x, W, t), LAYER, layer, "x", "sign"),
        (lambda x, W, t: 0.5 * layer_jvp(x, W, t), LAYER, layer, "x", "factor"),
        (lambda X, A, t: (t @ A).T, SQUARE, product, "X", "transpose"),
    ],
    ids=["sign", "factor", "transpose"],
)
def test_planted_errors_fail_with_a_diagnosis(reg, wrong, inputs, of, wrt, kind):
    r = dc.check(_jvp(reg, wrong, of=of, wrt=wrt, inputs=inputs), trials=60)
    assert r.outcome == "fails" and "differs from jax.jvp" in r.message
    assert r.diagnosis is not None and r.diagnosis.kind == kind, r.diagnosis


def test_a_wrong_shape_names_the_rule(reg):
    r = dc.check(_jvp(reg, lambda x, W, t: W.T @ (W @ t)), trials=20)
    assert r.outcome == "error" and "a JVP returns the tangent pushed forward to of's output" in r.message


def test_a_failing_jvp_shrinks(reg):
    d = _jvp(reg, lambda x, W, t: -layer_jvp(x, W, t))
    r = dc.with_counterexample(dc.check(d, trials=60), d)
    cx = r.counterexample
    assert cx is not None and dict(cx.sizes) == {"m": 1, "n": 1}
    assert set(cx.inputs) == {"x", "W", "tangent"}
    assert np.allclose(cx.derived, -cx.reference)


def test_assert_jvp_passes_and_fails_readably():
    assert assert_jvp(layer_jvp, layer, LAYER, trials=40).outcome == "holds"
    with pytest.raises(AssertionError, match=r"differs from jax\.jvp"):
        assert_jvp(lambda x, W, t: -layer_jvp(x, W, t), layer, LAYER, trials=40)


# ------------------------------------------------------------------ command line, JSON, explain, pytest


@pytest.fixture
def cli_reg(reg, monkeypatch):
    monkeypatch.setattr(importlib.import_module("derivcheck._registry"), "_DEFAULT", reg)
    _jvp(reg, layer_jvp, name="demo.jvp")
    _jvp(reg, lambda x, W, t: -layer_jvp(x, W, t), name="demo.jvp_sign", expect=dc.fails("sign slip"))
    return reg


def test_run_and_explain_from_the_command_line(cli_reg, capsys, tmp_path):
    path = tmp_path / "run.json"
    assert main(["run", "demo.*", "--trials", "40", "--shrink", "--json", str(path)]) == 0
    results = {r["name"]: r for r in json.loads(path.read_text())["results"]}
    assert results["demo.jvp"]["kind"] == "jvp" and results["demo.jvp"]["outcome"] == "holds"
    bad = results["demo.jvp_sign"]
    assert bad["outcome"] == "fails" and bad["diagnosis"]["kind"] == "sign"
    assert bad["counterexample"]["sizes"] == {"m": 1, "n": 1} and "tangent" in bad["worst"]["inputs"]
    capsys.readouterr()
    assert main(["explain", "demo.jvp_sign", "--trials", "40"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "verdict: fails, as expected" in text and "counterexample (m=1 n=1" in text


def test_a_jvp_is_a_pytest_item(pytester, fresh_default_registry):
    pytester.makepyfile(
        test_jvp_items=textwrap.dedent(
            """
            import jax.numpy as jnp
            import derivcheck as dc

            @dc.jvp(of=lambda x: jnp.sin(x), inputs=dc.inputs(x=dc.normal("n")), name="sin.jvp")
            def sin_jvp(x, t):
                return jnp.cos(x) * t
            """
        )
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "jvp", "--derivcheck-trials", "40")
    result.assert_outcomes(passed=1)
