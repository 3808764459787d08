"""The ``derivcheck`` command.

::

    derivcheck list [PATTERN ...]            the registered derivations
    derivcheck run --all | PATTERN ...       check them and print the table
        --trials N --seed S --load MODULE_OR_FILE (repeatable) --timeout SECONDS
        --json PATH --junit-xml PATH --markdown PATH --verbose
        --sizes K=V,...  (one size set only)  --shrink  (minimal counterexamples)
        --no-suggest --suggest-seconds S  (the fix of an unexpected failure)
    derivcheck run --rules MODULE_OR_FILE   the jax.custom_vjp/custom_jvp rules it defines (@dc.rule)
    derivcheck explain NAME                  diagnosis, suggested fix, minimal counterexample, replay command
        --trials N --seed S --load MODULE_OR_FILE --sizes K=V,... --no-shrink --seconds S --json PATH
        --no-suggest --suggest-seconds S

Exit status: 0 when every outcome matches its expectation, 1 otherwise (an
``inconclusive`` outcome of a derivation expected to hold included), 2 for
a usage error (including a pattern that matches nothing), 3 for an internal
error (one line; ``--verbose`` shows its traceback), 130 when interrupted by
Ctrl-C (SIGINT) and 143 when stopped by SIGTERM: then the reports (``--json``,
``--junit-xml``, ``--markdown``) hold the derivations that finished, marked
``interrupted``, and the table and summary are printed. A reader that stops
reading (``derivcheck run --all | head -1``) does not stop the run: printing
stops, the run finishes and writes its reports, and exits with its status.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import logging
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from derivcheck import _cache, _devices
from derivcheck._api import DEFAULT_TRIALS, MAX_SEED, check_and_shrink, with_suggestions
from derivcheck._format import one_line
from derivcheck._isolate import NotInWorker, Worker, not_in_worker
from derivcheck._registry import LoadError, load, name_matches, registry
from derivcheck._repair import SUGGEST_SECONDS
from derivcheck._repair import enabled as suggestions_enabled
from derivcheck._report.explain import render
from derivcheck._report.json import to_json, write_atomic, write_json
from derivcheck._report.junit import junit_xml
from derivcheck._report.markdown import markdown
from derivcheck._report.replay import Replay, load_args, quiet, sizes_arg
from derivcheck._report.table import Grid, fits, list_grid, narrowed, plain_lines, rich_table, run_grid
from derivcheck._report.terminal import Screen
from derivcheck._report.text import MEMORY_HINT, details, printable
from derivcheck._result import Result, summary
from derivcheck._rules import load_rules
from derivcheck._shrink import ShrinkError, at_sizes, parse_sizes

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 3, 130, 143


class UsageError(Exception):
    pass


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread and handled as Ctrl-C is: what finished is reported (exit 143)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _handle_sigterm() -> None:
    """Turn SIGTERM into :class:`Terminated` for the command's duration (main thread only; undone by main)."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    _UNDO.append(lambda: signal.signal(signal.SIGTERM, previous))


