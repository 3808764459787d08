"""Shared fixtures: a fresh registry per test, so planted derivations never leak."""

import importlib
import os

import pytest

# The suite neither writes to nor reads from the user's persistent compilation cache (derivcheck/_cache.py);
# tests of the cache turn it on in a subprocess with a temporary folder.
os.environ["DERIVCHECK_NO_CACHE"] = "1"

import derivcheck as dc


@pytest.fixture
def reg():
    return dc.Registry()


def empty_default_registry(mp: pytest.MonkeyPatch) -> dc.Registry:
    """Swap the default registry for an empty one, for tests that load user files into it.

    Installed derivations (the catalog) are loaded into the real one first: loading happens once per
    process, so a swap before it would leave the real registry without them for every later test.
    """
    module = importlib.import_module("derivcheck._registry")
    module.registry()
    empty = dc.Registry()
    mp.setattr(module, "_DEFAULT", empty)
    return empty


@pytest.fixture
def fresh_default_registry(monkeypatch):
    """The default registry, empty for the duration of the test (see :func:`empty_default_registry`)."""
    return empty_default_registry(monkeypatch)


@pytest.fixture(scope="module")
def module_default_registry():
    """The default registry, empty for a whole test module (for module-scoped runs of the command)."""
    with pytest.MonkeyPatch.context() as mp:
        yield empty_default_registry(mp)
