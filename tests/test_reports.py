"""Reports: JSON (documented schema), JUnit XML for CI, Markdown for code-hosting pages, atomic writes."""

import dataclasses
import json
import os
import re
import stat
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import derivcheck as dc
from derivcheck._report.json import to_json, write_atomic
from derivcheck._report.junit import junit_xml
from derivcheck._report.markdown import markdown
from derivcheck._report.text import failure_lines
from derivcheck._result import SCHEMA_VERSION, Result, Trial
from derivcheck.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"

USER_FILE = """
import jax.numpy as jnp
import derivcheck as dc

SPEC = dc.inputs(x=dc.normal("n"), sizes=[{"n": 3}], regimes=("typical", "large"))

def cube(x):
    return jnp.sum(x**3)

@dc.gradient(of=cube, inputs=SPEC, name="rep.holds", source="notes | eq. 1")
def holds(x):
    return 3 * x**2

@dc.gradient(of=cube, inputs=SPEC, name="rep.fails")
def fails(x):
    return 2 * x**2

@dc.gradient(of=cube, inputs=SPEC, name="rep.fails_as_expected", expect=dc.fails("the `2` of the notes"))
def typo(x):
    return 2 * x**2

@dc.gradient(of=cube, inputs=SPEC, name="rep.error")
def error(x):
    return jnp.outer(x, x)
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory, module_default_registry):
    """One run writing every report, with a file that fails to load among the targets."""
    folder = tmp_path_factory.mktemp("reports")
    (folder / "rep_derivations.py").write_text(USER_FILE)
    (folder / "broken.py").write_text("raise ImportError('cannot load this one')\n")
    paths = {kind: folder / "out" / f"report.{kind}" for kind in ("json", "xml", "md")}
    argv = ["run", "--load", str(folder / "rep_derivations.py"), "--load", str(folder / "broken.py"), "rep.*"]
    argv += ["--trials", "16", "--json", str(paths["json"]), "--junit-xml", str(paths["xml"])]
    argv += ["--markdown", str(paths["md"])]
    code = main(argv)
    return code, {kind: path.read_text() for kind, path in paths.items()}, paths


def test_exit_status_and_every_report_written(run):
    code, texts, paths = run
    assert code == 1
    assert all(texts.values())
    assert not [p for p in paths["json"].parent.iterdir() if p.name.startswith(".")]  # no temporary files left
    assert all(os.stat(p).st_mode & 0o044 for p in paths.values())  # readable by others, as a report should be


def test_junit_xml_counts_and_cases(run):
    _, texts, _ = run
    root = ET.fromstring(texts["xml"])
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "5",
        "failures": "1",
        "errors": "2",
        "skipped": "1",
    }
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"rep.holds", "rep.fails", "rep.fails_as_expected", "rep.error", "load problem 1"}
    assert list(cases["rep.holds"]) == []
    failure = cases["rep.fails"].find("failure")
    assert failure.get("type") == "fails" and "differs from jax.grad" in failure.get("message")
    assert "replay: derivcheck run rep.fails --seed 0 --trials 16 --load" in failure.text
    assert "derived   (actual)" in failure.text
    assert cases["rep.fails_as_expected"].find("skipped").get("type") == "xfail"
    assert "returns shape (3, 3)" in cases["rep.error"].find("error").get("message")
    assert "broken.py failed to import: ImportError: cannot load this one" in cases["load problem 1"].find("error").get(
        "message"
    )
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props == {"seed": "0", "trials": "16", "interrupted": "false"}
    assert cases["rep.holds"].get("classname") == "derivcheck.rep"


def test_markdown_renders_a_table_and_a_section_per_failure(run):
    _, texts, _ = run
    md = texts["md"]
    assert md.startswith("## ❌ derivcheck: 4 derivations, 1 unexpected, 1 errors\n")
    rows = [line for line in md.splitlines() if line.startswith("| ") and "<code>rep." in line]
    assert len(rows) == 4
    assert all(row.count(" | ") == 6 for row in rows)  # seven cells: the `|` of a source does not split a row
    assert "notes &#124; eq. 1" in md
    assert md.count("<details>") == 3 == md.count("</details>")  # fails, fails as expected, error
    assert "### Load problems" in md and "broken.py failed to import" in md
    assert "replay: derivcheck run rep.fails --seed 0 --trials 16" in md


def test_json_schema_is_versioned_and_documented_in_the_readme(run):
    _, texts, _ = run
    doc = json.loads(texts["json"])
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["interrupted"] is False and doc["ok"] is False and len(doc["problems"]) == 1
    documented = _readme_schema_keys()
    assert set(doc) == documented["run"]
    for result in doc["results"]:
        assert set(result) == documented["result"], result["name"]
    worst = next(r for r in doc["results"] if r["name"] == "rep.fails")["worst"]
    assert set(worst) == documented["worst"]


def _readme_schema_keys() -> dict[str, set[str]]:
    """The keys the README's "JSON schema" section lists, per table (``run``, ``result``, ``worst``)."""
    text = README.read_text()
    section = text.split("### JSON schema", 1)[1].split("\n## ", 1)[0]
    tables: dict[str, set[str]] = {}
    for block in re.split(r"\n(?=#### )", section)[1:]:
        title = block.split("\n", 1)[0].removeprefix("#### ").split()[0].strip("`")
        tables[title] = set(re.findall(r"^\| `([a-z_]+)` \|", block, flags=re.M))
    return tables