def _stop_status(exc: KeyboardInterrupt) -> int:
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="derivcheck", description="Check hand-derived calculus against JAX autodiff.")
    p.add_argument("--version", action="version", version=f"derivcheck {_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    def add_load(sp):
        sp.add_argument(
            "--load",
            action="append",
            default=[],
            metavar="MODULE_OR_FILE",
            help="import a module or .py file that registers derivations (repeatable)",
        )

    def add_rules(sp):
        sp.add_argument(
            "--rules",
            action="append",
            default=[],
            metavar="MODULE_OR_FILE",
            help="import a module or .py file and check every jax.custom_vjp/custom_jvp rule it defines "
            "with @dc.rule inputs (repeatable); rules without inputs are listed as skipped",
        )

    lp = sub.add_parser("list", help="list registered derivations")
    lp.add_argument("patterns", nargs="*", metavar="PATTERN", help="glob on names, e.g. 'softmax*'")
    add_load(lp)
    add_rules(lp)
    add_catalog(lp)

    rp = sub.add_parser("run", help="check derivations")
    rp.add_argument("patterns", nargs="*", metavar="PATTERN", help="glob on names, e.g. 'logistic.*'")
    rp.add_argument(
        "--all",
        action="store_true",
        help="check every derivation: the installed ones (the built-in catalog, entry points), "
        "or with --load only what the loaded files register",
    )
    rp.add_argument(
        "--trials", type=_positive_int, default=DEFAULT_TRIALS, help=f"trials per derivation (default {DEFAULT_TRIALS})"
    )
    rp.add_argument("--seed", type=_seed, default=0, help="root seed (default 0)")
    rp.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH (schema in the README)")
    rp.add_argument("--junit-xml", metavar="PATH", help="write the results as JUnit XML to PATH, for CI")
    rp.add_argument("--markdown", metavar="PATH", help="write a Markdown summary to PATH (renders on GitHub)")
    rp.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="stop a derivation after SECONDS (each is then checked in a worker process; see derivcheck._isolate)",
    )
    rp.add_argument("-v", "--verbose", action="store_true", help="show the tracebacks behind errors")
    add_sizes(rp)
    rp.add_argument(
        "--shrink",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="shrink each failure to a minimal counterexample (in the JSON too); off by default: explain does it",
    )
    add_suggest(rp, "search for the source edit that fixes each unexpected failure")
    rp.add_argument(
        "--devices",
        default=None,
        metavar="N|all",
        help="shard the trials over the first N local devices, or all of them (default: all; 1 turns sharding off)",
    )
    rp.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="check N derivations at once, in N worker processes (default: one per CPU core, at most 4, "
        "for 8 or more derivations; 1 checks in this process)",
    )
    add_cache(rp)
    add_load(rp)
    add_rules(rp)
    add_catalog(rp)

    ep = sub.add_parser("explain", help="why a derivation fails: diagnosis, minimal counterexample, replay command")
    ep.add_argument("name", metavar="NAME", help="a derivation's name (or a pattern matching exactly one)")
    ep.add_argument("--trials", type=_positive_int, default=DEFAULT_TRIALS, help=f"trials (default {DEFAULT_TRIALS})")
    ep.add_argument("--seed", type=_seed, default=0, help="root seed (default 0)")
    ep.add_argument(
        "--shrink", action=argparse.BooleanOptionalAction, default=True, help="shrink to a minimal counterexample"
    )
    ep.add_argument(
        "--seconds", type=_positive_float, default=None, metavar="SECONDS", help="time budget of the shrink (20)"
    )
    add_suggest(ep, "search for the source edit that fixes a failure")
    ep.add_argument("--json", metavar="PATH", help="write the result (with diagnosis and counterexample) as JSON")
    add_sizes(ep)
    add_cache(ep)
    add_load(ep)
    return p


def add_cache(sp) -> None:
    """``--no-cache`` and ``--cache-dir``: the persistent compilation cache (:mod:`derivcheck._cache`)."""
    sp.add_argument(
        "--no-cache",
        action="store_true",
        help="do not use the persistent compilation cache (also: DERIVCHECK_NO_CACHE=1)",
    )
    sp.add_argument(
        "--cache-dir",
        metavar="PATH",
        help="the persistent compilation cache's folder (default: $DERIVCHECK_CACHE_DIR or ~/.cache/derivcheck/jax)",
    )


def add_suggest(sp, what: str) -> None:
    """``--suggest/--no-suggest`` and ``--suggest-seconds``: the repair search (:mod:`derivcheck._repair`)."""
    sp.add_argument(
        "--suggest",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"{what} (default: on, unless DERIVCHECK_SUGGEST=0)",
    )
    sp.add_argument(
        "--suggest-seconds",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help=f"time budget of one search (default {SUGGEST_SECONDS:g}, or DERIVCHECK_SUGGEST_SECONDS)",
    )


def _suggesting(args) -> bool:
    return suggestions_enabled() if args.suggest is None else args.suggest


def add_catalog(sp) -> None:
    sp.add_argument(
        "--catalog",
        action="store_true",
        help="with --load: the installed derivations (built-in catalog, entry points) join the loaded ones",
    )


def add_sizes(sp) -> None:
    sp.add_argument(
        "--sizes",
        metavar="K=V,...",
        help="check at this one size set only, e.g. d=3,m=5 (same draws as that size set of a full run)",
    )


def _version() -> str:
    """The installed distribution's version (``derivcheck-jax``)."""
    try:
        return importlib.metadata.version("derivcheck-jax")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 2**63 - 1, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be from 0 to 2**63 - 1 ({MAX_SEED}), got {value}")
    return value


def _load_all(targets: Sequence[str], err, *, installed: bool = True) -> tuple[list[str], list]:
    """Import every ``--load`` target; return the one-line problems and the derivations they registered.

    ``installed``: also import the installed derivations (the catalog and the
    ``derivcheck.derivations`` entry points).
    """
    problems = list(registry(installed=installed).problems)
    loaded = []
    for target in targets:
        try:
            loaded += load(target)
        except LoadError as exc:
            problems.append(str(exc))
    for p in problems:
        err(f"error: {p}")
    return problems, loaded


