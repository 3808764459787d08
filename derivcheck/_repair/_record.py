"""What a repair search found: :class:`Suggestion` (one confirmed fix) and :class:`Repair` (the search's answer)."""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

from derivcheck._repair._edits import DIAGNOSIS_KIND
from derivcheck._result import Diagnosis


@dataclasses.dataclass(frozen=True)
class Change:
    """One edit as text: at ``line``, ``before`` becomes ``after`` (``kind`` from the catalogue, ``why`` in words)."""

    line: int
    before: str
    after: str
    kind: str
    why: str

    def sentence(self) -> str:
        return f"line {self.line}: `{self.before}` should be `{self.after}`"


@dataclasses.dataclass(frozen=True)
class Suggestion:
    """A fix that makes the derivation hold: one edit (or two), confirmed by a check on a fresh seed.

    ``file``, ``line``, ``before``, ``after`` say where and what (for two
    edits, the first edit's line and both edits' texts joined by ``"; "``);
    ``holds_on`` is how many trials the confirming check judged, ``seed`` its
    seed; ``diff`` is a unified diff of the file.
    """

    file: str
    changes: tuple[Change, ...]
    holds_on: int
    seed: int
    diff: str = ""
    code: str = ""  # the edited functions, as code (what a benchmark compares with the original)
    fixed: Callable[..., Any] | None = dataclasses.field(default=None, compare=False, repr=False)
    """The derived function with the fix made (in this process only: not pickled)."""

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "fixed": None}  # compiled from an edited tree: it cannot be pickled

    @property
    def line(self) -> int:
        return self.changes[0].line

    @property
    def before(self) -> str:
        return "; ".join(c.before for c in self.changes)

    @property
    def after(self) -> str:
        return "; ".join(c.after for c in self.changes)

    @property
    def kind(self) -> str:
        return self.changes[0].kind

    def sentence(self) -> str:
        """``line 12: `1 - mu` should be `mu * (1 - mu)``` (both edits, for a pair)."""
        return " and ".join(c.sentence() for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{file, line, before, after, holds_on}``."""
        return {
            "file": self.file,
            "line": self.line,
            "before": self.before,
            "after": self.after,
            "holds_on": self.holds_on,
        }


@dataclasses.dataclass(frozen=True)
class Repair(Sequence[Suggestion]):
    """The answer of a repair search: its confirmed suggestions (a sequence), and in one line what it did.

    ``message`` says why there is no suggestion (no source, a claim the search
    does not cover, nothing in the catalogue fixes it) or is ``""``;
    ``candidates`` is how many edited functions were judged, ``complete``
    False when the time budget stopped the search first.
    """

    suggestions: tuple[Suggestion, ...] = ()
    message: str = ""
    candidates: int = 0
    seconds: float = 0.0
    complete: bool = True

    def __len__(self) -> int:
        return len(self.suggestions)

    @overload
    def __getitem__(self, i: int) -> Suggestion: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Suggestion]: ...

    def __getitem__(self, i: int | slice) -> Suggestion | Sequence[Suggestion]:
        return self.suggestions[i]

    def __iter__(self) -> Iterator[Suggestion]:
        return iter(self.suggestions)

    def __bool__(self) -> bool:
        return bool(self.suggestions)

    def line(self) -> str:
        """One line: the best suggestion and how far it was confirmed, or why there is none."""
        if not self.suggestions:
            return self.message
        s = self.suggestions[0]
        return f"suggested fix: {s.sentence()} (with this change it holds on {s.holds_on} trials)"

    def to_dict(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.suggestions]


def unified_diff(file: str, text: str, spans: Sequence[tuple[tuple[int, int, int, int], str]]) -> str:
    """A unified diff of ``text`` with each span ``(line, col, end_line, end_col)`` replaced by its new text."""
    old = text.splitlines(keepends=True)
    new_text = _replace_spans(old, spans)
    name = _shown(file)
    diff = difflib.unified_diff(old, new_text.splitlines(keepends=True), fromfile=name, tofile=name, n=1)
    return "".join(diff).rstrip("\n")


def _shown(file: str) -> str:
    """``file`` relative to the working directory when it is below it (as a user would type it)."""
    try:
        rel = os.path.relpath(file)
    except ValueError:  # another drive (Windows)
        return file
    return file if rel.startswith("..") else rel


def _replace_spans(lines: list[str], spans: Sequence[tuple[tuple[int, int, int, int], str]]) -> str:
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line.encode()))
    data = "".join(lines).encode()
    for (line, col, end_line, end_col), new in sorted(spans, key=lambda s: s[0], reverse=True):
        a, b = starts[line - 1] + col, starts[end_line - 1] + end_col  # ast offsets are UTF-8 bytes
        data = data[:a] + new.encode() + data[b:]
    return data.decode()


def diagnosis_from(diagnosis: Diagnosis | None, s: Suggestion) -> Diagnosis:
    """The diagnosis a confirmed suggestion gives: its kind and words; the output-level finding stays as evidence."""
    first = s.changes[0]
    confirmed = f"with this change it holds on {s.holds_on} trials (seed {s.seed})"
    found = () if diagnosis is None else (f"at the output: {diagnosis.summary}", *diagnosis.evidence)
    summary = f"{s.sentence()}: {first.why}"
    if diagnosis is None:
        return Diagnosis(kind=DIAGNOSIS_KIND[first.kind], summary=summary, evidence=(confirmed,))
    return dataclasses.replace(
        diagnosis,
        kind=DIAGNOSIS_KIND[first.kind],
        summary=summary,
        evidence=(confirmed, *found),
        expression=first.after,
    )
