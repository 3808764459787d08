"""``dc.latex``: a derivation whose derived function is read from its LaTeX statement.

The reading is echoed, as data (:class:`Reading`) on the derived function
(``derivation.derived.reading``) and as text in its docstring (the
derivation's ``doc``): the claim the left-hand side makes, the range of every
index, the indices summed implicitly, the ``jnp`` code it became and the
statement re-rendered from that reading.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from typing import Any

import jax
import jax.numpy as jnp
import lark

from derivcheck import _registry
from derivcheck._derivation import HOLDS, Expect
from derivcheck._inputs import CustomInputs, as_inputs
from derivcheck._latex import _reader as R
from derivcheck._latex import _terms as T
from derivcheck._latex._grammar import normalize, parse
from derivcheck._latex._lhs import Lhs, read_lhs
from derivcheck._latex._symbols import LatexError
from derivcheck._latex._table import Table, canon

KINDS = ("gradient", "jacobian", "hessian", "vjp")


@dataclasses.dataclass(frozen=True)
class Reading:
    """How a statement was read: plain data, and :meth:`text` / :attr:`latex` to show it."""

    statement: str
    claim: str
    ranges: tuple[tuple[str, str], ...]
    summed: tuple[str, ...]
    source: str
    expression: str
    latex: str
    unchecked: tuple[str, ...] = ()  # earlier steps of a chain the dialect cannot read, with why

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def text(self) -> str:
        """The echo, for a terminal: claim, ranges, implicit sums, code, re-rendered LaTeX."""
        ranges = ", ".join(f"{i} ∈ 1..{d}" for i, d in self.ranges) or "none"
        summed = ", ".join(self.summed) or "none"
        return "\n".join(
            [
                f"read from LaTeX as: {self.claim}",
                f"indices: {ranges}; summed because absent from the left-hand side: {summed}",
                "code:",
                *("    " + line for line in self.source.splitlines()),
                f"re-rendered: {self.latex}",
                *(f"not checked: {step}" for step in self.unchecked),
            ]
        )


def symbolic_shapes(inputs: Any) -> tuple[dict[str, tuple[Any, ...]], set[str]]:
    """Each argument's shape in dimension names (``X: ("m", "d")``), and the names."""
    spec = as_inputs(inputs)
    if isinstance(spec, CustomInputs):
        raise LatexError("dc.latex needs inputs=dc.inputs(...): the statement's shapes come from its dimension names")
    names = sorted({n for sizes in spec.sizes for n, _ in sizes})
    probe = {n: 1_000_003 + 7919 * k for k, n in enumerate(names)}
    back = {v: n for n, v in probe.items()}
    shapes = {a: tuple(back.get(s, s) for s in shape) for a, shape in spec.shapes(tuple(probe.items())).items()}
    return shapes, set(names)


def read(statement: str, symbols: dict[str, Any], claim: Any, inputs: Any, member: int = -1) -> tuple[Reading, Any]:
    """Read ``statement`` into ``(reading, derived function)``; :class:`LatexError` names what is wrong.

    ``member``: which formula of a chain ``L = f₁ = f₂ = …`` is the derived side (``1`` for ``f₁``; the
    default, the last one). Each is a claim of its own (see :func:`latex`).
    """
    if not isinstance(statement, str):
        raise LatexError(f"dc.latex: the statement is a LaTeX string, got {statement!r}")
    kind = getattr(claim, "kind", None)
    if kind not in KINDS or getattr(claim, "hvp", False):
        raise LatexError(f"dc.latex reads gradients, Jacobians, Hessians and VJPs (dc.Gradient(...), …), got {claim!r}")
    arg_dims, dims = symbolic_shapes(inputs)
    wrt_arg = claim.wrt  # a name, or a position among the arguments
    wrt = wrt_arg if isinstance(wrt_arg, str) else list(arg_dims)[wrt_arg]
    table = Table(symbols, arg_dims)
    ctx = R.Context(table, dims)
    members = parse(normalize(statement)).children
    if len(members) < 2:
        raise LatexError(f"{statement!r} is not an equation: write the derivative = its formula")
    lhs = read_lhs(members[0], ctx, kind, wrt)
    rhs = R.read(members[member], ctx)
    params = list(arg_dims) + _cotangent(table, kind)
    expression, summed = _assemble(lhs, rhs, members[member], ctx)
    expression = _sizes(expression, ctx, lhs)
    source = _source(params, expression, ctx, table)
    expression = source.rsplit("return ", 1)[1].strip()
    namespace = {"jnp": jnp, "jax": jax, "diag": _diag}
    namespace.update({e.pyname: e.value for e in table.entries.values() if e.pyname})
    namespace.update({e.pyname: e.value for es in table.indexed.values() for e in es if e.pyname})
    exec(compile(source, f"<latex: {statement[:60]}>", "exec"), namespace)  # the code generated above
    derived = namespace["derived"]
    claim_text = f"{kind} of {getattr(claim.of, '__name__', 'of')} w.r.t. {wrt}, entry [{_labels(lhs)}]"
    ranges = tuple((i, str(d)) for i, d in sorted(ctx.ranges.items()) if i not in table.entries)
    reading = Reading(
        statement, claim_text, ranges, tuple(summed), source, expression, f"{lhs.tex} = {_summed_tex(summed, rhs)}"
    )
    return reading, derived


