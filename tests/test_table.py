"""The command's tables: plain aligned lines in a pipe, a rich table on a terminal (names never wrap)."""

import io

from rich.console import Console

import derivcheck as dc
from derivcheck._report.table import fits, list_grid, narrowed, plain_lines, rich_table, run_grid
from derivcheck._result import Result

LONG = "softmax_regression.hessian_block_cross_class_as_written"


def _result(name, outcome="holds", holds=True, source="notes, Ex. 8.4(c), a long description of where it is"):
    expect = dc.HOLDS if holds else dc.fails("a reason")
    return Result(name=name, kind="gradient", outcome=outcome, expect=expect, message="m", source=source)


def _render(table, width):
    console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
    console.print(table)
    return console.file.getvalue()


def test_plain_lines_keep_names_whole_and_first():
    lines = plain_lines(run_grid([_result(LONG), _result("a.b", "fails", holds=False)]))
    assert len(lines) == 3 and lines[0].split()[:2] == ["derivation", "claim"]
    assert [line.split()[0] for line in lines[1:]] == [LONG, "a.b"]
    assert lines[1].index("gradient") == lines[2].index("gradient")  # aligned


def test_a_narrow_terminal_drops_the_source_before_a_name_wraps():
    text = _render(rich_table(run_grid([_result(LONG)]), width=100), 100)
    assert LONG in text and "source" not in text
    assert max(map(len, text.splitlines())) <= 100
    wide = _render(rich_table(run_grid([_result(LONG)]), width=200), 200)
    assert "source" in wide and "a long description" in wide


def test_a_terminal_too_narrow_for_the_table_gets_plain_lines_without_a_broken_cell():
    """At 80 columns rich broke every column but the name mid-word (``grad/ient``, ``9.2e/-01``); with an
    85-character name only the name was drawn. Where the table does not fit, the lines are plain and the
    source goes."""
    grid = run_grid([_result(LONG), _result("a.b", "fails", holds=False)])
    assert fits(grid, 200) and not fits(grid, 80)
    lines = plain_lines(narrowed(grid, 80))
    assert "source" not in lines[0] and len(lines) == 3  # longer than 80 only by whole cells, never broken
    assert lines[1].split() == [LONG, "gradient", "-", "holds", "holds", "-"]
    assert narrowed(grid, 400) == grid


def test_names_and_sources_are_never_markup():
    r = _result("odd[/x].name[bold]", source="[/]broken [red]markup")
    text = _render(rich_table(run_grid([r]), width=200), 200)
    assert "odd[/x].name[bold]" in text and "[/]broken [red]markup" in text
    assert "odd[/x].name[bold]" in plain_lines(run_grid([r]))[1]


def test_control_characters_are_escaped_in_every_cell():
    r = _result("n", source="line\nbreak \x1b[31mred")
    (line,) = plain_lines(run_grid([r]))[1:]
    assert "\x1b" not in line and "\\x1b[31m" in line and "\\n" in line


def test_list_grid_has_one_row_per_derivation(reg):
    spec = dc.inputs(x=dc.normal("n"))
    dc.gradient(of=lambda x: (x**2).sum(), inputs=spec, name="t.g", registry=reg)(lambda x: 2 * x)
    assert plain_lines(list_grid(reg))[1].split()[:3] == ["t.g", "gradient", "holds"]
