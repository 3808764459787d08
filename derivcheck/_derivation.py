"""What a derivation claims: the :class:`Derivation` record and its claim types.

A *derivation* is a hand-derived result written as an explicit function (no
autodiff inside), plus a *claim* about another function ``of``: "this is the
gradient of ``of`` with respect to ``wrt``", "this matrix is positive
definite", and so on. Claims are small frozen records that describe
themselves: ``id`` is the claim type's stable name (the decorator's name,
``Result.claim``), ``extra_arg`` the trailing argument the derived function
takes beyond the drawn inputs (a VJP's ``cotangent``, a JVP's ``tangent``,
the ``v`` of a Hessian-vector product; ``None`` for most), and ``kind`` the
phrase shown in reports and the JSON. How each claim type is checked,
shrunk and named lives in one row of the ``Kind`` table
(:mod:`derivcheck._checks`).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any, ClassVar

from derivcheck._compare import Tolerance

DEFINITE_KINDS: tuple[str, ...] = ("pd", "psd", "nd", "nsd")
DEFINITE_WORDS = {
    "pd": "positive definite",
    "psd": "positive semi-definite",
    "nd": "negative definite",
    "nsd": "negative semi-definite",
}


class DerivationError(ValueError):
    """A derivation was declared in a way that cannot be checked (names what to fix)."""


@dataclasses.dataclass(frozen=True)
class Expect:
    """What the author expects of a derivation: it holds, or it fails for ``reason``."""

    holds: bool = True
    reason: str = ""
    deviates: bool = False  # a custom rule's declared deviation from autodiff (see derivcheck._rules.deviates)

    @property
    def word(self) -> str:
        return "holds" if self.holds else "fails"


HOLDS = Expect()


def fails(reason: str) -> Expect:
    """Mark a derivation as expected to fail, e.g. a typo kept on purpose.

    >>> fails("drops the 1/m factor").word
    'fails'
    """
    if not isinstance(reason, str) or not reason.strip():
        raise DerivationError("fails(reason): give a one-line reason saying what is wrong")
    return Expect(holds=False, reason=reason.strip())


# --------------------------------------------------------------------------- claims


@dataclasses.dataclass(frozen=True)
class Gradient:
    """``derived(*args) == jax.grad(of, argnums=wrt, holomorphic=holomorphic)(*args)`` (shape of ``args[wrt]``).

    For a real-valued ``of`` of complex ``z = x + iy`` JAX's gradient is ``∂f/∂x − i ∂f/∂y``
    (``= 2 ∂f/∂z``, the conjugate of the steepest-ascent direction): ``2 conj(z)`` for ``|z|²``.
    ``holomorphic=True`` (complex ``of`` of complex ``z``) checks the complex derivative ``f'(z)``.
    """

    id: ClassVar[str] = "gradient"
    extra_arg: ClassVar[str | None] = None
    several_wrt: ClassVar[bool] = True  # wrt may name several arguments, or a pytree one (see _pytree)
    of: Callable[..., Any]
    wrt: int | str | tuple[int | str, ...] = 0
    holomorphic: bool = False
    kind: str = dataclasses.field(default="gradient", init=False)

    def __post_init__(self) -> None:
        _check_holomorphic(self.holomorphic)


@dataclasses.dataclass(frozen=True)
class Jacobian:
    """``derived(*args) == jax.jacfwd(of, argnums=wrt, holomorphic=holomorphic)(*args)`` (``out.shape + in.shape``).

    ``holomorphic=True``: the complex derivative ``∂f_i/∂z_j`` of a holomorphic ``of``.
    """

    id: ClassVar[str] = "jacobian"
    extra_arg: ClassVar[str | None] = None
    of: Callable[..., Any]
    wrt: int | str = 0
    holomorphic: bool = False
    kind: str = dataclasses.field(default="jacobian", init=False)

    def __post_init__(self) -> None:
        _check_holomorphic(self.holomorphic)


@dataclasses.dataclass(frozen=True)
class Hessian:
    """``derived(*args) == jax.hessian(of, argnums=wrt)(*args)`` (``in.shape * 2``).

    With ``hvp=True`` the derivation is a Hessian-vector product instead:
    ``derived(*args, v) == H v`` (``v`` shaped like ``args[wrt]``). Above a
    size, or with ``matrix_free=True``, it is checked with Hessian-vector
    products against random probes (see :mod:`derivcheck._checks.matrix_free`).
    """

    id: ClassVar[str] = "hessian"
    of: Callable[..., Any]
    wrt: int | str = 0
    hvp: bool = False
    matrix_free: bool | None = None
    kind: str = dataclasses.field(default="hessian", init=False)

    def __post_init__(self) -> None:
        _check_path_options(self.hvp, self.matrix_free)

    @property
    def extra_arg(self) -> str | None:
        """``"v"`` for a Hessian-vector product (``derived(*args, v)``), else ``None``."""
        return "v" if self.hvp else None


@dataclasses.dataclass(frozen=True)
class VJP:
    """``derived(*args, ct) == jax.vjp(of wrt args[wrt], *args)[1](ct)``.

    The cotangent ``ct`` is drawn like ``of``'s output, in the trial's regime.
    """

    id: ClassVar[str] = "vjp"
    extra_arg: ClassVar[str | None] = "cotangent"
    several_wrt: ClassVar[bool] = True  # wrt may name several arguments, or a pytree one (see _pytree)
    of: Callable[..., Any]
    wrt: int | str | tuple[int | str, ...] = 0
    kind: str = dataclasses.field(default="vjp", init=False)


@dataclasses.dataclass(frozen=True)
class JVP:
    """``derived(*args, t) == jax.jvp(of wrt args[wrt], (args[wrt],), (t,))[1]`` (shape of ``of``'s output).

    The tangent ``t`` is drawn like ``args[wrt]``, in the trial's regime.
    """

    id: ClassVar[str] = "jvp"
    extra_arg: ClassVar[str | None] = "tangent"
    several_wrt: ClassVar[bool] = True  # wrt may name several arguments, or a pytree one (see _pytree)
    of: Callable[..., Any]
    wrt: int | str | tuple[int | str, ...] = 0
    kind: str = dataclasses.field(default="jvp", init=False)


@dataclasses.dataclass(frozen=True)
class Definite:
    """``derived(*args)`` is a symmetric matrix with the stated definiteness.

    When ``of`` is given, the matrix must also equal ``jax.hessian(of, wrt)``.
    With ``hvp=True`` the derivation is the matrix's product with a vector,
    ``derived(*args, v)`` (``v`` shaped like ``args[wrt]``); ``matrix_free``
    forces (``True``) or forbids (``False``) the Lanczos path.
    """

    id: ClassVar[str] = "definite"
    definiteness: str
    of: Callable[..., Any] | None = None
    wrt: int | str = 0
    hvp: bool = False
    matrix_free: bool | None = None
    kind: str = dataclasses.field(default="definite", init=False)

    def __post_init__(self) -> None:
        if self.definiteness not in DEFINITE_KINDS:
            raise DerivationError(
                f"definite(kind): kind must be one of {', '.join(DEFINITE_KINDS)}, got {self.definiteness!r}"
            )
        _check_path_options(self.hvp, self.matrix_free)
        object.__setattr__(self, "kind", f"definite ({self.definiteness})")

    @property
    def extra_arg(self) -> str | None:
        """``"v"`` when the derivation is the matrix's product with a vector (``derived(*args, v)``)."""
        return "v" if self.hvp else None


def _check_holomorphic(holomorphic: Any) -> None:
    if not isinstance(holomorphic, bool):
        raise DerivationError(f"holomorphic= must be True or False, got {holomorphic!r}")


def _check_path_options(hvp: Any, matrix_free: Any) -> None:
    if not isinstance(hvp, bool):
        raise DerivationError(f"hvp= must be True or False, got {hvp!r}")
    if matrix_free is not None and not isinstance(matrix_free, bool):
        raise DerivationError(f"matrix_free= must be True, False or None (by size), got {matrix_free!r}")


def describe_claim(claim: Any) -> str:
    """A short phrase for tables: ``gradient``, ``definite (psd)``… (``?`` when the declaration failed)."""
    if claim is None:
        return "?"
    return str(getattr(claim, "kind", type(claim).__name__.lower()))


# ----------------------------------------------------------------------- derivation


@dataclasses.dataclass(frozen=True, eq=False)
class Derivation:
    """One registered hand-derived result.

    Attributes:
      name: unique name in its registry, e.g. ``"softmax_ce.gradient"``.
      derived: the explicit, hand-derived function (the suspect).
      claim: what ``derived`` claims (one of the claim records below).
      inputs: how arguments are drawn (:class:`derivcheck._inputs.Inputs` or any
        callable ``key -> tuple of args``).
      source: where the result comes from, e.g. ``"deep-learning-assignment-2, Q7a"``.
      statement: the result as LaTeX, as the source states it.
      expect: :data:`HOLDS` or :func:`fails` with a reason.
      tolerance: overrides of the dtype's default tolerance, or ``None``.
      arg_names: the names of ``derived``'s positional arguments.
      doc: the derived function's docstring.
      problem: why the derivation cannot be checked as declared ("" if it can).
    """

    name: str
    derived: Callable[..., Any]
    claim: Any
    inputs: Any
    source: str = ""
    statement: str = ""
    expect: Expect = HOLDS
    tolerance: Tolerance | None = None
    arg_names: tuple[str, ...] = ()
    doc: str = ""
    problem: str = ""

    def __call__(self, *args: Any) -> Any:
        return getattr(self.derived, "user_function", self.derived)(*args)

    @property
    def kind(self) -> str:
        return describe_claim(self.claim)

    @property
    def claim_id(self) -> str:
        """The claim type's stable id (``"gradient"``, ``"definite"``…; ``""`` when the declaration failed)."""
        return getattr(self.claim, "id", "")

    @property
    def definiteness(self) -> str:
        """A definiteness claim's ``pd``/``psd``/``nd``/``nsd`` (``""`` for other claims)."""
        return getattr(self.claim, "definiteness", "")

    @property
    def wrt_index(self) -> int:
        """Index of the differentiated argument (``wrt`` may be a name or an index; the first of several)."""
        return self.wrt_indices[0]

    @property
    def wrt_text(self) -> str:
        """The differentiated arguments by name, for messages: ``x``, or ``params['W'], params['b']``."""
        return ", ".join(self.arg_names[i] if self.arg_names else str(i) for i in self.wrt_indices)

    @property
    def wrt_indices(self) -> tuple[int, ...]:
        """Indices of the differentiated arguments: one, or several when ``wrt`` is a tuple of them."""
        wrt = self.claim.wrt
        if isinstance(wrt, tuple):
            return tuple(resolve_wrt(w, self.arg_names, self.name) for w in wrt)
        return (resolve_wrt(wrt, self.arg_names, self.name),)

    def __repr__(self) -> str:
        return f"Derivation({self.name!r}, {self.kind}, expect={self.expect.word})"

    def _repr_markdown_(self) -> str:
        """Jupyter: the statement as LaTeX, its source, the expectation and the code."""
        from derivcheck._report.html import derivation_markdown

        return derivation_markdown(self)

    def _repr_latex_(self) -> str | None:
        """Jupyter (LaTeX/PDF export): the statement alone."""
        from derivcheck._report.html import derivation_latex

        return derivation_latex(self)


def leaf_name(wrt: str) -> str:
    """A leaf path as ``jax.tree_util.keystr`` writes it: ``params["b"]``, as Python also writes it, is
    ``params['b']``; an argument name is itself."""
    return wrt.replace('"', "'") if "[" in wrt else wrt


def resolve_wrt(
    wrt: Any, arg_names: tuple[str, ...], name: str = "", several: bool = False, leaves: tuple[str, ...] = ()
) -> int:
    """Turn ``wrt`` (an argument name or index) into a positional index.

    ``several``: ``wrt`` may also be a tuple of names or indices (checked, the first returned).
    ``leaves``: the leaf paths of pytree arguments (``"p['b']"``), which ``wrt`` may name too (the index
    of the argument holding the leaf is returned).
    """
    where = f"{name}: " if name else ""
    if isinstance(wrt, tuple):
        if not several:
            raise DerivationError(f"{where}wrt={wrt!r}: this claim differentiates one argument; name one")
        if not wrt or len(set(wrt)) != len(wrt):
            raise DerivationError(f"{where}wrt={wrt!r}: name each argument once, e.g. wrt=('W', 'b')")
        first, *_ = [resolve_wrt(w, arg_names, name, leaves=leaves) for w in wrt]  # each one checked
        return first
    if isinstance(wrt, bool) or not isinstance(wrt, int | str):
        raise DerivationError(f"{where}wrt must be an argument name or index, got {wrt!r}")
    if isinstance(wrt, str):
        wrt = leaf_name(wrt)
    if isinstance(wrt, str) and wrt in leaves and wrt not in arg_names:
        return next(i for i, a in enumerate(arg_names) if wrt.startswith(a + "["))
    if isinstance(wrt, str):
        if wrt not in arg_names:
            near = [leaf for leaf in leaves if leaf.startswith(wrt.split("[")[0] + "[")] if "[" in wrt else []
            hint = f"; the leaves of {wrt.split('[')[0]} are {near[:6]}" if near else ""
            raise DerivationError(f"{where}wrt={wrt!r} names no argument; the arguments are {list(arg_names)}{hint}")
        return arg_names.index(wrt)
    if arg_names and not -len(arg_names) <= wrt < len(arg_names):
        raise DerivationError(f"{where}wrt={wrt} is out of range for {len(arg_names)} arguments {list(arg_names)}")
    return wrt % len(arg_names) if arg_names else wrt


def positional_parameters(fn: Callable[..., Any]) -> tuple[inspect.Parameter, ...]:
    """``fn``'s positional parameters (empty when it takes ``*args`` or has no signature)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return ()
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p for p in params if p.kind in kinds)


# ------------------------------------------------------- claims beyond derivatives
# What derivatives imply rather than what they are: identities, special cases and
# limits, expectations under noise, convergence orders, optimisation claims.
# Checked by :mod:`derivcheck._checks.identity`, ``.limit``, ``.expectation``,
# ``.convergence`` and ``.optimization``.


@dataclasses.dataclass(frozen=True)
class Identity:
    """``derived(*args) == of(*args)``: two expressions claimed equal (either side may use JAX transforms)."""

    id: ClassVar[str] = "identity"
    extra_arg: ClassVar[str | None] = None
    of: Callable[..., Any]
    kind: str = dataclasses.field(default="identity", init=False)


@dataclasses.dataclass(frozen=True)
class SpecialCase:
    """``derived(*args) == of(*args)`` at special values of sizes or arguments, e.g. ``at=(("n", 1),)``."""

    id: ClassVar[str] = "special_case"
    extra_arg: ClassVar[str | None] = None
    of: Callable[..., Any]
    at: tuple[tuple[str, Any], ...]
    kind: str = dataclasses.field(default="special case", init=False)

    def __post_init__(self) -> None:
        if not self.at or not all(isinstance(k, str) for k, _ in self.at):
            raise DerivationError("special_case(at=...): give the special values, e.g. at={'n': 1}")


@dataclasses.dataclass(frozen=True)
class Limit:
    """``derived(*args) = lim of(*args)`` as ``along`` (a dimension or a scalar argument) tends to ``to``.

    ``min_rate``: the relative difference must shrink at least like ``h^min_rate``
    (``h = 1/n`` or ``|t - to|``) along the sequence ``points``.
    """

    id: ClassVar[str] = "limit"
    extra_arg: ClassVar[str | None] = None
    of: Callable[..., Any]
    along: str
    to: float = math.inf
    points: tuple[float, ...] = ()
    min_rate: float = 0.25
    kind: str = dataclasses.field(default="limit", init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.along, str) or not self.along:
            raise DerivationError("limit(along=...): name a dimension ('n') or a scalar argument ('sigma')")
        if not _is_real(self.to) or math.isnan(self.to) or self.to == -math.inf:
            raise DerivationError(
                f"limit(to=...): a number or math.inf, got {self.to!r}; toward −∞, claim the limit of "
                "t ↦ of(−t) toward math.inf"
            )
        if not _is_real(self.min_rate) or not self.min_rate > 0:
            raise DerivationError(f"limit(min_rate=...): must be a number > 0, got {self.min_rate!r}")


@dataclasses.dataclass(frozen=True)
class MonteCarlo:
    """How an expectation is estimated and tested (see :mod:`derivcheck._checks.expectation`).

    ``false_alarm``: the probability that a correct claim fails one check
    (Bonferroni over every component of every trial); ``power``: the
    probability of catching, in one trial, a deviation of ``effect`` times the
    scale ``max(‖D‖∞, ‖E‖∞)`` in any component; the sample count per trial is
    chosen from a pilot run to reach it, between ``min_samples`` and
    ``max_samples``. At most ``draws`` draws of the arguments are made (each
    costs up to ``max_samples`` evaluations).
    """

    false_alarm: float = 1e-3
    power: float = 0.9
    effect: float = 0.1
    min_samples: int = 1024
    max_samples: int = 2**16
    draws: int = 30

    def __post_init__(self) -> None:
        if not 0 < self.false_alarm < 1 or not 0 < self.power < 1 or not self.effect > 0:
            raise DerivationError("Monte Carlo options: need 0 < false_alarm < 1, 0 < power < 1, effect > 0")
        if not 1 < self.min_samples <= self.max_samples or not self.draws >= 1:
            raise DerivationError("Monte Carlo options: need 1 < min_samples <= max_samples and draws >= 1")


@dataclasses.dataclass(frozen=True)
class Expectation:
    """``derived(*args) == E_ξ[of(*args, ξ)]`` with ``ξ = noise(key, *args)``.

    ``exact``: a closed form of ``E_ξ[of(*args, ξ)]``, checked against the Monte
    Carlo estimate and then against ``derived`` exactly.
    """

    id: ClassVar[str] = "expectation"
    extra_arg: ClassVar[str | None] = None
    estimates: ClassVar[str] = "value"  # ``derived`` is ``E[of]`` (Monte Carlo)
    of: Callable[..., Any]
    noise: Callable[..., Any]
    exact: Callable[..., Any] | None = None
    mc: MonteCarlo = MonteCarlo()
    kind: str = dataclasses.field(default="expectation", init=False)


@dataclasses.dataclass(frozen=True)
class ExpectedGradient:
    """``derived(*args) == E_ξ[∇_wrt of(*args, ξ)]`` (autodiff inside the expectation).

    ``exact``: a closed form of ``E_ξ[of(*args, ξ)]``; ``derived`` must then
    equal ``∇_wrt exact`` exactly, and ``exact`` the Monte Carlo mean of ``of``.
    """

    id: ClassVar[str] = "expected_gradient"
    extra_arg: ClassVar[str | None] = None
    estimates: ClassVar[str] = "gradient"  # ``derived`` is ``E[∇_wrt of]`` (Monte Carlo)
    of: Callable[..., Any]
    noise: Callable[..., Any]
    wrt: int | str = 0
    exact: Callable[..., Any] | None = None
    mc: MonteCarlo = MonteCarlo()
    kind: str = dataclasses.field(default="expected gradient", init=False)


@dataclasses.dataclass(frozen=True)
class EquivalentObjective:
    """Minimising ``E_ξ[of(*args, ξ)]`` over ``wrt`` is minimising ``derived(*args)``.

    Checked as ``E[of] == derived`` and ``E[∇_wrt of] == ∇_wrt derived``; with
    ``up_to_constant`` only the gradients (equal objectives up to a constant in ``wrt``).
    """

    id: ClassVar[str] = "equivalent_objective"
    extra_arg: ClassVar[str | None] = None
    estimates: ClassVar[str] = "objective"  # an objective with E[of]'s value and gradient (Monte Carlo)
    of: Callable[..., Any]
    noise: Callable[..., Any]
    wrt: int | str = 0
    up_to_constant: bool = False
    mc: MonteCarlo = MonteCarlo()
    kind: str = dataclasses.field(default="equivalent objective", init=False)


@dataclasses.dataclass(frozen=True)
class ConvergenceOrder:
    """The iteration ``x ← derived(x, *params)`` converges to a root with order ``order``.

    ``|e_{k+1}| ≈ C |e_k|^p``. ``order=None`` claims convergence only;
    ``constant`` is ``C`` (a number, or ``constant(x_star, *params)``);
    ``root(x0, *params)`` gives ``x*`` (default: the last of ``steps`` iterates).
    """

    id: ClassVar[str] = "convergence_order"
    extra_arg: ClassVar[str | None] = None
    order: float | None = 2.0
    constant: float | Callable[..., Any] | None = None
    root: Callable[..., Any] | None = None
    steps: int = 100
    order_tol: float = 0.1
    constant_tol: float = 0.1
    kind: str = dataclasses.field(default="convergence", init=False)

    def __post_init__(self) -> None:
        if self.order is not None and (not _is_real(self.order) or not self.order > 0):
            raise DerivationError(f"convergence_order(order=...): must be a number > 0 or None, got {self.order!r}")
        if self.constant is not None and self.order is None:
            raise DerivationError("convergence_order: a constant C needs an order p")
        if not isinstance(self.steps, int) or self.steps < 3:
            raise DerivationError("convergence_order(steps=...): need an int >= 3")
        word = "convergence" if self.order is None else f"convergence (p={self.order:g})"
        object.__setattr__(self, "kind", word)


@dataclasses.dataclass(frozen=True)
class Convex:
    """``derived`` (an objective) is convex in ``wrt`` (``concave``: concave; ``strict``: strictly)."""

    id: ClassVar[str] = "convex"
    extra_arg: ClassVar[str | None] = None
    wrt: int | str = 0
    strict: bool = False
    concave: bool = False
    kind: str = dataclasses.field(default="convex", init=False)

    def __post_init__(self) -> None:
        word = ("strictly " if self.strict else "") + ("concave" if self.concave else "convex")
        object.__setattr__(self, "kind", word)


@dataclasses.dataclass(frozen=True)
class HasMinimum:
    """``derived`` (an objective) attains its infimum over ``wrt`` (a global minimum exists)."""

    id: ClassVar[str] = "has_minimum"
    extra_arg: ClassVar[str | None] = None
    wrt: int | str = 0
    steps: int = 60
    kind: str = dataclasses.field(default="has minimum", init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or isinstance(self.steps, bool) or self.steps < 2:
            raise DerivationError(f"has_minimum(steps=...): need an int >= 2 (damped Newton steps), got {self.steps!r}")


def _is_real(x: Any) -> bool:
    """A real number as a declaration takes one: an int or float (NumPy's included), not a bool or a string."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


@dataclasses.dataclass(frozen=True)
class Descent:
    """The update ``derived(*args)`` (new ``wrt``, with step size argument ``step``) decreases ``of``
    for every small enough step size."""

    id: ClassVar[str] = "descent"
    extra_arg: ClassVar[str | None] = None
    of: Callable[..., Any]
    wrt: int | str = 0
    step: int | str = -1
    kind: str = dataclasses.field(default="descent", init=False)