def _cotangent(table: Table, kind: str) -> list[str]:
    if kind != "vjp":
        return []
    names = {e.value for e in table.derivatives.values()}
    if len(names) != 1:
        raise LatexError(
            "a backward pass (VJP) needs its upstream gradient declared: "
            "r'\\frac{\\partial L}{\\partial y}': dc.tensor('ct', 'n')"
        )
    return sorted(names)


def _labels(lhs: Lhs) -> str:
    return ", ".join(a if a is not None else ":" for a, _ in lhs.axes)


def _summed_tex(summed: list[str], rhs: T.Term) -> str:
    prefix = "".join(f"\\sum_{{{i}}} " for i in summed)
    return f"{prefix}{T.paren(rhs.tex, rhs.prec, T.PRODUCT) if summed else rhs.tex}"


def _top_terms(node: Any) -> list[Any]:
    if node.data in ("plus", "minus"):
        return _top_terms(node.children[0]) + _top_terms(node.children[1])
    return [node]


def _assemble(lhs: Lhs, rhs: T.Term, rhs_node: Any, ctx: R.Context) -> tuple[str, list[str]]:
    """The code of the result: implicit sums (Einstein/Tullio), then laid out as the left-hand side says."""
    labels = [a for a, _ in lhs.axes if a is not None]
    summed = [i for i in rhs.idx if i not in labels]
    bad = [i for i in summed if i not in rhs.lin]
    if bad:
        raise LatexError(
            f"index {bad[0]} is absent from the left-hand side and appears only inside a function, a quotient or a "
            f"power on the right: summing outside or inside is ambiguous; write \\sum_{bad[0]} where it belongs"
        )
    terms = _top_terms(rhs_node)
    if summed and len(terms) > 1:
        sub = R.Context(ctx.table, ctx.dims)
        sub.ranges, sub.free_lhs = dict(ctx.ranges), ctx.free_lhs
        for t in terms:
            missing = [i for i in summed if i not in R.read(t, sub).idx]
            if missing:
                raise LatexError(
                    f"index {missing[0]} is summed (absent from the left-hand side) but the term {canon(t)} "
                    f"does not carry it: write \\sum_{missing[0]} to say what it sums"
                )
    total = T.summed(rhs, summed, ctx.letters) if summed else rhs
    return _layout(total, lhs, ctx), summed


def _layout(t: T.Term, lhs: Lhs, ctx: R.Context) -> str:
    """One einsum from the right-hand side's axes to the left-hand side's (diagonals and broadcasts included)."""
    slots = [d for a, d in lhs.axes if a is None]
    if tuple(slots) != tuple(t.hid):
        raise LatexError(
            f"shape mismatch: the left-hand side {lhs.tex} has hidden axes {tuple(slots)}, "
            f"the right-hand side is {t.shape_words()}"
        )
    ctx.letters.begin()
    factors, out, coefs = T._as_factors(t, ctx.letters)
    hidden = iter(out[len(t.idx) :])
    dst, extra, seen = "", [], set()
    for label, _ in lhs.axes:
        if label is None:
            dst += next(hidden)
            continue
        letter = ctx.letters.index(label)
        if letter in seen:
            twin = ctx.letters.fresh()
            extra.append((f"jnp.eye(⟨{label}⟩)", letter + twin))
            letter = twin
        elif label not in t.idx:
            extra.append((f"jnp.ones(⟨{label}⟩)", letter))
        seen.add(letter)
        dst += letter
    if not factors and not extra:
        return T.materialize(t).code if not lhs.axes else f"jnp.broadcast_to({T.materialize(t).code}, ())"
    lazy = dataclasses.replace(t, code="", factors=tuple(factors + extra), out=dst, coefs=tuple(coefs))
    return T.materialize(lazy).code


