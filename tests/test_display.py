"""Rich display in Jupyter (derivations, results, many results) and ``dc.run``."""

import dataclasses
import html
import re

import jax.numpy as jnp
import pytest

import derivcheck as dc
from derivcheck._report import html as display

CUBE = dc.inputs(x=dc.normal("n"), regimes=("typical", "large"))


@pytest.fixture(scope="module")
def checked():
    """A registry with a holding, a failing (expected), a wrong and an erroring derivation, all checked."""
    reg = dc.Registry()

    @dc.gradient(
        of=lambda x: jnp.sum(x**3),
        inputs=CUBE,
        name="cube.grad",
        registry=reg,
        source="calculus 101, p. <1>",
        statement=r"\nabla \sum_i x_i^3 = 3 x^{\circ 2}",
    )
    def cube_grad(x):
        return 3 * x**2

    @dc.gradient(
        of=lambda x: jnp.sum(x**3), inputs=CUBE, name="cube.typo", registry=reg, expect=dc.fails("drops the 3")
    )
    def cube_typo(x):
        return x**2

    @dc.gradient(of=lambda x: jnp.sum(x**3), inputs=CUBE, name="cube.wrong", registry=reg)
    def cube_wrong(x):
        return -3 * x**2

    @dc.gradient(of=lambda x: jnp.sum(x**3), inputs=CUBE, name="cube.shape", registry=reg)
    def cube_shape(x):
        return jnp.sum(x)

    @dc.definite("psd", inputs=dc.inputs(z=dc.normal("K")), name="softmax.psd", registry=reg)
    def softmax_psd(z):
        p = jnp.exp(z - z.max()) / jnp.sum(jnp.exp(z - z.max()))
        return jnp.diag(p) - jnp.outer(p, p)

    return reg, dc.run(registry=reg, trials=24, seed=3)


def test_derivation_markdown_has_statement_source_expectation_and_code(checked):
    reg, _ = checked
    md = reg["cube.grad"]._repr_markdown_()
    assert md.startswith("**cube.grad** — gradient")
    assert r"$$\nabla \sum_i x_i^3 = 3 x^{\circ 2}$$" in md
    assert "*source:* calculus 101" in md
    assert "```python\n@dc.gradient(" in md and "def cube_grad(x):" in md
    assert "expected to fail" not in md
    assert "*expected to fail:* drops the 3" in reg["cube.typo"]._repr_markdown_()
    assert reg["cube.grad"]._repr_latex_() == r"$$\nabla \sum_i x_i^3 = 3 x^{\circ 2}$$"
    assert reg["cube.typo"]._repr_latex_() is None


def test_run_checks_everything_in_registration_order(checked):
    reg, results = checked
    assert isinstance(results, dc.Results)
    assert results.names == reg.names()
    assert [r.outcome for r in results] == ["holds", "fails", "fails", "error", "holds"]
    assert not results.ok and results.seed == 3 and results.trials == 24
    assert "5 derivations, 2 hold, 1 fail as expected, 1 unexpected, 1 errors" in results.summary
    assert repr(results).startswith("Results(5 derivations")


def test_results_index_filter_and_sort(checked):
    _, results = checked
    assert results["cube.wrong"] is results[2]
    assert isinstance(results[1:3], dc.Results) and results[1:3].names == ["cube.typo", "cube.wrong"]
    with pytest.raises(KeyError, match="no result named"):
        results["nope"]
    assert results.where(ok=False).names == ["cube.wrong", "cube.shape"]
    assert results.where(expected="fails").names == ["cube.typo"]
    assert results.where(outcome="holds").ok
    by_verdict = results.sorted()
    assert by_verdict.names[:3] == ["cube.wrong", "cube.shape", "cube.typo"]
    errors = [r.max_rel_err for r in results.sorted("error") if r.max_rel_err == r.max_rel_err]
    assert errors == sorted(errors, reverse=True)
    with pytest.raises(ValueError, match="sort by one of"):
        results.sorted("colour")


def test_run_selects_by_pattern_and_by_derivation(checked):
    reg, _ = checked
    assert dc.run("cube.g*", registry=reg, trials=8).names == ["cube.grad"]
    assert dc.run(reg["softmax.psd"], registry=reg, trials=8).names == ["softmax.psd"]
    with pytest.raises(KeyError, match=r"no derivation matches 'cube\.nothing'"):
        dc.run("cube.nothing", registry=reg)


def test_results_table_has_a_row_per_result_and_marks_the_unexpected(checked):
    _, results = checked
    page = results._repr_html_()
    assert page.count("<tr") == len(results) + 1  # header
    assert page.count("⇅") == 8
    assert "UNEXPECTED FAILS" in page and "ERROR" in page and "ok (fails as expected)" in page
    rows = re.findall(r"<tr style='background:([^']+)'", page)
    assert rows == ["white", "#f6f8fa", "#ffebe9", "#ffebe9", "white"]  # the two not-ok rows in red
    assert results.summary in page


def test_result_html_of_a_holding_result(checked):
    _, results = checked
    page = results["cube.grad"]._repr_html_()
    assert "holds</b> (as expected)" in page
    assert "calculus 101, p. &lt;1&gt;" in page  # escaped
    assert "typical" in page and "large" in page and "sizes \\ regime" in page
    assert "replay" not in page and "diagnosis" not in page


def test_result_html_of_a_wrong_result_shows_failures_and_replay(checked):
    _, results = checked
    r = results["cube.wrong"]
    page = r._repr_html_()
    assert "(expected holds)" in page and "failing regimes" in page
    assert re.search(r"\(\d+/\d+ fail\)", page)
    assert f"derivcheck explain cube.wrong --seed {r.seed}" in page
    assert r.diagnosis is not None and html.escape(r.diagnosis.summary) in page


def test_result_html_of_an_error_and_of_a_spectrum(checked):
    _, results = checked
    assert "the check could not run" in results["cube.shape"]._repr_html_()
    page = results["softmax.psd"]._repr_html_()
    assert "spectrum" in page and "null direction" in page and "rank" in page


def test_result_html_shows_a_diagnosis_and_a_counterexample(checked):
    @dataclasses.dataclass(frozen=True)
    class Finding:
        kind: str
        summary: str
        factor: float | None = None

    _, results = checked
    r = dataclasses.replace(
        results["cube.wrong"],
        diagnosis=Finding("sign", "sign flipped <everywhere>", -1.0),
        counterexample={"x": jnp.array([1.0]), "rel_err": 2.0},
    )
    page = display.result_html(r)
    assert "<b>diagnosis</b>" in page and "sign flipped &lt;everywhere&gt;" in page and "-1" in page
    assert "<b>counterexample</b>" in page and "[1.]" in page


def test_result_html_shows_a_real_counterexample(checked):
    reg, results = checked
    r = dc.with_counterexample(results["cube.wrong"], reg["cube.wrong"], seconds=5)
    assert r.counterexample is not None
    page = r._repr_html_()
    assert "<b>counterexample</b>" in page and "relative error" in page
    assert "derived (actual)" in page and "reference (expected)" in page
    assert html.escape(r.counterexample.replay) in page
