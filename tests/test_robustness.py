"""Everything a user can hand the tool ends in a one-line error naming the derivation, and the run goes on.

The engine-level cases (a derived function that raises, returns the wrong shape
or dtype or NaN, fails only under jit; declaration problems; duplicates;
float32) are tested on ``check()`` in ``test_checks.py``. Here every case of
issue #8 goes through the command line in one run of one user file, next to a
correct derivation that must still hold; then the new guards (kinks,
non-determinism, timeouts, Ctrl-C, ``--verbose``) and a property-based test
that feeds malformed specs and functions to the public API.
"""

import functools
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import derivcheck as dc
from derivcheck.cli import main

BAD_FILE = """
import jax
import jax.numpy as jnp
import numpy as np
import derivcheck as dc

SPEC = dc.inputs(x=dc.normal("n"), sizes=[{"n": 1}, {"n": 4}], regimes=("typical", "shifted", "constant"))

def cube(x):
    return jnp.sum(x**3)

@dc.gradient(of=cube, inputs=SPEC, name="bad.fine")
def fine(x):
    return 3 * x**2

@dc.gradient(of=cube, inputs=SPEC, name="bad.fine")
def same_name(x):
    return 3 * x**2

@dc.gradient(of=cube, wrt="y", inputs=SPEC, name="bad.wrt_names_no_argument")
def wrt_typo(x):
    return 3 * x**2

@dc.gradient(of=cube, inputs=SPEC, name="bad.spec_does_not_match")
def two_args(x, z):
    return 3 * x**2

@dc.gradient(of=cube, inputs=SPEC, name="bad.raises")
def raises(x):
    return x / undefined_name

@dc.gradient(of=cube, inputs=SPEC, name="bad.wrong_shape")
def wrong_shape(x):
    return jnp.sum(3 * x**2)

@dc.gradient(of=cube, inputs=SPEC, name="bad.wrong_dtype")
def wrong_dtype(x):
    return (3 * x**2).astype(jnp.int32)

@dc.gradient(of=cube, inputs=SPEC, name="bad.nan")
def nan(x):
    return 3 * x**2 / (x - x)

@dc.gradient(of=cube, inputs=SPEC, name="bad.only_fails_under_jit")
def python_branch(x):
    return 3 * x**2 if x[0] > 0 else 3 * x**2

@dc.gradient(of=cube, inputs=SPEC, name="bad.numpy_inside")
def numpy_inside(x):
    return 3 * np.square(x)

@dc.gradient(of=cube, inputs=SPEC, name="bad.range_of_a_value")
def range_of_a_value(x):
    return sum(3 * x**2 for _ in range(jnp.sum(x > 0) * 0 + 1))

@dc.gradient(of=jnp.max, inputs=dc.inputs(x=dc.normal("n"), sizes=[{"n": 4}], regimes=("constant",)), name="bad.kink")
def max_grad(x):
    return jax.nn.one_hot(jnp.argmax(x), x.shape[0])

@dc.gradient(of=cube, inputs=SPEC, name="bad.not_deterministic")
def noisy(x):
    return 3 * x**2 + 1e-3 * np.random.default_rng().normal()

@dc.gradient(of=lambda x: jnp.sum(jnp.sin(x)), inputs=dc.inputs(x=dc.normal("n", dtype="float32")),
             name="bad.float32")
def sin_grad(x):
    return jnp.cos(x)
"""

