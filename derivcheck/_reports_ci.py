"""Reports for CI and code-hosting pages: JUnit XML, a Markdown summary, replay commands.

* :func:`junit_xml` — one ``<testcase>`` per derivation, readable by CI systems
  (Jenkins, GitLab, GitHub test reporters). A derivation that fails as
  expected is ``<skipped type="xfail">``, as pytest writes an xfail; one that
  holds although it was expected to fail is a ``<failure type="xpass">``; an
  ``error`` outcome is an ``<error>``; load problems are ``<error>`` cases too.
* :func:`markdown` — a table and a collapsible section per failure that
  renders on a code-hosting page (GitHub-flavoured Markdown).
* :func:`replay_command` — the exact command that reproduces a result.
* :func:`failure_lines` — the plain-text account of a failure, shared with the
  pytest plugin: verdict, worst error, diagnosis, counterexample, worst input.

Write them with :func:`derivcheck._report.write_atomic`, never half a file.
"""

from __future__ import annotations

import html
import re
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from derivcheck._result import Result

Replay = Callable[[Result], str]

_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def replay_command(result: Result, *, trials: int, loads: Sequence[str] = (), timeout: float | None = None) -> str:
    """The ``derivcheck run`` command line that checks ``result``'s derivation again, exactly.

    >>> from derivcheck._derivation import HOLDS
    >>> r = Result(name="demo.grad", kind="gradient", outcome="fails", expect=HOLDS, message="", seed=3)
    >>> replay_command(r, trials=100, loads=["my file.py"])
    "derivcheck run demo.grad --seed 3 --trials 100 --load 'my file.py'"
    """
    words = ["derivcheck", "run", result.name, "--seed", str(result.seed), "--trials", str(trials)]
    for target in loads:
        words += ["--load", target]
    if timeout is not None:
        words += ["--timeout", f"{timeout:g}"]
    return shlex.join(words)


def verdict_line(r: Result) -> str:
    """``fails, expected to hold`` — what happened against what was expected."""
    expected = "hold" if r.expect.holds else "fail"
    if r.outcome == "error":
        return "error: the check could not run"
    return f"{r.outcome}, expected to {expected}" + ("" if r.ok else " — UNEXPECTED")


def failure_lines(r: Result, width: int = 100) -> list[str]:
    """What a reader needs about a failure or error, one fact per line (no traceback)."""
    lines = [r.message]
    if not r.expect.holds:
        lines.append(f"expected to fail: {r.expect.reason}")
    if r.outcome == "fails":
        lines.append(
            f"worst error: relative {_num(r.max_rel_err)}, absolute {_num(r.max_abs_err)} "
            f"(tolerance rtol={_num(r.rtol)}, atol={_num(r.atol)})"
        )
    if r.diagnosis is not None:
        lines.append(f"diagnosis: {describe(r.diagnosis, width)}")
    example = r.counterexample
    if example is not None:
        has_values = isinstance(getattr(example, "inputs", None), dict)
        lines += (
            _trial_lines("counterexample", example, width) if has_values else [f"counterexample: {describe(example)}"]
        )
    if r.outcome == "fails" and r.worst is not None:
        lines += _trial_lines("worst trial", r.worst, width)
    lines += [f"note: {n}" for n in r.notes]
    return lines


def _trial_lines(title: str, trial: Any, width: int) -> list[str]:
    """A trial-like record (the worst trial, a counterexample): where, its inputs, then both sides."""
    sizes = " ".join(f"{k}={v}" for k, v in getattr(trial, "sizes", ())) or "-"
    lines = [f"{title} ({sizes}, regime {getattr(trial, 'regime', '?')}):"]
    lines += [f"  {name} = {_array(value, width)}" for name, value in trial.inputs.items()]
    if getattr(trial, "derived", None) is not None:
        lines.append(f"  derived   (actual)   = {_array(trial.derived, width)}")
    if getattr(trial, "reference", None) is not None:
        lines.append(f"  reference (expected) = {_array(trial.reference, width)}")
    return lines


def describe(value: Any, width: int = 100) -> str:
    """One line for a diagnosis or counterexample: its ``message``/``summary`` text, else ``str``."""
    for attr in ("message", "summary", "text"):
        text = getattr(value, attr, None)
        if isinstance(text, str) and text:
            return _clip(" ".join(text.split()), 3 * width)
    return _clip(" ".join(str(value).split()), 3 * width)


def _array(x: Any, width: int) -> str:
    text = np.array2string(np.asarray(x), precision=4, suppress_small=True, threshold=12, max_line_width=10**6)
    return _clip(" ".join(text.split()), width)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _num(x: float) -> str:
    return "-" if x != x else f"{x:.2g}"


# ---------------------------------------------------------------------- JUnit XML