def _only_loaded(args) -> bool:
    """Whether the command is about the ``--load``ed files alone.

    ``--load FILE`` with no name pattern (with or without ``--all``) means the
    derivations FILE registers; ``--catalog`` adds the installed ones, and a
    name pattern searches everything (so a printed replay command always finds
    its derivation).
    """
    return bool(args.load) and not getattr(args, "catalog", False) and not args.patterns


def _pool(args, err) -> tuple[list[str], list]:
    """The load problems and the derivations the command chooses from (see :func:`_only_loaded`).

    With ``--rules``: the derivations of the custom rules those modules define
    (their unchecked rules in ``args.skipped``), with the patterns choosing among them.
    """
    args.skipped = []
    args.installed = False  # whether the installed derivations (the catalog, entry points) are in the pool
    if getattr(args, "rules", None):
        return _rules_pool(args, err)
    only_loaded = _only_loaded(args)
    args.installed = not only_loaded
    problems, loaded = _load_all(args.load, err, installed=not only_loaded)
    return problems, loaded if only_loaded else registry().select()


def _rules_pool(args, err) -> tuple[list[str], list]:
    problems = list(_load_all(args.load, err, installed=False)[0])
    found = []
    for target in args.rules:
        try:
            derivations, skipped = load_rules(target)
        except LoadError as exc:
            problems.append(str(exc))
            err(f"error: {exc}")
            continue
        found += derivations
        args.skipped += skipped
    args.load = [*args.load, *args.rules]  # workers and replay commands load them too
    if not args.patterns:
        args.all = True
    return problems, found


def _select(pool: Sequence, patterns: Sequence[str], run_all: bool, loading: bool):
    """The derivations of ``pool`` that the patterns (or ``--all``) choose."""
    if not patterns:
        if not run_all and not loading:
            raise UsageError("say what to run: --all, or one or more name patterns (see `derivcheck list`)")
        return list(pool)

    def matches(d, p: str) -> bool:
        return name_matches(d.name, p)

    unmatched = [p for p in patterns if not any(matches(d, p) for d in pool)]
    if unmatched:
        raise UsageError(f"no derivation matches {', '.join(map(repr, unmatched))} (see `derivcheck list`)")
    return [d for d in pool if any(matches(d, p) for p in patterns)]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``derivcheck`` command; returns the exit status."""
    from rich.console import Console

    out = Screen(Console(soft_wrap=False, highlight=False))
    err_console = Console(stderr=True, highlight=False)

    def err(msg: str) -> None:
        err_console.print(msg, markup=False, highlight=False, soft_wrap=True)

    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    verbose = getattr(args, "verbose", False)
    restore = _log_tracebacks(err_console.file) if verbose else None
    try:
        _handle_sigterm()
        if args.command == "list":
            return _cmd_list(args, out, err)
        if args.command == "explain":
            return _cmd_explain(args, out, err)
        return _cmd_run(args, out, err)
    except UsageError as exc:
        err(f"usage error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        err("terminated" if isinstance(exc, Terminated) else "interrupted")
        return _stop_status(exc)
    except MemoryError:
        err(f"error: {MEMORY_HINT}")
        return EXIT_INTERNAL
    except Exception as exc:
        if verbose:
            import traceback

            traceback.print_exc(file=err_console.file)
        err(f"internal error: {one_line(exc)}" + ("" if verbose else " (run with --verbose for the traceback)"))
        return EXIT_INTERNAL
    finally:
        if restore is not None:
            restore()
        while _UNDO:
            _UNDO.pop()()


def _log_tracebacks(stream):
    """``--verbose``: the check logs each error with its traceback; show them on ``stream`` (returns the undo)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("derivcheck: %(message)s"))
    logger = logging.getLogger("derivcheck")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(level)

    return restore


def _cmd_list(args, out, err) -> int:
    _set_up_compilation(args)  # nothing is compiled, but the catalog's parse trees are read from the cache's folder
    problems, pool = _pool(args, err)
    chosen = _select(pool, args.patterns, True, True)
    for line in args.skipped:
        out.line(line)
    _show(out, list_grid(chosen))
    out.line(f"{len(chosen)} derivations")
    return EXIT_MISMATCH if problems else EXIT_OK


