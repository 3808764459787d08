"""Shared fixtures: a fresh registry per test, so planted derivations never leak."""

import os

import pytest

# The suite neither writes to nor reads from the user's persistent compilation cache (derivcheck/_cache.py);
# tests of the cache turn it on in a subprocess with a temporary folder.
os.environ["DERIVCHECK_NO_CACHE"] = "1"
# The repair search (derivcheck/_repair) costs seconds per unexpected failure: the suite's other tests do not pay
# for it where it is on by default (run, explain, the plugin); tests/test_repair.py turns it on where it tests that.
os.environ["DERIVCHECK_SUGGEST"] = "0"

import derivcheck as dc


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
