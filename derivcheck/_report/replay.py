"""The one record every printed command is built from: :class:`Replay`.

``derivcheck run`` (:meth:`Replay.run`), ``derivcheck explain``
(:meth:`Replay.explain`) and ``pytest`` (:meth:`Replay.pytest`) command lines
that check a derivation again with the same draws. A size set (``--sizes``)
with the trials :func:`trials_at_sizes` gives draws exactly the trials that
size set got in the full run, so :meth:`Replay.of_worst` replays a result's
worst trial.

This module sits low: it imports only the input specs, so the shrink (whose
counterexamples carry their replay) and every report use it.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from collections.abc import Sequence
from typing import Any

from derivcheck._inputs import Inputs, Sizes


@dataclasses.dataclass(frozen=True)
class Replay:
    """What checks a derivation again: its name, root seed, trials, one size set, loaded files, timeout.

    ``trials=None`` leaves ``--trials`` out (the command's default); ``sizes``
    restricts the check to one size set; ``timeout`` and ``verbose`` (``-v``: the
    full account of a result :func:`quiet` in a run) only enter :meth:`run`.

    >>> r = Replay("demo.grad", seed=3, trials=100, sizes=(("d", 3), ("m", 5)), loads=("my file.py",))
    >>> r.run()
    "derivcheck run demo.grad --seed 3 --trials 100 --sizes d=3,m=5 --load 'my file.py'"
    >>> r.explain()
    "derivcheck explain demo.grad --seed 3 --trials 100 --sizes d=3,m=5 --load 'my file.py'"
    >>> Replay("demo.grad", seed=3).pytest("tests/test_x.py::demo.grad")
    'pytest tests/test_x.py::demo.grad --derivcheck-seed 3'
    """

    name: str
    seed: int = 0
    trials: int | None = None
    sizes: Sizes | None = None
    loads: tuple[str, ...] = ()
    timeout: float | None = None
    verbose: bool = False

    def run(self) -> str:
        """``derivcheck run NAME --seed S --trials T [--sizes k=v,…] [--load F …] [--timeout SECONDS]``.

        ``run`` takes name patterns, so a name's glob characters are escaped to match only that name.
        """
        words = ["derivcheck", "run", not_an_option(glob_escape(self.name)), *self._common()[1:]]
        if self.timeout is not None:
            words += ["--timeout", f"{self.timeout:g}"]
        if self.verbose:
            words.append("-v")
        return shlex.join(words)

    def explain(self) -> str:
        """``derivcheck explain NAME --seed S [--trials T] [--sizes k=v,…] [--load F …]``."""
        return shlex.join(["derivcheck", "explain", *self._common()])

    def pytest(self, nodeid: str) -> str:
        """``pytest NODEID --derivcheck-seed S [--derivcheck-trials T]``: the same item, the same draws."""
        words = ["pytest", nodeid, "--derivcheck-seed", str(self.seed)]
        if self.trials:
            words += ["--derivcheck-trials", str(self.trials)]
        return shlex.join(words)

    def _common(self) -> list[str]:
        words = [not_an_option(self.name), "--seed", str(self.seed)]
        if self.trials:  # never --trials 0 (a usage error): no trials known, the default
            words += ["--trials", str(self.trials)]
        if self.sizes is not None:
            words += ["--sizes", sizes_arg(self.sizes)]
        return words + load_args(self.loads)

    @classmethod
    def of_worst(cls, d: Any, result: Any, loads: tuple[str, ...] = ()) -> Replay:
        """The replay of ``result``'s worst trial (a check of ``d``): its size set alone, with the same draws."""
        trials = sum(c.trials for c in result.cells) or result.trials
        w = result.worst
        if w is None or not isinstance(d.inputs, Inputs):
            return cls(d.name, result.seed, trials, None, tuple(loads), verbose=quiet(result))
        return cls(d.name, result.seed, trials_at_sizes(d.inputs, trials), w.sizes, tuple(loads), verbose=quiet(result))


def quiet(result: Any) -> bool:
    """Whether ``derivcheck run`` gives ``result`` one line unless ``-v``: an outcome as expected (pytest's
    ``-ra`` style). A command that replays such a result asks for ``-v``, so that pasting it shows the trial."""
    return bool(result.ok)


def glob_escape(name: str) -> str:
    """``name`` as a glob pattern (``derivcheck run``'s) that matches only itself: ``[``, ``*``, ``?`` bracketed.

    >>> glob_escape("f[1]*?")
    'f[[]1][*][?]'
    """
    return "".join(f"[{ch}]" if ch in "[*?" else ch for ch in name)


def not_an_option(name: str) -> str:
    """A name (or its glob) that the command line does not read as an option: a leading ``-`` bracketed
    (``[-]``, a glob that matches only ``-``; ``run`` and ``explain`` both take globs).

    >>> not_an_option("-dash.start"), not_an_option("a-b")
    ('[-]dash.start', 'a-b')
    """
    return "[-]" + name[1:] if name.startswith("-") else name


def load_args(loads: Sequence[str]) -> list[str]:
    """``--load F`` for each loaded file or module, in order."""
    return [word for target in loads for word in ("--load", target)]


def sizes_arg(sizes: Sizes) -> str:
    """The ``--sizes`` text of a size set: ``d=3,m=5``.

    >>> sizes_arg((("d", 3), ("m", 5)))
    'd=3,m=5'
    """
    return ",".join(f"{k}={v}" for k, v in sizes)


def trials_at_sizes(inputs: Inputs, trials: int) -> int:
    """The ``--trials`` that, with ``--sizes``, draws the same trials per cell as a full run of ``trials``."""
    per = max(1, math.ceil(trials / (len(inputs.sizes) * len(inputs.regimes))))
    return per * len(inputs.regimes)
