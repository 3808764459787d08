"""A failure's account in plain text: the one copy every report takes its lines from.

* numbers and arrays: :func:`err` (``1.2e-03``), :func:`num` (``0.0012``),
  :func:`value` (``0.001234``), :func:`exact` (integers as integers, else 6
  significant digits), :func:`array_line`, :func:`array_exact` and
  :func:`vector` (a few entries of a vector); the diagnosis's words use
  :func:`derivcheck._format.fmt_number`;
* verdicts: :func:`verdict` (the table's word), :func:`verdict_line`;
* a failure: :func:`failure_lines` (message, worst error, diagnosis,
  counterexample, worst trial, notes), :func:`trial_lines` (a trial-like
  record: where, its inputs, derived vs reference), :func:`failure_report`
  (the account under a head line: pytest and ``derivcheck.testing``), and
  :func:`details` (the command's lines under its table).

The CLI, JUnit, Markdown, ``explain``, the pytest plugin, ``derivcheck.testing``
and the HTML all render these lines or fields; none writes its own.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from derivcheck._format import fmt_vector
from derivcheck._report.replay import Replay, quiet
from derivcheck._result import Result

WIDTH = 100  # characters of an array or a one-line account before it is clipped with "…"

# ------------------------------------------------------------------ user text


def printable(text: Any) -> str:
    """``text`` safe to print: control characters (escape sequences, newlines), lone surrogates and other
    unprintable code points written as Python escapes, so the terminal, a log or Markdown sees them, not obeys them.

    >>> printable("a\\x1b[31mb\\nc")
    'a\\\\x1b[31mb\\\\nc'
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else _escaped(ch) for ch in text)


def _escaped(ch: str) -> str:
    if unicodedata.category(ch) == "Zs":  # a space of another width: harmless
        return ch
    return ch.encode("unicode_escape").decode("ascii")


# --------------------------------------------------------------------- numbers


def err(x: float) -> str:
    """An error in the table: ``1.2e-03``, ``-`` when there is none (NaN).

    >>> err(0.00123), err(float("nan"))
    ('1.2e-03', '-')
    """
    return "-" if x != x else f"{x:.1e}"


def num(x: float) -> str:
    """A tolerance or an error in a sentence: two significant digits, ``-`` when there is none.

    >>> num(0.00123), num(1e-8), num(float("nan"))
    ('0.0012', '1e-08', '-')
    """
    return "-" if x != x else f"{x:.2g}"


def value(x: Any) -> str:
    """A value in a table cell: four significant digits, ``-`` for ``None`` or NaN.

    >>> value(3.14159), value(None)
    ('3.142', '-')
    """
    return "-" if x is None or x != x else f"{x + 0.0:.4g}"


def exact(x: Any) -> str:
    """A value to compare by eye: integers as integers, else six significant digits (``inf``, ``nan`` as such);
    a complex value as its two parts.

    >>> exact(2.0), exact(1 / 3), exact(float("inf")), exact(2 - 0.5j)
    ('2', '0.333333', 'inf', '2-0.5j')
    """
    if np.iscomplexobj(x):
        z = complex(x)
        return f"{exact(z.real)}{'-' if math.copysign(1, z.imag) < 0 else '+'}{exact(abs(z.imag))}j"
    v = float(x)
    if not np.isfinite(v):
        return str(v)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.6g}"


def vector(v: Any, k: int = 8) -> str:
    """The first ``k`` entries of a vector, three significant digits each: ``[0.707, -0.707]``."""
    return fmt_vector(None if v is None else np.asarray(v, dtype=float) + 0.0, k=k, spec=".3g")  # never -0


