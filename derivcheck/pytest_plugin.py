"""Derivations as pytest items: one per derivation declared in a collected module.

The plugin is on whenever derivcheck is installed (entry point ``pytest11``,
module ``_derivcheck_pytestplugin``, which imports nothing heavy; ``-p
no:derivcheck`` turns it off). It collects the derivations *declared in* the
files pytest collects — test modules, and modules matching the ini setting
``derivcheck_files`` (default ``derivations_*.py``) — never those of the
default registry at large, so the built-in catalog and other installed
packages' derivations stay out of a project's test run.

* The item is named after the derivation, without the module's label when
  the name starts with it (``tests/derivations_x.py::grad`` for ``x.grad``
  or ``derivations_x.grad``; the same under every ``--import-mode``); it carries the marker ``derivcheck``
  and the claim's kind as a keyword (``-k gradient``, ``-m "not derivcheck"``),
  plus any mark applied to the derivation (above or below its decorator) or to
  the module (``pytestmark``).
* A test module that imports a custom rule checked with ``@dc.rule``
  (``from mypkg.layers import layer_norm``) collects that rule's derivations.
* ``--derivcheck-trials N`` and ``--derivcheck-seed S`` set every check's
  trials and root seed (``S`` may be ``random``: one per session, in the
  header line and in every reproduce command).
* An unexpected failure is shrunk to a minimal counterexample within
  ``--derivcheck-shrink-seconds`` (5), and the source edit that fixes it is
  searched within ``--derivcheck-suggest-seconds`` (5; see
  :mod:`derivcheck._repair`). With pytest's cache on, the last
  failing draw of each derivation (its seed, trials and size set) is
  remembered in ``.pytest_cache`` and checked first on the next run, as
  hypothesis replays its example database: still failing, it is reported at
  once; holding, it is forgotten and the full check runs.
* ``--tb=line`` gives one line per failure, ``--tb=short`` the head line,
  diagnosis and reproduce command, ``--tb=no`` nothing.
* A derivation declared ``expect=dc.fails(reason)`` is a strict xfail: it
  shows as ``xfailed`` when it fails, and an ``XPASS(strict)`` failure when it
  holds. An ``error`` outcome is a failure whatever was expected.
* An ``inconclusive`` outcome (the derivation and JAX disagree by little and
  central differences side with the derivation) is a failure whose report
  begins ``inconclusive:`` and says what would settle it; silence it with a
  tolerance (``rtol=``) above the reference's error, or ``expect=dc.fails(...)``
  (then it shows as ``xfailed``).
* A failure is reported in plain text — verdict, worst error, diagnosis,
  counterexample, the worst trial, the command that reproduces it — never a
  JAX traceback.
* A result's notes (float32 precision, skipped trials) are issued as
  :class:`DerivcheckWarning`.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from pathlib import Path
from typing import Any

import pytest

from derivcheck._api import DEFAULT_TRIALS, check, with_counterexample, with_suggestions
from derivcheck._derivation import Derivation
from derivcheck._inputs import Inputs
from derivcheck._registry import declared_in
from derivcheck._repair import enabled as suggestions_enabled
from derivcheck._report.replay import Replay, trials_at_sizes
from derivcheck._report.text import describe, failure_report, headline, is_diagnosis_of_claim
from derivcheck._result import Result
from derivcheck._rules import checked_rules
from derivcheck._shrink import ShrinkError, at_sizes

MARKER = "derivcheck"
MEMORY_KEY = "derivcheck/last_failures"  # in pytest's cache: derivation name -> its last failing draw


class DerivcheckWarning(UserWarning):
    """A note on a derivation's check worth the author's attention (e.g. float32 precision)."""


class DerivationFailed(AssertionError):
    """A derivation's check found it wrong (outcome ``fails``)."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.message)
        self.result = result


class DerivationInconclusive(DerivationFailed):
    """A derivation's check could not decide (outcome ``inconclusive``): the reference is in doubt.

    A failure (a :class:`DerivationFailed`, so an expected failure is an xfail), reported as such."""


