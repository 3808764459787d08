"""The ``derivcheck`` command.

::

    derivcheck list [PATTERN ...]            the registered derivations
    derivcheck run --all | PATTERN ...       check them and print the table
        --trials N --seed S --json PATH --load MODULE_OR_FILE (repeatable)

Exit status: 0 when every outcome matches its expectation, 1 otherwise, 2 for
a usage error (including a pattern that matches nothing).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    from derivcheck.checks import DEFAULT_TRIALS

    p = argparse.ArgumentParser(prog="derivcheck", description="Check hand-derived calculus against JAX autodiff.")
    sub = p.add_subparsers(dest="command", required=True)

    def add_load(sp):
        sp.add_argument(
            "--load",
            action="append",
            default=[],
            metavar="MODULE_OR_FILE",
            help="import a module or .py file that registers derivations (repeatable)",
        )

    lp = sub.add_parser("list", help="list registered derivations")
    lp.add_argument("patterns", nargs="*", metavar="PATTERN", help="glob on names, e.g. 'softmax*'")
    add_load(lp)

    rp = sub.add_parser("run", help="check derivations")
    rp.add_argument("patterns", nargs="*", metavar="PATTERN", help="glob on names, e.g. 'logistic.*'")
    rp.add_argument("--all", action="store_true", help="check every registered derivation")
    rp.add_argument(
        "--trials", type=_positive_int, default=DEFAULT_TRIALS, help=f"trials per derivation (default {DEFAULT_TRIALS})"
    )
    rp.add_argument("--seed", type=_nonneg_int, default=0, help="root seed (default 0)")
    rp.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    rp.add_argument("-v", "--verbose", action="store_true", help="show full tracebacks of internal errors")
    add_load(rp)
    return p


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _nonneg_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _load_all(targets: Sequence[str], err) -> list[str]:
    from derivcheck.registry import LoadError, load, registry

    problems = list(registry().problems)
    for target in targets:
        try:
            load(target)
        except LoadError as exc:
            problems.append(str(exc))
    for p in problems:
        err(f"error: {p}")
    return problems


def _select(patterns: Sequence[str], run_all: bool):
    from derivcheck.registry import registry

    reg = registry()
    if run_all or not patterns:
        if not run_all and not patterns:
            raise UsageError("say what to run: --all, or one or more name patterns (see `derivcheck list`)")
        return reg.select()
    chosen = reg.select(*patterns)
    unmatched = [p for p in patterns if not reg.select(p)]
    if unmatched:
        raise UsageError(f"no derivation matches {', '.join(map(repr, unmatched))} (see `derivcheck list`)")
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``derivcheck`` command; returns the exit status."""
    from rich.console import Console

    out = Console(soft_wrap=False, highlight=False)
    err_console = Console(stderr=True, highlight=False)

    def err(msg: str) -> None:
        err_console.print(msg, markup=False, highlight=False, soft_wrap=True)

    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    try:
        if args.command == "list":
            return _cmd_list(args, out, err)
        return _cmd_run(args, out, err)
    except UsageError as exc:
        err(f"usage error: {exc}")
        return EXIT_USAGE


def _cmd_list(args, out, err) -> int:
    from rich.table import Table

    from derivcheck.registry import registry

    problems = _load_all(args.load, err)
    chosen = registry().select(*args.patterns)
    t = Table(show_lines=False)
    for col in ("derivation", "claim", "expected", "source"):
        t.add_column(col, overflow="fold")
    for d in chosen:
        t.add_row(d.name, d.kind, d.expect.word, d.source)
    out.print(t)
    out.print(f"{len(chosen)} derivations")
    return EXIT_MISMATCH if problems else EXIT_OK


def _cmd_run(args, out, err) -> int:
    from derivcheck import report
    from derivcheck.checks import check

    problems = _load_all(args.load, err)
    chosen = _select(args.patterns, args.all)
    results = []
    start = time.perf_counter()
    interrupted = False
    live = out.is_terminal
    try:
        if live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=out,
                transient=True,
            ) as progress:
                task = progress.add_task("checking", total=len(chosen))
                for d in chosen:
                    progress.update(task, description=f"checking {d.name}")
                    results.append(check(d, trials=args.trials, seed=args.seed))
                    progress.advance(task)
        else:
            width = len(str(len(chosen)))
            for i, d in enumerate(chosen, 1):
                r = check(d, trials=args.trials, seed=args.seed)
                results.append(r)
                print(
                    f"[{i:>{width}}/{len(chosen)}] {d.name}: {r.outcome} (expected {r.expect.word}) {r.seconds:.2f}s",
                    flush=True,
                )
    except KeyboardInterrupt:
        interrupted = True
        err(f"interrupted: reporting the {len(results)} finished of {len(chosen)} derivations")
    seconds = time.perf_counter() - start
    out.print(report.table(results))
    for line in report.details(results):
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    out.print(
        report.summary(results, seconds, seed=args.seed, trials=args.trials, problems=len(problems)), markup=False
    )
    if args.json:
        doc = report.to_json(results, seed=args.seed, trials=args.trials, seconds=seconds, problems=problems)
        report.write_json(args.json, doc)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if all(r.ok for r in results) and not problems else EXIT_MISMATCH


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
