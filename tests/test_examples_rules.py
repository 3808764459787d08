"""``examples/jax_rules``: a JAX project whose backward passes are ``custom_vjp`` rules over parameter
dicts, checked by pytest through the plugin and by ``derivcheck run --rules``, both ways."""

import shutil
from pathlib import Path

import pytest

from derivcheck.cli import main

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "jax_rules"
RULES = ["layer_norm[rule output]", "layer_norm[rule wrt x]", "layer_norm[rule wrt params]"]
RULES += [r.replace("layer_norm", "attention") for r in RULES]


@pytest.fixture(autouse=True)
def fresh_registry(fresh_default_registry):
    return fresh_default_registry


def test_pytest_checks_every_rule_the_tests_import(pytester):
    shutil.copytree(EXAMPLE, pytester.path, dirs_exist_ok=True)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rA", "--derivcheck-trials", "40")
    result.assert_outcomes(passed=len(RULES) + 1)
    text = result.stdout.str()
    assert all(f"jax_rules.layers.{r}" in text for r in RULES), text
    assert "clip_gradient" not in text  # no inputs declared: not a test item


def test_pytest_names_the_wrong_leaf_of_a_planted_error(pytester):
    shutil.copytree(EXAMPLE, pytester.path, dirs_exist_ok=True)
    layers = pytester.path / "jax_rules" / "layers.py"
    source = layers.read_text()
    planted = source.replace('"beta": jnp.sum(ct, axis=0)', '"beta": 0.5 * jnp.sum(ct, axis=0)')
    assert planted != source
    layers.write_text(planted)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--derivcheck-trials", "40")
    result.assert_outcomes(passed=len(RULES), failed=1)
    failing = [line for line in result.stdout.lines if "wrong only in params['beta']" in line]
    assert failing and failing[0].startswith("jax_rules.layers.layer_norm[rule wrt params] (vjp): fails")


def test_run_rules_checks_the_example(fresh_default_registry, capsys):
    assert main(["run", "--rules", str(EXAMPLE / "jax_rules" / "layers.py"), "--trials", "40"]) == 0
    out = capsys.readouterr().out
    assert "skipped layers.clip_gradient: a custom_vjp rule without declared inputs" in out
    assert all(f"layers.{r}" in out for r in RULES)
    assert "6 derivations, 6 hold" in out