def clip(text: str, width: int = WIDTH) -> str:
    """``text`` cut to ``width`` characters, the last one ``…`` when cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def g4(x: Any) -> str:
    """Four significant digits, tiny values shown (``1e-10``, not ``0.``), never ``-0``.

    >>> g4(1.23456), g4(-1e-10), g4(-0.0), g4(2.0)
    ('1.235', '-1e-10', '0', '2')
    """
    return f"{float(x) + 0.0:.4g}"


def _g4_complex(z: Any) -> str:
    """A complex value with :func:`g4` parts: ``1.5-2j``."""
    z = complex(z)
    return f"{g4(z.real)}{'-' if z.imag < 0 else '+'}{g4(abs(z.imag))}j"


def array_line(x: Any, width: int = WIDTH) -> str:
    """An array on one line, :func:`g4` entries, clipped to ``width``: ``[1, -2.5, 3e-09]``."""
    arr = np.asarray(x)
    if arr.ndim == 0:
        if arr.dtype.kind == "c":
            return _g4_complex(arr)
        return g4(arr) if np.issubdtype(arr.dtype, np.floating) else str(arr)
    formatter: Any = {"float_kind": g4, "complex_kind": _g4_complex}  # numpy's _FormatDict
    text = np.array2string(arr, separator=", ", threshold=12, max_line_width=10**6, formatter=formatter)
    return clip(" ".join(text.split()), width)


def array_exact(x: Any, width: int = WIDTH) -> str:
    """An array on one line with :func:`exact` entries (``[1, 0.5, -2]``), its shape said when clipped."""
    if x is None:
        return "-"
    arr = np.asarray(x)
    if arr.ndim == 0:
        return exact(arr[()])
    formatter: Any = {"float_kind": exact, "complex_kind": exact, "int": str}  # numpy's _FormatDict
    text = np.array2string(arr, separator=", ", max_line_width=10**6, threshold=48, formatter=formatter)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + f"… (shape {arr.shape})"


def sizes_words(sizes: Any) -> str:
    """``n=3 m=2`` (``-`` for no sizes)."""
    return " ".join(f"{k}={v}" for k, v in sizes) or "-"


# -------------------------------------------------------------------- verdicts


def verdict(r: Result) -> str:
    """A short word for the table: what happened relative to what was expected."""
    if r.outcome == "error":
        return "ERROR"
    if r.outcome == "inconclusive":
        return "ok (inconclusive, expected to fail)" if r.ok else "INCONCLUSIVE"
    if r.ok:
        return "ok" if r.expect.holds else "ok (fails as expected)"
    return "UNEXPECTED " + r.outcome.upper()


def verdict_line(r: Result) -> str:
    """``fails, expected to hold — UNEXPECTED``: what happened against what was expected."""
    expected = "hold" if r.expect.holds else "fail"
    if r.outcome == "error":
        return "error: the check could not run"
    if r.outcome == "inconclusive":
        return f"inconclusive, expected to {expected}: the reference is in doubt"
    return f"{r.outcome}, expected to {expected}" + ("" if r.ok else " — UNEXPECTED")


def headline(r: Result) -> str:
    """``name (claim): outcome (expected word) — message``: a failure's first line.

    An inconclusive one begins with the word: ``inconclusive: name (claim), expected … — what was seen``.
    """
    if r.outcome == "inconclusive":
        seen = r.message.removeprefix("inconclusive: ")
        return f"inconclusive: {r.name} ({r.kind}), expected to {r.expect.word.removesuffix('s')} — {seen}"
    return f"{r.name} ({r.kind}): {r.outcome} (expected {r.expect.word}) — {r.message}"


def is_diagnosis_of_claim(diag: Any) -> bool:
    """A diagnosis of kind ``claim`` only repeats the claim's own statistics (the message says them)."""
    return getattr(diag, "kind", "") == "claim"


def describe(thing: Any, width: int = WIDTH) -> str:
    """One line for a diagnosis or counterexample: its ``message``/``summary`` text, else ``str``."""
    for attr in ("message", "summary", "text"):
        text = getattr(thing, attr, None)
        if isinstance(text, str) and text:
            return clip(" ".join(text.split()), 3 * width)
    return clip(" ".join(str(thing).split()), 3 * width)


# -------------------------------------------------------------------- accounts


def worst_error(r: Result) -> str:
    """``relative 0.5, absolute 1.2 (tolerance rtol=1e-05, atol=1e-08)``."""
    tolerance = f"(tolerance rtol={num(r.rtol)}, atol={num(r.atol)})"
    return f"relative {num(r.max_rel_err)}, absolute {num(r.max_abs_err)} {tolerance}"


