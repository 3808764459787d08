"""The command line, in-process: exit codes, the table, --load of a user's file, --json."""

import json
import textwrap

import pytest

import derivcheck as dc
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
    # a green run is quiet: one line per expected failure, no diagnosis or commands (those are under -v)
    expected_failures = [d for d in dc.registry().select("softmax_ce.gradient*") if not d.expect.holds]
    lines = [line for line in out.splitlines() if line.startswith("ok (fails as expected): softmax_ce.")]
    assert len(lines) == len(expected_failures) >= 3
    assert "why:" not in out and "diagnosis:" not in out and "replay:" not in out


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


def test_a_load_error_points_at_the_users_line_not_into_derivcheck(tmp_path, capsys):
    mine = tmp_path / "mine.py"
    mine.write_text('import derivcheck as dc\n\nSPEC = dc.inputs(x=dc.normal("n"), sizes=[{"m": 2}])\n')
    assert main(["run", "--load", str(mine)]) == 1
    err = capsys.readouterr().err
    assert "mine.py failed to import: InputSpecError: " in err and "(mine.py:3)" in err and "_inputs.py" not in err


def test_list_shows_the_catalog(capsys):
    assert main(["list", "logistic.*"]) == 0
    assert "logistic.hessian" in capsys.readouterr().out


def test_piped_list_is_one_plain_line_per_derivation_its_name_first(capsys):
    """Not a terminal: no box, no 80-column folding; each line's first word pastes into `explain`."""
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = dc.registry().names()
    assert lines[0].split()[0] == "derivation" and lines[-1] == f"{len(names)} derivations"
    assert [line.split()[0] for line in lines[1:-1]] == names
    assert not any(ch in "".join(lines) for ch in "│┃━")


UNNAMED = textwrap.dedent(
    """
    import jax.numpy as jnp
    import derivcheck as dc

    @dc.gradient(of=lambda x: jnp.sum(x ** 3), inputs=dc.inputs(x=dc.normal("n")))
    def cube_grad_wrong(x):
        return 3 * x ** 2 + x
    """
)


def _strip_seconds(o):
    if isinstance(o, dict):
        return {k: _strip_seconds(v) for k, v in o.items() if k != "seconds"}
    if isinstance(o, list):
        return [_strip_seconds(v) for v in o]
    return o


def test_load_alone_checks_exactly_that_file_under_a_stable_name(tmp_path, capsys):
    """``run --load FILE``: FILE's derivations only, named ``<stem>.<function>``; a second process agrees."""
    import subprocess
    import sys

    (tmp_path / "mine.py").write_text(UNNAMED)
    docs = []
    for run in ("a", "b"):  # two processes: Python's salted hash() must not reach the name or the draws
        out = tmp_path / f"{run}.json"
        cmd = [sys.executable, "-m", "derivcheck.cli", "run", "--load", "mine.py", "--trials", "40", "--json", str(out)]
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 1, proc.stderr
        docs.append(json.loads(out.read_text()))
    assert [r["name"] for r in docs[0]["results"]] == ["mine.cube_grad_wrong"]
    assert _strip_seconds(docs[0]) == _strip_seconds(docs[1])
    assert "derivcheck run mine.cube_grad_wrong --seed 0 --trials 40 --load mine.py" in proc.stdout


def test_catalog_joins_a_loaded_file_only_when_asked(tmp_path):
    import subprocess
    import sys

    (tmp_path / "mine.py").write_text(UNNAMED)

    def listing(*flags: str) -> str:
        cmd = [sys.executable, "-m", "derivcheck.cli", "list", "--load", "mine.py", *flags]
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    only = listing()
    assert "mine.cube_grad_wrong" in only and "1 derivations" in only and "softmax_ce" not in only
    both = listing("--catalog")
    assert "mine.cube_grad_wrong" in both and "softmax_ce.gradient" in both


