"""How each claim is verified against JAX, one module per family.

:func:`check` resolves a derivation, runs the checker registered for its claim
type inside ``jax.enable_x64(True)`` (float64 without touching the user's
global configuration), and turns anything that stops the check into an
``error`` Result with a one-line reason.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import jax

from derivcheck import _cache
from derivcheck.checks import matrix_free
from derivcheck.checks._engine import CheckConfig, CheckError, one_line, run_batched
from derivcheck.checks.convergence import check_convergence
from derivcheck.checks.definite import Definite as DefiniteFamily
from derivcheck.checks.differential import DIFFERENTIAL
from derivcheck.checks.expectation import check_expectation
from derivcheck.checks.identity import check_identity, check_special_case
from derivcheck.checks.limit import check_limit
from derivcheck.checks.optimization import check_convexity, check_descent, check_has_minimum
from derivcheck.checks.robust import KinkAware, nondeterminism
from derivcheck.derivation import (
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
from derivcheck.diagnose import ensure_diagnosis
from derivcheck.result import Result

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

DEFAULT_TRIALS = 300

log = logging.getLogger("derivcheck")


def register_checker(claim_type: type, checker: Checker) -> None:
    """Teach :func:`check` a new claim type (used by the claim families beyond derivatives)."""
    CHECKERS[claim_type] = checker


def check(derivation: Derivation | str, *, trials: int = DEFAULT_TRIALS, seed: int = 0) -> Result:
    """Check one derivation on ``trials`` random inputs and return its :class:`Result`.

    ``derivation`` is a registered :class:`Derivation` (what the decorators
    return) or its name in the default registry. Never raises for a problem in
    the derivation itself: that is an ``error`` outcome with a one-line reason.

    >>> import jax.numpy as jnp, derivcheck as dc
    >>> reg = dc.Registry()
    >>> @dc.gradient(of=lambda x: jnp.sum(x**3), inputs=dc.inputs(x=dc.normal("n")), registry=reg)
    ... def cube_grad(x):
    ...     return 3 * x**2
    >>> dc.check(cube_grad, trials=64).outcome
    'holds'
    """
    if isinstance(derivation, str):
        from derivcheck.registry import registry

        derivation = registry()[derivation]
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise ValueError(f"trials must be a positive int, got {trials!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    config = CheckConfig(trials=trials, seed=seed)
    _cache.enable_from_env()  # $DERIVCHECK_CACHE_DIR: the persistent compilation cache (see derivcheck/_cache.py)
    start = time.perf_counter()
    try:
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
    except CheckError as exc:
        log.debug("%s: %s", derivation.name, exc, exc_info=exc.__cause__ is not None)
        result = _error(derivation, config, str(exc))
    except Exception as exc:
        log.debug("%s: the check raised", derivation.name, exc_info=True)
        result = _error(derivation, config, one_line(exc))
    result = ensure_diagnosis(result)  # every failure carries a diagnosis (derivcheck.diagnose)
    return _with_seconds(result, time.perf_counter() - start)


def _error(d: Derivation, config: CheckConfig, message: str) -> Result:
    return Result(
        name=d.name, kind=d.kind, outcome="error", expect=d.expect, message=message, seed=config.seed, source=d.source
    )


def _with_seconds(result: Result, seconds: float) -> Result:
    return dataclasses.replace(result, seconds=seconds)


__all__ = ["CHECKERS", "CheckConfig", "CheckError", "check", "register_checker"]
