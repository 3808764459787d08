"""A GitHub-flavoured Markdown summary of a run: a table, and a collapsible section per failure.

A failure's section is :func:`derivcheck._report.text.failure_lines` and its
replay command, in a code fence.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence

from derivcheck._report.text import failure_lines, num, printable, verdict_line
from derivcheck._result import Result

_MARK = {"ok": "✅", "unexpected": "❌", "error": "⚠️", "inconclusive": "❔"}


def markdown(
    results: Sequence[Result],
    *,
    seed: int,
    trials: int,
    seconds: float,
    problems: Sequence[str] = (),
    interrupted: bool = False,
    replay: Callable[[Result], str] | None = None,
) -> str:
    """A GitHub-flavoured Markdown summary: headline, table, then one collapsible section per failure."""
    ok = all(r.ok for r in results) and not problems and not interrupted
    unexpected = sum(not r.ok and r.outcome in ("holds", "fails") for r in results)
    inconclusive = sum(r.outcome == "inconclusive" for r in results)
    errors = sum(r.outcome == "error" for r in results)
    doubt = f"{inconclusive} inconclusive, " if inconclusive else ""
    counts = f"{unexpected} unexpected, {doubt}{errors} errors"
    head = f"## {'✅' if ok else '❌'} derivcheck: {len(results)} derivations, {counts}"
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
        out.append("| " + " | ".join([*cells, num(r.max_rel_err), _cell(r.source)]) + " |")
    shown = [r for r in results if not r.ok or r.outcome in ("fails", "inconclusive")]
    if shown:
        out += ["", "### Failures and errors"]
    for r in shown:
        out += ["", *_section(r, replay)]
    return "\n".join(out) + "\n"


def _section(r: Result, replay: Callable[[Result], str] | None) -> list[str]:
    body = [printable(line) for line in failure_lines(r) + ([f"replay: {replay(r)}"] if replay else [])]
    fence = _fence(body)
    summary = f"{_status(r)} <code>{_inline(r.name)}</code> — {_inline(verdict_line(r))}"
    return [f"<details><summary>{summary}</summary>", "", fence + "text", *body, fence, "", "</details>"]


def _status(r: Result) -> str:
    if r.outcome in ("error", "inconclusive"):
        return _MARK[r.outcome]
    return _MARK["ok"] if r.ok else _MARK["unexpected"]


def _cell(text: str) -> str:
    """Text safe inside a table cell: one line, HTML-escaped, pipes that do not split the row."""
    return _inline(text).replace("|", "&#124;")


def _inline(text: str) -> str:
    """One line, control characters escaped (:func:`printable`), then HTML-escaped."""
    return html.escape(printable(" ".join(str(text).split())))


def _fence(lines: Sequence[str]) -> str:
    """A backtick fence longer than any run of backticks in ``lines``."""
    longest = max((len(run) for line in lines for run in re.findall("`+", line)), default=0)
    return "`" * max(3, longest + 1)
