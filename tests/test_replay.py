"""Every printed command comes from one record, :class:`derivcheck._report.replay.Replay`."""

import shlex

import jax.numpy as jnp
import pytest

import derivcheck as dc
from derivcheck._derivation import HOLDS
from derivcheck._report.replay import Replay, glob_escape, sizes_arg, trials_at_sizes
from derivcheck._result import Cell, Result, Trial
from derivcheck.cli import main


def test_run_explain_and_pytest_commands_share_one_order():
    r = Replay("a.b", seed=4, trials=90, sizes=(("d", 3), ("m", 5)), loads=("f.py", "pkg.mod"), timeout=2.5)
    common = "a.b --seed 4 --trials 90 --sizes d=3,m=5 --load f.py --load pkg.mod"
    assert r.run() == f"derivcheck run {common} --timeout 2.5"
    assert r.explain() == f"derivcheck explain {common}"  # explain has no --timeout
    assert r.pytest("tests/t.py::a.b") == "pytest tests/t.py::a.b --derivcheck-seed 4 --derivcheck-trials 90"


def test_no_trials_leaves_the_flag_out():
    assert Replay("a.b", seed=0).explain() == "derivcheck explain a.b --seed 0"
    assert Replay("a.b", seed=0).run() == "derivcheck run a.b --seed 0"
    assert Replay("a.b", seed=1).pytest("t.py::a.b") == "pytest t.py::a.b --derivcheck-seed 1"


@pytest.mark.parametrize("name", ["odd name", "it's", "a;rm -rf", "$HOME"])
def test_every_word_is_shell_quoted(name):
    for command in (Replay(name, 0, 5, loads=(name,)).run(), Replay(name, 0).explain()):
        words = shlex.split(command)
        assert words[2] == name
        assert command.startswith("derivcheck ")


def test_the_worst_trials_replay_draws_its_cell_again():
    spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 2}, {"n": 3}], regimes=("typical", "large"))
    d = dc.gradient(of=lambda x: jnp.sum(x**3), inputs=spec, name="w.cube", registry=dc.Registry())(lambda x: x)
    worst = Trial((("n", 3),), "large", 1, {"x": jnp.ones(3)}, None, None, 1.0, 1.0)
    cells = tuple(Cell((("n", n),), g, 25, 1, 1.0, 1.0) for n in (2, 3) for g in ("typical", "large"))
    r = Result("w.cube", "gradient", "fails", HOLDS, "", trials=100, seed=7, worst=worst, cells=cells)
    replay = Replay.of_worst(d, r, ("f.py",))
    assert replay == Replay("w.cube", 7, trials_at_sizes(d.inputs, 100), (("n", 3),), ("f.py",))
    assert trials_at_sizes(d.inputs, 100) == 50  # 25 per cell, two regimes
    assert replay.run() == "derivcheck run w.cube --seed 7 --trials 50 --sizes n=3 --load f.py"
    no_worst = Replay.of_worst(d, Result("w.cube", "gradient", "fails", HOLDS, "", trials=100, seed=7))
    assert no_worst == Replay("w.cube", 7, 100)


def test_sizes_arg():
    assert sizes_arg((("d", 3), ("m", 5))) == "d=3,m=5"


def test_the_command_prints_the_records_commands(tmp_path, fresh_default_registry, capsys):
    user = tmp_path / "user_derivations.py"
    user.write_text(
        "import jax.numpy as jnp\nimport derivcheck as dc\n"
        "@dc.gradient(of=lambda x: jnp.sum(x**3), inputs=dc.inputs(x=dc.normal('n')), name='cli.wrong')\n"
        "def wrong(x):\n    return 2 * x**2\n"
    )
    argv = ["run", "cli.wrong", "--load", str(user), "--trials", "12", "--seed", "3", "--sizes", "n=2"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    record = Replay("cli.wrong", 3, 12, (("n", 2),), (str(user),))
    assert f"    replay: {record.run()}" in out.splitlines()
    assert f"    why: {record.explain()}" in out.splitlines()


def test_never_trials_zero():
    assert "--trials" not in Replay("a.b", seed=2, trials=0).run()
    assert "--trials" not in Replay("a.b", seed=2, trials=0).explain()


def test_a_name_with_glob_characters_replays_only_itself(fresh_default_registry, capsys):
    """``run`` takes patterns: the printed command escapes ``[``, ``*``, ``?`` so that it matches one name."""
    spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 2}], regimes=("typical",))
    for name in ("g[1]*?", "g1xy", "g[1]*?.other"):
        dc.gradient(of=lambda x: jnp.sum(x**2), inputs=spec, name=name)(lambda x: x)  # all wrong
    command = Replay("g[1]*?", 0, 5).run()
    assert shlex.split(command)[2] == glob_escape("g[1]*?") == "g[[]1][*][?]"
    assert main([*shlex.split(command)[1:]]) == 1
    out = capsys.readouterr().out
    assert "1 derivations" in out and "UNEXPECTED FAILS: g[1]*? —" in out
    assert "g1xy" not in out and "other" not in out


def test_a_name_that_starts_with_a_dash_is_not_read_as_an_option(fresh_default_registry, capsys):
    """``derivcheck run -dash.start …`` was "unrecognized arguments" when pasted (argparse reads an option)."""
    spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 2}], regimes=("typical",))
    dc.gradient(of=lambda x: jnp.sum(x**2), inputs=spec, name="-dash.start")(lambda x: x)  # wrong
    for command in (Replay("-dash.start", 0, 5).run(), Replay("-dash.start", 0, 5).explain()):
        assert main([*shlex.split(command)[1:], "--no-suggest"]) == 1, command
        assert "-dash.start" in capsys.readouterr().out
