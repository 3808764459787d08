"""Jupyter's HTML and Markdown for derivations, results and many results (the ``_repr_*_`` hooks render these).

* a :class:`~derivcheck._derivation.Derivation` shows its statement as LaTeX,
  where it comes from, and the code of the hand-derived function
  (:func:`derivation_markdown`, :func:`derivation_latex`);
* a :class:`~derivcheck._result.Result` shows an HTML summary: the verdict, the
  errors per size set and regime, the spectrum, the diagnosis and the
  counterexample when there are any (:func:`result_html`);
* :class:`~derivcheck._result.Results` shows as a table (:func:`results_html`).

The numbers and words are those of :mod:`derivcheck._report.text`, wrapped in
markup. Everything here builds strings; nothing imports IPython.
"""

from __future__ import annotations

import dataclasses
import html
import inspect
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np

from derivcheck._derivation import Derivation
from derivcheck._inputs import sizes_label
from derivcheck._report.replay import Replay
from derivcheck._report.text import err, value, vector, verdict
from derivcheck._result import Result, Results

OUTCOME_COLOURS = {"holds": "#1a7f37", "fails": "#cf222e", "inconclusive": "#8250df", "error": "#9a6700"}
_TABLE_STYLE = "border-collapse:collapse;font-size:0.9em"
_CELL = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:left"


# ------------------------------------------------------------------ derivations


def derivation_source(d: Derivation) -> str:
    """The Python source of the hand-derived function, decorator included ("" when unavailable)."""
    try:
        return textwrap.dedent(inspect.getsource(d.derived)).rstrip()
    except (OSError, TypeError):
        return ""


def derivation_latex(d: Derivation) -> str | None:
    """The statement as display LaTeX (``$$…$$``), or ``None`` when there is none."""
    return f"$${d.statement}$$" if d.statement else None


def derivation_markdown(d: Derivation) -> str:
    """Name and claim, the statement as LaTeX, its source, the expectation, and the code."""
    parts = [f"**{d.name}** — {d.kind}"]
    if d.statement:
        parts.append(f"$${d.statement}$$")
    if d.source:
        parts.append(f"*source:* {d.source}")
    if not d.expect.holds:
        parts.append(f"*expected to fail:* {d.expect.reason}")
    if d.problem:
        parts.append(f"*cannot be checked as declared:* {d.problem}")
    reading = getattr(d.derived, "reading", None)
    if reading is not None:  # read from LaTeX: show how, rendered, and the code it became
        parts.append(f"*read as:* {reading.claim}\n\n$${reading.latex}$$")
        parts.append(f"```python\n{reading.source}\n```")
        return "\n\n".join(parts)
    code = derivation_source(d)
    if code:
        parts.append(f"```python\n{code}\n```")
    return "\n\n".join(parts)


# ---------------------------------------------------------------------- results


def verdict_badge(r: Result) -> str:
    """The outcome in its colour, and whether that was expected."""
    colour = OUTCOME_COLOURS[r.outcome]
    outcome = f'<b style="color:{colour}">{r.outcome}</b>'
    if r.outcome == "error":
        return f"{outcome} (the check could not run)"
    if r.outcome == "inconclusive":
        return f"{outcome} (the reference is in doubt; expected {r.expect.word})"
    if r.ok:
        return f"{outcome} (as expected)"
    return f'{outcome} <b style="color:#cf222e">(expected {r.expect.word})</b>'


