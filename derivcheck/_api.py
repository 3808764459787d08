"""The one orchestration: check a derivation and attach what explains a failure.

Everything a user calls to *do* something — :func:`check` here, and the
runs, explanations and check-then-shrink built on it — goes through this
module; the presentation layer and the command line only render its records.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from derivcheck import _cache
from derivcheck._checks import check_claim
from derivcheck._checks._engine import CheckConfig, CheckError
from derivcheck._derivation import Derivation
from derivcheck._diagnose import ensure_diagnosis
from derivcheck._format import one_line
from derivcheck._registry import registry
from derivcheck._result import Result

DEFAULT_TRIALS = 300

log = logging.getLogger("derivcheck")


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
        derivation = registry()[derivation]
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise ValueError(f"trials must be a positive int, got {trials!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    config = CheckConfig(trials=trials, seed=seed)
    _cache.enable_from_env()  # $DERIVCHECK_CACHE_DIR: the persistent compilation cache (see derivcheck/_cache.py)
    start = time.perf_counter()
    try:
        result = check_claim(derivation, config)
    except CheckError as exc:
        log.debug("%s: %s", derivation.name, exc, exc_info=exc.__cause__ is not None)
        result = _error(derivation, config, str(exc))
    except Exception as exc:
        log.debug("%s: the check raised", derivation.name, exc_info=True)
        result = _error(derivation, config, one_line(exc))
    result = ensure_diagnosis(result)  # every failure carries a diagnosis (derivcheck._diagnose)
    return _with_seconds(result, time.perf_counter() - start)


def _error(d: Derivation, config: CheckConfig, message: str) -> Result:
    return Result(
        name=d.name,
        kind=d.kind,
        claim=d.claim_id,
        outcome="error",
        expect=d.expect,
        message=message,
        seed=config.seed,
        source=d.source,
    )


def _with_seconds(result: Result, seconds: float) -> Result:
    return dataclasses.replace(result, seconds=seconds)
