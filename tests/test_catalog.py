"""Every catalog derivation is its own test item: its outcome must match what it expects.

A derivation expected to hold is checked at five more seeds in the same item, with the same
number of trials: those checks reuse the programs the first one compiled (the engine keeps them,
keyed by derivation and batch shape), so the other seeds cost their run time, not another
compilation of the catalog — whichever pytest-xdist worker the item runs on.
"""

import pytest

import derivcheck as dc

CATALOG = [d for d in dc.registry() if d.derived.__module__.startswith("derivcheck.catalog")]


def test_catalog_is_loaded_through_the_entry_point():
    assert len(CATALOG) >= 10


OTHER_SEEDS = (1, 2, 3, 4, 5)
VALUE_CLAIMS = (dc.Gradient, dc.Jacobian, dc.Hessian, dc.VJP, dc.Definite, dc.Identity)


@pytest.mark.parametrize("derivation", CATALOG, ids=[d.name for d in CATALOG])
def test_catalog_derivation(derivation):
    """The outcome matches the expectation (at five more seeds for one expected to hold); an expected
    failure also gets a diagnosis that says something.

    (A claim about values — a derivative, a matrix, an identity — must get a diagnosis of its values,
    not only the family's message relayed.)
    """
    result = dc.check(derivation)
    assert result.outcome != "error", result.message
    assert result.ok, f"{result.outcome}, expected {derivation.expect.word}: {result.message}"
    if result.outcome == "fails":
        diag = result.diagnosis
        assert diag is not None and diag.summary and not diag.summary.startswith("no diagnosis"), diag
        if isinstance(derivation.claim, VALUE_CLAIMS):
            assert diag.kind != "claim", f"only the claim's message, no diagnosis of its values: {diag}"
    if derivation.expect.holds:
        for seed in OTHER_SEEDS:
            again = dc.check(derivation, seed=seed)
            assert again.outcome == "holds", f"{derivation.name} seed {seed}: {again.message}"
