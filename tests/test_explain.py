"""``derivcheck explain`` and the diagnosis in ``derivcheck run``: content, replay, JSON, usage errors."""

import importlib
import json
import shlex

import jax
import jax.numpy as jnp
import pytest

import derivcheck as dc
from derivcheck._report.explain import render
from derivcheck.cli import main


def nll_mean(theta, X, y):
    z = X @ theta
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z)


def logistic_grad_sum(theta, X, y):
    return X.T @ (jax.nn.sigmoid(X @ theta) - y)


# two failing size sets with different m: a factor is named after a dimension only when it varies with it
LOGISTIC = dc.inputs(
    theta=dc.normal("d"),
    X=dc.full_rank("m", "d"),
    y=dc.bernoulli("m"),
    sizes=[{"d": 1, "m": 1}, {"d": 2, "m": 3}, {"d": 3, "m": 5}],
)


@pytest.fixture
def cli_reg(reg, monkeypatch):
    """The CLI's default registry replaced by the test's own, holding one wrong and one right derivation."""
    monkeypatch.setattr(importlib.import_module("derivcheck._registry"), "_DEFAULT", reg)
    dc.gradient(
        of=nll_mean,
        wrt="theta",
        inputs=LOGISTIC,
        registry=reg,
        name="demo.grad_as_written",
        source="notes, g = Xᵀ(μ − y)",
        statement=r"g = X^T(\mu - y)",
        expect=dc.fails("the 1/m is dropped"),
    )(logistic_grad_sum)
    dc.gradient(of=lambda x: jnp.sum(x**2), inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="demo.ok")(
        lambda x: 2 * x
    )
    return reg


