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

from derivcheck._api import check
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
from derivcheck._diagnose import Diagnosis
from derivcheck._display import Results, run
from derivcheck._explain import explanation
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
    special_case,
    vjp,
)
from derivcheck._result import Cell, Result, Spectrum, Trial
from derivcheck._shrink import Counterexample, minimal_counterexample, with_counterexample

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
    "Limit",
    "LoadError",
    "MonteCarlo",
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
    "inputs",
    "jacobian",
    "jvp",
    "limit",
    "load",
    "minimal_counterexample",
    "normal",
    "one_hot",
    "positive",
    "rank_deficient",
    "registry",
    "run",
    "simplex",
    "special_case",
    "uniform",
    "vjp",
    "with_counterexample",
]