def _rows(pairs: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th style='{_CELL}'>{k}</th><td style='{_CELL}'>{v}</td></tr>" for k, v in pairs)
    return f"<table style='{_TABLE_STYLE}'>{body}</table>"


def _facts(r: Result) -> list[tuple[str, str]]:
    esc = html.escape
    expected = r.expect.word + (f": {esc(r.expect.reason)}" if r.expect.reason else "")
    facts = [("claim", esc(r.kind)), ("outcome", verdict_badge(r)), ("expected", expected)]
    if r.trials:
        facts += [
            ("max rel. error", f"{err(r.max_rel_err)} (rtol {r.rtol:g})"),
            ("max abs. error", f"{err(r.max_abs_err)} (atol {r.atol:g})"),
        ]
    facts.append(("trials", f"{r.trials} (seed {r.seed}, {r.seconds:.2f} s)"))
    if r.failing_regimes:
        facts.append(("failing regimes", esc(", ".join(r.failing_regimes))))
    if r.source:
        facts.append(("source", esc(r.source)))
    return facts


def cells_html(r: Result) -> str:
    """Max relative error (and failures) per size set (rows) and regime (columns)."""
    if not r.cells:
        return ""
    sizes = list(dict.fromkeys(sizes_label(c.sizes) for c in r.cells))
    regimes = list(dict.fromkeys(c.regime for c in r.cells))
    grid = {(sizes_label(c.sizes), c.regime): c for c in r.cells}
    head = "".join(f"<th style='{_CELL}'>{html.escape(g)}</th>" for g in regimes)
    lines = [f"<tr><th style='{_CELL}'>sizes \\ regime</th>{head}</tr>"]
    for s in sizes:
        tds = []
        for g in regimes:
            c = grid.get((s, g))
            if c is None:
                tds.append(f"<td style='{_CELL}'></td>")
                continue
            bad = f" ({c.failures}/{c.trials} fail)" if c.failures else ""
            bg = "background:#ffebe9;" if c.failures else ""
            tds.append(f"<td style='{bg}{_CELL}'>{err(c.max_rel_err)}{bad}</td>")
        lines.append(f"<tr><th style='{_CELL}'>{html.escape(s)}</th>{''.join(tds)}</tr>")
    return f"<table style='{_TABLE_STYLE}'>{''.join(lines)}</table>"


def spectrum_html(r: Result) -> str:
    """Extreme eigenvalues, rank and null direction of a definiteness result."""
    s = r.spectrum
    if s is None:
        return ""
    pairs = [
        ("found", html.escape(s.found)),
        ("λ range (closest trial)", f"[{s.lambda_min:.3g}, {s.lambda_max:.3g}]"),
        ("zero margin", f"{s.margin:.2g}"),
        ("rank", f"{s.rank} of {s.n} (over trials: {s.min_rank}–{s.max_rank})"),
    ]
    if s.null_direction is not None:
        pairs.append(("null direction", vector(s.null_direction)))
    return _rows(pairs)


def diagnosis_html(diag: Any) -> str:
    """A diagnosis: its one-line summary, where the error is, the evidence and the worst entries."""
    parts = [f"<p style='margin:4px 0'><b>{html.escape(str(diag.summary))}</b></p>"]
    where = getattr(diag, "where", "")
    if where:
        parts.append(f"<p style='margin:4px 0'>where: {html.escape(where)}</p>")
    evidence = getattr(diag, "evidence", ())
    if evidence:
        parts.append("<ul style='margin:4px 0'>" + "".join(f"<li>{html.escape(e)}</li>" for e in evidence) + "</ul>")
    entries = getattr(diag, "worst_entries", ())
    if entries:
        head = "".join(f"<th style='{_CELL}'>{c}</th>" for c in ("entry", "derived", "reference", "difference"))
        rows = "".join(
            f"<tr><td style='{_CELL}'>{tuple(e.index)}</td>"
            + "".join(f"<td style='{_CELL}'>{value(v)}</td>" for v in (e.derived, e.reference, e.error))
            + "</tr>"
            for e in entries
        )
        parts.append(f"<table style='{_TABLE_STYLE}'><tr>{head}</tr>{rows}</table>")
    return "".join(parts)


def counterexample_html(cx: Any) -> str:
    """A minimal counterexample: where it was found, its inputs, both sides, and how to replay it."""
    sizes = sizes_label(cx.sizes)
    head = f"at {html.escape(sizes)} [{html.escape(cx.regime)}], relative error {value(cx.rel_err)}"
    if getattr(cx, "shrunk_from", None) and tuple(cx.shrunk_from) != tuple(cx.sizes):
        head += f" (shrunk from {html.escape(sizes_label(cx.shrunk_from))})"
    if getattr(cx, "simplified", ()):
        head += f"; simplified: {html.escape(', '.join(cx.simplified))}"
    if not getattr(cx, "complete", True):
        head += " — the search stopped at its time budget: smaller ones may exist"
    pairs = [(html.escape(k), _value_html(np.asarray(v))) for k, v in cx.inputs.items()]
    pairs += [("derived (actual)", _value_html(cx.derived)), ("reference (expected)", _value_html(cx.reference))]
    if getattr(cx, "eigenvalues", None) is not None:
        pairs.append(("eigenvalues", _value_html(cx.eigenvalues)))
    parts = [f"<p style='margin:4px 0'>{head}</p>", _rows([(k, v) for k, v in pairs if v])]
    if getattr(cx, "replay", ""):
        parts.append(f"<p style='margin:4px 0'>replay: <code>{html.escape(cx.replay)}</code></p>")
    return "".join(parts)


def object_html(x: Any) -> str:
    """HTML for a diagnosis, counterexample or details: its own ``_repr_html_``, a diagnosis, fields, or text."""
    if x is None:
        return ""
    if hasattr(x, "_repr_html_"):
        return x._repr_html_()
    if hasattr(x, "summary") and hasattr(x, "evidence"):
        return diagnosis_html(x)
    if hasattr(x, "inputs") and hasattr(x, "derived") and hasattr(x, "sizes"):
        return counterexample_html(x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        x = {f.name: getattr(x, f.name) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        pairs = [(html.escape(str(k)), _value_html(v)) for k, v in x.items() if v is not None]
        return _rows(pairs)
    return f"<p>{html.escape(str(x))}</p>"


def _value_html(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, np.ndarray | list | tuple) and np.asarray(v).dtype.kind in "fciub":
        arr = np.asarray(v)
        text = np.array2string(arr, precision=4, suppress_small=True, threshold=64, max_line_width=100)
        return f"<pre style='margin:0'>{html.escape(text)}</pre>"
    if isinstance(v, dict) or dataclasses.is_dataclass(v):
        return object_html(v)
    if isinstance(v, float):
        return value(v)
    return html.escape(str(v))


def _section(title: str, body: str, *, open_: bool = True) -> str:
    if not body:
        return ""
    return f"<details{' open' if open_ else ''}><summary><b>{title}</b></summary>{body}</details>"


def repair_html(repair: Any) -> str:
    """The repair search's answer: each fix's diff and the trials it holds on, or its one line ("" if none ran)."""
    if repair is None:
        return ""
    if not repair:
        return f"<p>{html.escape(repair.line())}</p>"
    return "".join(
        f"<p>{html.escape(s.sentence())}: with this change it holds on {s.holds_on} trials</p>"
        f"<pre style='margin:4px 0'>{html.escape(s.diff)}</pre>"
        for s in repair
    )


def result_html(r: Result) -> str:
    """The HTML summary of one result: verdict, errors, spectrum, diagnosis, counterexample, notes."""
    parts = [
        f"<div><h4 style='margin:4px 0'>{html.escape(r.name)}</h4>",
        f"<p style='margin:4px 0'>{html.escape(r.message)}</p>",
        _rows(_facts(r)),
        _section("diagnosis", object_html(r.diagnosis)),
        _section("suggested fix", repair_html(r.repair)),
        _section("counterexample", object_html(r.counterexample)),
        _section("spectrum", spectrum_html(r)),
        _section("details", object_html(getattr(r, "details", None)), open_=False),
        _section("errors per size set and regime", cells_html(r), open_=not r.ok),
    ]
    if r.notes:
        parts.append("<ul>" + "".join(f"<li>note: {html.escape(n)}</li>" for n in r.notes) + "</ul>")
    if r.outcome == "fails":
        parts.append(f"<p>why: <code>{html.escape(Replay(r.name, r.seed).explain())}</code></p>")
    parts.append("</div>")
    return "".join(parts)


# ---------------------------------------------------------------- many results


def results_html(results: Results) -> str:
    """A table, one row per result, with sort marks in the header (sort with ``Results.sorted``)."""
    columns = ("derivation", "claim", "outcome", "verdict", "max rel. error", "trials", "seconds", "source")
    head = "".join(
        f"<th style='{_CELL};cursor:default' title='Results.sorted(by=...)'>{c} <span style='color:#888'>⇅</span></th>"
        for c in columns
    )
    rows = []
    for i, r in enumerate(results):
        shade = "#ffebe9" if not r.ok else ("#f6f8fa" if i % 2 else "white")
        cells = (
            f"<code>{html.escape(r.name)}</code>",
            html.escape(r.kind),
            f'<span style="color:{OUTCOME_COLOURS[r.outcome]}">{r.outcome}</span>',
            html.escape(verdict(r)),
            err(r.max_rel_err),
            str(r.trials),
            f"{r.seconds:.2f}",
            html.escape(r.source),
        )
        tds = "".join(f"<td style='{_CELL}'>{c}</td>" for c in cells)
        rows.append(f"<tr style='background:{shade}' title='{html.escape(r.message, quote=True)}'>{tds}</tr>")
    caption = f"<caption style='caption-side:bottom;text-align:left'>{html.escape(results.summary)}</caption>"
    body = "".join(rows)
    return f"<table style='{_TABLE_STYLE}'>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
