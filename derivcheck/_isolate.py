"""Checking derivations in a worker process, so that one that runs forever can be stopped.

A JAX computation cannot be interrupted inside the process that runs it: a
``lax.while_loop`` that never ends blocks in XLA, and Python signals are only
handled when it returns. ``derivcheck run --timeout S`` therefore checks each
derivation in a separate, *spawned* process (never forked: a forked copy of a
process that has started JAX's thread pools can deadlock) that loads the same
files and entry points as the command, then receives derivation names one at
a time. When a check outlives ``S`` seconds the worker is killed, the
derivation becomes an ``error`` ("timed out after S s"), and a fresh worker
takes the next one.

The same workers run ``derivcheck run --jobs N``: N of them check N
derivations at once, each in its own process with its own JAX runtime (JAX's
CPU runtime is not safe to drive from several Python threads at once: two
threads that both execute computations can deadlock it), and the command
hands out derivations and collects the results in order.

Trade-offs: the worker pays the start-up (importing JAX and the user's files)
once, and again after each timeout; compilation counts towards the limit; it
only finds derivations that ``--load`` or an entry point registers. Without
``--timeout`` and with one job, checks run in-process.

A derivation registered in the command's own process only (by Python code
that called :func:`derivcheck.cli.main`, not by a ``--load`` file or an entry
point) is not in the workers. Under ``--timeout`` or an explicit ``--jobs``
it is an ``error`` naming the fix (:func:`not_in_worker`), never checked
in-process behind the user's back (an endless one would never be stopped);
only the automatic sharing out (``--jobs`` not given, 8 or more derivations)
checks it in the command's process instead, since nothing was promised.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import pickle
import signal
import threading
from collections.abc import Sequence
from typing import Any

from derivcheck._api import check_and_shrink
from derivcheck._derivation import Derivation
from derivcheck._format import one_line
from derivcheck._registry import LoadError, load, registry
from derivcheck._result import Result
from derivcheck._shrink import at_sizes, parse_sizes

START_SECONDS = 300.0  # for the worker to import JAX and the user's files; not part of any check's limit


class Worker:
    """A spawned process that checks derivations by name, replaced after a timeout or a crash."""

    def __init__(self, loads: Sequence[str], timeout: float | None = None, installed: bool = True) -> None:
        """``loads``: the files and modules the worker imports; ``installed``: whether it also imports the
        installed derivations (the catalog, entry points) — only when the command chooses among them, as
        importing the catalog costs a worker seconds (its LaTeX statements are parsed)."""
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.loads = tuple(loads)
        self.installed = installed
        self.timeout = None if timeout is None else float(timeout)
        self._process: Any = None
        self._conn: Any = None
        self._lock = threading.Lock()  # the command's threads check while its main thread may stop everything
        self._stopped = False

    def check(self, d: Derivation, *, trials: int, seed: int, sizes: str | None = None, shrink: bool = False) -> Result:
        """``derivcheck.check(d, trials=, seed=)`` in the worker; an ``error`` Result if it times out or dies.

        ``sizes`` (``"d=3,m=5"``): check at that one size set, as ``run --sizes``; ``shrink``: add a
        minimal counterexample to a failure, as ``run --shrink``.
        """
        try:
            conn = self._start()
        except _WorkerDied as exc:
            return _error(d, seed, f"the worker process could not start: {exc}", 0.0)
        try:
            conn.send((d.name, trials, seed, sizes, shrink))
        except (OSError, ValueError):  # it died after its last answer (or the command stopped it)
            code = self._exitcode()
            self.close()
            return _error(d, seed, f"the worker process died before checking it (exit code {code})", 0.0)
        try:
            if self.timeout is not None and not conn.poll(self.timeout):
                self.close()
                return _error(
                    d,
                    seed,
                    f"timed out after {self.timeout:g}s (its worker was stopped; raise --timeout if it is only slow)",
                    self.timeout,
                )
            kind, payload = conn.recv()
        except (EOFError, OSError, ValueError):
            code = self._exitcode()
            self.close()
            return _error(d, seed, f"the worker process died while checking it (exit code {code})", 0.0)
        if kind == "missing":
            raise NotInWorker(f"{d.name!r} is not registered in the worker process")
        if kind != "result":
            return _error(d, seed, str(payload), 0.0)
        return payload

    def close(self) -> None:
        """Stop the worker now (a later :meth:`check` starts a fresh one, unless :meth:`stop` was called).

        Safe from any thread, at any time, any number of times.
        """
        with self._lock:
            process, conn = self._process, self._conn
            self._process = self._conn = None
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join()
            conn.close()

    def stop(self) -> None:
        """Stop the worker for good (Ctrl-C, SIGTERM): a check in progress, or a later one, is an ``error``."""
        with self._lock:
            self._stopped = True
        self.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> Any:
        """The connection to a ready worker process, started if need be."""
        with self._lock:
            if self._process is not None and self._process.is_alive():
                return self._conn
        self.close()
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(
            target=_serve, args=(child, self.loads, self.installed), daemon=True, name="derivcheck-worker"
        )
        with self._lock:
            if self._stopped:
                raise _WorkerDied("the run was stopped")
            process.start()
            self._process, self._conn = process, parent
        child.close()
        try:
            if not parent.poll(START_SECONDS):
                self.close()
                raise _WorkerDied(f"not ready after {START_SECONDS:g}s")
            parent.recv()
        except (EOFError, OSError, ValueError):
            code = self._exitcode()
            self.close()
            raise _WorkerDied(f"exit code {code}") from None
        return parent

    def _exitcode(self) -> Any:
        process = self._process
        if process is None:
            return None
        process.join(5)
        return process.exitcode


class _WorkerDied(Exception):
    pass


class NotInWorker(LookupError):
    """The worker cannot find the derivation: only what ``--load`` or an entry point registers is there."""


def not_in_worker(d: Derivation, seed: int) -> Result:
    """The ``error`` of a derivation the worker processes cannot find, naming the fix."""
    return _error(
        d,
        seed,
        "registered in this process only: --timeout and --jobs check in worker processes, which find only the"
        " derivations of --load files and entry points; declare it in a file and --load it (or drop --timeout"
        " and use --jobs 1)",
        0.0,
    )


def _error(d: Derivation, seed: int, message: str, seconds: float) -> Result:
    return Result(
        name=d.name,
        kind=d.kind,
        claim=d.claim_id,
        outcome="error",
        expect=d.expect,
        message=message,
        seed=seed,
        seconds=seconds,
        source=d.source,
    )


def _serve(conn, loads: Sequence[str], installed: bool = True) -> None:  # pragma: no cover - runs in the worker
    """The worker's loop: load what the command loaded, then check one name per message."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    reg = registry(installed=installed)
    for target in loads:
        try:
            load(target)
        except LoadError:
            pass  # the parent has reported it
    conn.send(("ready", None))
    while True:
        try:
            name, trials, seed, sizes, shrink = conn.recv()
        except EOFError:
            return
        if name not in reg:
            conn.send(("missing", name))
            continue
        try:
            d = at_sizes(reg[name], parse_sizes(sizes)) if sizes else reg[name]
            result = check_and_shrink(d, trials=trials, seed=seed, shrink=shrink, loads=loads)
        except Exception as exc:  # check itself never raises; sizes or shrinking might
            conn.send(("error", one_line(exc)))
            continue
        conn.send(("result", _picklable(result)))


def _picklable(result: Result) -> Result:
    """``result``, with fields that cannot cross the process boundary replaced by their text."""
    try:
        pickle.dumps(result)
        return result
    except Exception:
        texts = {
            f.name: str(value)
            for f in dataclasses.fields(result)
            if f.name in ("diagnosis", "counterexample") and (value := getattr(result, f.name)) is not None
        }
        extras = {f.name: None for f in dataclasses.fields(result) if f.name == "per_trial"}
        return dataclasses.replace(result, **texts, **extras)
