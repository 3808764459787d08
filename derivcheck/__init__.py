"""derivcheck: check hand-derived calculus against JAX autodiff.

Write a hand derivation as an explicit function, register what it claims,
and check it on many random inputs::

    import jax.numpy as jnp
    import derivcheck as dc

    @dc.gradient(of=lambda x: jnp.sum(x**3), inputs=dc.inputs(x=dc.normal("n")))
    def cube_grad(x):
        return 3 * x**2

    assert dc.check(cube_grad).ok
"""

import os as _os

# XLA:CPU's intra-op thread pool deadlocks when a program runs as many batched LAPACK calls at once as the pool has
# threads (jaxlib 0.10: each call splits a large batch over the pool and blocks until it is done, while every thread
# of the pool is such a call; seen as a check that never returns, every thread in futex_do_wait). XLA sizes that
# pool from NPROC when it is set: one thread runs each call's batch itself. Only when NPROC is not set, and only
# before JAX starts its CPU backend (later, the variable is no longer read). README, "Performance and scale".
_os.environ.setdefault("NPROC", "1")

from derivcheck._api import check, explanation, run, suggest_fix, with_counterexample
from derivcheck._checks.matrix_free import THRESHOLD as MATRIX_FREE_THRESHOLD
from derivcheck._compare import DEFAULT_TOLERANCES, Tolerance
from derivcheck._derivation import (
    HOLDS,
    JVP,
    VJP,
    ConvergenceOrder,
    Convex,
    Definite,
    Derivation,
    DerivationError,
    Descent,
    EquivalentObjective,
    Expect,
    Expectation,
    ExpectedGradient,
    Gradient,
    HasMinimum,
    Hessian,
    Identity,
    Jacobian,
    Limit,
    MonteCarlo,
    SpecialCase,
    fails,
)
from derivcheck._devices import set_devices, use_devices
from derivcheck._inputs import (
    REGIMES,
    InputSpecError,
    bernoulli,
    constant,
    design,
    full_rank,
    inputs,
    normal,
    one_hot,
    positive,
    rank_deficient,
    simplex,
    uniform,
)
from derivcheck._latex._api import Reading, latex, reading_of
from derivcheck._latex._symbols import LatexError, index, tensor
from derivcheck._registry import (
    LoadError,
    Registry,
    concave,
    convergence_order,
    convex,
    definite,
    descent,
    equivalent_objective,
    expectation,
    expected_gradient,
    gradient,
    has_minimum,
    hessian,
    identity,
    jacobian,
    jvp,
    limit,
    load,
    registry,
    scoped_registry,
    special_case,
    vjp,
)
from derivcheck._result import Cell, Diagnosis, Result, Results, Spectrum, Trial
from derivcheck._rules import deviates, rule
from derivcheck._shrink import Counterexample, minimal_counterexample
from derivcheck._structured import labels, lower_triangular, orthogonal, signs, spd, symmetric, upper_triangular

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TOLERANCES",
    "HOLDS",
    "JVP",
    "MATRIX_FREE_THRESHOLD",
    "REGIMES",
    "VJP",
    "Cell",
    "ConvergenceOrder",
    "Convex",
    "Counterexample",
    "Definite",
    "Derivation",
    "DerivationError",
    "Descent",
    "Diagnosis",
    "EquivalentObjective",
    "Expect",
    "Expectation",
    "ExpectedGradient",
    "Gradient",
    "HasMinimum",
    "Hessian",
    "Identity",
    "InputSpecError",
    "Jacobian",
    "LatexError",
    "Limit",
    "LoadError",
    "MonteCarlo",
    "Reading",
    "Registry",
    "Result",
    "Results",
    "SpecialCase",
    "Spectrum",
    "Tolerance",
    "Trial",
    "bernoulli",
    "check",
    "concave",
    "constant",
    "convergence_order",
    "convex",
    "definite",
    "descent",
    "design",
    "deviates",
    "equivalent_objective",
    "expectation",
    "expected_gradient",
    "explanation",
    "fails",
    "full_rank",
    "gradient",
    "has_minimum",
    "hessian",
    "identity",
    "index",
    "inputs",
    "jacobian",
    "jvp",
    "labels",
    "latex",
    "limit",
    "load",
    "lower_triangular",
    "minimal_counterexample",
    "normal",
    "one_hot",
    "orthogonal",
    "positive",
    "rank_deficient",
    "reading_of",
    "registry",
    "rule",
    "run",
    "scoped_registry",
    "set_devices",
    "signs",
    "simplex",
    "spd",
    "special_case",
    "suggest_fix",
    "symmetric",
    "tensor",
    "uniform",
    "upper_triangular",
    "use_devices",
    "vjp",
    "with_counterexample",
]
