"""How each claim is verified against JAX, one module per family.

:func:`check_claim` runs the checker registered for a derivation's claim type
inside ``jax.enable_x64(True)`` (float64 without touching the user's global
configuration); the orchestration (:mod:`derivcheck._api`) turns anything
that stops it into an ``error`` Result with a one-line reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax

from derivcheck._checks import matrix_free
from derivcheck._checks._engine import CheckConfig, CheckError, run_batched
from derivcheck._checks.convergence import check_convergence
from derivcheck._checks.definite import Definite as DefiniteFamily
from derivcheck._checks.differential import DIFFERENTIAL
from derivcheck._checks.expectation import check_expectation
from derivcheck._checks.identity import check_identity, check_special_case
from derivcheck._checks.limit import check_limit
from derivcheck._checks.optimization import check_convexity, check_descent, check_has_minimum
from derivcheck._checks.robust import KinkAware, nondeterminism
from derivcheck._derivation import (
    VJP,
    ConvergenceOrder,
    Convex,
    Definite,
    Derivation,
    Descent,
    EquivalentObjective,
    Expectation,
    ExpectedGradient,
    Gradient,
    HasMinimum,
    Hessian,
    Identity,
    Jacobian,
    Limit,
    SpecialCase,
)
from derivcheck._result import Result

Checker = Callable[[Derivation, CheckConfig], Result]

DIFFERENTIAL_AT_KINKS = KinkAware(DIFFERENTIAL)  # tells a kink of `of` from a formula error


def _dense(result: Result) -> Result:
    return dataclasses.replace(result, path="dense")


CHECKERS: dict[type, Checker] = {
    Gradient: lambda d, cfg: _dense(run_batched(d, cfg, DIFFERENTIAL_AT_KINKS)),
    Jacobian: lambda d, cfg: _dense(run_batched(d, cfg, DIFFERENTIAL_AT_KINKS)),
    # dense up to matrix_free.THRESHOLD entries, Hessian-vector products above (see checks/matrix_free.py)
    Hessian: lambda d, cfg: matrix_free.check_hessian(d, cfg, DIFFERENTIAL_AT_KINKS),
    VJP: lambda d, cfg: _dense(run_batched(d, cfg, DIFFERENTIAL_AT_KINKS)),
    Definite: lambda d, cfg: matrix_free.check_definite(d, cfg, DefiniteFamily(d.claim.definiteness)),
    # claims beyond derivatives
    Identity: check_identity,
    SpecialCase: check_special_case,
    Limit: check_limit,
    Expectation: check_expectation,
    ExpectedGradient: check_expectation,
    EquivalentObjective: check_expectation,
    ConvergenceOrder: check_convergence,
    Convex: check_convexity,
    HasMinimum: check_has_minimum,
    Descent: check_descent,
}


def check_claim(derivation: Derivation, config: CheckConfig) -> Result:
    """Run the checker of ``derivation``'s claim (float64, scoped) and guard against non-determinism.

    Raises :class:`CheckError` (or whatever the check raised) when the check
    cannot run; :func:`derivcheck.check` turns that into an ``error`` Result.
    """
    if derivation.problem:
        raise CheckError(derivation.problem)
    with jax.enable_x64(True):
        checker = CHECKERS.get(type(derivation.claim))
        if checker is None:
            raise CheckError(f"no checker for claim type {type(derivation.claim).__name__}")
        result = checker(derivation, config)
        unstable = nondeterminism(derivation, result)
        if unstable:
            raise CheckError(unstable)
    return result
