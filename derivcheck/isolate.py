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

Trade-offs: the worker pays the start-up (importing JAX and the user's files)
once, and again after each timeout; compilation counts towards the limit; it
only finds derivations that ``--load`` or an entry point registers. Without
``--timeout``, checks run in-process.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import pickle
import signal
from collections.abc import Sequence
from typing import Any

from derivcheck.derivation import Derivation
from derivcheck.result import Result

START_SECONDS = 300.0  # for the worker to import JAX and the user's files; not part of any check's limit


class Worker:
    """A spawned process that checks derivations by name, replaced after a timeout or a crash."""

    def __init__(self, loads: Sequence[str], timeout: float) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.loads = tuple(loads)
        self.timeout = float(timeout)
        self._process: Any = None
        self._conn: Any = None

    def check(self, d: Derivation, *, trials: int, seed: int) -> Result:
        """``derivcheck.check(d, trials=, seed=)`` in the worker; an ``error`` Result if it times out or dies."""
        try:
            self._start()
        except _WorkerDied as exc:
            return _error(d, seed, f"the worker process could not start: {exc}", 0.0)
        try:
            self._conn.send((d.name, trials, seed))
        except OSError:  # it died after its last answer
            code = self._exitcode()
            self.close()
            return _error(d, seed, f"the worker process died before checking it (exit code {code})", 0.0)
        if not self._conn.poll(self.timeout):
            self.close()
            return _error(
                d,
                seed,
                f"timed out after {self.timeout:g}s (its worker was stopped; raise --timeout if it is only slow)",
                self.timeout,
            )
        try:
            kind, payload = self._conn.recv()
        except (EOFError, OSError):
            code = self._exitcode()
            self.close()
            return _error(d, seed, f"the worker process died while checking it (exit code {code})", 0.0)
        if kind != "result":
            return _error(d, seed, str(payload), 0.0)
        return payload

    def close(self) -> None:
        """Stop the worker now (a later :meth:`check` starts a fresh one)."""
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
            self._conn.close()
        self._process = self._conn = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        self.close()
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_serve, args=(child, self.loads), daemon=True, name="derivcheck-worker")
        process.start()
        child.close()
        self._process, self._conn = process, parent
        if not parent.poll(START_SECONDS):
            self.close()
            raise _WorkerDied(f"not ready after {START_SECONDS:g}s")
        try:
            parent.recv()
        except (EOFError, OSError):
            code = self._exitcode()
            self.close()
            raise _WorkerDied(f"exit code {code}") from None

    def _exitcode(self) -> Any:
        if self._process is None:
            return None
        self._process.join(5)
        return self._process.exitcode


class _WorkerDied(Exception):
    pass


def _error(d: Derivation, seed: int, message: str, seconds: float) -> Result:
    return Result(
        name=d.name,
        kind=d.kind,
        outcome="error",
        expect=d.expect,
        message=message,
        seed=seed,
        seconds=seconds,
        source=d.source,
    )


def _serve(conn, loads: Sequence[str]) -> None:  # pragma: no cover - runs in the worker process
    """The worker's loop: load what the command loaded, then check one name per message."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    from derivcheck.checks import check
    from derivcheck.registry import LoadError, load, registry

    reg = registry()
    for target in loads:
        try:
            load(target)
        except LoadError:
            pass  # the parent has reported it
    conn.send(("ready", None))
    while True:
        try:
            name, trials, seed = conn.recv()
        except EOFError:
            return
        if name not in reg:
            conn.send(
                (
                    "error",
                    f"{name!r} is not registered in the worker process (--timeout needs derivations "
                    "that --load or an entry point registers)",
                )
            )
            continue
        conn.send(("result", _picklable(check(reg[name], trials=trials, seed=seed))))


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


__all__ = ["Worker"]
