"""Mutation benchmark of the repair search (issue #13): plant single edits, check, diagnose, suggest.

Each mutant is one edit from the repair search's own catalogue
(:mod:`derivcheck._repair._edits`: sign, factor, transpose, term, index, swap,
function) planted in one of the catalog's correct derivative derivations
(gradient, Jacobian, Hessian, VJP, JVP; not the LaTeX-read ones, which have
no source). A mutant is dropped when it does not run or when it is
numerically equivalent to the original (it agrees with the reference on the
screening trials). The rest are checked; for each caught one the table says

* **output kind**: the output-level diagnosis names the kind of the planted
  edit (a planted sign diagnosed as ``sign``…), before any search;
* **names place**: the diagnosis names the line (a suggestion was confirmed);
* **fix holds**: a suggestion was shown — and it is checked once more on
  another fresh seed (``recheck fails`` counts those that would not hold:
  it must stay 0);
* **restores**: the fix gives back the original code (``text``) or a
  function equal to it on the screening trials (``or equiv.``);
* **median s**: the search's seconds per failing derivation (its budget:
  ``--budget``).

Not a test: ``tests/test_repair.py`` runs it tiny. Usage::

    python benchmarks/mutations.py                      # 3 mutants per kind per derivation
    python benchmarks/mutations.py --per-kind 1 --derivations 'logistic.*,softmax_ce.*' --json out.json
    python benchmarks/mutations.py --tiny
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import fnmatch
import itertools
import json
import linecache
import random
import statistics
import sys
import time
import warnings
from collections import defaultdict

import jax
import numpy as np

import derivcheck as dc
from derivcheck._api import with_suggestions
from derivcheck._repair._edits import DIAGNOSIS_KIND, KIND_ORDER, apply, edits, slots
from derivcheck._repair._record import _replace_spans
from derivcheck._repair._search import _agree, _dims, screen_for
from derivcheck._repair._source import NoSource, read
from derivcheck.catalog._table import catalog_derivations

DIFFERENTIAL = ("gradient", "jacobian", "hessian", "vjp", "jvp")
RECHECK_SEED = 7919


@dataclasses.dataclass
class Row:
    derivation: str
    kind: str
    line: int
    before: str
    after: str
    caught: bool = False
    output_kind: bool = False
    names_place: bool = False
    fix_holds: bool = False
    recheck_fails: bool = False
    restores_text: bool = False
    restores_equiv: bool = False
    seconds: float = 0.0
    suggestion: str = ""
    diagnosis: str = ""


def mutants(d, per_kind: int, rng: random.Random):
    """Up to ``per_kind`` single edits of each kind of ``d``'s derived function, with the compiled mutant."""
    program = read(d.derived)
    with jax.enable_x64(True):
        screen = _original_screen(d)
    dims = _dims(program, screen) if screen is not None else []
    by_kind = defaultdict(list)
    for e in edits(program.trees, program.text, program.namespace, dims):
        by_kind[e.kind].append(e)
    for kind in KIND_ORDER:
        chosen = rng.sample(by_kind[kind], min(per_kind * 3, len(by_kind[kind])))  # spares for dropped ones
        kept = 0
        for e in chosen:
            if kept == per_kind:
                break
            try:
                fn = _planted(program, e)
            except Exception:
                continue
            mutant = dataclasses.replace(d, derived=fn, name=f"{d.name}~{kind}")
            if not _differs(mutant):
                continue
            kept += 1
            yield e, mutant, "\n".join(ast.unparse(t) for t in program.trees)


def _planted(program, e):
    """The mutant, compiled from a source of its own: the file's text with the edit made, kept in
    ``linecache`` under a name of its own (nothing is written), so the search reads the mutant's source."""
    node = slots(program.trees[e.tree], program.namespace)[e.site].node
    span = (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)
    text = _replace_spans(program.text.splitlines(keepends=True), [(span, e.after)])
    fake = f"{program.file[:-3]}~mutant{next(_COUNTER)}.py"
    linecache.cache[fake] = (len(text), None, text.splitlines(keepends=True), fake)
    trees = apply(program.trees, e, program.namespace)
    return dataclasses.replace(program, file=fake).compile(tuple(trees))