def _show(out: Screen, grid: Grid) -> None:
    """A table: rich on a terminal wide enough for it (names whole, the source dropped when narrow), else
    plain aligned lines (a cell is never broken: ``gradi/ent``, ``9.2e/-01`` at 80 columns)."""
    if out.is_terminal and fits(grid, out.width):
        out.print(rich_table(grid, width=out.width))
    else:
        for line in plain_lines(narrowed(grid, out.width) if out.is_terminal else grid):
            out.line(line)


def _cmd_run(args, out, err) -> int:
    _check_outputs(args, ("json", "junit_xml", "markdown"))
    _set_up_compilation(args)  # first: loading the catalog reads its parse trees from the cache's folder
    problems, pool = _pool(args, err)
    chosen = _at_sizes(_select(pool, args.patterns, args.all, bool(args.load)), args.sizes)
    for line in args.skipped:
        out.line(line)
    jobs = _jobs(args.jobs, len(chosen))
    results: list[Result] = []
    start = time.perf_counter()
    stopped = None  # the exit status of a Ctrl-C or SIGTERM
    workers: list = []
    if args.timeout is not None or jobs > 1:
        workers = [Worker(args.load, args.timeout, installed=args.installed) for _ in range(jobs)]
    sizes = _sizes_text(args.sizes) if args.sizes else None

    def check_one(d, worker=None):
        if worker is not None:
            try:
                return worker.check(d, trials=args.trials, seed=args.seed, sizes=sizes, shrink=args.shrink)
            except NotInWorker:  # registered in this process only (not by --load or an entry point)
                if args.timeout is not None or args.jobs is not None:  # asked for: never silently in-process
                    return not_in_worker(d, args.seed)
        with _IN_PROCESS:  # JAX runs in one thread of this process at a time
            return check_and_shrink(d, trials=args.trials, seed=args.seed, shrink=args.shrink, loads=args.load)

    def checked(d, worker=None):  # an unexpected failure's fix is searched; never an expected one's (--all stays fast)
        r = check_one(d, worker)
        if r.outcome == "fails" and not r.ok and _suggesting(args):
            with _IN_PROCESS:
                r = with_suggestions(r, d, budget=args.suggest_seconds)
        return r

    try:
        _check_all(chosen, _in_order(checked, chosen, workers), results, out)
    except KeyboardInterrupt as exc:
        stopped = _stop_status(exc)
        what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        err(f"{what}: reporting the {len(results)} finished of {len(chosen)} derivations")
    finally:
        for worker in workers:
            worker.stop()
    seconds = time.perf_counter() - start

    def replay(r: Result) -> str:
        return _replay(args, r).run()

    def explain_hint(r: Result) -> str:  # the default trials left out
        return dataclasses.replace(_replay(args, r), trials=_unless_default(args.trials)).explain()

    interrupted = stopped is not None
    run = dict(seed=args.seed, trials=args.trials, seconds=seconds, problems=problems, interrupted=interrupted)
    written = _write_reports(args, results, run, replay, err)  # first: a second Ctrl-C must not lose them
    _show(out, run_grid(results))
    for line in details(results, replay=replay, explain=explain_hint, verbose=args.verbose):
        out.line(line)
    out.line(summary(results, seconds, seed=args.seed, trials=args.trials, problems=len(problems)))
    if stopped is not None:
        return stopped
    return EXIT_OK if all(r.ok for r in results) and not problems and written else EXIT_MISMATCH


def _check_all(chosen: Sequence, checked, results: list, out: Screen) -> None:
    """Append each result of ``checked`` (in the order of ``chosen``) to ``results`` as it comes, showing progress:
    a live bar naming the derivation being checked on a terminal, else one line per result."""
    if not out.is_terminal:
        width = len(str(len(chosen)))
        for i, (d, r) in enumerate(zip(chosen, checked, strict=False), 1):
            results.append(r)
            path = f" [{r.path}]" if r.path else ""
            verdict = f"{r.outcome} (expected {r.expect.word}) {r.seconds:.2f}s{path}"
            out.line(f"[{i:>{width}}/{len(chosen)}] {d.name}: {verdict}")
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=out.console, transient=True) as progress:
        task = progress.add_task(_checking(chosen, 0), total=len(chosen))
        for i, r in enumerate(checked, 1):
            results.append(r)
            progress.update(task, description=_checking(chosen, i), advance=1)