def _result(name, outcome, holds=True, message="m", **kw):
    expect = dc.HOLDS if holds else dc.fails("a reason")
    return Result(name=name, kind="gradient", outcome=outcome, expect=expect, message=message, **kw)


def test_junit_xml_survives_characters_xml_cannot_hold():
    r = _result("weird\x00name", "fails", message='bad \x1b[31mcolour\x1b[0m & <tags> "quotes"')
    text = junit_xml([r], seed=1, trials=2, seconds=0.5)
    case = ET.fromstring(text).find("testsuite/testcase")
    assert case.get("name") == "weird\ufffdname"
    assert case.find("failure").get("message") == 'bad \ufffd[31mcolour\ufffd[0m & <tags> "quotes"'


def test_markdown_escapes_user_text_in_cells_and_sections():
    r = _result("a|b<i>\x1b[31m", "fails", message="line\nbreak \x1b[2J", source="x | y\n<script>")
    md = markdown([r], seed=0, trials=1, seconds=0.1)
    assert "\x1b" not in md and "<script>" not in md and "<i>" not in md
    row = next(line for line in md.splitlines() if line.startswith("| ❌"))
    assert row.count(" | ") == 6  # no cell split by a user's pipe
    assert "\\x1b[2J" in md  # shown, not obeyed


def test_markdown_fence_outlasts_backticks_in_messages():
    r = _result("x", "error", message="returns ```three``` backticks")
    md = markdown([r], seed=0, trials=1, seconds=0.0)
    assert "````text" in md and md.count("````") == 2


def test_failure_lines_show_diagnosis_counterexample_and_worst_trial():
    worst = Trial(
        sizes=(("n", 2),),
        regime="large",
        index=3,
        inputs={"x": np.array([1.0, 2.0])},
        derived=np.array([2.0, 8.0]),
        reference=np.array([3.0, 12.0]),
        abs_err=4.0,
        rel_err=0.33,
    )
    smallest = dataclasses.replace(worst, sizes=(("n", 1),), inputs={"x": np.array([1.0])})
    r = _result(
        "f",
        "fails",
        worst=worst,
        max_rel_err=0.33,
        max_abs_err=4.0,
        rtol=1e-7,
        atol=1e-12,
        diagnosis="factor 2/3",
        counterexample=smallest,
    )
    lines = failure_lines(r)
    assert lines[0] == "m"
    assert "worst error: relative 0.33, absolute 4 (tolerance rtol=1e-07, atol=1e-12)" in lines
    assert "diagnosis: factor 2/3" in lines
    assert lines.index("counterexample (n=1, regime large):") < lines.index("worst trial (n=2, regime large):")
    assert "  x = [1]" in lines
    assert "  derived   (actual)   = [2, 8]" in lines and "  reference (expected) = [3, 12]" in lines


def test_interrupted_runs_say_so_in_every_report():
    results = [_result("a", "holds")]
    doc = to_json(results, seed=0, trials=1, seconds=1.0, interrupted=True)
    assert doc["interrupted"] is True and doc["ok"] is False
    assert "**interrupted**" in markdown(results, seed=0, trials=1, seconds=1.0, interrupted=True)
    xml = junit_xml(results, seed=0, trials=1, seconds=1.0, interrupted=True)
    assert '<property name="interrupted" value="true" />' in xml


@pytest.mark.parametrize("when", ["writing", "renaming"])
def test_atomic_write_never_leaves_half_a_file(tmp_path, monkeypatch, when):
    target = tmp_path / "report.json"
    target.write_text("the previous report\n")
    if when == "renaming":
        monkeypatch.setattr(os, "replace", _interrupt)
    else:
        monkeypatch.setattr(os, "fsync", _interrupt)  # after part of the text is written
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "x" * 100_000)
    assert target.read_text() == "the previous report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_a_report_written_through_a_link_or_onto_a_special_file_leaves_it_what_it_is(tmp_path):
    """The rename of an atomic write replaced a symbolic link (``latest.json``), a named pipe and even
    ``/dev/stdout`` with a plain file, and reset an existing file's permissions."""
    (tmp_path / "run-41.json").write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to("run-41.json")
    write_atomic(link, "new")
    assert link.is_symlink() and (tmp_path / "run-41.json").read_text() == "new"
    private = tmp_path / "private.md"
    private.write_text("old")
    private.chmod(0o640)
    write_atomic(private, "new")
    assert private.read_text() == "new" and stat.S_IMODE(private.stat().st_mode) == 0o640
    pipe = tmp_path / "pipe.json"
    os.mkfifo(pipe)
    got = []
    reader = threading.Thread(target=lambda: got.append(pipe.read_text()))
    reader.start()
    write_atomic(pipe, "through the pipe")
    reader.join(10)
    assert got == ["through the pipe"] and stat.S_ISFIFO(pipe.stat().st_mode)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_report_that_cannot_be_written_is_a_one_line_error(tmp_path, fresh_default_registry, capsys):
    spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 2}], regimes=("typical",))
    dc.gradient(of=lambda x: (x**2).sum(), inputs=spec, name="unwritable.ok")(lambda x: 2 * x)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code = main(["run", "unwritable.*", "--trials", "4", "--markdown", str(blocker / "sub" / "r.md")])
    assert code == 1
    err = capsys.readouterr().err
    assert f"error: could not write {blocker / 'sub' / 'r.md'}:" in err and "Traceback" not in err
