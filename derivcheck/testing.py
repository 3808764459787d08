"""Assertions for ordinary tests, in the style of chex: check a hand derivation inline.

Each helper declares the claim in a private registry (nothing is added to the
default one, nothing is collected), runs the same engine as
:func:`derivcheck.check`, and raises :class:`AssertionError` with a readable
account — verdict, worst error, diagnosis, counterexample, worst trial — when
the derivation does not hold or cannot be checked. On success it returns the
:class:`~derivcheck._result.Result`.

``inputs`` is a :func:`derivcheck._inputs` spec, any callable
``key -> tuple of args``, or a tuple of arrays: the exact point to check at
(one trial).

>>> import jax.numpy as jnp
>>> from derivcheck.testing import assert_gradient
>>> def cube_grad(x):
...     return 3 * x**2
>>> r = assert_gradient(cube_grad, lambda x: jnp.sum(x**3), (jnp.array([1.0, -2.0]),))
>>> r.outcome
'holds'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from derivcheck._api import DEFAULT_TRIALS, check
from derivcheck._derivation import Derivation
from derivcheck._format import callable_name
from derivcheck._registry import Registry, definite, gradient, hessian, jacobian, jvp, vjp
from derivcheck._report.text import failure_report
from derivcheck._result import Result


def assert_gradient(
    derived: Callable[..., Any],
    of: Callable[..., Any],
    inputs: Any,
    *,
    wrt: int | str = 0,
    trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
) -> Result:
    """Assert ``derived(*args) == jax.grad(of, argnums=wrt)(*args)`` on ``inputs``."""
    __tracebackhide__ = True
    return _assert(gradient(of=of, wrt=wrt, inputs=_spec(inputs), **_opts(derived, rtol, atol)), derived, trials, seed)


def assert_jacobian(
    derived: Callable[..., Any],
    of: Callable[..., Any],
    inputs: Any,
    *,
    wrt: int | str = 0,
    trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
) -> Result:
    """Assert ``derived(*args) == jax.jacfwd(of, argnums=wrt)(*args)`` (shape ``out + in``)."""
    __tracebackhide__ = True
    return _assert(jacobian(of=of, wrt=wrt, inputs=_spec(inputs), **_opts(derived, rtol, atol)), derived, trials, seed)


def assert_hessian(
    derived: Callable[..., Any],
    of: Callable[..., Any],
    inputs: Any,
    *,
    wrt: int | str = 0,
    trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
) -> Result:
    """Assert ``derived(*args) == jax.hessian(of, argnums=wrt)(*args)`` (shape ``in * 2``)."""
    __tracebackhide__ = True
    return _assert(hessian(of=of, wrt=wrt, inputs=_spec(inputs), **_opts(derived, rtol, atol)), derived, trials, seed)


def assert_vjp(
    derived: Callable[..., Any],
    of: Callable[..., Any],
    inputs: Any,
    *,
    wrt: int | str = 0,
    trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
) -> Result:
    """Assert ``derived(*args, ct)`` pulls a random cotangent ``ct`` back through ``of`` as ``jax.vjp`` does."""
    __tracebackhide__ = True
    return _assert(vjp(of=of, wrt=wrt, inputs=_spec(inputs), **_opts(derived, rtol, atol)), derived, trials, seed)


def assert_jvp(
    derived: Callable[..., Any],
    of: Callable[..., Any],
    inputs: Any,
    *,
    wrt: int | str = 0,
    trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
) -> Result:
    """Assert ``derived(*args, t)`` pushes a random tangent ``t`` (shaped like ``args[wrt]``) forward through ``of``
    as ``jax.jvp`` does."""
    __tracebackhide__ = True
    return _assert(jvp(of=of, wrt=wrt, inputs=_spec(inputs), **_opts(derived, rtol, atol)), derived, trials, seed)


def assert_definite(
    derived: Callable[..., Any],
    kind: str,
    inputs: Any,
    *,
    of: Callable[..., Any] | None = None,
    wrt: int | str = 0,
    trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
) -> Result:
    """Assert the matrix ``derived(*args)`` is ``kind`` (``pd``, ``psd``, ``nd``, ``nsd``), and ``jax.hessian(of)``
    when ``of`` is given."""
    __tracebackhide__ = True
    declare = definite(kind, of=of, wrt=wrt, inputs=_spec(inputs), **_opts(derived, rtol, atol))
    return _assert(declare, derived, trials, seed)


def assert_derivation(derivation: Derivation | str, *, trials: int = DEFAULT_TRIALS, seed: int = 0) -> Result:
    """Assert a registered derivation's outcome is what its author expects (``holds`` or ``fails``)."""
    __tracebackhide__ = True
    result = check(derivation, trials=trials, seed=seed)
    if not result.ok:
        raise AssertionError(failure_report(result, f"(seed {result.seed}, {trials} trials)"))
    return result


def _assert(declare: Callable[[Callable], Derivation], derived: Callable, trials: int, seed: int) -> Result:
    __tracebackhide__ = True
    d = declare(derived)
    if isinstance(getattr(d.inputs, "draw", None), _FixedPoint):
        trials = 1  # every trial would be the same point
    return assert_derivation(d, trials=trials, seed=seed)


def _opts(derived: Callable, rtol: float | None, atol: float | None) -> dict[str, Any]:
    name = callable_name(derived)
    return {"name": name, "rtol": rtol, "atol": atol, "registry": Registry()}


@dataclasses.dataclass(frozen=True, eq=False)
class _FixedPoint:
    """``key -> args`` that ignores the key: the exact point a test names."""

    args: tuple[np.ndarray, ...]

    def __call__(self, key: Any) -> tuple[np.ndarray, ...]:
        return self.args


def _spec(inputs: Any) -> Any:
    """A tuple or list of arrays becomes inputs that always draw exactly those arguments."""
    if not isinstance(inputs, tuple | list):
        return inputs
    return _FixedPoint(tuple(np.asarray(a) for a in inputs))


__all__ = [
    "assert_definite",
    "assert_derivation",
    "assert_gradient",
    "assert_hessian",
    "assert_jacobian",
    "assert_jvp",
    "assert_vjp",
]
