"""What the left-hand side claims, and where each entry of the right-hand side goes.

The left-hand side names a derivative of the claim's function ``of`` with
respect to the claim's argument ``wrt``; its indices say which entry the
right-hand side is:

* ``\\frac{\\partial J}{\\partial \\theta_j}``, ``\\nabla_{w_c} l``, ``\\frac{\\partial J}{\\partial w}`` —
  a gradient: entry ``j`` of ``θ``, column ``c`` of ``w``, all of ``w``;
* ``\\frac{\\partial v_k}{\\partial \\eta_j}`` — a Jacobian, entry ``(k, j)``
  (the numerator's axes, then the argument's);
* ``\\frac{\\partial^2 J}{\\partial \\theta_k \\partial \\theta_j}``, ``\\frac{\\partial^2 E}{\\partial^2 b}`` —
  a Hessian, entry ``(k, j)``;
* ``\\frac{\\partial L}{\\partial x_i}`` where ``\\frac{\\partial L}{\\partial y}`` is a
  declared upstream gradient — a backward pass (VJP);
* a symbol defined in ``symbols=`` as one of these (``g``, ``H``, ``H_{c,c'}``).

An index written twice (``\\frac{\\partial \\hat{y}_k}{\\partial z_k}``) is a
diagonal: the other entries are zero (the claim's ``of`` must isolate that
case). A trailing ``(\\theta)`` or ``\\ell(w)`` only says where it is evaluated.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from derivcheck._latex import _reader as R
from derivcheck._latex._symbols import LatexError
from derivcheck._latex._table import Entry, canon, index_names, split_factor


@dataclasses.dataclass(frozen=True)
class Lhs:
    """The claim read from the left-hand side: kind, the argument, and the axes of the result."""

    kind: str
    numerator: str
    wrt: str
    axes: tuple[tuple[str | None, Any], ...]
    tex: str


def read_lhs(node: Any, ctx: R.Context, kind: str, wrt: str) -> Lhs:
    """The :class:`Lhs` of ``node``; an error names what does not match the claim."""
    children = node.children if node.data == "product" else [node]
    children = _expand_alias(children, ctx)
    head, rest = children[0], children[1:]
    atom, scripts = split_factor(head)
    if getattr(atom, "data", "") == "frac" and not scripts:
        order, numerator, denominators, rest = _frac_form(atom, rest)
    elif canon(atom) == "\\nabla":
        order, numerator, denominators, rest = _nabla_form(atom, scripts, rest)
    else:
        raise LatexError(
            f"the left-hand side {canon(node)} is not a derivative: write "
            "\\frac{\\partial J}{\\partial \\theta_j}, "
            "\\nabla_w J, or declare it in symbols= (e.g. 'g': r'\\nabla_\\theta J')"
        )
    _check_trailing(rest, numerator, ctx)
    num_axes, num_kind = _numerator(numerator, ctx, kind)
    den_axes = [axis for d in denominators for axis in _denominator(d, ctx, wrt)]
    found = "hessian" if order == 2 else num_kind
    if found != kind:
        raise LatexError(f"the left-hand side {canon(node)} is a {found}; the claim is a {kind}")
    axes = tuple(num_axes + den_axes)
    ctx.free_lhs = {a for a, _ in axes if a is not None}
    labels = ",".join(a if a is not None else ":" for a, _ in axes)
    tex = (
        f"\\left[\\partial^{{{order}}}_{{\\mathtt{{{wrt}}}}} {canon(numerator)}\\right]_{{{labels}}}"
        if order == 2
        else (f"\\left[\\partial_{{\\mathtt{{{wrt}}}}} {canon(numerator)}\\right]_{{{labels}}}")
    )
    return Lhs(kind, canon(numerator), wrt, axes, tex)


def _expand_alias(children: list[Any], ctx: R.Context) -> list[Any]:
    atom, scripts = split_factor(children[0])
    if getattr(atom, "data", "") not in ("letter", "command", "accent"):
        return children
    entry, rest, _ = R._lookup(atom, scripts, ctx)
    if not isinstance(entry, Entry) or entry.kind != "indexed" or rest:
        return children
    used = [s for s in scripts if s.data == "sub"]
    names = index_names(used[0]) if used and entry.params else []
    renames = dict(zip(entry.params, names or [], strict=True))
    body = entry.body.children if entry.body.data == "product" else [entry.body]
    return [_renamed(b, renames) for b in body] + children[1:]


def _renamed(tree: Any, renames: dict[str, str]) -> Any:
    """``tree`` with index letters renamed (an alias ``H_{c,c'}`` used as ``H_{a,b}``)."""
    if not renames:
        return tree
    out = copy.deepcopy(tree)
    for sub in out.iter_subtrees():
        if sub.data in ("letter", "index_name"):
            name = str(sub.children[0])
            if name in renames and sub.data == "letter":
                sub.children[0] = sub.children[0].update(value=renames[name].rstrip("'"))
    return out


def _frac_form(frac: Any, rest: list[Any]):
    num, den = frac.children[1], frac.children[2]
    num_f = num.children if num.data == "product" else [num]
    d_atom, d_scripts = split_factor(num_f[0])
    if canon(d_atom) != "\\partial":
        raise LatexError(f"the left-hand side \\frac{{{canon(num)}}}{{{canon(den)}}} is a quotient, not a derivative")
    order = _order(d_scripts)
    if len(num_f) == 1:  # operator form: \frac{\partial}{\partial z_i} L
        if not rest:
            raise LatexError("the left-hand side \\frac{\\partial}{\\partial …} is applied to nothing")
        numerator, rest = rest[0], rest[1:]
    elif len(num_f) == 2:
        numerator = num_f[1]
    else:
        raise LatexError(f"the numerator {canon(num)}: one symbol after \\partial")
    return order, numerator, _denominators(den, order), rest


def _order(scripts: list[Any]) -> int:
    if not scripts:
        return 1
    if len(scripts) == 1 and scripts[0].data == "sup" and canon(scripts[0]) in ("^{2}",):
        return 2
    raise LatexError(f"\\partial{''.join(canon(s) for s in scripts)}: first or second derivatives only")


def _denominators(den: Any, order: int) -> list[Any]:
    items = den.children if den.data == "product" else [den]
    out: list[Any] = []
    i = 0
    while i < len(items):
        atom, scripts = split_factor(items[i])
        if canon(atom) != "\\partial" or i + 1 >= len(items):
            raise LatexError(f"the denominator {canon(den)}: write \\partial before each variable")
        times = _order(scripts)
        out.extend([items[i + 1]] * times)
        i += 2
    if len(out) != order:
        raise LatexError(f"the denominator {canon(den)} has {len(out)} variables for a derivative of order {order}")
    return out


def _nabla_form(atom: Any, scripts: list[Any], rest: list[Any]):
    subs = [s for s in scripts if s.data == "sub"]
    sups = [s for s in scripts if s.data == "sup"]
    if len(subs) != 1 or len(sups) > 1 or not rest:
        raise LatexError("\\nabla: write \\nabla_{w} J (or \\nabla^2_{w} J)")
    order = 2 if sups and canon(sups[0]) == "^{2}" else 1
    variable = R.script_body(subs[0])
    return order, rest[0], [variable] * order, rest[1:]


def _check_trailing(rest: list[Any], numerator: Any, ctx: R.Context) -> None:
    """Only the numerator again (``H_{c,c'} \\ell(w)``) and where it is evaluated may follow."""
    for i, node in enumerate(rest):
        content = R._paren_content(node)
        if content is not None and i == len(rest) - 1:
            continue
        if canon(node) == canon(numerator) and i == 0:
            continue
        raise LatexError(f"the left-hand side: {canon(node)} after the derivative is not in the dialect")


def _numerator(node: Any, ctx: R.Context, kind: str) -> tuple[list[tuple[str | None, Any]], str]:
    atom, scripts = split_factor(node)
    name = canon(atom)
    if kind == "vjp" and any(num == canon(node) or num == name for num, _ in ctx.table.derivatives):
        return [], "vjp"
    entry, rest, key = R._lookup(atom, scripts, ctx)
    if not isinstance(entry, Entry):
        raise LatexError(f"the numerator {canon(node)} is not declared: map it to the claim's function in symbols=")
    if entry.kind == "elementwise" and not rest:
        return [], "gradient"
    if entry.kind in ("arg", "computed") and not entry.dims and not rest:
        return [], "gradient"
    if entry.kind in ("arg", "computed"):
        term, _ = R._array(entry, rest, ctx, canon(node))
        if term.hid:
            raise LatexError(f"the numerator {canon(node)}: index every axis of {entry.key} {entry.dims}")
        return _placed(entry, rest, ctx, canon(node)), "jacobian"
    raise LatexError(f"the numerator {canon(node)}: declare {key} as the claim's function (a callable) or an array")


def _placed(entry: Entry, scripts: list[Any], ctx: R.Context, where: str) -> list[tuple[str | None, Any]]:
    """The axes of ``entry`` in storage order, each with the index written on it (``None`` if none)."""
    names, other = R.split_indices(scripts, where)
    if any(canon(s) != "^{\\top}" for s in other):
        raise LatexError(
            f"{where}: the scripts {' '.join(canon(s) for s in other)} on the left-hand side are not indices or ^\\top"
        )
    if len(names) > len(entry.dims):
        raise LatexError(f"{where}: {len(names)} indices on {entry.key} of {len(entry.dims)} axes")
    label = dict(zip(entry.axes, names, strict=False))
    for axis, n in label.items():
        ctx.unify(n, entry.dims[axis], where)
    return [(label.get(a), entry.dims[a]) for a in range(len(entry.dims))]


def _denominator(node: Any, ctx: R.Context, wrt: str) -> list[tuple[str | None, Any]]:
    atom, scripts = split_factor(node)
    entry, rest, key = R._lookup(atom, scripts, ctx)
    if not isinstance(entry, Entry) or entry.kind != "arg":
        raise LatexError(f"∂/∂{canon(node)}: {canon(atom)} is not declared as an argument in symbols=")
    if entry.value != wrt:
        raise LatexError(f"∂/∂{canon(node)}: {key} is the argument {entry.value!r}; the claim differentiates {wrt!r}")
    return _placed(entry, rest, ctx, canon(node))
