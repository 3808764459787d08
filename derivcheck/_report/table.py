"""The tables of the command: a run's results and ``derivcheck list``, for a terminal or as plain lines.

A :class:`Grid` holds the cells as printable text (user text never passes
through rich markup: a name such as ``a[/x]`` prints as itself). On a
terminal it becomes a rich table (:func:`rich_table`) whose names never wrap
and whose last column, the source, is dropped when the terminal is too narrow
for it; in a pipe or a CI log it becomes plain space-aligned lines
(:func:`plain_lines`), one row per line, names whole: the first word of each
line is a name to paste into ``derivcheck explain``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from rich.table import Table
from rich.text import Text

from derivcheck._report.text import err, printable
from derivcheck._result import Result

RUN_COLUMNS = ("derivation", "claim", "path", "outcome", "expected", "max rel err", "source")
LIST_COLUMNS = ("derivation", "claim", "expected", "source")
DROPPABLE = "source"  # the column given up first on a narrow terminal
GAP = "  "


@dataclasses.dataclass(frozen=True)
class Grid:
    """Rows of printable cells under a header; ``styles``: each row's rich style for its name and outcome."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    styles: tuple[tuple[str, str], ...] = ()
    right: frozenset[str] = frozenset()  # columns aligned to the right (numbers)


def run_grid(results: Iterable[Result]) -> Grid:
    """Name, claim, path (dense / matrix-free), outcome, expected, max rel. error, source; one row per result."""
    results = list(results)
    rows = tuple(
        tuple(
            printable(cell)
            for cell in (r.name, r.kind, r.path or "-", r.outcome, r.expect.word, err(r.max_rel_err), r.source)
        )
        for r in results
    )
    return Grid(RUN_COLUMNS, rows, tuple(_styles(r) for r in results), frozenset({"max rel err"}))


def list_grid(derivations: Iterable) -> Grid:
    """Name, claim, expected, source; one row per derivation."""
    rows = tuple(tuple(printable(c) for c in (d.name, d.kind, d.expect.word, d.source)) for d in derivations)
    return Grid(LIST_COLUMNS, rows)


def _styles(r: Result) -> tuple[str, str]:
    """The name's and the outcome's styles: red for the unexpected, yellow for an error, never red when expected."""
    if r.outcome == "error":
        return "bold yellow", "yellow"
    if r.outcome == "inconclusive":
        return ("" if r.ok else "bold magenta"), "magenta"
    if not r.ok:
        return "bold red", "red"
    return "", "green" if r.outcome == "holds" else "cyan"


def plain_lines(grid: Grid) -> list[str]:
    """The grid as space-aligned lines (header first); the last column is not padded, no cell is cut."""
    rows = [grid.header, *grid.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(grid.header))]

    def line(row: Sequence[str]) -> str:
        aligned = zip(grid.header, row, widths, strict=True)
        cells = [cell.rjust(w) if col in grid.right else cell.ljust(w) for col, cell, w in aligned]
        cells[-1] = row[-1].rjust(widths[-1]) if grid.header[-1] in grid.right else row[-1]
        return GAP.join(cells).rstrip()

    return [line(row) for row in rows]


def narrowed(grid: Grid, width: int) -> Grid:
    """The grid without the source column when its plain lines would be wider than ``width``."""
    if DROPPABLE not in grid.header or max(map(len, plain_lines(grid))) <= width:
        return grid
    i = grid.header.index(DROPPABLE)

    def drop(row: tuple[str, ...]) -> tuple[str, ...]:
        return row[:i] + row[i + 1 :]

    return dataclasses.replace(grid, header=drop(grid.header), rows=tuple(drop(r) for r in grid.rows))


def fits(grid: Grid, width: int) -> bool:
    """Whether :func:`rich_table` draws the grid within ``width`` columns (the source dropped if need be)
    without breaking a cell: else a terminal shows it as plain aligned lines (``derivcheck run``)."""
    return _needed(grid, _kept(grid, width)) <= width


def _kept(grid: Grid, width: int | None) -> list[str]:
    keep = list(grid.header)
    if width is not None and DROPPABLE in keep and _needed(grid, keep) > width:
        keep.remove(DROPPABLE)
    return keep


def rich_table(grid: Grid, width: int | None = None, title: str | None = None) -> Table:
    """The grid as a rich table fitting ``width`` columns when it can: names never wrap, the source goes first."""
    keep = _kept(grid, width)
    t = Table(title=title, show_lines=False, expand=False)
    for col in keep:
        i = grid.header.index(col)
        longest = max((len(row[i]) for row in grid.rows), default=0)
        if i == 0:
            t.add_column(col, no_wrap=True, min_width=max(longest, len(col)), overflow="ignore")
        else:
            t.add_column(col, justify="right" if col in grid.right else "left", overflow="fold")
    styles = grid.styles or (("", ""),) * len(grid.rows)
    outcome = grid.header.index("outcome") if "outcome" in grid.header else -1
    for row, (name_style, outcome_style) in zip(grid.rows, styles, strict=True):
        cells = []
        for col in keep:
            i = grid.header.index(col)
            style = name_style if i == 0 else outcome_style if i == outcome else ""
            cells.append(Text(row[i], style=style))
        t.add_row(*cells)
    return t


def _needed(grid: Grid, columns: Sequence[str]) -> int:
    """The characters a rich table of these columns needs on one line: cells, padding and borders."""
    rows = [grid.header, *grid.rows]
    index = [grid.header.index(c) for c in columns]
    return sum(max(len(row[i]) for row in rows) for i in index) + 3 * len(columns) + 1


def table(results: Sequence[Result], title: str | None = None, width: int | None = None) -> Table:
    """A run's results as a rich table (see :func:`rich_table`)."""
    return rich_table(run_grid(results), width=width, title=title)