def _sizes(code: str, ctx: R.Context, lhs: Lhs) -> str:
    """Index sizes ``⟨i⟩`` and dimension names ``⟦m⟧`` in code → the names bound at the top of the function."""
    for a, b in ctx.pairs:
        if a in ctx.ranges or b in ctx.ranges:
            ctx.unify(a, ctx.ranges.get(b, ctx.ranges.get(a)), "\\delta")
            ctx.unify(b, ctx.ranges[a], "\\delta")
    while "⟨" in code:
        start = code.index("⟨")
        end = code.index("⟩", start)
        name = code[start + 1 : end]
        if name not in ctx.ranges:
            raise LatexError(
                f"the range of index {name} cannot be inferred: declare it, e.g. symbols={{'{name}': dc.index('K')}}"
            )
        code = code[:start] + f"⟦{ctx.ranges[name]}⟧" + code[end + 1 :]
    return code


def _source(params: list[str], expression: str, ctx: R.Context, table: Table) -> str:
    """The derived function's source: dimensions from argument shapes, then the expression."""
    lines, code = [], expression
    taken = set(params) | table.pynames | {"jnp", "jax", "diag"}
    shapes = dict(table.arg_dims)
    shapes.update({e.value: e.dims for e in table.derivatives.values()})
    while "⟦" in code:
        start = code.index("⟦")
        end = code.index("⟧", start)
        dim = code[start + 1 : end]
        name = dim if dim.isidentifier() and dim not in taken else f"size_{dim}"
        where = next(((a, s.index(dim)) for a, s in shapes.items() if dim in s and a in params), None)
        if where is None and isinstance(dim, str) and dim.isdigit():
            name = dim
        elif where is None:
            raise LatexError(f"the size {dim} is not the size of any argument: it cannot be known when checking")
        line = f"    {name} = {where[0]}.shape[{where[1]}]" if where else ""
        if line and line not in lines:
            lines.append(line)
        code = code.replace(f"⟦{dim}⟧", name)
    return "\n".join([f"def derived({', '.join(params)}):", *lines, f"    return {code}", ""])


def _diag(v: Any) -> Any:
    """``\\operatorname{diag}(v)``: the matrix with ``v`` (last axis) on its diagonal."""
    return v[..., None] * jnp.eye(v.shape[-1], dtype=v.dtype)


def latex(
    statement: str,
    *,
    symbols: dict[str, Any],
    claim: Any,
    inputs: Any,
    name: str | None = None,
    source: str = "",
    expect: Expect = HOLDS,
    rtol: float | None = None,
    atol: float | None = None,
    registry: Any = None,
    steps: dict[int, Expect] | None = None,
) -> Any:
    """Register the derivation stated by ``statement`` (LaTeX), read with ``symbols``, as ``claim``.

    ``claim`` is a claim record: ``dc.Gradient(of=J, wrt="theta")``,
    ``dc.Jacobian``, ``dc.Hessian`` or ``dc.VJP``. The derived function is the
    right-hand side as read; when the statement cannot be read, the derivation
    is registered with the one-line reason as its problem (reported as an error,
    like any declaration problem). Returns the :class:`~derivcheck.Derivation`.

    A chain ``L = f₁ = f₂ = … = f_k`` (the steps of a derivation in the notes)
    claims every ``f_i``: the returned derivation is ``f_k``'s (``expect``
    applies to it), and each earlier step is registered as ``{name}.step{i}``,
    expected to hold unless ``steps={i: dc.fails(reason)}`` says otherwise — a
    wrong intermediate step is never skipped silently; one the dialect refuses
    (a shape mismatch) is that derivation's error. A step written with
    derivatives (``\\frac{\\partial}{\\partial w}(…)``, a chain rule) restates the
    claim rather than giving a formula: it is named in the reading of ``f_k``
    as not checked (:func:`_restates`).
    """
    frame = sys._getframe(1)
    module = str(frame.f_globals.get("__name__", ""))
    name = name or f"{_registry.module_label(module)}.latex_{frame.f_lineno}"
    options = dict(source=source, rtol=rtol, atol=atol, registry=registry, statement=statement, inputs=inputs)
    earlier = range(1, _length(statement) - 1)  # the steps before the last formula
    unchecked = []
    for i in earlier:
        reading, derived, problem = _read_member(statement, symbols, claim, inputs, i)
        if problem is not None and _restates(statement, i):
            unchecked.append(f"step {i} of the chain ({problem})")
            continue
        step = dict(options, name=f"{name}.step{i}", expect=(steps or {}).get(i, HOLDS))
        _declare(module, claim, reading, derived, problem, step)
    reading, derived, problem = _read_member(statement, symbols, claim, inputs, -1)
    stray = sorted(set(steps or {}) - set(earlier))
    if stray and problem is None:
        known = f"steps 1..{earlier[-1]}" if earlier else "no earlier steps"
        reading, derived = None, _unreadable(inputs)
        problem = LatexError(f"steps= names step {stray[0]}, but the chain has {known}")
    if reading is not None and unchecked:
        reading = dataclasses.replace(reading, unchecked=tuple(unchecked))
    return _declare(module, claim, reading, derived, problem, dict(options, name=name, expect=expect))