# derivation -> (outcome, words its message must contain)
CASES = {
    "bad.fine": ("holds", "matches jax.grad"),
    "bad.fine#duplicate@": ("error", "duplicate name 'bad.fine' (first defined at"),
    "bad.wrt_names_no_argument": ("error", "wrt='y' names no argument"),
    "bad.spec_does_not_match": ("error", "no input spec for ['z']"),
    "bad.raises": ("error", "NameError: name 'undefined_name' is not defined"),
    "bad.wrong_shape": ("error", "returns shape (), expected (1,)"),
    "bad.wrong_dtype": ("error", "dtype int32"),
    "bad.nan": ("error", "NaN or inf"),
    "bad.only_fails_under_jit": ("error", "cannot be traced by jax.jit"),
    "bad.numpy_inside": ("error", "use jax.numpy: jnp.exp, not np.exp"),
    "bad.range_of_a_value": ("error", "range() or an index of an array value?"),
    "bad.kink": ("error", "no usable trial: all 24 are degenerate (24 with a kink of of= in regime constant)"),
    "bad.not_deterministic": ("error", "derived function is not deterministic"),
    "bad.float32": ("holds", "matches jax.grad"),
}


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory, module_default_registry):
    """One `derivcheck run` over a file holding every bad case and a good derivation."""
    folder = tmp_path_factory.mktemp("bad")
    (folder / "bad_derivations.py").write_text(BAD_FILE)
    (folder / "broken_import.py").write_text("import derivcheck\nimport no_such_module_for_derivcheck\n")
    out = folder / "out.json"
    argv = ["run", "--load", str(folder / "broken_import.py"), "--load", str(folder / "bad_derivations.py")]
    with _Capture() as capture:
        code = main([*argv, "bad.*", "--trials", "24", "--json", str(out)])
    return code, capture.out, capture.err, json.loads(out.read_text())


class _Capture:
    """Capture sys.stdout/sys.stderr (a module-scoped fixture cannot use capsys)."""

    def __enter__(self):
        import io

        self._saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
        return self

    def __exit__(self, *exc):
        self.out, self.err = sys.stdout.getvalue(), sys.stderr.getvalue()
        sys.stdout, sys.stderr = self._saved


def test_bad_run_reports_and_goes_on(bad_run):
    code, out, err, doc = bad_run
    assert code == 1
    assert "Traceback" not in out + err
    assert "error: " in err and "broken_import.py failed to import: ModuleNotFoundError" in err
    assert "(broken_import.py:2)" in err
    assert doc["problems"] and "broken_import.py failed to import" in doc["problems"][0]
    assert len(doc["results"]) == len(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_bad_case_is_one_clear_line(bad_run, case):
    _, out, _, doc = bad_run
    results = [r for r in doc["results"] if r["name"] == case or (case.endswith("@") and r["name"].startswith(case))]
    assert len(results) == 1
    r = results[0]
    outcome, words = CASES[case]
    assert r["outcome"] == outcome, r["message"]
    assert words in r["message"]
    assert "\n" not in r["message"] and len(r["message"]) < 400
    if outcome == "error":
        assert f"ERROR: {r['name']} — {r['message']}" in out  # the line names the derivation


def test_float32_is_judged_at_float32_with_a_note(bad_run):
    _, out, _, doc = bad_run
    (r,) = [r for r in doc["results"] if r["name"] == "bad.float32"]
    assert r["rtol"] == dc.DEFAULT_TOLERANCES["float32"].rtol
    assert any("float32 precision" in n for n in r["notes"])
    assert "note: checked at float32 precision" in out


# ------------------------------------------------------------------------ kinks

SPEC = dc.inputs(x=dc.normal("n"), sizes=[{"n": 4}], regimes=("typical", "constant"))


def test_kink_only_in_one_regime_is_skipped_with_a_note_and_the_rest_holds(fresh_default_registry):
    # max has ties only on constant vectors: the one-hot gradient is right everywhere else
    d = dc.gradient(of=jnp.max, inputs=SPEC, name="k.max")(lambda x: jax.nn.one_hot(jnp.argmax(x), x.shape[0]))
    r = dc.check(d, trials=40)
    assert r.outcome == "holds" and r.trials == 20
    assert r.notes == ("20 of 40 degenerate trials skipped: 20 with a kink of of= in regime constant",)
    typical = dc.inputs(x=dc.normal("n"), sizes=[{"n": 4}], regimes=("typical",))
    d2 = dc.gradient(of=jnp.max, inputs=typical, name="k.max2")(lambda x: jax.nn.one_hot(jnp.argmax(x), x.shape[0]))
    assert dc.check(d2, trials=40).outcome == "holds"


def test_wrong_formula_at_a_kink_still_fails(fresh_default_registry):
    # |x| at exactly 0 is a kink, but a sign error shows on every other input
    spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 3}], regimes=("typical",))
    d = dc.gradient(of=lambda x: jnp.sum(jnp.abs(x)), inputs=spec, name="k.abs")(lambda x: -jnp.sign(x))
    r = dc.check(d, trials=30)
    assert r.outcome == "fails" and "differs from jax.grad" in r.message