_COUNTER = itertools.count()


def _original_screen(d):
    """The screening trials of ``d`` (as the search draws them), to read the arguments' dimensions."""
    flipped = dataclasses.replace(d, derived=lambda *a: _negated(d.derived(*a)))
    screen = screen_for(flipped, 0)
    return None if isinstance(screen, str) else screen


def _negated(x):
    return -x + 1.0


def _differs(mutant) -> bool:
    """Whether the mutant runs and differs from the reference on the screening trials (else: equivalent)."""
    try:
        with jax.enable_x64(True), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            screen = screen_for(mutant, 0)
            if isinstance(screen, str):
                return False
            # a mutant of another shape is an error the check reports as such, not a formula to repair
            return all(screen.values(mutant.derived, s).shape == s.reference.shape for s in screen.sets)
    except Exception:
        return False


def _equivalent(fixed, original, d) -> bool:
    """The fixed and the original derived functions agree on the screening trials."""
    with jax.enable_x64(True):
        screen = _original_screen(d)
        if screen is None:
            return False
        for s in screen.sets:
            a = screen.values(fixed, s)
            b = screen.values(original, s)
            if a.shape != b.shape or not _agree(a, b, screen.tol).all():
                return False
    return True


def run_one(d, e, mutant, original_code: str, trials: int, budget: float) -> Row:
    row = Row(d.name, e.kind, e.line, e.before, e.after)
    r = dc.check(mutant, trials=trials)
    row.caught = r.outcome == "fails"
    if not row.caught:
        return row
    row.output_kind = r.diagnosis is not None and r.diagnosis.kind == DIAGNOSIS_KIND[e.kind]
    fixed = with_suggestions(r, mutant, budget=budget)
    repair = fixed.repair
    row.seconds = repair.seconds
    row.diagnosis = fixed.diagnosis.summary if fixed.diagnosis is not None else ""
    if not repair:
        row.suggestion = repair.message
        return row
    s = repair[0]
    row.names_place = fixed.diagnosis is not None and fixed.diagnosis.summary.startswith(f"line {s.line}:")
    row.fix_holds = True
    row.suggestion = s.sentence()
    again = dc.check(dataclasses.replace(d, derived=s.fixed), trials=trials, seed=RECHECK_SEED)
    row.recheck_fails = again.outcome != "holds"
    row.restores_text = s.code == original_code
    row.restores_equiv = row.restores_text or _equivalent(s.fixed, d.derived, d)
    return row


