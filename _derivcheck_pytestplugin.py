"""The pytest entry point of derivcheck (``pytest11``), kept outside the package so that loading it is free.

Importing :mod:`derivcheck` imports JAX, which reads part of its configuration
from the environment once, at import. A plugin that imported it when pytest
starts would make every test run in the environment pay for JAX, and would
freeze that configuration before a project's ``conftest.py`` could set it. So
this module imports only pytest: it registers the options, the ini setting
and the marker, and adds a collector for each test module and each module
matching ``derivcheck_files``. That collector imports the module as pytest
does and, only if the module has imported derivcheck, hands it to
:mod:`derivcheck.pytest_plugin`, which makes one item per derivation declared
in it. A project that never imports derivcheck never loads it.
"""

from __future__ import annotations

import argparse
import fnmatch
import random
import sys
from pathlib import Path

import pytest

GROUP = "derivcheck"
TRIALS_OPTION = "--derivcheck-trials"
SEED_OPTION = "--derivcheck-seed"
SHRINK_OPTION = "--derivcheck-shrink-seconds"
SUGGEST_OPTION = "--derivcheck-suggest-seconds"
DEFAULT_TRIALS = 300  # derivcheck's own default (derivcheck._api.DEFAULT_TRIALS; a test keeps them equal)
DEFAULT_SHRINK_SECONDS = 5.0
DEFAULT_SUGGEST_SECONDS = 5.0
RANDOM = "random"
FILES_INI = "derivcheck_files"
DEFAULT_FILES = ("derivations_*.py",)
MARKER = "derivcheck"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "derivcheck: hand-derived calculus checked against JAX autodiff")
    group.addoption(
        TRIALS_OPTION,
        type=int,
        default=None,
        metavar="N",
        help="random trials per derivation (default: derivcheck's, 300)",
    )
    group.addoption(
        SEED_OPTION,
        type=_seed,
        default=0,
        metavar="S",
        help="root seed of every derivation's inputs (default 0); 'random': one chosen for the session, "
        "shown in the header and in every failure's reproduce command",
    )
    group.addoption(
        SHRINK_OPTION,
        type=float,
        default=DEFAULT_SHRINK_SECONDS,
        metavar="SECONDS",
        help=f"time to shrink an unexpected failure to a minimal counterexample (default {DEFAULT_SHRINK_SECONDS:g}; "
        "0: none)",
    )
    group.addoption(
        SUGGEST_OPTION,
        type=float,
        default=DEFAULT_SUGGEST_SECONDS,
        metavar="SECONDS",
        help="time to search the source edit that fixes an unexpected failure "
        f"(default {DEFAULT_SUGGEST_SECONDS:g}; 0 or DERIVCHECK_SUGGEST=0: none)",
    )
    parser.addini(
        FILES_INI,
        type="args",
        default=list(DEFAULT_FILES),
        help="glob patterns of modules whose derivations are collected besides test modules' (derivations_*.py)",
    )


MAX_SEED = 2**63 - 1  # derivcheck._api.MAX_SEED (this module may not import derivcheck; a test keeps them equal)


def _seed(text: str) -> int | str:
    """``--derivcheck-seed``: an integer, or ``random``."""
    if text == RANDOM:
        return RANDOM
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number or 'random', got {text!r}") from None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a derivation checked by derivcheck (select with -m {MARKER})")
    trials, seed = config.getoption("derivcheck_trials"), config.getoption("derivcheck_seed")
    if trials is not None and trials < 1:
        raise pytest.UsageError(f"{TRIALS_OPTION} must be >= 1, got {trials}")
    config.option.derivcheck_seed_random = seed == RANDOM
    if seed == RANDOM:  # chosen once per session: an xdist worker takes its controller's
        seed = getattr(config, "workerinput", {}).get("derivcheck_seed", random.SystemRandom().randrange(2**32))
        config.option.derivcheck_seed = seed
    if not 0 <= seed <= MAX_SEED:
        raise pytest.UsageError(f"{SEED_OPTION} must be from 0 to 2**63 - 1, got {seed}")
    if config.getoption("derivcheck_shrink_seconds") < 0:
        raise pytest.UsageError(f"{SHRINK_OPTION} must be >= 0")
    if config.getoption("derivcheck_suggest_seconds") < 0:
        raise pytest.UsageError(f"{SUGGEST_OPTION} must be >= 0")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """pytest-xdist: every worker checks with the controller's seed (one random seed per session)."""
    node.workerinput["derivcheck_seed"] = node.config.getoption("derivcheck_seed")


def pytest_report_header(config: pytest.Config) -> str:
    seed, trials = config.getoption("derivcheck_seed"), config.getoption("derivcheck_trials")
    chosen = f" (random; replay with {SEED_OPTION} {seed})" if config.getoption("derivcheck_seed_random") else ""
    return f"derivcheck: seed {seed}{chosen}, {trials or DEFAULT_TRIALS} trials per derivation"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != ".py" or file_path.name in ("conftest.py", "__init__.py"):
        return None
    if not (_matches(file_path, parent.config.getini(FILES_INI)) or _is_test_module(parent, file_path)):
        return None
    return DerivationModule.from_parent(parent, path=file_path)


def _matches(path: Path, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(str(path) if "/" in p else path.name, p) for p in patterns)


def _is_test_module(node: pytest.Collector, path: Path) -> bool:
    """pytest's own Module collects ``path`` (a test module, or a file named on the command line)."""
    return node.session.isinitpath(path) or _matches(path, node.config.getini("python_files"))


class DerivationModule(pytest.Module):
    """The derivations declared in one module, one item each (pytest's own Module collects its tests).

    A ``derivcheck_files`` module that fails to import becomes one failing
    item with a one-line reason, so the run goes on; a test module's import
    error is left to pytest, which reports it once.
    """

    def collect(self):
        try:
            module = self.obj
        except Exception as exc:
            if _is_test_module(self, self.path):
                return []
            return [ImportFailure.from_parent(self, name="import", error=exc)]
        if "derivcheck._registry" not in sys.modules:
            return []  # the module never imported derivcheck: it declares no derivation
        from derivcheck.pytest_plugin import collect_derivations

        return collect_derivations(self, module)


class ImportFailed(Exception):
    """A module of derivations could not be imported."""


class ImportFailure(pytest.Item):
    """Stands for a module of derivations that could not be imported; fails with the reason, in one line."""

    def __init__(self, *, error: BaseException, **kwargs) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise ImportFailed(_one_line(self.error))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ImportFailed):
            return f"{self.path.name} failed to import: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"import of {self.path.name}"


def _one_line(exc: BaseException) -> str:
    """``Type: first line (file:line)`` of the exception behind a failed import."""
    cause = exc.__cause__ if isinstance(exc, pytest.Collector.CollectError) and exc.__cause__ else exc
    lines = str(cause).strip().splitlines()
    tb = cause.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f" ({Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno})" if tb is not None else ""
    if isinstance(cause, SyntaxError):
        where = ""  # its message names the file and line already
    return f"{type(cause).__name__}: {lines[0] if lines else ''}{where}"
