"""``derivcheck explain NAME``: one derivation's claim, verdict, diagnosis and minimal counterexample.

:func:`render` turns a checked derivation into plain-text lines, in the
order a reader needs them: what is claimed (statement, source), what
happened (the verdict against the expectation), what is wrong (the
:class:`~derivcheck._diagnose.Diagnosis` and its evidence), where in the
formula (the repair search's suggested fix as a diff, when it ran), the smallest input
that shows it with derived (actual) and reference (expected) side by side,
the worst trial's largest errors, and the commands that replay both. The
numbers are :mod:`derivcheck._report.text`'s, the commands
:class:`~derivcheck._report.replay.Replay`'s; ``dc.explanation``
(:mod:`derivcheck._api`) checks, shrinks and renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from derivcheck._derivation import Derivation
from derivcheck._format import callable_name
from derivcheck._inputs import Sizes, sizes_label
from derivcheck._report.replay import Replay
from derivcheck._report.text import array_exact, exact, is_diagnosis_of_claim
from derivcheck._result import Result

MAX_TABLE_ENTRIES = 24  # a value with more entries shows only its largest errors
LARGEST = 8


def render(
    d: Derivation, result: Result, *, trials: int, loads: Sequence[str] = (), sizes: Sizes | None = None
) -> list[str]:
    """The explanation of ``result`` (a check of ``d`` with ``trials`` trials, at the one size set ``sizes`` when
    the command was restricted to it), line by line."""
    lines = _claim_lines(d) + _reading_lines(d) + _verdict_lines(result)
    if result.diagnosis is not None:
        lines += ["", *_diagnosis_lines(result.diagnosis)]
    if result.repair is not None:
        lines += ["", *_repair_lines(result.repair)]
    if result.counterexample is not None:
        lines += ["", *_counterexample_lines(result.counterexample)]
    if result.outcome in ("fails", "inconclusive") and result.worst is not None:
        lines += ["", *_worst_lines(result)]
    if result.outcome != "holds" or not result.ok:
        lines += ["", *_replay_lines(d, result, trials, tuple(loads), sizes)]
    return lines


# ------------------------------------------------------------------------ parts


def _reading_lines(d: Derivation) -> list[str]:
    """How a statement read from LaTeX was read (:func:`derivcheck.latex`), else nothing."""
    reading = getattr(d.derived, "reading", None)
    return [] if reading is None else ["", *reading.text().splitlines(), ""]


def _claim_lines(d: Derivation) -> list[str]:
    claim = d.claim
    what = d.kind
    of = getattr(claim, "of", None)
    if of is not None:
        what += f" of {callable_name(of)}"
    if of is not None and hasattr(claim, "wrt") and d.arg_names:
        try:
            what += f" w.r.t. {d.wrt_text}"
        except Exception:
            pass
    lines = [f"{d.name} — {what}"]
    if d.statement:
        lines.append(f"  statement: {d.statement}")
    if d.source:
        lines.append(f"  source:    {d.source}")
    if not d.expect.holds:
        lines.append(f"  expected:  fails — {d.expect.reason}")
    return lines


def _verdict_lines(r: Result) -> list[str]:
    if r.outcome == "error":
        return [f"verdict: ERROR — {r.message}"]
    if r.outcome == "inconclusive":
        as_expected = "neither holds nor fails: the reference is in doubt" + (" (expected to fail)" if r.ok else "")
    elif r.ok:
        as_expected = "as expected"
    else:
        as_expected = f"UNEXPECTED (expected it to {'hold' if r.expect.holds else 'fail'})"
    lines = [f"verdict: {r.outcome}, {as_expected} — {r.message}"]
    lines += [f"  note: {n}" for n in r.notes]
    return lines


def _diagnosis_lines(diag: Any) -> list[str]:
    summary = getattr(diag, "summary", diag)
    if is_diagnosis_of_claim(diag):
        summary = "the claim's own statistics, in the verdict above"
    lines = [f"diagnosis: {summary}"]
    lines += [f"  - {e}" for e in getattr(diag, "evidence", ())]
    rows = [r for r in getattr(diag, "by_size", ()) if r.trials]
    if len(rows) > 1:
        parts = [
            f"{sizes_label(r.sizes)}: {r.failures}/{r.trials}"
            + (f" (median rel. {r.median_rel_err:.2g})" if r.failures and np.isfinite(r.median_rel_err) else "")
            for r in rows
        ]
        lines.append("  - failing trials by size: " + "; ".join(parts))
    return lines


def _repair_lines(repair: Any) -> list[str]:
    """Each suggested fix as a unified diff of the file, with the trials it was confirmed on; or why none."""
    if not repair:
        return [repair.line()]
    lines: list[str] = []
    for i, s in enumerate(repair):
        head = "suggested fix" if i == 0 else "another fix"
        lines += [f"{head}: {s.sentence()} — with this change it holds on {s.holds_on} trials (seed {s.seed})"]
        lines += [f"  {line}" for line in s.diff.splitlines()]
    return lines


def _counterexample_lines(cx: Any) -> list[str]:
    shrunk = "" if cx.shrunk_from == cx.sizes else f", shrunk from {sizes_label(cx.shrunk_from)}"
    simple = f"; values simplified: {', '.join(cx.simplified)}" if cx.simplified else ""
    budget = "" if cx.complete else "; search stopped by its time budget"
    head = (
        f"counterexample ({sizes_label(cx.sizes)}{shrunk}; drawn in regime {cx.regime}{simple}; "
        f"{cx.checks} size checks, {cx.evaluations} evaluations, {cx.seconds:.1f}s{budget}):"
    )
    lines = [head, *(f"  {name} = {array_exact(v)}" for name, v in cx.inputs.items())]
    if cx.reference is not None:
        lines += _side_by_side(np.asarray(cx.derived), np.asarray(cx.reference), "  ")
        lines.append(f"  relative error {cx.rel_err:.3g} (absolute {cx.abs_err:.3g})")
    elif cx.derived is not None:
        lines.append(f"  derived (actual) = {array_exact(cx.derived)}")
        if cx.eigenvalues is not None:
            lines.append(f"  eigenvalues = {array_exact(cx.eigenvalues)}")
    return lines


def _worst_lines(r: Result) -> list[str]:
    w = r.worst
    if w is None:  # no trial was judged (an error before any ran)
        return []
    head = (
        f"worst trial ({sizes_label(w.sizes)} [{w.regime}], trial {w.index} of its cell; rel. error {w.rel_err:.3g}):"
    )
    if w.reference is None or w.derived is None:
        return [head, f"  derived (actual) = {array_exact(w.derived)}"]
    return [head, *_side_by_side(np.asarray(w.derived), np.asarray(w.reference), "  ")]


def _replay_lines(d: Derivation, r: Result, trials: int, loads: tuple[str, ...], sizes: Sizes | None) -> list[str]:
    """The commands that check ``d`` again: its worst trial alone (or, with no trial judged, the whole
    check), the counterexample's draw, and this explanation with the same options."""
    label = "replay the worst trial" if r.worst is not None else "check again"
    lines = [f"{label}: {Replay.of_worst(d, r, loads).run()}"]
    cx = r.counterexample
    if cx is not None and getattr(cx, "replay", ""):
        lines.append(f"replay the counterexample's draw (before simplifying its values): {cx.replay}")
    lines.append(f"explain again: {Replay(d.name, r.seed, trials, sizes, loads=loads).explain()}")
    return lines


# --------------------------------------------------------------- side by side


def _side_by_side(derived: np.ndarray, reference: np.ndarray, indent: str) -> list[str]:
    """A table ``index | derived | reference | difference``: every entry, or the largest errors."""
    diff = derived - reference
    flat = np.abs(diff).ravel()
    if derived.size <= MAX_TABLE_ENTRIES:
        order = np.arange(derived.size)
        title = ""
    else:
        differ = int((flat > 0).sum())
        order = np.argsort(-flat, kind="stable")[: min(LARGEST, max(differ, 1))]
        title = f"{indent}the largest differences ({differ} of {derived.size} entries differ):"
    rows = [("index", "derived (actual)", "reference (expected)", "difference")]
    for j in order:
        idx = tuple(int(i) for i in np.unravel_index(j, derived.shape)) if derived.ndim else ()
        rows.append((str(idx), exact(derived.ravel()[j]), exact(reference.ravel()[j]), exact(diff.ravel()[j])))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    out = [title] if title else []
    for row in rows:
        out.append(
            indent
            + "  ".join(
                cell.rjust(w) if c else cell.ljust(w) for c, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return out