def table(rows: list[Row]) -> str:
    head = (
        "| kind | mutants | caught | output kind | names place | fix holds | recheck fails | restores text "
        "| restores or equiv. | median s |"
    )
    lines = [head, "| " + " | ".join(["---"] * 10) + " |"]
    groups = [(k, [r for r in rows if r.kind == k]) for k in KIND_ORDER] + [("all", rows)]
    for kind, rs in groups:
        caught = [r for r in rs if r.caught]
        n = len(caught)

        def pct(flag: str, caught=caught, n=n) -> str:
            k = sum(getattr(r, flag) for r in caught)
            return f"{k} ({100 * k / n:.0f} %)" if n else "–"

        secs = [r.seconds for r in caught]
        median = f"{statistics.median(secs):.1f}" if secs else "–"
        lines.append(
            f"| {kind} | {len(rs)} | {n} | {pct('output_kind')} | {pct('names_place')} | {pct('fix_holds')} "
            f"| {sum(r.recheck_fails for r in caught)} | {pct('restores_text')} | {pct('restores_equiv')} | {median} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--per-kind", type=int, default=3, help="mutants per edit kind per derivation (default 3)")
    p.add_argument("--derivations", default="*", help="comma-separated name globs (default: every one)")
    p.add_argument("--limit", type=int, default=0, help="at most this many derivations (0: all)")
    p.add_argument("--trials", type=int, default=300, help="trials of each check (default 300)")
    p.add_argument("--budget", type=float, default=None, help="seconds per search (default: the search's, 10)")
    p.add_argument("--seed", type=int, default=0, help="which edits are sampled")
    p.add_argument("--json", help="write every row as JSON")
    p.add_argument("--tiny", action="store_true", help="one derivation, one mutant of a few kinds: a smoke run")
    p.add_argument("--table", metavar="JSON", help="print the table of the rows in JSON (a run's --json) and stop")
    p.add_argument(
        "--expected-failures",
        action="store_true",
        help="instead: search the catalog's expected failures (the notes' own errors) and time each search",
    )
    args = p.parse_args(argv)
    if args.table:
        with open(args.table) as f:
            print(table([Row(**r) for r in json.load(f)]))
        return 0
    patterns = args.derivations.split(",")
    if args.expected_failures:
        return expected_failures(patterns, args.trials, args.budget)
    chosen = [
        d
        for d in catalog_derivations()
        if d.expect.holds
        and d.claim_id in DIFFERENTIAL
        and any(fnmatch.fnmatchcase(d.name, pat) for pat in patterns)
        and getattr(d.derived, "reading", None) is None
    ]
    if args.tiny:
        chosen, args.per_kind, args.trials = [d for d in chosen if d.name == "logistic.gradient_vector_sum"], 1, 60
    if args.limit:
        chosen = chosen[: args.limit]
    rows: list[Row] = []
    start = time.perf_counter()
    for d in chosen:
        rng = random.Random(f"{args.seed}:{d.name}")
        try:
            planted = list(mutants(d, args.per_kind, rng))
        except NoSource as exc:
            print(f"{d.name}: skipped ({exc})", file=sys.stderr)
            continue
        if args.tiny:
            planted = [m for m in planted if m[0].kind in ("factor", "sign")][:2]
        for e, mutant, original in planted:
            row = run_one(d, e, mutant, original, args.trials, args.budget if args.budget is not None else 10.0)
            rows.append(row)
            mark = "fix" if row.fix_holds else ("caught" if row.caught else "missed")
            print(f"{d.name} [{e.kind}] line {e.line}: `{e.before}` -> `{e.after}`: {mark}; {row.suggestion}")
            sys.stdout.flush()
            if args.json:  # after every row: a long run stopped early keeps what it measured
                _write(args.json, rows)
    print()
    print(table(rows))
    print(f"\n{len(rows)} mutants of {len(chosen)} derivations in {time.perf_counter() - start:.0f} s")
    if args.json:
        _write(args.json, rows)
    return 0


def expected_failures(patterns: list[str], trials: int, budget: float | None) -> int:
    """The fix suggested for each of the catalog's expected failures (or why none), and the seconds it took."""
    chosen = [
        d
        for d in catalog_derivations()
        if not d.expect.holds
        and d.claim_id in (*DIFFERENTIAL, "definite")
        and any(fnmatch.fnmatchcase(d.name, pat) for pat in patterns)
    ]
    seconds = []
    for d in chosen:
        start = time.perf_counter()
        r = with_suggestions(dc.check(d, trials=trials), d, budget=budget)
        seconds.append(time.perf_counter() - start)
        found = (r.repair.line() if r.repair is not None else "(it holds)").replace("|", "\\|")
        took = r.repair.seconds if r.repair is not None else 0.0
        print(f"| `{d.name}` | {found} | {took:.1f} |")
        sys.stdout.flush()
    print(f"\n{len(chosen)} expected failures, {sum(seconds):.0f} s in all (check and search)")
    return 0


def _write(path: str, rows: list[Row]) -> None:
    with open(path, "w") as f:
        json.dump([dataclasses.asdict(r) for r in rows], f, indent=1)


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