def junit_xml(
    results: Sequence[Result],
    *,
    seed: int,
    trials: int,
    seconds: float,
    problems: Sequence[str] = (),
    interrupted: bool = False,
    replay: Replay | None = None,
) -> str:
    """The run as a JUnit XML document (one ``<testcase>`` per derivation and per load problem)."""
    suite = ET.Element("testsuite", name="derivcheck")
    props = ET.SubElement(suite, "properties")
    for key, value in (("seed", seed), ("trials", trials), ("interrupted", str(interrupted).lower())):
        ET.SubElement(props, "property", name=key, value=str(value))
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    for r in results:
        case = ET.SubElement(
            suite, "testcase", classname=_classname(r.name), name=_xml(r.name), time=f"{r.seconds:.3f}"
        )
        tag, kind, message = _junit_status(r)
        if tag:
            counts[{"failure": "failures", "error": "errors", "skipped": "skipped"}[tag]] += 1
            node = ET.SubElement(case, tag, type=kind, message=_xml(message))
            if tag != "skipped":
                text = failure_lines(r) + ([f"replay: {replay(r)}"] if replay else [])
                node.text = _xml("\n".join(text))
    for i, problem in enumerate(problems, 1):
        case = ET.SubElement(suite, "testcase", classname="derivcheck.load", name=f"load problem {i}", time="0")
        ET.SubElement(case, "error", type="load", message=_xml(problem)).text = _xml(problem)
        counts["errors"] += 1
    totals = {"tests": str(len(results) + len(problems)), **{k: str(v) for k, v in counts.items()}}
    suite.attrib.update({**totals, "time": f"{seconds:.3f}"})
    root = ET.Element("testsuites", name="derivcheck", **totals, time=f"{seconds:.3f}")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _junit_status(r: Result) -> tuple[str, str, str]:
    """``(tag, type, message)`` of a result's child element; no tag when it simply holds."""
    if r.outcome == "error":
        return "error", "error", r.message
    if r.ok:
        return ("", "", "") if r.expect.holds else ("skipped", "xfail", f"fails as expected: {r.expect.reason}")
    if r.outcome == "holds":
        return "failure", "xpass", f"holds, but was expected to fail: {r.expect.reason}"
    return "failure", "fails", r.message


def _classname(name: str) -> str:
    prefix = name.rsplit(".", 1)[0] if "." in name else ""
    return _xml("derivcheck" + (f".{prefix}" if prefix else ""))


def _xml(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold."""
    return _XML_INVALID.sub("\ufffd", str(text))


# ----------------------------------------------------------------------- Markdown

_MARK = {"ok": "✅", "unexpected": "❌", "error": "⚠️"}


def markdown(
    results: Sequence[Result],
    *,
    seed: int,
    trials: int,
    seconds: float,
    problems: Sequence[str] = (),
    interrupted: bool = False,
    replay: Replay | None = None,
) -> str:
    """A GitHub-flavoured Markdown summary: headline, table, then one collapsible section per failure."""
    ok = all(r.ok for r in results) and not problems and not interrupted
    unexpected = sum(not r.ok and r.outcome != "error" for r in results)
    errors = sum(r.outcome == "error" for r in results)
    head = f"## {'✅' if ok else '❌'} derivcheck: {len(results)} derivations, {unexpected} unexpected, {errors} errors"
    out = [head, "", f"seed {seed}, {trials} trials each, {seconds:.1f}s"]
    if interrupted:
        out += ["", "⚠️ **interrupted**: only the derivations that finished are listed."]
    if problems:
        out += ["", "### Load problems", ""] + [f"- {_inline(p)}" for p in problems]
    out += [
        "",
        "| | derivation | claim | outcome | expected | max rel. error | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cells = [_status(r), f"<code>{_cell(r.name)}</code>", _cell(r.kind), r.outcome, r.expect.word]
        out.append("| " + " | ".join([*cells, _num(r.max_rel_err), _cell(r.source)]) + " |")
    shown = [r for r in results if not r.ok or r.outcome == "fails"]
    if shown:
        out += ["", "### Failures and errors"]
    for r in shown:
        body = failure_lines(r) + ([f"replay: {replay(r)}"] if replay else [])
        fence = _fence(body)
        out += [
            "",
            f"<details><summary>{_status(r)} <code>{html.escape(r.name)}</code> — {html.escape(verdict_line(r))}"
            "</summary>",
            "",
            fence + "text",
            *body,
            fence,
            "",
            "</details>",
        ]
    return "\n".join(out) + "\n"


def _status(r: Result) -> str:
    return _MARK["error"] if r.outcome == "error" else _MARK["ok"] if r.ok else _MARK["unexpected"]


def _cell(text: str) -> str:
    """Text safe inside a table cell: one line, HTML-escaped, pipes that do not split the row."""
    return html.escape(" ".join(str(text).split())).replace("|", "&#124;")


def _inline(text: str) -> str:
    return html.escape(" ".join(str(text).split()))


def _fence(lines: Sequence[str]) -> str:
    """A backtick fence longer than any run of backticks in ``lines``."""
    longest = max((len(run) for line in lines for run in re.findall("`+", line)), default=0)
    return "`" * max(3, longest + 1)
