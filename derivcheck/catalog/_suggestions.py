"""The repair search's answer for every expected failure of the catalog, kept in ``suggestions.json``.

The search (:func:`derivcheck._repair.search`) takes seconds per failing
derivation, so ``docs/catalog.md`` does not run it: it reads this committed,
generated file, written by hand with::

    python -m derivcheck.catalog._table --suggest            # the missing and stale entries (minutes)
    python -m derivcheck.catalog._table --suggest --all      # every entry again
    python -m derivcheck.catalog._table --suggest 'softmax_regression.*'

Each entry records the suggestions (``file`` relative to the repository,
each change's ``line``, ``before``, ``after``; ``holds_on``) or the one line
that says why there is none, and a *fingerprint* of what the answer depends
on: the claim, the reason, the source of the derived function and of the
helpers the search may edit, and the source of ``of``. :func:`stale` names
the entries whose fingerprint changed or whose ``before`` is no longer at
its line, so an edited catalog cannot keep showing an old answer
(``tests/test_catalog_suggestions.py``).
"""

from __future__ import annotations

import ast
import dataclasses
import fnmatch
import hashlib
import inspect
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import derivcheck as dc
from derivcheck._repair import SUGGEST_SECONDS, Repair
from derivcheck._repair import search as repair_search
from derivcheck._repair._source import NoSource, read

PATH = Path(__file__).with_name("suggestions.json")
ROOT = Path(__file__).resolve().parents[2]
SEED = 0


@dataclasses.dataclass(frozen=True)
class Entry:
    """One expected failure's answer: ``fixes`` (each ``{file, changes: [{line, before, after}], holds_on}``,
    best first) or ``message`` (why there is none), with the ``fingerprint`` it was computed for."""

    fingerprint: str
    fixes: tuple[dict[str, Any], ...] = ()
    message: str = ""

    def cell(self) -> str:
        """What the catalog table shows: every fix, best first (``line 89: `a` should be `b```; ``or …``),
        or why there is none."""
        if not self.fixes:
            return self.message
        said = [" and ".join(f"line {c['line']}: `{c['before']}` should be `{c['after']}`" for c in f["changes"])
                for f in self.fixes]  # fmt: skip
        return "; or ".join(said) + f" (holds on {self.fixes[0]['holds_on']} trials)"


def expected_failures(derivations: Sequence[dc.Derivation]) -> list[dc.Derivation]:
    return [d for d in derivations if not d.expect.holds]


def fingerprint(d: dc.Derivation) -> str:
    """A hash of what the search's answer for ``d`` depends on (docstrings and formatting excluded)."""
    try:
        body = "\n".join(ast.unparse(_undocumented(t)) for t in read(d.derived).trees)
    except NoSource as exc:
        body = str(exc)
    text = "\n".join([d.name, d.kind, d.expect.reason, body, _source_of(getattr(d.claim, "of", None))])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _source_of(fn: Any) -> str:
    """``fn``'s source as syntax (its name where there is none: a library function; ``""`` for no ``of``)."""
    if fn is None:
        return ""
    try:
        return ast.unparse(_undocumented(ast.parse(inspect.cleandoc(inspect.getsource(fn)))))
    except (OSError, TypeError, SyntaxError):
        return str(getattr(fn, "__qualname__", type(fn).__name__))


def _undocumented(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and len(body) > 1 and _is_docstring(body[0]):
            node.body = body[1:]  # type: ignore[attr-defined]
    return tree


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def load(path: Path = PATH) -> dict[str, Entry]:
    """The entries of ``path`` (none when it is missing)."""
    if not path.is_file():
        return {}
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {
        name: Entry(e["fingerprint"], tuple(e.get("fixes", ())), e.get("message", ""))
        for name, e in doc["entries"].items()
    }


def save(entries: dict[str, Entry], budget: float, path: Path = PATH) -> None:
    doc = {
        "command": "python -m derivcheck.catalog._table --suggest",
        "budget_seconds": budget,
        "seed": SEED,
        "entries": {name: _plain(e) for name, e in sorted(entries.items())},
    }
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _plain(e: Entry) -> dict[str, Any]:
    out: dict[str, Any] = {"fingerprint": e.fingerprint}
    if e.fixes:
        out["fixes"] = list(e.fixes)
    else:
        out["message"] = e.message
    return out


def entry(d: dc.Derivation, repair: Repair) -> Entry:
    """The entry of a search's answer (files relative to the repository, as the table shows them)."""
    fixes = tuple(
        {
            "file": _relative(s.file),
            "changes": [{"line": c.line, "before": c.before, "after": c.after} for c in s.changes],
            "holds_on": s.holds_on,
        }
        for s in repair
    )
    return Entry(fingerprint(d), fixes, "" if fixes else repair.message)


def _relative(file: str) -> str:
    try:
        return Path(file).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return file


def stale(d: dc.Derivation, e: Entry | None) -> str:
    """Why the entry of ``d`` is out of date (``""`` when it is current): missing, its fingerprint changed,
    or a ``before`` no longer at its line."""
    if e is None:
        return "no entry"
    if e.fingerprint != fingerprint(d):
        return "the derivation changed since it was searched"
    for fix in e.fixes:
        for c in fix["changes"]:
            if not at_line(ROOT / fix["file"], c["line"], c["before"]):
                return f"`{c['before']}` is no longer at {fix['file']}:{c['line']}"
    return ""


def at_line(file: Path, line: int, before: str) -> bool:
    """Whether an expression that reads ``before`` starts at ``line`` of ``file`` (compared as syntax)."""
    try:
        want = ast.unparse(ast.parse(before, mode="eval"))
        tree = ast.parse(file.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return False
    return any(
        isinstance(n, ast.expr) and getattr(n, "lineno", None) == line and ast.unparse(n) == want
        for n in ast.walk(tree)
    )


def update(
    derivations: Sequence[dc.Derivation],
    patterns: Sequence[str],
    *,
    redo_all: bool = False,
    budget: float | None = None,
    path: Path = PATH,
) -> dict[str, Entry]:
    """Search the expected failures matching ``patterns`` whose entry is missing or stale (all with
    ``redo_all``), keep the other entries, drop those of derivations that no longer fail; write ``path``."""
    budget = SUGGEST_SECONDS if budget is None else budget
    entries = load(path)
    failing = expected_failures(derivations)
    entries = {d.name: entries[d.name] for d in failing if d.name in entries}
    for d in failing:
        if not any(fnmatch.fnmatchcase(d.name, p) for p in patterns):
            continue
        why = "--all" if redo_all else stale(d, entries.get(d.name))
        if not why:
            continue
        start = time.perf_counter()
        entries[d.name] = entry(d, repair_search(d, seed=SEED, budget=budget))
        print(f"{d.name} ({why}): {entries[d.name].cell()} [{time.perf_counter() - start:.0f} s]", file=sys.stderr)
        save(entries, budget, path)  # after each: a long run stopped early keeps what it found
    save(entries, budget, path)
    return entries
