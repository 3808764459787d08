"""The terminal table of a run (rich): one row per derivation."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from derivcheck._report.text import err
from derivcheck._result import Result

OUTCOME_STYLE = {"holds": "green", "fails": "red", "error": "yellow"}


def table(results: Sequence[Result], title: str | None = None) -> Table:
    """Name, claim, path (dense / matrix-free), outcome, expected, max rel. error, source."""
    t = Table(title=title, show_lines=False, expand=False)
    t.add_column("derivation", overflow="fold")
    t.add_column("claim")
    t.add_column("path")
    t.add_column("outcome")
    t.add_column("expected")
    t.add_column("max rel err", justify="right")
    t.add_column("source", overflow="fold")
    for r in results:
        t.add_row(
            r.name if r.ok else f"[bold red]{r.name}[/]",
            r.kind,
            r.path or "-",
            f"[{OUTCOME_STYLE[r.outcome]}]{r.outcome}[/]",
            r.expect.word,
            err(r.max_rel_err),
            r.source,
        )
    return t
