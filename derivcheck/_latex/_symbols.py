"""The symbol table: what each letter of a statement is. Nothing is read without it.

``symbols=`` maps a LaTeX symbol (``r"\\theta"``, ``"x"``, ``r"\\hat{y}"``,
``"z^{(2)}"``) to what it stands for:

* ``"theta"`` — a string naming an argument of the derivation: an array whose
  symbolic shape comes from ``inputs=`` (``dc.normal("m", "d")`` is ``m × d``).
* :func:`tensor` — an array given explicitly: an argument with a shape
  (the cotangent of a backward pass), or a value computed by a Python function
  of the arguments (``\\mu_{ic}`` is ``softmax(X w)[i, c]``), and the order in
  which subscripts address its axes (``w_c`` is the *column* ``w[:, c]``).
* a Python callable — an elementwise function (``\\sigma``), or the function
  that is differentiated (the numerator of the left-hand side).
* a LaTeX string — a definition in the dialect: ``r"h_\\theta(x)": r"\\sigma(\\theta^\\top x)"``
  (a function of ``x``), ``r"\\mu_i": r"\\sigma(\\theta^\\top x^{(i)})"`` (indexed by ``i``),
  ``"g": r"\\nabla_\\theta J"`` (a name for a derivative).
* :func:`index` — an index variable and the dimension it ranges over.
* a key ``r"\\frac{\\partial L}{\\partial y}"`` — a derivative that is given
  (the upstream gradient of a backward pass): a :func:`tensor`.

Built in, unless the table says otherwise: ``\\exp``, ``\\log``, ``\\ln``,
``e^{…}``, ``\\sqrt``, ``\\sin``, ``\\cos``, ``\\tan``, ``\\sinh``, ``\\cosh``, ``\\tanh``
(``\\tanh^2(z)`` is ``(\\tanh z)^2``), ``\\sigma`` (the logistic function), ``\\operatorname{diag}``,
``\\operatorname{softmax}``, ``\\delta_{ab}`` (Kronecker), ``I_d`` (the identity of a dimension ``d``),
and a letter naming a dimension of ``inputs=`` (``m`` in ``\\frac{1}{m}``) is that size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from derivcheck._derivation import DerivationError


class LatexError(DerivationError):
    """A statement could not be read in the dialect: names the symbol and what to declare."""


@dataclasses.dataclass(frozen=True)
class Tensor:
    """An array of the statement: an argument (``source`` a name) or computed (``source`` a function).

    ``dims``: its symbolic shape (from ``inputs=`` when omitted for an argument).
    ``axes``: the axes that the subscripts address, in the order written
    (default: in order). ``w_c`` with ``axes=(1, 0)`` is ``w[:, c]``.
    """

    source: str | Callable[..., Any]
    dims: tuple[str | int, ...] | None = None
    axes: tuple[int, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Index:
    """An index variable ranging over the dimension ``dim`` (1 to ``dim`` in the statement)."""

    dim: str


def tensor(source: str | Callable[..., Any], *dims: str | int, axes: tuple[int, ...] | None = None) -> Tensor:
    """A symbol that is an array: an argument's name, or a function of arguments, with its shape.

    >>> tensor("w", axes=(1, 0)).axes
    (1, 0)
    """
    if not (isinstance(source, str) and source.isidentifier()) and not callable(source):
        raise LatexError(f"tensor(source): give an argument name or a function of the arguments, got {source!r}")
    if axes is not None and sorted(axes) != list(range(len(axes))):
        raise LatexError(f"tensor(axes=): a permutation of 0..{len(axes) - 1}, got {axes!r}")
    return Tensor(source, tuple(dims) if dims else None, tuple(axes) if axes is not None else None)


def index(dim: str) -> Index:
    """A symbol that is an index variable over dimension ``dim`` of the inputs (``i`` over ``m``)."""
    if not isinstance(dim, str) or not dim:
        raise LatexError(f"index(dim): name a dimension of the inputs, got {dim!r}")
    return Index(dim)