class DerivationCheckError(Exception):
    """A derivation's check could not run (outcome ``error``); not :class:`derivcheck.DerivationError`,
    which is a derivation declared wrongly."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.message)
        self.result = result


def collect_derivations(collector: pytest.Collector, module: Any) -> list[DerivationItem]:
    """One item per derivation that ``module``'s code declared in the default registry, and per
    derivation of a custom rule it defines or imports (``@dc.rule``, :mod:`derivcheck._rules`)."""
    wrapped = _marks_above(module)
    items = []
    declared = declared_in(module.__name__)
    declared += [d for d in checked_rules(module) if all(d is not e for e in declared)]
    names = _item_names([d.name for d in declared], _labels(module.__name__, Path(str(collector.path))))
    for d, name in zip(declared, names, strict=True):
        item = DerivationItem.from_parent(collector, name=name.replace("::", ":"), derivation=d)
        for mark in [*wrapped.get(id(d), []), *_marks_below(d)]:
            item.add_marker(mark)
        items.append(item)
    return items


def _labels(module: str, path: Path) -> list[str]:
    """What a module's derivation names may start with: its name (``tests.derivations_x``), the file's stem
    (``derivations_x``) and the stem without ``derivations_``/``test_`` (``x``); longest first."""
    stem = path.stem
    short = stem.removeprefix("derivations_").removeprefix("test_").removesuffix("_test")
    return sorted({module, module.rsplit(".", 1)[-1], stem, short} - {""}, key=len, reverse=True)


def _item_names(names: list[str], labels: list[str]) -> list[str]:
    """Each name without the first label it starts with (``x.grad`` -> ``grad``), unless that makes two alike."""

    def short(name: str) -> str:
        label = next((label for label in labels if name.startswith(label + ".") and len(name) > len(label) + 1), "")
        return name[len(label) + 1 :] if label else name

    shortened = [short(n) for n in names]
    return [s if shortened.count(s) == 1 and s not in names[:i] + names[i + 1 :] else n
            for i, (n, s) in enumerate(zip(names, shortened, strict=True))]  # fmt: skip


def _marks_below(d: Derivation) -> list[pytest.MarkDecorator]:
    """Marks applied to the function before the derivcheck decorator (``@pytest.mark.x`` under it)."""
    marks = getattr(d.derived, "pytestmark", [])
    marks = marks if isinstance(marks, list) else [marks]
    return [_decorator(m.name, m.args, m.kwargs) for m in marks if isinstance(m, pytest.Mark)]


def _decorator(name: str, args: tuple, kwargs: Any) -> pytest.MarkDecorator:
    with warnings.catch_warnings():  # pytest warned at the user's own line already: not a second time, here
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        return getattr(pytest.mark, name).with_args(*args, **kwargs)


def _marks_above(module: Any) -> dict[int, list[pytest.MarkDecorator]]:
    """Marks applied on top of a derivcheck decorator, by the id of the derivation they wrap.

    A derivation is not a plain function, so ``@pytest.mark.slow`` above
    ``@dc.gradient(...)`` leaves a mark decorator holding the derivation as its
    last argument (nested for several marks); its registration is unaffected.
    """
    found: dict[int, list[pytest.MarkDecorator]] = {}
    for value in list(vars(module).values()):
        marks = []
        while isinstance(value, pytest.MarkDecorator) and value.args:
            marks.append(_decorator(value.name, value.args[:-1], value.kwargs))
            value = value.args[-1]
        if marks and isinstance(value, Derivation):
            found[id(value)] = marks
    return found


class DerivationItem(pytest.Item):
    """One derivation, checked against JAX when the item runs."""

    def __init__(self, *, derivation: Derivation, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.derivation = derivation
        self.result: Result | None = None
        self.add_marker(MARKER)
        if derivation.claim_id:  # the claim type's id as a keyword: -k gradient, -k "not hessian"
            self.extra_keyword_matches.add(derivation.claim_id)
        self.extra_keyword_matches.add(derivation.name)  # the full name, though the node id may shorten it
        if not derivation.expect.holds:
            reason = f"expected to fail: {derivation.expect.reason}"
            self.add_marker(pytest.mark.xfail(reason=reason, strict=True, raises=DerivationFailed))

    def _option(self, name: str) -> Any:
        """An option the plugin gives a default and checks at configure time (never ``None`` here)."""
        value = self.config.getoption(name)
        if value is None:
            raise pytest.UsageError(f"derivcheck: option {name} is unset")
        return value

    def runtest(self) -> None:
        trials = int(self.config.getoption("derivcheck_trials") or DEFAULT_TRIALS)
        seed = self._option("derivcheck_seed")  # resolved to an int at configure (random included)
        r = self._remembered_failure() or self._check(trials, seed)
        self.result = r
        self.user_properties += [("derivcheck_outcome", r.outcome), ("derivcheck_seed", r.seed)]
        for note in r.notes:
            warnings.warn(DerivcheckWarning(f"{r.name}: {note}"), stacklevel=1)
        if r.outcome == "error":
            raise DerivationCheckError(r)
        if r.outcome == "fails":
            raise DerivationFailed(r)
        if r.outcome == "inconclusive":
            raise DerivationInconclusive(r)

    def _check(self, trials: int, seed: int) -> Result:
        """The check; an unexpected failure shrunk (within the time budget) and remembered for the next run."""
        d = self.derivation
        r = check(d, trials=trials, seed=seed)
        unexpected = r.outcome == "fails" and d.expect.holds
        seconds = self._option("derivcheck_shrink_seconds")
        if unexpected and seconds > 0:
            r = with_counterexample(r, d, seconds=seconds)
        budget = self._option("derivcheck_suggest_seconds")
        if unexpected and budget > 0 and suggestions_enabled():
            r = with_suggestions(r, d, budget=budget)
        self._remember(r, trials if unexpected else None)
        return r

    def _remembered_failure(self) -> Result | None:
        """The last run's failing draw of this derivation, checked again first: its result if it still fails."""
        memory = self._memory()
        draw = memory.get(self.derivation.name) if memory is not None else None
        d = self.derivation
        if not draw or not d.expect.holds or not isinstance(d.inputs, Inputs):
            return None
        try:
            seed, trials, sizes = int(draw["seed"]), int(draw["trials"]), {k: int(v) for k, v in draw["sizes"]}
            r = check(at_sizes(d, sizes), trials=trials_at_sizes(d.inputs, trials), seed=seed)
        except (KeyError, TypeError, ValueError, ShrinkError):
            return None  # an old or foreign entry: the full check decides
        if r.outcome != "fails":
            return None
        self.replayed = (seed, trials)
        return r

    def _remember(self, r: Result, trials: int | None) -> None:
        """Keep an unexpected failure's draw (``trials`` given) for the next run, or forget this derivation's."""
        memory = self._memory()
        if memory is None:
            return
        name = self.derivation.name
        if trials is not None and r.worst is not None:
            memory[name] = {"seed": r.seed, "trials": trials, "sizes": [list(kv) for kv in r.worst.sizes]}
        elif memory.pop(name, None) is None:
            return
        self.config.cache.set(MEMORY_KEY, dict(list(memory.items())[-MEMORY_SIZE:]))

    def _memory(self) -> dict | None:
        cache = getattr(self.config, "cache", None)
        if cache is None:
            return None
        memory = cache.get(MEMORY_KEY, {})
        return memory if isinstance(memory, dict) else {}

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, DerivationFailed | DerivationCheckError):
            return self._failure_repr(excinfo.value.result)
        return super().repr_failure(excinfo, style=style)

    def _failure_repr(self, r: Result) -> FailureRepr:
        """The failure's account at the length ``--tb`` asks: ``line`` one line, ``short`` three, else all."""
        last = f"reproduce: {self.replay_command()}"
        style = self.config.getoption("tbstyle", "auto")
        if style == "line":  # pytest prints the crash line (below) after the report: the report is empty
            lines = []
        elif style == "short":
            diagnosis = r.diagnosis is not None and not is_diagnosis_of_claim(r.diagnosis)
            lines = [headline(r), *([f"  diagnosis: {describe(r.diagnosis)}"] if diagnosis else []), f"  {last}"]
        else:
            lines = failure_report(r, last).splitlines()
        if getattr(self, "replayed", None) and lines:
            seed, trials = self.replayed
            note = f"the last run's failing draw (seed {seed}, {trials} trials), replayed first from pytest's cache"
            lines.insert(len(lines) - 1, f"  note: {note}")
        line = _line_of(self.derivation.derived, self.path)
        crash = headline(r) if lines else f"{headline(r)}; {last}"  # --tb=line: the one line replays it (its seed)
        return FailureRepr(lines, Crash(str(self.path), None if line is None else line + 1, crash))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, _line_of(self.derivation.derived, self.path), f"derivation {self.derivation.name}"

    def replay_command(self) -> str:
        """The pytest command line that checks this derivation again, with the same trials and seed."""
        seed, trials = self._option("derivcheck_seed"), self.config.getoption("derivcheck_trials")
        seed, trials = getattr(self, "replayed", (seed, trials))
        return Replay(self.derivation.name, seed, trials).pytest(self.nodeid)


MEMORY_SIZE = 200  # derivations whose last failing draw is remembered (the most recent)


@dataclasses.dataclass(frozen=True)
class Crash:
    """Where and what, in one line: what ``--tb=line`` and pytest's short summary show."""

    path: str
    lineno: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.lineno}: {self.message}" if self.lineno else f"{self.path}: {self.message}"


@dataclasses.dataclass(frozen=True)
class FailureRepr:
    """A failure report in plain lines, with its one-line :class:`Crash` (pytest's ``longrepr`` protocol)."""

    lines: list[str]
    reprcrash: Crash

    def toterminal(self, tw: Any) -> None:
        for line in self.lines:
            tw.line(line)

    def __str__(self) -> str:
        return "\n".join(self.lines) if self.lines else str(self.reprcrash)


def _line_of(fn: Any, path: Path) -> int | None:
    """0-based line of ``fn``'s definition when it is in ``path`` (the user's function, not our wrapper)."""
    fn = getattr(fn, "user_function", fn)
    try:
        if Path(inspect.getsourcefile(fn) or "").resolve() != Path(path).resolve():
            return None
        return inspect.getsourcelines(fn)[1] - 1
    except (TypeError, OSError):
        return None