def _checking(chosen: Sequence, i: int) -> str:
    """The progress bar's words while ``chosen[i]`` is being checked."""
    return f"checking {printable(chosen[i].name)}" if i < len(chosen) else "done"


SOURCE_SUFFIXES = (".py", ".pyi", ".pyx", ".ipynb")
"""Files a report never replaces (:func:`_check_outputs`): the user's code."""


def _check_outputs(args, options: Sequence[str]) -> None:
    """Refuse, before any work, report paths that would overwrite each other or a file the user gave to read.

    Two reports at one path would keep only the last; a report at a ``--load``
    or ``--rules`` file's path, or over any existing Python source or notebook
    (a module loaded by name, a helper it imports), would replace the user's
    code with the report. An empty path (an unset ``$REPORT``) would write nothing.
    """

    def same(a: str, b: str) -> bool:
        try:
            return os.path.samefile(a, b)
        except OSError:
            return os.path.abspath(a) == os.path.abspath(b)

    paths = [(f"--{o.replace('_', '-')}", getattr(args, o)) for o in options if getattr(args, o, None) is not None]
    for i, (flag, path) in enumerate(paths):
        if not path.strip():
            raise UsageError(f"{flag} was given an empty path: name the file to write")
        for other_flag, other in paths[:i]:
            if same(path, other):
                raise UsageError(f"{other_flag} and {flag} both write {path}: give each report its own path")
        for reads, targets in (("--load", args.load), ("--rules", getattr(args, "rules", ()))):
            if any(same(path, target) for target in targets):
                raise UsageError(f"{flag} {path} is the file {reads} reads: write the report elsewhere")
        if os.path.exists(path) and Path(path).suffix.lower() in SOURCE_SUFFIXES:
            raise UsageError(f"{flag} {path} is an existing source file: write the report elsewhere")


def _replay(args, r: Result) -> Replay:
    """What checks ``r`` again as this command did: its seed, the trials, ``--sizes``, ``--load``, ``--timeout``."""
    return Replay(r.name, r.seed, args.trials, _sizes_restriction(args), tuple(args.load), args.timeout, quiet(r))


def _sizes_restriction(args) -> tuple | None:
    """The one size set ``--sizes`` restricts a command to, or ``None``."""
    return tuple(parse_sizes(args.sizes).items()) if args.sizes else None


def _unless_default(trials: int) -> int | None:
    return None if trials == DEFAULT_TRIALS else trials


def _at_sizes(chosen, text: str | None):
    """``--sizes``: every chosen derivation restricted to that one size set."""
    if not text:
        return chosen
    try:
        sizes = parse_sizes(text)
        return [at_sizes(d, sizes) for d in chosen]
    except ShrinkError as exc:
        raise UsageError(str(exc)) from None


def _sizes_text(text: str) -> str:
    """``--sizes`` as one word, ``d=3,m=5``, for the worker processes."""
    return sizes_arg(tuple(parse_sizes(text).items()))


def _one(name: str, loads: Sequence[str] = ()):
    reg = registry()
    if name in reg:
        return reg[name]
    matches = reg.select(name)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(
            f"no derivation named {name!r} (see `{shlex.join(['derivcheck', 'list', *load_args(loads)])}`)"
        )
    names = ", ".join(d.name for d in matches[:4]) + (", …" if len(matches) > 4 else "")
    raise UsageError(f"{name!r} matches {len(matches)} derivations ({names}): name one")


def _cmd_explain(args, out, err) -> int:
    """``derivcheck explain NAME``: check one derivation, shrink a failure, explain its verdict (``_report``)."""
    _check_outputs(args, ("json",))
    _set_up_compilation(args)  # the check run before reuses what it compiled
    problems, _ = _load_all(args.load, err)
    d = _at_sizes([_one(args.name, args.load)], args.sizes)[0]
    start = time.perf_counter()
    result = check_and_shrink(
        d, trials=args.trials, seed=args.seed, shrink=args.shrink, loads=args.load, seconds=args.seconds
    )
    if _suggesting(args):
        result = with_suggestions(result, d, budget=args.suggest_seconds)
    for line in render(d, result, trials=args.trials, loads=args.load, sizes=_sizes_restriction(args)):
        out.line(line)
    written = True
    if args.json:
        doc = to_json(
            [result], seed=args.seed, trials=args.trials, seconds=time.perf_counter() - start, problems=problems
        )
        written = _written(args.json, lambda path: write_json(path, doc), err)
    return EXIT_OK if result.ok and not problems and written else EXIT_MISMATCH


