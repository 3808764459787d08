"""The pytest plugin, driven through pytest's own ``pytester``: collection, outcomes, reports, inertness.

Runs are in-process (fast) against a fresh default registry, except where the
point is a clean interpreter (the plugin must not import derivcheck or JAX).
"""

import os
import re
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "external_project"

HEADER = """
import jax.numpy as jnp
import pytest
import derivcheck as dc

SPEC = dc.inputs(x=dc.normal("n"), sizes=[{"n": 3}], regimes=("typical", "large"))

def cube(x):
    return jnp.sum(x**3)
"""


@pytest.fixture(autouse=True)
def fresh_registry(fresh_default_registry):
    """Each inner run declares into its own default registry (modules are re-imported per run)."""
    return fresh_default_registry


def write(pytester, name, body):
    pytester.makepyfile(**{name: HEADER + textwrap.dedent(body)})


def test_example_project_gives_one_item_per_derivation_an_xfail_and_a_readable_failure(pytester):
    shutil.copytree(EXAMPLE, pytester.path, dirs_exist_ok=True)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rA", "--derivcheck-trials", "40")
    result.assert_outcomes(passed=6, failed=1, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "PASSED tests/derivations_logistic.py::gradient",
            "PASSED tests/derivations_logistic.py::hessian",
            "PASSED tests/derivations_logistic.py::hessian_is_psd",
            "XFAIL tests/derivations_logistic.py::gradient_as_in_notes - expected to fail: *sign typo*",
            "FAILED tests/test_layer.py::jacobian_transposed - *",
        ],
        consecutive=False,
    )
    result.stdout.fnmatch_lines(
        [
            "layer.jacobian_transposed (jacobian): fails (expected holds) — differs from jax.jacfwd in *",
            "  worst error: relative *",
            "  worst trial (k=*",
            "    W = *",
            "    derived   (actual)   = *",
            "    reference (expected) = *",
            "  reproduce: pytest tests/test_layer.py::jacobian_transposed --derivcheck-seed 0 --derivcheck-trials 40",
        ]
    )
    text = result.stdout.str()
    assert "Traceback" not in text and "jax/_src" not in text


def test_selection_by_keyword_and_marker(pytester):
    write(
        pytester,
        "test_sel.py",
        """
        @dc.gradient(of=cube, inputs=SPEC, name="sel.grad")
        def grad(x):
            return 3 * x**2

        @pytest.mark.slow
        @dc.hessian(of=cube, inputs=SPEC, name="sel.hess_marked_above")
        def hess(x):
            return jnp.diag(6 * x)

        @dc.jacobian(of=lambda x: x**3, inputs=SPEC, name="sel.jac_marked_below")
        @pytest.mark.slow
        def jac(x):
            return jnp.diag(3 * x**2)

        def test_plain():
            pass
        """,
    )
    pytester.makeini("[pytest]\nmarkers = slow: slow checks\n")

    def ids(*args):
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--collect-only", "-q", *args)
        return sorted(line for line in result.outlines if "::" in line)

    every = ["test_sel.py::grad", "test_sel.py::hess_marked_above", "test_sel.py::jac_marked_below"]
    assert ids() == sorted([*every, "test_sel.py::test_plain"])
    assert ids("-m", "derivcheck") == every
    assert ids("-m", "not derivcheck") == ["test_sel.py::test_plain"]
    assert ids("-m", "slow") == every[1:]
    assert ids("-k", "gradient or plain") == ["test_sel.py::grad", "test_sel.py::test_plain"]
    assert ids("-k", "hess") == ["test_sel.py::hess_marked_above"]


def test_module_marks_apply_to_its_derivations(pytester):
    write(
        pytester,
        "derivations_marked.py",
        """
        pytestmark = pytest.mark.slow

        @dc.gradient(of=cube, inputs=SPEC, name="marked.grad")
        def grad(x):
            return 3 * x**2
        """,
    )
    pytester.makeini("[pytest]\nmarkers = slow: slow checks\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--collect-only", "-q", "-m", "slow")
    assert [line for line in result.outlines if "::" in line] == ["derivations_marked.py::grad"]


