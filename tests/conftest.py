"""Shared fixtures: a fresh registry per test, so planted derivations never leak."""

import os
import shutil
import signal
import tempfile

import pytest

# The suite never touches the user's persistent compilation cache (derivcheck/_cache.py). It keeps one of its own
# for the session, in a temporary folder that the controller makes and removes: the xdist workers, and the commands
# and notebooks the tests start (they inherit the environment), load what another process compiled already (a
# command run twice to compare its output, the catalog's derivations, the example projects) instead of compiling it
# again. Tests of the cache itself, and those that time or count compilations, set their own folder or
# DERIVCHECK_NO_CACHE=1 in the environment they start.
SESSION_CACHE = "DERIVCHECK_TEST_SESSION_CACHE"
OWNS_SESSION_CACHE = SESSION_CACHE not in os.environ  # the controller (or a run without workers)
if OWNS_SESSION_CACHE:
    os.environ[SESSION_CACHE] = tempfile.mkdtemp(prefix="derivcheck-test-cache-")
os.environ.pop("DERIVCHECK_NO_CACHE", None)
os.environ["DERIVCHECK_CACHE_DIR"] = os.environ[SESSION_CACHE]
# The repair search (derivcheck/_repair) costs seconds per unexpected failure: the suite's other tests do not pay
# for it where it is on by default (run, explain, the plugin); tests/test_repair.py turns it on where it tests that.
os.environ["DERIVCHECK_SUGGEST"] = "0"

import derivcheck as dc  # noqa: E402 (after the environment above is set)
from derivcheck import _cache  # noqa: E402

_cache.enable()  # before this process compiles anything


def pytest_unconfigure(config):
    if OWNS_SESSION_CACHE:
        shutil.rmtree(os.environ[SESSION_CACHE], ignore_errors=True)


@pytest.fixture
def reg():
    return dc.Registry()


@pytest.fixture
def fresh_default_registry():
    """The default registry, empty for the duration of the test (:func:`derivcheck.scoped_registry`)."""
    with dc.scoped_registry() as reg:
        yield reg


@pytest.fixture(scope="module")
def module_default_registry():
    """The default registry, empty for a whole test module (for module-scoped runs of the command)."""
    with dc.scoped_registry() as reg:
        yield reg


@pytest.fixture
def children_take_ctrl_c():
    """Processes the test starts get Ctrl-C's default action, as from a terminal.

    Under ``pytest &`` (a shell without job control) the test process ignores SIGINT and a child inherits
    ``SIG_IGN``: Python then installs no KeyboardInterrupt handler, and a test that sends SIGINT waits for nothing.
    A *caught* signal is reset to its default at ``exec``, so catching it here for the test's duration suffices
    (no ``preexec_fn``: a fork of a process running JAX's threads is an error here).
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