def test_steep_but_smooth_reference_is_not_a_kink(fresh_default_registry):
    # tanh(50 x) is steep but smooth: a wrong factor must fail, not be excused as a kink
    spec = dc.inputs(x=dc.normal("n", scale=0.05), sizes=[{"n": 3}], regimes=("typical",))
    d = dc.gradient(of=lambda x: jnp.sum(jnp.tanh(50 * x)), inputs=spec, name="k.steep")(
        lambda x: 49 * (1 - jnp.tanh(50 * x) ** 2)
    )
    r = dc.check(d, trials=30)
    assert r.outcome == "fails" and "kink" not in r.message


# ----------------------------------------------------------- non-determinism


def test_non_deterministic_of_is_an_error(fresh_default_registry):
    calls = []

    def of(x):
        calls.append(1)
        return jnp.sum(x**2) * (1 + 1e-3 * len(calls))

    d = dc.gradient(of=of, inputs=SPEC, name="nd.of")(lambda x: 2 * x)
    r = dc.check(d, trials=20)
    assert r.outcome == "error" and r.message.startswith("of= ") and "is not deterministic" in r.message


def test_deterministic_functions_with_constants_are_not_flagged(fresh_default_registry):
    table = jnp.asarray([1.0, 2.0, 3.0, 4.0])
    d = dc.gradient(of=lambda x: jnp.sum(table * x**2), inputs=SPEC, name="nd.const")(lambda x: 2 * table * x)
    assert dc.check(d, trials=20).outcome == "holds"


# ---------------------------------------------------------- timeouts, Ctrl-C

SLOW_FILE = """
import os
import time
import jax, jax.numpy as jnp
import derivcheck as dc

SPEC = dc.inputs(x=dc.normal("n"), sizes=[{"n": 2}], regimes=("typical",))

@dc.gradient(of=lambda x: jnp.sum(x**2), inputs=SPEC, name="slow.a_fine")
def fine(x):
    return 2 * x

@dc.gradient(of=lambda x: jnp.sum(x**2), inputs=SPEC, name="slow.d_kills_its_process")
def kills(x):
    os._exit(3)

@dc.gradient(of=lambda x: jnp.sum(x**2), inputs=SPEC, name="slow.b_forever")
def forever(x):
    y = jax.lax.while_loop(lambda c: jnp.all(c < 1e30), lambda c: c + 1e-30, x)
    return 2 * x + 0 * y

@dc.gradient(of=lambda x: jnp.sum(x**2), inputs=SPEC, name="slow.c_sleeps")
def sleeps(x):
    time.sleep(120)
    return 2 * x
"""


def test_timeout_stops_a_derivation_that_runs_forever_and_a_crash_is_an_error(tmp_path, fresh_default_registry, capsys):
    path = tmp_path / "slow_derivations.py"
    path.write_text(SLOW_FILE)
    out = tmp_path / "out.json"
    start = time.monotonic()
    patterns = ["slow.a_*", "slow.d_*", "slow.b_*"]
    code = main(["run", "--load", str(path), *patterns, "--timeout", "4", "--trials", "5", "--json", str(out)])
    elapsed = time.monotonic() - start
    assert code == 1
    results = {r["name"]: r for r in json.loads(out.read_text())["results"]}
    assert results["slow.a_fine"]["outcome"] == "holds"
    assert results["slow.b_forever"]["outcome"] == "error"
    assert results["slow.b_forever"]["message"].startswith("timed out after 4s")
    assert results["slow.d_kills_its_process"]["message"] == "the worker process died while checking it (exit code 3)"
    assert elapsed < 120
    text = capsys.readouterr().out
    assert f"replay: derivcheck run slow.b_forever --seed 0 --trials 5 --load {path} --timeout 4" in text