def test_a_broken_load_alone_runs_nothing_else(tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("import derivcheck\nraise RuntimeError('boom')\n")
    assert main(["run", "--load", str(broken), "--trials", "20"]) == 1
    captured = capsys.readouterr()
    assert "broken.py failed to import: RuntimeError: boom" in captured.err
    assert "0 derivations" in captured.out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("derivcheck ")


def test_sys_exit_is_an_error_not_a_green_run(tmp_path, capsys):
    """sys.exit() at import, or inside a derived function, never ends the command with exit 0."""
    at_import = tmp_path / "exits.py"
    at_import.write_text("import sys\nsys.exit(0)\n")
    assert main(["run", "--load", str(at_import)]) == 1
    assert "exits.py failed to import: it called sys.exit(0)" in capsys.readouterr().err
    inside = tmp_path / "exits_inside.py"
    inside.write_text(
        UNNAMED.replace("return 3 * x ** 2 + x", "raise SystemExit(0)").replace("cube_grad_wrong", "cube_grad_exits")
    )
    with dc.scoped_registry():
        assert main(["run", "--load", str(inside), "--trials", "8"]) == 1
    out = capsys.readouterr().out
    assert "exits_inside.cube_grad_exits" in out and "sys.exit(0)" in out


def test_reports_never_overwrite_each_other_or_the_users_file(tmp_path, capsys):
    mine = tmp_path / "mine.py"
    mine.write_text(UNNAMED)
    before = mine.read_text()
    out = str(tmp_path / "out")
    assert main(["run", "softmax_ce.gradient", "--json", out, "--junit-xml", out]) == 2
    assert "--json and --junit-xml both write" in capsys.readouterr().err
    assert main(["run", "--load", str(mine), "--json", str(mine)]) == 2
    assert "is the file --load reads" in capsys.readouterr().err
    assert main(["explain", "mine.cube_grad_wrong", "--load", str(mine), "--json", str(mine)]) == 2
    assert mine.read_text() == before and not (tmp_path / "out").exists()


def test_reports_never_replace_rules_files_sources_loaded_by_name_or_nothing(tmp_path, capsys, monkeypatch):
    """``--rules FILE``, ``--load MODULE`` and a helper the loaded file imports were overwritten with the
    report (the guard compared with ``--load`` paths only); ``--json ""`` (an unset ``$REPORT``) wrote nothing
    and exited 0."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    mine = tmp_path / "mine_by_name.py"
    mine.write_text(UNNAMED)
    helper = tmp_path / "helper.py"
    helper.write_text("X = 1\n")
    before = {p: p.read_text() for p in (mine, helper)}
    for argv, said in (
        (["run", "--rules", str(mine), "--json", str(mine)], "is the file --rules reads"),
        (["run", "--load", "mine_by_name", "--json", str(mine)], "is an existing source file"),
        (["run", "--load", str(mine), "--markdown", str(helper)], "is an existing source file"),
        (["run", "--load", str(mine), "--json", ""], "--json was given an empty path"),
        (["explain", "x", "--json", " "], "--json was given an empty path"),
    ):
        with dc.scoped_registry():
            assert main(argv) == 2, argv
        assert said in capsys.readouterr().err, argv
    assert {p: p.read_text() for p in before} == before


def test_explain_json_to_an_unwritable_path_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code = main(["explain", "softmax_ce.gradient", "--trials", "10", "--json", str(blocker / "out.json")])
    err = capsys.readouterr().err
    assert code == 1 and f"error: could not write {blocker / 'out.json'}: " in err and len(err.splitlines()) == 1
    assert "internal error" not in err


def test_out_of_memory_is_one_line_saying_what_to_lower(monkeypatch, capsys):
    from derivcheck import cli

    def exhausted(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(cli, "check_and_shrink", exhausted)
    assert main(["explain", "softmax_ce.gradient", "--trials", "10"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: out of memory: lower --trials") and "--sizes" in err and "\n" not in err


def test_a_seed_beyond_64_bits_is_a_usage_error_not_an_input_error(capsys):
    assert main(["run", "softmax_ce.gradient", "--seed", str(2**63)]) == 2
    assert "--seed: must be from 0 to 2**63 - 1" in capsys.readouterr().err
    for text in ("1.5", "random"):  # was "invalid _seed value", a name of our code
        assert main(["run", "softmax_ce.gradient", "--seed", text]) == 2
        assert f"--seed: must be a whole number from 0 to 2**63 - 1, got '{text}'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="seed must be an int from 0 to 2"):
        dc.check("softmax_ce.gradient", seed=2**63)


BRACKETED = textwrap.dedent(
    """
    import jax.numpy as jnp
    import derivcheck as dc

    @dc.gradient(of=lambda x: jnp.sum(x ** 2), inputs=dc.inputs(x=dc.normal("n")), name="mine.square[wrt x]")
    def square_grad(x):
        return 2 * x
    """
)


def test_a_name_with_glob_characters_is_found_when_pasted_as_the_table_prints_it(tmp_path, fresh_default_registry):
    """``[rule wrt x]`` in a name is a glob character class: pasted from the table it matched nothing."""
    path = tmp_path / "bracketed.py"
    path.write_text(BRACKETED)
    assert main(["run", "--load", str(path), "mine.square[wrt x]", "--trials", "10"]) == 0
    assert [r.name for r in dc.run("mine.square[wrt x]", trials=10)] == ["mine.square[wrt x]"]