def test_expected_failure_that_holds_is_a_strict_xpass_and_an_error_is_never_an_xfail(pytester):
    write(
        pytester,
        "derivations_expect.py",
        """
        @dc.gradient(of=cube, inputs=SPEC, name="exp.holds_after_all", expect=dc.fails("thought wrong"))
        def right(x):
            return 3 * x**2

        @dc.gradient(of=cube, inputs=SPEC, name="exp.broken", expect=dc.fails("thought wrong"))
        def broken(x):
            return jnp.outer(x, x)
        """,
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rA", "--derivcheck-trials", "10")
    result.assert_outcomes(failed=2)
    assert "[XPASS(strict)] expected to fail: thought wrong" in result.outlines
    result.stdout.fnmatch_lines(["exp.broken (gradient): error (expected fails) — derived function returns shape*"])


def test_options_reach_the_check_and_the_replay_command(pytester):
    write(
        pytester,
        "test_opts.py",
        """
        @dc.gradient(of=cube, inputs=SPEC, name="opts.wrong")
        def wrong(x):
            return 2 * x**2
        """,
    )
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--derivcheck-trials", "14", "--derivcheck-seed", "5"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "opts.wrong (gradient): fails (expected holds) — differs from jax.grad in 14 of 14 trials*",
            "  reproduce: pytest test_opts.py::wrong --derivcheck-seed 5 --derivcheck-trials 14",
        ]
    )
    bad = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--derivcheck-trials", "0")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--derivcheck-trials must be >= 1, got 0*"])


def test_module_that_fails_to_import_is_one_failing_item_and_the_run_goes_on(pytester):
    pytester.makepyfile(derivations_broken="import derivcheck\nimport no_such_package_for_derivcheck\n")
    write(
        pytester,
        "derivations_fine.py",
        """
        @dc.gradient(of=cube, inputs=SPEC, name="fine.grad")
        def grad(x):
            return 3 * x**2

        @dc.gradient(of=cube, inputs=SPEC, name="fine.grad")
        def grad_again(x):
            return 3 * x**2
        """,
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rA", "--derivcheck-trials", "10")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "derivations_broken.py failed to import: ModuleNotFoundError: "
            "No module named 'no_such_package_for_derivcheck' (derivations_broken.py:2)"
        ]
    )
    result.stdout.fnmatch_lines(["*fine.grad#duplicate@*duplicate name 'fine.grad' (first defined at *"])


def test_notes_are_warnings(pytester):
    write(
        pytester,
        "test_f32.py",
        """
        @dc.gradient(of=lambda x: jnp.sum(jnp.sin(x)), inputs=dc.inputs(x=dc.normal("n", dtype="float32")),
                     name="f32.sin")
        def sin_grad(x):
            return jnp.cos(x)
        """,
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--derivcheck-trials", "10", "-W", "default")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*DerivcheckWarning: f32.sin: checked at float32 precision*"])


