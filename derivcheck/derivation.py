"""What a derivation claims: the :class:`Derivation` record and its claim types.

A *derivation* is a hand-derived result written as an explicit function (no
autodiff inside), plus a *claim* about another function ``of``: "this is the
gradient of ``of`` with respect to ``wrt``", "this matrix is positive
definite", and so on. Claims are small frozen records; the checks in
:mod:`derivcheck.checks` know how to verify each kind against JAX.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, Literal

from derivcheck.compare import Tolerance

DefiniteKind = Literal["pd", "psd", "nd", "nsd"]
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
    """``derived(*args) == jax.grad(of, argnums=wrt)(*args)`` (shape of ``args[wrt]``)."""

    of: Callable[..., Any]
    wrt: int | str = 0
    kind: str = dataclasses.field(default="gradient", init=False)


@dataclasses.dataclass(frozen=True)
class Jacobian:
    """``derived(*args) == jax.jacfwd(of, argnums=wrt)(*args)`` (``out.shape + in.shape``)."""

    of: Callable[..., Any]
    wrt: int | str = 0
    kind: str = dataclasses.field(default="jacobian", init=False)


@dataclasses.dataclass(frozen=True)
class Hessian:
    """``derived(*args) == jax.hessian(of, argnums=wrt)(*args)`` (``in.shape * 2``)."""

    of: Callable[..., Any]
    wrt: int | str = 0
    kind: str = dataclasses.field(default="hessian", init=False)


@dataclasses.dataclass(frozen=True)
class VJP:
    """``derived(*args, ct) == jax.vjp(of wrt args[wrt], *args)[1](ct)``.

    The cotangent ``ct`` is drawn like ``of``'s output, in the trial's regime.
    """

    of: Callable[..., Any]
    wrt: int | str = 0
    kind: str = dataclasses.field(default="vjp", init=False)


@dataclasses.dataclass(frozen=True)
class Definite:
    """``derived(*args)`` is a symmetric matrix with the stated definiteness.

    When ``of`` is given, the matrix must also equal ``jax.hessian(of, wrt)``.
    """

    definiteness: str
    of: Callable[..., Any] | None = None
    wrt: int | str = 0
    kind: str = dataclasses.field(default="definite", init=False)

    def __post_init__(self) -> None:
        if self.definiteness not in DEFINITE_KINDS:
            raise DerivationError(
                f"definite(kind): kind must be one of {', '.join(DEFINITE_KINDS)}, got {self.definiteness!r}"
            )


Claim = Gradient | Jacobian | Hessian | VJP | Definite


def describe_claim(claim: Any) -> str:
    """A short phrase for tables: ``gradient``, ``definite (psd)``…"""
    if claim is None:
        return "?"
    if isinstance(claim, Definite):
        return f"definite ({claim.definiteness})"
    return str(getattr(claim, "kind", type(claim).__name__.lower()))


# ----------------------------------------------------------------------- derivation


@dataclasses.dataclass(frozen=True, eq=False)
class Derivation:
    """One registered hand-derived result.

    Attributes:
      name: unique name in its registry, e.g. ``"softmax_ce.gradient"``.
      derived: the explicit, hand-derived function (the suspect).
      claim: what ``derived`` claims (a :data:`Claim`).
      inputs: how arguments are drawn (:class:`derivcheck.inputs.Inputs` or any
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
        return self.derived(*args)

    @property
    def kind(self) -> str:
        return describe_claim(self.claim)

    @property
    def wrt_index(self) -> int:
        """Index of the differentiated argument (``wrt`` may be a name or an index)."""
        return resolve_wrt(self.claim.wrt, self.arg_names, self.name)

    def __repr__(self) -> str:
        return f"Derivation({self.name!r}, {self.kind}, expect={self.expect.word})"

    def _repr_markdown_(self) -> str:
        lines = [f"**{self.name}** — {self.kind}"]
        if self.statement:
            lines.append(f"$${self.statement}$$")
        if self.source:
            lines.append(f"*source:* {self.source}")
        if not self.expect.holds:
            lines.append(f"*expected to fail:* {self.expect.reason}")
        return "\n\n".join(lines)


def resolve_wrt(wrt: int | str, arg_names: tuple[str, ...], name: str = "") -> int:
    """Turn ``wrt`` (an argument name or index) into a positional index."""
    where = f"{name}: " if name else ""
    if isinstance(wrt, bool) or not isinstance(wrt, int | str):
        raise DerivationError(f"{where}wrt must be an argument name or index, got {wrt!r}")
    if isinstance(wrt, str):
        if wrt not in arg_names:
            raise DerivationError(f"{where}wrt={wrt!r} names no argument; the arguments are {list(arg_names)}")
        return arg_names.index(wrt)
    if arg_names and not -len(arg_names) <= wrt < len(arg_names):
        raise DerivationError(f"{where}wrt={wrt} is out of range for {len(arg_names)} arguments {list(arg_names)}")
    return wrt % len(arg_names) if arg_names else wrt


def positional_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    """Names of ``fn``'s positional parameters (empty when it takes ``*args``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return ()
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p.name for p in params if p.kind in kinds)