UNNAMED_FILE = """
import jax, jax.numpy as jnp
import derivcheck as dc

SPEC = dc.inputs(x=dc.normal("n"), sizes=[{"n": 2}], regimes=("typical",))

@dc.gradient(of=lambda x: jnp.sum(x**2), inputs=SPEC)
def endless(x):
    y = jax.lax.while_loop(lambda c: jnp.all(c < 1e30), lambda c: c + 1e-30, x)
    return 2 * x + 0 * y
"""


def test_timeout_stops_an_endless_derivation_declared_without_a_name(tmp_path, fresh_default_registry, capsys):
    """The worker finds it under its default name (``<stem>.<function>``), so the limit is kept."""
    path = tmp_path / "mine.py"
    path.write_text(UNNAMED_FILE)
    out = tmp_path / "out.json"
    start = time.monotonic()
    code = main(["run", "--load", str(path), "--timeout", "5", "--trials", "5", "--json", str(out)])
    assert code == 1 and time.monotonic() - start < 60
    (result,) = json.loads(out.read_text())["results"]
    assert result["name"] == "mine.endless" and result["message"].startswith("timed out after 5s")


@pytest.mark.parametrize("option", [["--timeout", "30"], ["--jobs", "2"]])
def test_a_derivation_the_workers_cannot_find_is_an_error_not_a_silent_fallback(fresh_default_registry, capsys, option):
    """Registered by this process's Python code only: a worker cannot check it, and says how to fix that."""
    spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 2}], regimes=("typical",))
    for k in range(2):
        dc.gradient(of=lambda x: jnp.sum(x**2), inputs=spec, name=f"here_only.g{k}")(lambda x: 2 * x)
    assert main(["run", "here_only.*", "--trials", "5", *option]) == 1
    text = capsys.readouterr().out
    assert text.count("registered in this process only") == 2 and "--load it" in text


