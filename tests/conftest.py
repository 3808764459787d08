"""Shared fixtures: a fresh registry per test, so planted derivations never leak."""

import pytest

import derivcheck as dc


@pytest.fixture
def reg():
    return dc.Registry()