def run_cli(argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().out


def test_explain_shows_claim_verdict_diagnosis_counterexample_and_replay(cli_reg, capsys, tmp_path):
    path = tmp_path / "explain.json"
    code, out = run_cli(["explain", "demo.grad_as_written", "--trials", "40", "--json", str(path)], capsys)
    assert code == 0  # it fails, as expected
    text = " ".join(out.split())
    assert "statement: g = X^T(\\mu - y)" in text and "source: notes, g = Xᵀ(μ − y)" in text
    assert "verdict: fails, as expected" in text
    assert "diagnosis: off by a factor of m = 5 (rows of X)" in text
    assert "counterexample (d=1 m=2, shrunk from d=3 m=5" in text
    assert "derived (actual) reference (expected) difference" in text
    assert "replay the worst trial: derivcheck run demo.grad_as_written --seed 0 --trials 15 --sizes d=3,m=5" in text
    doc = json.loads(path.read_text())["results"][0]
    assert doc["diagnosis"]["kind"] == "factor" and doc["counterexample"]["sizes"] == {"d": 1, "m": 2}


def test_the_replay_command_reproduces_the_worst_trial(cli_reg, capsys, tmp_path):
    explained, replayed = tmp_path / "explain.json", tmp_path / "replay.json"
    _, out = run_cli(
        ["explain", "demo.grad_as_written", "--trials", "40", "--no-shrink", "--json", str(explained)], capsys
    )
    line = next(ln for ln in out.splitlines() if ln.startswith("replay the worst trial: "))
    argv = [*shlex.split(line.split(": ", 1)[1])[1:], "--json", str(replayed)]
    assert main(argv) == 0
    first = json.loads(explained.read_text())["results"][0]["worst"]
    again = json.loads(replayed.read_text())["results"][0]["worst"]
    assert again == first  # same size set, regime, index, inputs and both sides' values


def test_run_prints_a_one_line_diagnosis_and_the_explain_hint(cli_reg, capsys):
    code, out = run_cli(["run", "demo.*", "--trials", "40", "--seed", "2", "--verbose"], capsys)  # expected: -v
    assert code == 0
    lines = out.splitlines()
    diag = [ln for ln in lines if ln.strip().startswith("diagnosis:")]
    assert diag == ["    diagnosis: off by a factor of m = 5 (rows of X): derived = m · reference"]
    assert "    why: derivcheck explain demo.grad_as_written --seed 2 --trials 40" in lines


def test_an_expected_failure_is_one_line_and_its_replay_asks_for_the_account(cli_reg, capsys):
    _, quiet = run_cli(["run", "demo.grad_as_written", "--trials", "40"], capsys)
    assert "worst input" not in quiet
    _, loud = run_cli(["run", "demo.grad_as_written", "--trials", "40", "-v"], capsys)
    assert "    worst input (d=" in loud  # -v gives an expected failure its whole account, its trial too
    (replay,) = [ln.split(": ", 1)[1] for ln in loud.splitlines() if ln.strip().startswith("replay:")]
    assert replay.endswith(" -v")
    _, pasted = run_cli(shlex.split(replay)[1:], capsys)
    assert "    worst input (d=" in pasted


def test_explain_at_one_size_set_explains_again_at_it(cli_reg, capsys):
    argv = ["explain", "demo.grad_as_written", "--trials", "40", "--sizes", "d=2,m=3", "--no-shrink"]
    _, out = run_cli(argv, capsys)
    (again,) = [ln.split(": ", 1)[1] for ln in out.splitlines() if ln.startswith("explain again: ")]
    assert "--sizes d=2,m=3" in again
    _, pasted = run_cli(shlex.split(again)[1:], capsys)
    verdict = [ln for ln in out.splitlines() if ln.startswith("verdict:")]
    assert verdict and verdict == [ln for ln in pasted.splitlines() if ln.startswith("verdict:")]


def test_an_error_has_no_worst_trial_to_replay(cli_reg, capsys):
    dc.gradient(of=lambda x: jnp.sum(x**2), inputs=dc.inputs(x=dc.normal("n")), registry=cli_reg, name="demo.shape")(
        lambda x: x[:1]
    )
    _, out = run_cli(["explain", "demo.shape", "--trials", "20"], capsys)
    assert "verdict: ERROR" in out and "replay the worst trial" not in out
    assert "check again: derivcheck run demo.shape --seed 0" in out


def test_run_shrink_fills_the_json_counterexample(cli_reg, capsys, tmp_path):
    path = tmp_path / "run.json"
    run_cli(["run", "demo.*", "--trials", "40", "--shrink", "--json", str(path)], capsys)
    results = {r["name"]: r for r in json.loads(path.read_text())["results"]}
    assert results["demo.grad_as_written"]["counterexample"]["sizes"] == {"d": 1, "m": 2}
    assert results["demo.ok"]["counterexample"] is None and results["demo.ok"]["diagnosis"] is None


def test_explaining_a_holding_derivation_says_so(cli_reg, capsys):
    code, out = run_cli(["explain", "demo.ok", "--trials", "20"], capsys)
    assert code == 0
    assert "verdict: holds, as expected" in out and "diagnosis" not in out and "counterexample" not in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["explain", "demo.nothing"], "no derivation named 'demo.nothing'"),
        (["explain", "demo.*"], "matches 2 derivations"),
        (["explain", "demo.grad_as_written", "--sizes", "d=1"], "misses ['m']"),
        (["run", "demo.grad_as_written", "--sizes", "d=4,m=2"], "m must be at least d"),
        (["run", "demo.grad_as_written", "--sizes", "d:4"], "NAME=INT"),
    ],
)
def test_usage_errors_name_what_to_fix(cli_reg, capsys, argv, words):
    assert main(argv) == 2
    assert words in capsys.readouterr().err.replace("\n", "")


def test_render_of_a_definiteness_failure_shows_eigenvalues(reg):
    spec = dc.inputs(z=dc.normal("K"), y=dc.one_hot(classes="K"), sizes=[{"K": 2}, {"K": 4}])  # K ≥ 2

    def softmax_hessian(z, y):
        p = jax.nn.softmax(z)
        return jnp.diag(p) - jnp.outer(p, p)

    d = dc.definite("pd", inputs=spec, registry=reg, name="not_pd")(softmax_hessian)
    r = dc.with_counterexample(dc.check(d, trials=20), d, seconds=60)
    text = "\n".join(render(d, r, trials=20))
    assert "diagnosis: singular along 1 (the all-ones direction): rank K − 1" in text
    assert "counterexample (K=2, shrunk from K=4" in text and "z = [0, 0]" in text
    assert "eigenvalues = [" in text and "0.5]" in text
    assert "w.r.t." not in text.splitlines()[0]  # a definiteness claim without of= differentiates nothing