def failure_lines(r: Result, width: int = WIDTH) -> list[str]:
    """What a reader needs about a failure or error, one fact per line (no traceback)."""
    lines = [r.message]
    if not r.expect.holds:
        lines.append(f"expected to fail: {r.expect.reason}")
    if r.outcome in ("fails", "inconclusive"):
        lines.append(f"worst error: {worst_error(r)}")
    if r.diagnosis is not None:
        lines.append(f"diagnosis: {describe(r.diagnosis, width)}")
    if r.repair is not None:
        lines.append(r.repair.line())
    example = r.counterexample
    if example is not None:
        has_values = isinstance(getattr(example, "inputs", None), dict)
        lines += (
            trial_lines("counterexample", example, width) if has_values else [f"counterexample: {describe(example)}"]
        )
    if r.outcome in ("fails", "inconclusive") and r.worst is not None:
        lines += trial_lines("worst trial", r.worst, width)
    lines += [f"note: {n}" for n in r.notes]
    return lines


def trial_lines(title: str, trial: Any, width: int = WIDTH) -> list[str]:
    """A trial-like record (the worst trial, a counterexample): where, its inputs, then both sides."""
    lines = [f"{title} ({sizes_words(getattr(trial, 'sizes', ()))}, regime {getattr(trial, 'regime', '?')}):"]
    lines += [f"  {name} = {array_line(v, width)}" for name, v in trial.inputs.items()]
    if getattr(trial, "derived", None) is not None:
        lines.append(f"  derived   (actual)   = {array_line(trial.derived, width)}")
    if getattr(trial, "reference", None) is not None:
        lines.append(f"  reference (expected) = {array_line(trial.reference, width)}")
    return lines


def failure_report(r: Result, last: str) -> str:
    """The account of a failed or erroneous check under its :func:`headline`, ending with ``last``
    (how to reproduce it): what pytest prints for an item and ``derivcheck.testing`` raises."""
    lines = [headline(r), *(f"  {line}" for line in failure_lines(r)[1:]), f"  {last}"]
    return "\n".join(lines)


def details(
    results: Iterable[Result],
    replay: Callable[[Result], str] | None = None,
    explain: Callable[[Result], str] | None = None,
    verbose: bool = False,
) -> list[str]:
    """The command's lines under its table, pytest's ``-ra`` style: a green run is quiet.

    An unexpected outcome or an error gets its account: the message, notes,
    diagnosis, the worst input of a failure, the ``replay`` command, and for a
    failure the ``explain`` command (default: ``--seed`` only). A failure that
    was expected gets one line (its reason), a note on a result that is as
    expected one line each; ``verbose`` gives those the full account too.
    """
    lines = []
    for r in results:
        if quiet(r) and not verbose:
            lines += _one_liners(r)
            continue
        singular = r.spectrum is not None and r.spectrum.min_rank < r.spectrum.n  # "holds, but singular": say so
        if r.outcome == "holds" and r.ok and not r.notes and not singular:
            continue
        body = r.message + ("" if r.expect.holds else f"  [expected: {r.expect.reason}]")
        lines.append(f"{verdict(r)}: {r.name} — {body}")
        lines.extend(f"    note: {n}" for n in r.notes)
        if r.diagnosis is not None and not is_diagnosis_of_claim(r.diagnosis):
            lines.append(f"    diagnosis: {getattr(r.diagnosis, 'summary', r.diagnosis)}")
        if r.repair is not None:
            lines.append(f"    {r.repair.line()}")
        if r.outcome in ("fails", "inconclusive") and r.worst is not None:  # unexpected, or asked for (-v)
            lines.extend(f"    {line}" for line in trial_lines("worst input", r.worst))
        if replay is not None and (r.outcome == "fails" or not r.ok):
            lines.append(f"    replay: {replay(r)}")
        if r.outcome == "fails":
            lines.append(f"    why: {explain(r) if explain is not None else Replay(r.name, r.seed).explain()}")
        if r.outcome == "error" and "MemoryError" in r.message:
            lines.append(f"    hint: {MEMORY_HINT}")
    return lines


MEMORY_HINT = "out of memory: lower --trials, or check at smaller sizes (--sizes, or smaller sizes= in the inputs)"


def _one_liners(r: Result) -> list[str]:
    """A result as expected, in one line per thing worth knowing: the reason of an expected failure, each note."""
    lines = [f"{verdict(r)}: {r.name} — {r.expect.reason}"] if r.outcome == "fails" else []
    return lines + [f"{verdict(r)}: {r.name} — note: {n}" for n in r.notes]
