"""Derivations as pytest items: one per derivation declared in a collected module.

The plugin is on whenever derivcheck is installed (entry point ``pytest11``,
module ``_derivcheck_pytestplugin``, which imports nothing heavy; ``-p
no:derivcheck`` turns it off). It collects the derivations *declared in* the
files pytest collects — test modules, and modules matching the ini setting
``derivcheck_files`` (default ``derivations_*.py``) — never those of the
default registry at large, so the built-in catalog and other installed
packages' derivations stay out of a project's test run.

* The item is named after the derivation, carries the marker ``derivcheck``
  and the claim's kind as a keyword (``-k gradient``, ``-m "not derivcheck"``),
  plus any mark applied to the derivation (above or below its decorator) or to
  the module (``pytestmark``).
* ``--derivcheck-trials N`` and ``--derivcheck-seed S`` set every check's
  trials and root seed.
* A derivation declared ``expect=dc.fails(reason)`` is a strict xfail: it
  shows as ``xfailed`` when it fails, and an ``XPASS(strict)`` failure when it
  holds. An ``error`` outcome is a failure whatever was expected.
* A failure is reported in plain text — verdict, worst error, diagnosis,
  counterexample, the worst trial, the command that reproduces it — never a
  JAX traceback.
* A result's notes (float32 precision, skipped trials) are issued as
  :class:`DerivcheckWarning`.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Any

import pytest

from derivcheck._api import DEFAULT_TRIALS, check
from derivcheck._derivation import Derivation
from derivcheck._registry import declared_in
from derivcheck._report.replay import Replay
from derivcheck._report.text import failure_report
from derivcheck._result import Result

MARKER = "derivcheck"


class DerivcheckWarning(UserWarning):
    """A note on a derivation's check worth the author's attention (e.g. float32 precision)."""


class DerivationFailed(AssertionError):
    """A derivation's check found it wrong (outcome ``fails``)."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.message)
        self.result = result


class DerivationCheckError(Exception):
    """A derivation's check could not run (outcome ``error``); not :class:`derivcheck.DerivationError`,
    which is a derivation declared wrongly."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.message)
        self.result = result


def collect_derivations(collector: pytest.Collector, module: Any) -> list[DerivationItem]:
    """One item per derivation that ``module``'s code declared in the default registry."""
    wrapped = _marks_above(module)
    items = []
    for d in declared_in(module.__name__):
        item = DerivationItem.from_parent(collector, name=d.name.replace("::", ":"), derivation=d)
        for mark in [*wrapped.get(id(d), []), *_marks_below(d)]:
            item.add_marker(mark)
        items.append(item)
    return items


def _marks_below(d: Derivation) -> list[pytest.MarkDecorator]:
    """Marks applied to the function before the derivcheck decorator (``@pytest.mark.x`` under it)."""
    marks = getattr(d.derived, "pytestmark", [])
    marks = marks if isinstance(marks, list) else [marks]
    return [_decorator(m.name, m.args, m.kwargs) for m in marks if isinstance(m, pytest.Mark)]


def _decorator(name: str, args: tuple, kwargs: Any) -> pytest.MarkDecorator:
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
        if not derivation.expect.holds:
            reason = f"expected to fail: {derivation.expect.reason}"
            self.add_marker(pytest.mark.xfail(reason=reason, strict=True, raises=DerivationFailed))

    def runtest(self) -> None:
        trials = self.config.getoption("derivcheck_trials") or DEFAULT_TRIALS
        r = check(self.derivation, trials=trials, seed=self.config.getoption("derivcheck_seed"))
        self.result = r
        self.user_properties += [("derivcheck_outcome", r.outcome), ("derivcheck_seed", r.seed)]
        for note in r.notes:
            warnings.warn(DerivcheckWarning(f"{r.name}: {note}"), stacklevel=1)
        if r.outcome == "error":
            raise DerivationCheckError(r)
        if r.outcome == "fails":
            raise DerivationFailed(r)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, DerivationFailed | DerivationCheckError):
            return failure_report(excinfo.value.result, f"reproduce: {self.replay_command()}")
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, _line_of(self.derivation.derived, self.path), f"derivation {self.derivation.name}"

    def replay_command(self) -> str:
        """The pytest command line that checks this derivation again, with the same trials and seed."""
        seed, trials = self.config.getoption("derivcheck_seed"), self.config.getoption("derivcheck_trials")
        return Replay(self.derivation.name, seed, trials).pytest(self.nodeid)


def _line_of(fn: Any, path: Path) -> int | None:
    """0-based line of ``fn``'s definition when it is in ``path``."""
    try:
        if Path(inspect.getsourcefile(fn) or "").resolve() != Path(path).resolve():
            return None
        return inspect.getsourcelines(fn)[1] - 1
    except (TypeError, OSError):
        return None
