"""The command line, in-process: exit codes, the table, --load of a user's file, --json."""

import json
import textwrap

import pytest

from derivcheck.cli import main

USER_FILE = textwrap.dedent(
    """
    import jax.numpy as jnp
    import derivcheck as dc

    def loss(w, x):
        return jnp.sum(jnp.tanh(x @ w) ** 2)

    SPEC = dc.inputs(w=dc.normal("d"), x=dc.normal("n", "d"))

    @dc.gradient(of=loss, wrt="w", inputs=SPEC, name="user.tanh_sq_grad")
    def good(w, x):
        t = jnp.tanh(x @ w)
        return x.T @ (2 * t * (1 - t**2))

    @dc.gradient(of=loss, wrt="w", inputs=SPEC, name="user.tanh_sq_grad_wrong")
    def bad(w, x):
        t = jnp.tanh(x @ w)
        return x.T @ (2 * t * (1 - t))
    """
)


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "my_derivations.py"
    path.write_text(USER_FILE)
    return path


def test_run_user_file_reports_the_wrong_one_with_its_worst_input(user_file, capsys, tmp_path):
    out_json = tmp_path / "out" / "results.json"
    code = main(["run", "--load", str(user_file), "user.*", "--trials", "60", "--json", str(out_json)])
    text = capsys.readouterr().out
    assert code == 1
    assert "UNEXPECTED FAILS: user.tanh_sq_grad_wrong" in text
    assert "worst input" in text and "derived   (actual)" in text and "reference (expected)" in text
    doc = json.loads(out_json.read_text())
    assert doc["schema_version"] == 1 and doc["ok"] is False
    by_name = {r["name"]: r for r in doc["results"]}
    assert by_name["user.tanh_sq_grad"]["outcome"] == "holds"
    bad = by_name["user.tanh_sq_grad_wrong"]
    assert bad["outcome"] == "fails" and bad["worst"]["inputs"]["w"]["shape"]


def test_run_all_matching_catalog_pattern_exits_zero(capsys):
    assert main(["run", "softmax_ce.gradient*", "--trials", "30"]) == 0
    out = capsys.readouterr().out
    assert "softmax_ce.gradient" in out and "fail as expected" in out


def test_usage_errors_exit_2(capsys):
    assert main(["run"]) == 2
    assert main(["run", "no.such.derivation*"]) == 2
    assert main(["run", "--trials", "0", "--all"]) == 2
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "no derivation matches" in err


def test_broken_user_file_is_one_line_and_the_run_goes_on(tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("import derivcheck\nraise RuntimeError('boom')\n")
    code = main(["run", "--load", str(broken), "softmax_ce.gradient", "--trials", "20"])
    captured = capsys.readouterr()
    assert code == 1
    assert "broken.py failed to import: RuntimeError: boom" in captured.err
    assert "softmax_ce.gradient" in captured.out


def test_list_shows_the_catalog(capsys):
    assert main(["list", "logistic.*"]) == 0
    assert "logistic.hessian" in capsys.readouterr().out
