"""The run as JUnit XML: one ``<testcase>`` per derivation, readable by CI systems (Jenkins, GitLab, GitHub).

A derivation that fails as expected is ``<skipped type="xfail">``, as pytest
writes an xfail; one that holds although it was expected to fail is a
``<failure type="xpass">``; an ``inconclusive`` outcome is a ``<failure
type="inconclusive">`` (not ok, as for the exit status; skipped as an xfail
when the derivation was expected to fail); an ``error`` outcome is an ``<error>``; load
problems are ``<error>`` cases too. A failure's text is
:func:`derivcheck._report.text.failure_lines` and its replay command.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence

from derivcheck._report.text import failure_lines
from derivcheck._result import Result

_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def junit_xml(
    results: Sequence[Result],
    *,
    seed: int,
    trials: int,
    seconds: float,
    problems: Sequence[str] = (),
    interrupted: bool = False,
    replay: Callable[[Result], str] | None = None,
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
        tag, kind, message = _status(r)
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
    root = ET.Element("testsuites", {"name": "derivcheck", **totals, "time": f"{seconds:.3f}"})
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _status(r: Result) -> tuple[str, str, str]:
    """``(tag, type, message)`` of a result's child element; no tag when it simply holds."""
    if r.outcome == "error":
        return "error", "error", r.message
    if r.outcome == "inconclusive":
        if r.ok:
            return "skipped", "xfail", f"inconclusive, expected to fail: {r.expect.reason}"
        return "failure", "inconclusive", r.message
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
