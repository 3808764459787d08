"""The same seed gives the same verdicts and the same JSON (timings aside); each failure prints its replay."""

import json
import re
import shlex
import textwrap

import pytest

from derivcheck.cli import main

pytest_plugins = ["pytester"]

USER_FILE = """
import jax
import jax.numpy as jnp
import derivcheck as dc

SPEC = dc.inputs(theta=dc.normal("d"), X=dc.full_rank("m", "d"), y=dc.bernoulli("m"),
                 sizes=[{"m": 1, "d": 1}, {"m": 5, "d": 3}], regimes=("typical", "shifted"))

def nll(theta, X, y):
    z = X @ theta
    return jnp.sum(jnp.logaddexp(0.0, z) - y * z)

@dc.gradient(of=nll, wrt="theta", inputs=SPEC, name="repro.right")
def right(theta, X, y):
    return X.T @ (jax.nn.sigmoid(X @ theta) - y)

@dc.gradient(of=nll, wrt="theta", inputs=SPEC, name="repro.dropped_term")
def dropped(theta, X, y):
    return X.T @ jax.nn.sigmoid(X @ theta)
"""


@pytest.fixture(autouse=True)
def fresh_registry(fresh_default_registry):
    return fresh_default_registry


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "repro_derivations.py"
    path.write_text(USER_FILE)
    return path


def run_json(tmp_path, argv, name):
    out = tmp_path / f"{name}.json"
    code = main([*argv, "--json", str(out)])
    return code, without_timings(json.loads(out.read_text()))


def without_timings(doc):
    """The document with every ``seconds`` field removed (the only thing allowed to differ)."""
    if isinstance(doc, dict):
        return {k: without_timings(v) for k, v in doc.items() if k != "seconds"}
    if isinstance(doc, list):
        return [without_timings(v) for v in doc]
    return doc


def test_same_seed_same_json_and_another_seed_other_inputs(tmp_path, user_file):
    argv = ["run", "--load", str(user_file), "repro.*", "--trials", "40", "--seed", "11"]
    code_a, a = run_json(tmp_path, argv, "a")
    code_b, b = run_json(tmp_path, argv, "b")
    assert code_a == code_b == 1
    assert a == b
    assert [r["outcome"] for r in a["results"]] == ["holds", "fails"]
    _, c = run_json(tmp_path, [*argv[:-1], "12"], "c")
    assert [r["outcome"] for r in c["results"]] == ["holds", "fails"]
    assert c["results"][1]["worst"]["inputs"] != a["results"][1]["worst"]["inputs"]


def test_each_failure_prints_the_command_that_reproduces_it(tmp_path, user_file, capsys):
    code, first = run_json(tmp_path, ["run", "--load", str(user_file), "repro.*", "--trials", "30", "--seed", "4"], "1")
    assert code == 1
    lines = re.findall(r"replay: (.*)", capsys.readouterr().out)
    assert len(lines) == 1, lines
    words = shlex.split(lines[0])
    assert words[:3] == ["derivcheck", "run", "repro.dropped_term"]
    code, again = run_json(tmp_path, words[1:], "2")
    assert code == 1
    (failed,) = [r for r in first["results"] if r["outcome"] == "fails"]
    assert again["results"] == [failed]


def test_plugin_runs_are_reproducible_by_seed(pytester):
    pytester.makepyfile(
        test_repro=textwrap.dedent(
            """
            import jax.numpy as jnp
            import derivcheck as dc

            SPEC = dc.inputs(x=dc.normal("n"), sizes=[{"n": 3}], regimes=("typical",))

            @dc.gradient(of=lambda x: jnp.sum(x**3), inputs=SPEC, name="repro.plugin_wrong")
            def wrong(x):
                return 3 * x**2 + 0.1 * x
            """
        )
    )

    def report(seed):
        result = pytester.runpytest_inprocess(
            "-p", "no:cacheprovider", "--derivcheck-trials", "10", "--derivcheck-seed", seed
        )
        result.assert_outcomes(failed=1)
        return [line for line in result.outlines if line.startswith("    ") or "reproduce:" in line]

    first, again, other = report("3"), report("3"), report("4")
    assert first == again
    assert first != other
    assert any(
        "reproduce: pytest test_repro.py::plugin_wrong --derivcheck-seed 3 --derivcheck-trials 10" in x for x in first
    )
