"""How each claim is verified against JAX, one module per family, and the ``Kind`` table.

Each family module ends with the ``Kind`` rows of the claims it checks (see
:mod:`derivcheck._checks._kind`); :data:`KINDS` gathers them, keyed by claim
type. It is the one place that dispatches on a claim's type: the check
(:func:`check_claim`), the shrink (:func:`plan_of`) and the reference's name
(:func:`kind_of`) all read their row.

:func:`check_claim` runs a row's check inside ``jax.enable_x64(True)``
(float64 without touching the user's global configuration); the
orchestration (:mod:`derivcheck._api`) turns anything that stops it into an
``error`` Result with a one-line reason.
"""

from __future__ import annotations

from typing import Any

import jax

from derivcheck._checks import convergence, differential, expectation, identity, limit, matrix_free, optimization
from derivcheck._checks._engine import CheckConfig, CheckError
from derivcheck._checks._kind import Kind, Plan
from derivcheck._checks.robust import nondeterminism
from derivcheck._derivation import Derivation
from derivcheck._result import Result

KINDS: dict[type, Kind] = {
    row.claim: row
    for module in (differential, matrix_free, identity, limit, expectation, convergence, optimization)
    for row in module.KINDS
}
"""One row per claim type (see :mod:`derivcheck._checks._kind`)."""


def kind_of(claim: Any) -> Kind:
    """The row of ``claim``'s type; :class:`CheckError` when there is none."""
    row = KINDS.get(type(claim))
    if row is None:
        raise CheckError(f"no checker for claim type {type(claim).__name__}")
    return row


def plan_of(d: Derivation) -> Plan | None:
    """The family and derivation the check of ``d`` runs (what a shrink judges candidates with);
    ``None`` when the claim is judged by its own statistics (not shrunk)."""
    row = KINDS.get(type(d.claim))
    return None if row is None or row.plan is None else row.plan(d)


def check_claim(derivation: Derivation, config: CheckConfig) -> Result:
    """Run the check of ``derivation``'s claim (float64, scoped) and guard against non-determinism.

    Raises :class:`CheckError` (or whatever the check raised) when the check
    cannot run; :func:`derivcheck.check` turns that into an ``error`` Result.
    """
    if derivation.problem:
        raise CheckError(derivation.problem)
    with jax.enable_x64(True):
        result = kind_of(derivation.claim).check(derivation, config)
        unstable = nondeterminism(derivation, result)
        if unstable:
            raise CheckError(unstable)
    return result
