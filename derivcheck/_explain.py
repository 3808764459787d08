"""``derivcheck explain NAME``: one derivation's claim, verdict, diagnosis and minimal counterexample.

:func:`render` turns a checked derivation into plain-text lines, in the
order a reader needs them: what is claimed (statement, source), what
happened (the verdict against the expectation), what is wrong (the
:class:`~derivcheck._diagnose.Diagnosis` and its evidence), the smallest input
that shows it with derived (actual) and reference (expected) side by side,
the worst trial's largest errors, and the commands that replay both.
:func:`explanation` runs the check and the shrink and returns that text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from derivcheck._derivation import Derivation
from derivcheck._inputs import sizes_label
from derivcheck._result import Result

MAX_TABLE_ENTRIES = 24  # a value with more entries shows only its largest errors
LARGEST = 8
WIDTH = 100


def explanation(
    derivation: Derivation | str,
    *,
    trials: int | None = None,
    seed: int = 0,
    shrink: bool = True,
    seconds: float | None = None,
) -> str:
    """Check ``derivation``, shrink a failure, and return the explanation as text.

    >>> import jax.numpy as jnp, derivcheck as dc
    >>> reg = dc.Registry()
    >>> @dc.gradient(of=lambda x: jnp.sum(x**2), inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="sq")
    ... def twice(x):
    ...     return x
    >>> print(dc.explanation(twice, trials=30, shrink=False).splitlines()[3])
    diagnosis: off by a factor of 1/2: derived = 1/2 · reference
    """
    from derivcheck._api import DEFAULT_TRIALS, check
    from derivcheck._shrink import SHRINK_SECONDS, with_counterexample

    d = _resolve(derivation)
    trials = trials or DEFAULT_TRIALS
    result = check(d, trials=trials, seed=seed)
    if shrink:
        result = with_counterexample(result, d, seconds=SHRINK_SECONDS if seconds is None else seconds)
    return "\n".join(render(d, result, trials=trials))


def _resolve(derivation: Derivation | str) -> Derivation:
    if isinstance(derivation, str):
        from derivcheck._registry import registry

        return registry()[derivation]
    return derivation


def render(d: Derivation, result: Result, *, trials: int, loads: Sequence[str] = ()) -> list[str]:
    """The explanation of ``result`` (a check of ``d`` with ``trials`` trials), line by line."""
    lines = _claim_lines(d) + _verdict_lines(result)
    if result.diagnosis is not None:
        lines += ["", *_diagnosis_lines(result.diagnosis)]
    if result.counterexample is not None:
        lines += ["", *_counterexample_lines(result.counterexample)]
    if result.outcome == "fails" and result.worst is not None:
        lines += ["", *_worst_lines(result)]
    if result.outcome != "holds" or not result.ok:
        lines += ["", *_replay_lines(d, result, trials, tuple(loads))]
    return lines


# ------------------------------------------------------------------------ parts


def _claim_lines(d: Derivation) -> list[str]:
    claim = d.claim
    what = d.kind
    of = getattr(claim, "of", None)
    if of is not None:
        what += f" of {getattr(of, '__qualname__', None) or getattr(of, '__name__', 'of')}"
    if of is not None and hasattr(claim, "wrt") and d.arg_names:
        try:
            what += f" w.r.t. {d.arg_names[d.wrt_index]}"
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
    if r.ok:
        as_expected = "as expected"
    else:
        as_expected = f"UNEXPECTED (expected it to {'hold' if r.expect.holds else 'fail'})"
    lines = [f"verdict: {r.outcome}, {as_expected} — {r.message}"]
    lines += [f"  note: {n}" for n in r.notes]
    return lines


def _diagnosis_lines(diag: Any) -> list[str]:
    summary = getattr(diag, "summary", diag)
    if getattr(diag, "kind", "") == "claim":
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


def _counterexample_lines(cx: Any) -> list[str]:
    shrunk = "" if cx.shrunk_from == cx.sizes else f", shrunk from {sizes_label(cx.shrunk_from)}"
    simple = f"; values simplified: {', '.join(cx.simplified)}" if cx.simplified else ""
    budget = "" if cx.complete else "; search stopped by its time budget"
    head = (
        f"counterexample ({sizes_label(cx.sizes)}{shrunk}; drawn in regime {cx.regime}{simple}; "
        f"{cx.checks} size checks, {cx.evaluations} evaluations, {cx.seconds:.1f}s{budget}):"
    )
    lines = [head, *(f"  {name} = {_array_text(v)}" for name, v in cx.inputs.items())]
    if cx.reference is not None:
        lines += _side_by_side(np.asarray(cx.derived), np.asarray(cx.reference), "  ")
        lines.append(f"  relative error {cx.rel_err:.3g} (absolute {cx.abs_err:.3g})")
    elif cx.derived is not None:
        lines.append(f"  derived (actual) = {_array_text(cx.derived)}")
        if cx.eigenvalues is not None:
            lines.append(f"  eigenvalues = {_array_text(cx.eigenvalues)}")
    return lines


def _worst_lines(r: Result) -> list[str]:
    w = r.worst
    head = (
        f"worst trial ({sizes_label(w.sizes)} [{w.regime}], trial {w.index} of its cell; rel. error {w.rel_err:.3g}):"
    )
    if w.reference is None or w.derived is None:
        return [head, f"  derived (actual) = {_array_text(w.derived)}"]
    return [head, *_side_by_side(np.asarray(w.derived), np.asarray(w.reference), "  ")]


def _replay_lines(d: Derivation, r: Result, trials: int, loads: tuple[str, ...]) -> list[str]:
    from derivcheck._shrink import run_replay

    lines = [f"replay the worst trial: {run_replay(d, r, loads)}"]
    cx = r.counterexample
    if cx is not None and getattr(cx, "replay", ""):
        lines.append(f"replay the counterexample's draw (before simplifying its values): {cx.replay}")
    lines.append(f"explain again: derivcheck explain {d.name} --seed {r.seed} --trials {trials}" + _load_flags(loads))
    return lines


def _load_flags(loads: tuple[str, ...]) -> str:
    return "".join(f" --load {t}" for t in loads)


# ---------------------------------------------------------------------- values


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return str(x)
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.6g}"


def _array_text(x: Any) -> str:
    if x is None:
        return "-"
    arr = np.asarray(x)
    if arr.ndim == 0:
        return _fmt(float(arr))
    text = np.array2string(
        arr, separator=", ", max_line_width=10**6, threshold=48, formatter={"float_kind": _fmt, "int": str}
    )
    text = " ".join(text.split())
    return text if len(text) <= WIDTH else text[: WIDTH - 1] + f"… (shape {arr.shape})"


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
        rows.append((str(idx), _fmt(derived.ravel()[j]), _fmt(reference.ravel()[j]), _fmt(diff.ravel()[j])))
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
