"""A failure's account is written once (:mod:`derivcheck._report.text`); every report takes its lines."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck as dc
from derivcheck._derivation import HOLDS
from derivcheck._report import text
from derivcheck._report.junit import junit_xml
from derivcheck._report.markdown import markdown
from derivcheck._result import Result, Trial
from derivcheck.testing import assert_gradient

WORST = Trial((("n", 2),), "large", 0, {"x": np.array([1.0, -2.0])}, np.array([2.0, 8.0]), np.array([3.0, 12.0]), 4, 1)


@pytest.fixture
def failed():
    return Result(
        "t.cube", "gradient", "fails", HOLDS, "derived differs", trials=8, seed=2, max_rel_err=0.33,
        max_abs_err=4.0, rtol=1e-5, atol=1e-8, worst=WORST, notes=("float32",),
    )  # fmt: skip


def test_numbers():
    assert (text.err(0.000123), text.err(float("nan"))) == ("1.2e-04", "-")
    assert (text.num(0.3333), text.num(float("nan"))) == ("0.33", "-")
    assert (text.value(2 / 3), text.value(None)) == ("0.6667", "-")
    assert (text.exact(3.0), text.exact(0.1 + 0.2), text.exact(float("-inf"))) == ("3", "0.3", "-inf")
    assert text.array_exact(np.array([1.0, 0.5])) == "[1, 0.5]"
    assert text.vector(np.arange(10.0), k=3) == "[0, 1, 2, …]"
    assert (
        text.array_line(np.arange(100.0), width=20).endswith("…") and len(text.array_line(np.arange(100.0), 20)) == 20
    )


def test_verdicts(failed):
    assert text.verdict(failed) == "UNEXPECTED FAILS"
    assert text.verdict_line(failed) == "fails, expected to hold — UNEXPECTED"
    assert text.headline(failed) == "t.cube (gradient): fails (expected holds) — derived differs"


def test_failure_lines_are_one_fact_each(failed):
    lines = text.failure_lines(failed)
    assert lines[0] == "derived differs"
    assert lines[1] == "worst error: relative 0.33, absolute 4 (tolerance rtol=1e-05, atol=1e-08)"
    assert lines[2:] == [*text.trial_lines("worst trial", WORST), "note: float32"]
    assert lines[2] == "worst trial (n=2, regime large):"
    assert lines[3:6] == ["  x = [1, -2]", "  derived   (actual)   = [2, 8]", "  reference (expected) = [3, 12]"]


def test_the_command_details_use_the_same_trial_lines(failed):
    lines = text.details([failed], replay=lambda r: "RUN", explain=lambda r: "EXPLAIN")
    assert lines[0] == "UNEXPECTED FAILS: t.cube — derived differs"
    assert lines[2:6] == [f"    {line}" for line in text.trial_lines("worst input", WORST)]
    assert lines[-2:] == ["    replay: RUN", "    why: EXPLAIN"]


def test_junit_and_markdown_hold_the_failure_lines(failed):
    body = "\n".join(text.failure_lines(failed))
    assert body in junit_xml([failed], seed=2, trials=8, seconds=0.0).replace("&gt;", ">")
    assert body in markdown([failed], seed=2, trials=8, seconds=0.0)


def test_failure_report_is_the_head_then_the_indented_account(failed):
    report = text.failure_report(failed, "reproduce: X").splitlines()
    assert report[0] == text.headline(failed)
    assert report[1:-1] == [f"  {line}" for line in text.failure_lines(failed)[1:]]
    assert report[-1] == "  reproduce: X"


def test_derivcheck_testing_raises_the_same_account():
    with pytest.raises(AssertionError) as info:
        assert_gradient(lambda x: 2 * x**2, lambda x: jnp.sum(x**3), dc.inputs(x=dc.normal("n")), trials=12)
    message = str(info.value).splitlines()
    assert "(gradient): fails (expected holds) — " in message[0]
    assert any(line.startswith("  worst error: relative ") for line in message)
    assert any(line.startswith("  worst trial (") for line in message)
    assert message[-1] == "  (seed 0, 12 trials)"


def test_numbers_show_tiny_values_and_never_minus_zero():
    assert text.array_line(np.array([1e-10, -0.0, 123456.0, -2.5])) == "[1e-10, 0, 1.235e+05, -2.5]"
    assert text.value(-0.0) == "0" and text.g4(-3e-12) == "-3e-12"
    assert text.vector([-0.0, 0.5]) == "[0, 0.5]"


def test_a_green_run_is_quiet_one_line_per_expected_failure(failed):
    holds = Result(name="t.ok", kind="gradient", outcome="holds", expect=HOLDS, message="holds")
    xfail = dataclasses.replace(failed, name="t.as_written", expect=dc.fails("sign typo in the notes"), notes=())
    noted = dataclasses.replace(holds, name="t.f32", notes=("checked at float32",))
    lines = text.details([holds, xfail, noted], replay=lambda r: "RUN", explain=lambda r: "EXPLAIN")
    assert lines == [
        "ok (fails as expected): t.as_written — sign typo in the notes",
        "ok: t.f32 — note: checked at float32",
    ]
    verbose = text.details([holds, xfail], replay=lambda r: "RUN", explain=lambda r: "EXPLAIN", verbose=True)
    assert (
        verbose[0].startswith("ok (fails as expected): t.as_written — derived differs")
        and "    why: EXPLAIN" in verbose
    )
    unexpected = text.details([failed], replay=lambda r: "RUN", explain=lambda r: "EXPLAIN")
    assert "    replay: RUN" in unexpected and any(line.startswith("    worst input") for line in unexpected)