_UNDO: list = []
_IN_PROCESS = threading.Lock()


def _jobs(requested: int | None, n: int) -> int:
    """How many derivations to check at once: ``--jobs``, or by default one per CPU core (at most
    :data:`AUTO_JOBS`) when there are at least :data:`AUTO_JOBS_FROM` derivations to share out."""
    if requested is not None:
        return max(1, min(requested, n))
    if n < AUTO_JOBS_FROM:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, AUTO_JOBS, n))


AUTO_JOBS = 4  # each worker holds its own compiled executables (≈1–2 GB for the whole catalog)
AUTO_JOBS_FROM = 8  # below this, a worker's start-up (importing JAX, ~2 s) costs more than it saves


def _in_order(check_one, chosen, workers: list):
    """``check_one(d, worker)`` for every chosen derivation, yielded in order.

    With several ``workers`` (processes, see :mod:`derivcheck._isolate`), one
    thread per worker hands it the next derivation and waits for its result,
    so the workers check ahead of the derivation being reported. The threads
    only wait on pipes (JAX runs in the workers, never in two threads of one
    process). They are daemons: Ctrl-C reports what finished, and the workers
    are stopped.
    """
    if len(workers) <= 1 or len(chosen) <= 1:
        worker = workers[0] if workers else None
        yield from (check_one(d, worker) for d in chosen)
        return
    import queue
    import threading

    todo: queue.SimpleQueue = queue.SimpleQueue()
    for i in range(len(chosen)):
        todo.put(i)
    outcomes: list = [None] * len(chosen)
    finished = [threading.Event() for _ in chosen]
    stop = threading.Event()

    def work(worker):
        while not stop.is_set():
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            try:
                outcomes[i] = (True, check_one(chosen[i], worker))
            except BaseException as exc:  # handed to the main thread, raised there
                outcomes[i] = (False, exc)
            finished[i].set()

    for k, worker in enumerate(workers):
        threading.Thread(target=work, args=(worker,), name=f"derivcheck-{k}", daemon=True).start()
    try:
        for i in range(len(chosen)):
            while not finished[i].wait(0.1):  # a timed wait, so Ctrl-C reaches the main thread
                pass
            ok, value = outcomes[i]
            if not ok:
                raise value
            yield value
    finally:
        stop.set()


def _set_up_compilation(args) -> None:
    """The persistent compilation cache (on unless ``--no-cache``) and the devices (``--devices``, for
    ``run``).

    Both go into the environment too, so a ``--timeout`` worker process uses the same.
    """
    saved_env = {k: os.environ.get(k) for k in (_devices.ENV, _cache.ENV_OFF, _cache.ENV_DIR)}
    saved_devices = _devices.selection()

    def restore():  # main() undoes this when it returns (the command may run in-process, in tests)
        _devices.set_devices(saved_devices)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    _UNDO.append(restore)
    if getattr(args, "devices", None) is not None:
        try:
            _devices.set_devices(args.devices)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        os.environ[_devices.ENV] = str(args.devices)
    if getattr(args, "no_cache", False):
        os.environ[_cache.ENV_OFF] = "1"
        return
    where = _cache.enable(getattr(args, "cache_dir", None))
    if where is not None:
        os.environ[_cache.ENV_DIR] = str(where)


def _write_reports(args, results, run: dict, replay, err) -> bool:
    """Write the reports asked for, each atomically; a report that cannot be written is a one-line error."""
    writers = [
        (args.json, lambda path: write_json(path, to_json(results, **run))),
        (args.junit_xml, lambda path: write_atomic(path, junit_xml(results, **run, replay=replay))),
        (args.markdown, lambda path: write_atomic(path, markdown(results, **run, replay=replay))),
    ]
    return all([_written(path, write, err) for path, write in writers if path])


def _written(path: str, write, err) -> bool:
    """``write(path)``; a report that cannot be written is a one-line error (returns False)."""
    try:
        write(path)
    except OSError as exc:
        err(f"error: could not write {path}: {exc.strerror or exc}")
        return False
    return True


def console() -> None:
    """The ``derivcheck`` command: :func:`main`'s status as the process's exit status.

    After Ctrl-C or SIGTERM the reports are written and the table shown by then; the process ends at once
    (``os._exit``), without the interpreter's shutdown, which waits for a computation still running in
    JAX's threads (an endless ``lax.while_loop`` checked in this process would hold it forever).
    """
    status = main()
    if status in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a reader that has gone, a closed stream: nothing more to say
                pass
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    console()
