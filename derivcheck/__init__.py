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

from derivcheck.checks import check
from derivcheck.compare import DEFAULT_TOLERANCES, Tolerance
from derivcheck.derivation import (
    HOLDS,
    VJP,
    Definite,
    Derivation,
    DerivationError,
    Expect,
    Gradient,
    Hessian,
    Jacobian,
    fails,
)
from derivcheck.inputs import (
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
from derivcheck.registry import (
    LoadError,
    Registry,
    definite,
    gradient,
    hessian,
    jacobian,
    load,
    registry,
    vjp,
)
from derivcheck.result import Cell, Result, Spectrum, Trial

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TOLERANCES",
    "HOLDS",
    "REGIMES",
    "VJP",
    "Cell",
    "Definite",
    "Derivation",
    "DerivationError",
    "Expect",
    "Gradient",
    "Hessian",
    "InputSpecError",
    "Jacobian",
    "LoadError",
    "Registry",
    "Result",
    "Spectrum",
    "Tolerance",
    "Trial",
    "bernoulli",
    "check",
    "constant",
    "definite",
    "design",
    "fails",
    "full_rank",
    "gradient",
    "hessian",
    "inputs",
    "jacobian",
    "load",
    "normal",
    "one_hot",
    "positive",
    "rank_deficient",
    "registry",
    "simplex",
    "uniform",
    "vjp",
]