def test_plugin_is_inert_where_derivcheck_is_not_used(pytester):
    pytester.makepyfile(
        test_plain="""
        import sys

        def test_nothing_heavy_was_imported():
            assert "derivcheck" not in sys.modules
            assert "jax" not in sys.modules
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    listed = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--help")
    listed.stdout.fnmatch_lines(["derivcheck:*", "*--derivcheck-trials=N*", "*--derivcheck-seed=S*"])


def test_installed_derivations_reach_the_command_but_not_pytest(pytester, monkeypatch):
    """An installed package's entry point (`derivcheck.derivations`) feeds `derivcheck run`, never a test run."""
    site = pytester.mkdir("site")
    (site / "extpkg_derivations.py").write_text(
        HEADER
        + textwrap.dedent(
            """
            @dc.gradient(of=cube, inputs=SPEC, name="extpkg.cube_grad")
            def grad(x):
                return 3 * x**2
            """
        )
    )
    info = site / "extpkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: extpkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[derivcheck.derivations]\nextpkg = extpkg_derivations\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])]))
    derivcheck_cmd = str(Path(sys.executable).parent / "derivcheck")
    listed = pytester.run(derivcheck_cmd, "list", "extpkg.*")
    assert listed.ret == 0, listed.stderr.str()
    listed.stdout.fnmatch_lines(["*extpkg.cube_grad*", "1 derivations"])
    ran = pytester.run(derivcheck_cmd, "run", "extpkg.*", "--trials", "10")
    assert ran.ret == 0, ran.stdout.str()
    write(
        pytester,
        "test_user.py",
        """
        dc.registry()  # loads every installed package's derivations (and the catalog)

        @dc.gradient(of=cube, inputs=SPEC, name="user.only")
        def grad(x):
            return 3 * x**2
        """,
    )
    collected = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q", "test_user.py")
    assert sorted(line for line in collected.outlines if "::" in line) == ["test_user.py::only"]


# ------------------------------------------------------- what hypothesis taught pytest users

WRONG = """
@dc.gradient(of=cube, inputs=SPEC, name="opts.wrong")
def wrong(x):
    return 2 * x**2
"""


def test_header_names_seed_and_trials_and_a_random_seed_is_replayable(pytester):
    import _derivcheck_pytestplugin
    from derivcheck._api import DEFAULT_TRIALS, MAX_SEED

    assert _derivcheck_pytestplugin.DEFAULT_TRIALS == DEFAULT_TRIALS  # the header says derivcheck's default
    assert _derivcheck_pytestplugin.MAX_SEED == MAX_SEED
    write(pytester, "test_opts.py", WRONG)
    plain = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--derivcheck-shrink-seconds", "0")
    plain.stdout.fnmatch_lines(["derivcheck: seed 0, 300 trials per derivation"])
    args = ["-p", "no:cacheprovider", "--derivcheck-trials", "12", "--derivcheck-shrink-seconds", "0"]
    first = pytester.runpytest_inprocess(*args, "--derivcheck-seed=random")
    header = next(line for line in first.outlines if line.startswith("derivcheck: seed "))
    seed = int(header.split()[2])
    assert header == f"derivcheck: seed {seed} (random; replay with --derivcheck-seed {seed}), 12 trials per derivation"
    reproduce = f"  reproduce: pytest test_opts.py::wrong --derivcheck-seed {seed} --derivcheck-trials 12"
    assert reproduce in first.outlines
    again = pytester.runpytest_inprocess(*args, "--derivcheck-seed", str(seed))
    worst = [line for line in first.outlines if line.startswith("    x = ")]
    assert worst and worst == [line for line in again.outlines if line.startswith("    x = ")]
    typo = pytester.runpytest_inprocess(*args, "--derivcheck-seed", "abc")  # was "invalid _seed value"
    typo.stderr.fnmatch_lines(["*--derivcheck-seed: must be a whole number or 'random', got 'abc'"])


def test_an_unexpected_failure_shows_its_minimal_counterexample(pytester):
    write(pytester, "test_opts.py", WRONG)
    shrunk = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--derivcheck-trials", "12")
    shrunk.stdout.fnmatch_lines(["  counterexample (n=*", "    x = *", "  worst trial (n=3*"])
    none = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--derivcheck-trials", "12", *SHRINK_OFF)
    assert not any(line.startswith("  counterexample (") for line in none.outlines)


SHRINK_OFF = ("--derivcheck-shrink-seconds", "0")


def test_the_last_failing_draw_is_replayed_first_and_forgotten_once_fixed(pytester):
    write(pytester, "test_opts.py", WRONG)
    first = pytester.runpytest_inprocess("--derivcheck-trials", "12", "--derivcheck-seed", "5", *SHRINK_OFF)
    first.assert_outcomes(failed=1)
    assert "opts.wrong" in json_cache(pytester)
    second = pytester.runpytest_inprocess(*SHRINK_OFF)  # another seed and trials: the remembered draw comes first
    second.assert_outcomes(failed=1)
    second.stdout.fnmatch_lines(
        [
            "*note: the last run's failing draw (seed 5, 12 trials), replayed first from pytest's cache",
            "  reproduce: pytest test_opts.py::wrong --derivcheck-seed 5 --derivcheck-trials 12",
        ]
    )
    write(pytester, "test_opts.py", WRONG.replace("2 * x**2", "3 * x**2"))
    fixed = pytester.runpytest_inprocess("--derivcheck-trials", "12", *SHRINK_OFF)
    fixed.assert_outcomes(passed=1)
    assert "opts.wrong" not in json_cache(pytester)


def json_cache(pytester) -> dict:
    import json

    path = pytester.path / ".pytest_cache" / "v" / "derivcheck" / "last_failures"
    return json.loads(path.read_text()) if path.exists() else {}


def test_node_ids_leave_out_the_module_and_stay_the_same_in_every_import_mode(pytester):
    pytester.mkpydir("pkg")
    body = HEADER + textwrap.dedent(
        """
        @dc.gradient(of=cube, inputs=SPEC)
        def grad(x):
            return 3 * x**2

        @dc.hessian(of=cube, inputs=SPEC, name="u.hess")
        def hess(x):
            return jnp.diag(6 * x)
        """
    )
    (pytester.path / "pkg" / "derivations_u.py").write_text(body)
    for mode in ("prepend", "append", "importlib"):
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--collect-only", "-q", f"--import-mode={mode}")
        ids = sorted(line for line in result.outlines if "::" in line)
        assert ids == ["pkg/derivations_u.py::grad", "pkg/derivations_u.py::hess"], mode


def test_tb_styles_shorten_the_failure_report(pytester):
    write(pytester, "test_opts.py", WRONG)
    args = ("-p", "no:cacheprovider", "--derivcheck-trials", "12", *SHRINK_OFF)
    line = pytester.runpytest_inprocess(*args, "--tb=line", "--derivcheck-seed=random")
    # one line, which replays the failure: its seed was drawn for the session and shown nowhere else under -q
    line.stdout.fnmatch_lines(
        ["*test_opts.py:*: opts.wrong (gradient): fails (expected holds) — differs from*; reproduce: pytest *"]
    )
    # the report's own line; the short summary ("FAILED …") repeats it cut to the terminal's width (COLUMNS)
    (crash,) = [x for x in line.outlines if "reproduce: pytest" in x and not x.startswith("FAILED ")]
    assert re.search(r"--derivcheck-seed[= ]\d+", crash), crash
    assert not any("worst trial" in x for x in line.outlines)
    short = pytester.runpytest_inprocess(*args, "--tb=short")
    short.stdout.fnmatch_lines(["opts.wrong (gradient): fails*", "  diagnosis: *", "  reproduce: pytest *"])
    assert not any("worst trial" in x for x in short.outlines)
    no = pytester.runpytest_inprocess(*args, "--tb=no")
    assert not any("reproduce" in x or "diagnosis" in x for x in no.outlines)


MARKED = """
@pytest.mark.heavy_mk
@dc.gradient(of=cube, inputs=SPEC, name="mk.above")
def above(x):
    return 3 * x**2

@dc.gradient(of=cube, inputs=SPEC, name="mk.below")
@pytest.mark.heavy_mk
def below(x):
    return 3 * x**2
"""


def test_marks_on_derivations_warn_only_as_pytest_does(pytester):
    """(A mark name of its own: pytest remembers registered marks across in-process runs.)"""
    write(pytester, "derivations_mk.py", MARKED)
    args = ("-p", "no:cacheprovider", "--derivcheck-trials", "8")
    warn = ("-W", "default::pytest.PytestUnknownMarkWarning")  # not the outer suite's "error"
    unregistered = pytester.runpytest_inprocess(*args, "-m", "heavy_mk", *warn)
    unregistered.assert_outcomes(passed=2, warnings=2)  # pytest's own, at the user's two lines; none from derivcheck
    assert not any("pytest_plugin.py" in line for line in unregistered.outlines)
    strict = pytester.runpytest_inprocess(*args, "--strict-markers")
    strict.stdout.fnmatch_lines(["*'heavy_mk' not found in `markers` configuration option*"])
    pytester.makeini("[pytest]\nmarkers = heavy_mk: slow checks\n")
    registered = pytester.runpytest_inprocess(*args, "-m", "heavy_mk", "--strict-markers", "-W", "error")
    registered.assert_outcomes(passed=2)
