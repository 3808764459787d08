"""Every catalog derivation is its own test item: its outcome must match what it expects.

The module runs on one pytest-xdist worker (``xdist_group``, with ``--dist loadgroup`` in the
pytest options), and every check here uses the default number of trials: the other seeds then
reuse the programs the first pass compiled (the engine keeps them, keyed by derivation and batch
shape), so five more seeds cost their run time, not five more compilations of the catalog.
"""

import pytest

import derivcheck as dc

pytestmark = pytest.mark.xdist_group("catalog")

CATALOG = [d for d in dc.registry() if d.derived.__module__.startswith("derivcheck.catalog")]


def test_catalog_is_loaded_through_the_entry_point():
    assert len(CATALOG) >= 10


VALUE_CLAIMS = (dc.Gradient, dc.Jacobian, dc.Hessian, dc.VJP, dc.Definite, dc.Identity)


@pytest.mark.parametrize("derivation", CATALOG, ids=[d.name for d in CATALOG])
def test_catalog_derivation(derivation):
    """The outcome matches the expectation; an expected failure also gets a diagnosis that says something.

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


HOLDING = [d for d in CATALOG if d.expect.holds]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_holding_catalog_derivations_hold_on_other_seeds(seed):
    for d in HOLDING:
        r = dc.check(d, seed=seed)  # the default trials: the programs test_catalog_derivation compiled
        assert r.outcome == "holds", f"{d.name} seed {seed}: {r.message}"
