"""Reports of a run: the terminal table, the summary line, and the JSON file.

JSON files are written atomically (to a temporary file in the same folder,
then renamed), so a crash or Ctrl-C never leaves half a report.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from derivcheck._result import SCHEMA_VERSION, Result

OUTCOME_STYLE = {"holds": "green", "fails": "red", "error": "yellow"}


def verdict(r: Result) -> str:
    """A short word for the table: what happened relative to what was expected."""
    if r.outcome == "error":
        return "ERROR"
    if r.ok:
        return "ok" if r.expect.holds else "ok (fails as expected)"
    return "UNEXPECTED " + r.outcome.upper()


def summary(results: Sequence[Result], seconds: float, *, seed: int, trials: int, problems: int = 0) -> str:
    """One line: how many hold, fail as expected, fail unexpectedly, error."""
    holds = sum(r.ok and r.outcome == "holds" for r in results)
    expected_fail = sum(r.ok and r.outcome == "fails" for r in results)
    unexpected = sum((not r.ok) and r.outcome != "error" for r in results)
    errors = sum(r.outcome == "error" for r in results)
    parts = [
        f"{len(results)} derivations",
        f"{holds} hold",
        f"{expected_fail} fail as expected",
        f"{unexpected} unexpected",
        f"{errors} errors",
    ]
    if problems:
        parts.append(f"{problems} load problems")
    return ", ".join(parts) + f" — {seconds:.1f}s (seed {seed}, {trials} trials each)"


def table(results: Sequence[Result], title: str | None = None):
    """A rich Table: name, claim, path (dense / matrix-free), outcome, expected, max rel. error, source."""
    from rich.table import Table

    t = Table(title=title, show_lines=False, expand=False)
    t.add_column("derivation", overflow="fold")
    t.add_column("claim")
    t.add_column("path")
    t.add_column("outcome")
    t.add_column("expected")
    t.add_column("max rel err", justify="right")
    t.add_column("source", overflow="fold")
    for r in results:
        style = OUTCOME_STYLE[r.outcome]
        name_style = "" if r.ok else "bold red"
        t.add_row(
            f"[{name_style}]{r.name}[/]" if name_style else r.name,
            r.kind,
            r.path or "-",
            f"[{style}]{r.outcome}[/]",
            r.expect.word,
            _err(r.max_rel_err),
            r.source,
        )
    return t


def _err(x: float) -> str:
    return "-" if x != x else f"{x:.1e}"


def details(
    results: Iterable[Result],
    replay: Callable[[Result], str] | None = None,
    explain: Callable[[Result], str] | None = None,
) -> list[str]:
    """One line per result worth a closer look: failures (expected or not) and errors.

    ``replay`` gives the exact command that reproduces a result; it is shown for
    every failure and error. A failure also gets its one-line diagnosis, and the
    ``derivcheck explain`` command (``explain``, default ``--seed`` only) that
    shows the diagnosis's evidence and a minimal counterexample.
    """
    lines = []
    for r in results:
        singular = r.spectrum is not None and r.spectrum.min_rank < r.spectrum.n  # "holds, but singular": say so
        if r.outcome == "holds" and r.ok and not r.notes and not singular:
            continue
        head = f"{verdict(r)}: {r.name}"
        body = r.message
        if not r.expect.holds:
            body += f"  [expected: {r.expect.reason}]"
        lines.append(f"{head} — {body}")
        lines.extend(f"    note: {n}" for n in r.notes)
        if r.diagnosis is not None and getattr(r.diagnosis, "kind", "") != "claim":  # "claim": the message above
            lines.append(f"    diagnosis: {getattr(r.diagnosis, 'summary', r.diagnosis)}")
        if r.outcome == "fails" and not r.ok:
            lines.extend(worst_lines(r))
        if replay is not None and (r.outcome == "fails" or not r.ok):
            lines.append(f"    replay: {replay(r)}")
        if r.outcome == "fails":
            hint = explain(r) if explain is not None else f"derivcheck explain {r.name} --seed {r.seed}"
            lines.append(f"    why: {hint}")
    return lines


def worst_lines(r: Result, width: int = 100) -> list[str]:
    """The worst trial's inputs, then derived (actual) vs reference (expected), a line each."""
    if r.worst is None:
        return []
    import numpy as np

    def show(x) -> str:
        text = np.array2string(np.asarray(x), precision=4, suppress_small=True, max_line_width=10**6, threshold=12)
        text = " ".join(text.split())
        return text if len(text) <= width else text[: width - 1] + "…"

    w = r.worst
    out = [f"    worst input ({' '.join(f'{k}={v}' for k, v in w.sizes)}, {w.regime}):"]
    out += [f"      {name} = {show(value)}" for name, value in w.inputs.items()]
    if w.derived is not None:
        out.append(f"      derived   (actual)   = {show(w.derived)}")
    if w.reference is not None:
        out.append(f"      reference (expected) = {show(w.reference)}")
    return out


def to_json(
    results: Sequence[Result],
    *,
    seed: int,
    trials: int,
    seconds: float,
    problems: Sequence[str] = (),
    interrupted: bool = False,
) -> dict[str, Any]:
    """The JSON document of a run (schema documented in the README)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "seed": seed,
        "trials": trials,
        "seconds": round(seconds, 3),
        "ok": all(r.ok for r in results) and not problems and not interrupted,
        "interrupted": interrupted,
        "problems": list(problems),
        "results": [r.to_dict() for r in results],
    }


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename (never half-written)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a report is an ordinary file
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike[str], document: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(document, indent=2, allow_nan=False) + "\n")