@pytest.mark.usefixtures("children_take_ctrl_c")
def test_ctrl_c_stops_cleanly_and_writes_what_finished(tmp_path):
    path = tmp_path / "slow_derivations.py"
    path.write_text(SLOW_FILE)
    out = tmp_path / "out.json"
    cmd = [str(Path(sys.executable).parent / "derivcheck"), "run", "--load", str(path), "slow.a_*", "slow.c_*"]
    proc = subprocess.Popen(
        [*cmd, "--trials", "5", "--json", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = proc.stdout.readline()  # "[1/2] slow.a_fine: holds ..." once the first is done
    assert "slow.a_fine: holds" in first
    time.sleep(1.0)  # into the second, which sleeps
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted: reporting the 1 finished of 2 derivations" in stderr
    assert "Traceback" not in stdout + stderr
    doc = json.loads(out.read_text())
    assert doc["interrupted"] is True and doc["ok"] is False
    assert [r["name"] for r in doc["results"]] == ["slow.a_fine"]


# ------------------------------------------------------------------ --verbose

RAISING_FILE = """
import jax.numpy as jnp
import derivcheck as dc

@dc.gradient(of=lambda x: jnp.sum(x**2), inputs=dc.inputs(x=dc.normal("n")), name="verbose.raises")
def raises(x):
    return helper(x)

def helper(x):
    raise RuntimeError("deep inside the user's code")
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_tracebacks_only_with_verbose(tmp_path, fresh_default_registry, capsys, verbose):
    path = tmp_path / "raising_derivations.py"
    path.write_text(RAISING_FILE)
    code = main(["run", "--load", str(path), "verbose.*", "--trials", "5", *(["--verbose"] if verbose else [])])
    captured = capsys.readouterr()
    assert code == 1
    assert "ERROR: verbose.raises — derived function raised: RuntimeError: deep inside the user's code" in captured.out
    assert ("Traceback" in captured.err) is verbose
    assert ("in helper" in captured.err) is verbose


def test_internal_error_is_one_line_unless_verbose(monkeypatch, fresh_default_registry, capsys):
    from derivcheck import cli

    def broken_table(*args, **kwargs):
        raise RuntimeError("a bug in derivcheck")

    monkeypatch.setattr(cli, "run_grid", broken_table)
    spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 2}], regimes=("typical",))
    dc.gradient(of=lambda x: jnp.sum(x**2), inputs=spec, name="internal.fine")(lambda x: 2 * x)
    assert main(["run", "internal.*", "--trials", "5"]) == 3
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: a bug in derivcheck (run with --verbose for the traceback)" in err
    assert "Traceback" not in err
    assert main(["run", "internal.*", "--trials", "5", "--verbose"]) == 3
    assert "Traceback" in capsys.readouterr().err


# ----------------------------------------------------------- property-based

DIMS = st.one_of(
    st.sampled_from(["n", "m", "d"]),
    st.integers(min_value=0, max_value=3),
    st.integers(max_value=-1),
    st.floats(allow_nan=True),
    st.none(),
    st.booleans(),
    st.text(max_size=2),
    st.lists(st.integers(), max_size=2),
)
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3), st.text(max_size=2), st.none())
DTYPES = st.sampled_from(["float64", "float32", "int32", "nonsense", None, 3, "complex64", "bool"])


@st.composite
def specs(draw):
    """A spec factory with its (often malformed) arguments, called by the test."""
    factory = draw(st.sampled_from(["normal", "uniform", "positive", "bernoulli", "simplex", "one_hot", "constant"]))
    dims = draw(st.lists(DIMS, max_size=2))
    kwargs = {"dtype": draw(DTYPES)} if draw(st.booleans()) else {}
    if factory == "normal" and draw(st.booleans()):
        kwargs["scale"] = draw(NUMBERS)
    if factory in ("uniform", "positive") and draw(st.booleans()):
        kwargs["low"] = draw(NUMBERS)
    if factory == "bernoulli" and draw(st.booleans()):
        kwargs["p"] = draw(NUMBERS)
    if factory == "one_hot":
        kwargs["classes"] = draw(DIMS)
    if factory == "constant":
        return functools.partial(dc.constant, draw(st.one_of(NUMBERS, st.lists(st.floats(), max_size=3))), **kwargs)
    return functools.partial(getattr(dc, factory), *dims, **kwargs)


SIZES = st.one_of(
    st.none(),
    st.lists(
        st.dictionaries(st.sampled_from(["n", "m", "d"]), st.one_of(st.integers(-1, 3), st.text(max_size=1))),
        max_size=2,
    ),
    st.integers(),
    st.text(max_size=2),
)
REGIMES = st.one_of(st.none(), st.lists(st.sampled_from([*dc.REGIMES, "nope"]), max_size=3), st.text(max_size=3))

# derived functions that misbehave, each in one way
DERIVED = {
    "right": lambda x: 2 * x,
    "raises": lambda x: 1 / 0,
    "returns None": lambda x: None,
    "returns a tuple": lambda x: (x, x),
    "returns a string": lambda x: "gradient",
    "wrong shape": lambda x: jnp.ones((2, 3, 4)),
    "integer": lambda x: jnp.zeros(jnp.shape(x), jnp.int32),
    "nan": lambda x: x * jnp.nan,
    "python branch": lambda x: x if x.sum() > 0 else -x,
    "wrong": lambda x: 3 * x,
    "takes two": lambda x, y: x,
    "takes none": lambda: 1.0,
    "complex": lambda x: (2 * x).astype(jnp.complex64),
}
OFS = {
    "square": lambda x: jnp.sum(x**2),
    "vector output": lambda x: x**2,
    "not callable": 3,
    "raises": lambda x: [][1],
    "returns None": lambda x: None,
    "integer output": lambda x: jnp.sum(x).astype(jnp.int32),
}
WRTS = st.one_of(st.just(0), st.just("x"), st.just("nope"), st.integers(-3, 3), st.booleans(), st.floats(), st.none())


def clean_error(exc: BaseException) -> bool:
    """A documented derivcheck error with a one-line message that says something."""
    return isinstance(exc, dc.InputSpecError | dc.DerivationError) and "\n" not in str(exc) and len(str(exc)) > 10


GOOD_INPUTS = (functools.partial(dc.normal, "n"), [{"n": 2}], ("typical",))


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    inputs=st.one_of(st.just(GOOD_INPUTS), st.tuples(specs(), SIZES, REGIMES)),
    derived=st.sampled_from(["right"] * 4 + ["wrong"] * 2 + sorted(DERIVED)),  # often far enough to be compiled
    of=st.sampled_from(["square"] * 6 + sorted(OFS)),
    wrt=st.one_of(st.just(0), st.just("x"), WRTS),
    claim=st.sampled_from(["gradient", "jacobian", "hessian", "vjp", "definite"]),
)
def test_malformed_input_ends_in_a_clean_error_never_a_crash(inputs, derived, of, wrt, claim):
    spec, sizes, regimes = inputs
    try:
        inputs = dc.inputs(x=spec(), sizes=sizes, regimes=regimes)
        reg = dc.Registry()
        if claim == "definite":
            declare = dc.definite("psd", of=OFS[of], wrt=wrt, inputs=inputs, registry=reg, name="p")
        else:
            declare = getattr(dc, claim)(of=OFS[of], wrt=wrt, inputs=inputs, registry=reg, name="p")
        d = declare(DERIVED[derived])
    except Exception as exc:
        assert clean_error(exc), f"{type(exc).__name__}: {exc}"
        return
    r = dc.check(d, trials=3)
    assert r.outcome in ("holds", "fails", "error")
    assert r.message and "\n" not in r.message, r.message
    if r.outcome == "error":
        assert not r.ok


@settings(max_examples=25, deadline=None, database=None)
@given(
    fn=st.one_of(st.integers(), st.none(), st.text(max_size=2), st.just(jnp.sum)),
    name=st.one_of(st.none(), st.text(max_size=3), st.integers()),
    expect=st.one_of(st.just(dc.HOLDS), st.text(max_size=2), st.none()),
    rtol=st.one_of(st.none(), st.floats(allow_nan=True), st.text(max_size=1), st.integers(-2, 2)),
)
def test_malformed_declarations_end_in_a_clean_error(fn, name, expect, rtol):
    reg = dc.Registry()
    try:
        d = dc.gradient(
            of=jnp.sum, inputs=dc.inputs(x=dc.normal("n")), registry=reg, name=name, expect=expect, rtol=rtol
        )(fn)
    except Exception as exc:
        assert clean_error(exc), f"{type(exc).__name__}: {exc}"
        return
    assert isinstance(d.name, str) and d.name
    r = dc.check(d, trials=3)
    assert r.outcome in ("holds", "fails", "error") and "\n" not in r.message


def test_clean_error_words_name_what_to_fix():
    with pytest.raises(dc.InputSpecError, match=r"normal: scale must be a number, got 'x'"):
        dc.normal("n", scale="x")
    with pytest.raises(dc.InputSpecError, match=r"inputs\(sizes=\.\.\.\): give a list"):
        dc.inputs(x=dc.normal("n"), sizes=3)
    with pytest.raises(dc.InputSpecError, match=r"dtype 'nonsense' is not a NumPy dtype"):
        dc.inputs(x=dc.normal("n", dtype="nonsense"))
    with pytest.raises(dc.DerivationError, match="must decorate a function, got 3"):
        dc.gradient(of=jnp.sum, inputs=dc.inputs(x=dc.normal("n")), registry=dc.Registry())(3)
