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
from derivcheck._compare import DEFAULT_TOLERANCES, Tolerance
from derivcheck._derivation import (
    HOLDS,
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
    limit,
    load,
    registry,
    scoped_registry,
    special_case,
    vjp,
)
from derivcheck._result import Cell, Result, Spectrum, Trial
from derivcheck._shrink import Counterexample, minimal_counterexample, with_counterexample

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TOLERANCES",
    "HOLDS",
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
    "latex",
    "limit",
    "load",
    "minimal_counterexample",
    "normal",
    "one_hot",
    "positive",
    "rank_deficient",
    "reading_of",
    "registry",
    "run",
    "scoped_registry",
    "set_devices",
    "simplex",
    "special_case",
    "tensor",
    "uniform",
    "use_devices",
    "vjp",
    "with_counterexample",
]