def _restates(statement: str, member: int) -> bool:
    """Whether a chain's member is written with derivatives (``\\frac{\\partial}{\\partial w}(…)``, a chain
    rule ``\\frac{\\partial L}{\\partial y} \\frac{\\partial y}{\\partial w}``, ``\\nabla``): a restatement
    the dialect cannot evaluate, not a formula — left unchecked, and said so. Any other refusal (a shape
    mismatch, an undeclared symbol) may be the step's own mistake, and is its derivation's error."""
    node = parse(normalize(statement)).children[member]
    return any(str(t) in ("\\partial", "\\nabla") for t in node.scan_values(lambda v: isinstance(v, lark.Token)))


def _length(statement: Any) -> int:
    """How many members the chain ``statement`` has (``2`` for ``L = f``; ``0`` when it cannot be read)."""
    try:
        return len(parse(normalize(statement)).children)
    except Exception:
        return 0


def _read_member(statement: str, symbols, claim, inputs, member: int) -> tuple[Reading | None, Any, Exception | None]:
    """``(reading, derived, None)`` for one member of ``statement``, or ``(None, a stub, the problem)``."""
    try:
        reading, derived = read(statement, symbols, claim, inputs, member)
        return reading, derived, None
    except LatexError as exc:
        return None, _unreadable(inputs), exc
    except Exception as exc:  # a bug of the reader: reported on the derivation, never a silent reading
        bug = LatexError(f"the LaTeX reader failed on this statement (please report): {type(exc).__name__}: {exc}")
        return None, _unreadable(inputs), bug


def _declare(module: str, claim: Any, reading, derived, problem, options: dict[str, Any]) -> Any:
    """Register ``derived`` (a reading of the statement, or a stub with its ``problem``) under ``options``."""
    derived.__module__ = module
    derived.__qualname__ = derived.__name__ = options["name"].rsplit(".", 1)[-1]
    derived.__doc__ = reading.text() if reading else f"not read: {problem}"
    derived.reading = reading

    def make_claim() -> Any:
        if problem is not None:
            raise problem
        return claim

    return _declare_as(module)(make_claim, derived, options)


def _trampoline(make_claim: Any, derived: Any, options: dict[str, Any]) -> Any:
    return _registry.declare(make_claim, derived, **options)


def _declare_as(module: str) -> Any:
    """:func:`_trampoline` run with ``module`` as its globals' name: the registry records the user's module."""
    scope = {"__name__": module, "_registry": _registry}
    return types.FunctionType(_trampoline.__code__, scope, "declare")


def _unreadable(inputs: Any) -> Any:
    def derived(*args: Any) -> Any:
        raise LatexError("this statement was not read; see the derivation's problem")

    return derived


def reading_of(derivation: Any) -> Reading | None:
    """The :class:`Reading` of a derivation registered by :func:`latex` (``None`` for any other)."""
    return getattr(derivation.derived, "reading", None)
