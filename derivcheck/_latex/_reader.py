"""The parse tree read into terms, by the symbol table. Nothing is guessed.

The reading rules of the dialect:

* a symbol is what ``symbols=`` says (see :mod:`._symbols`); an undeclared one is an error;
* subscripts are indices on the array's axes, in the declared order; a
  superscript ``(i)`` is an index on the first axis (``x^{(i)}_j`` is ``X[i, j]``),
  ``^\\top`` a transpose, ``^2`` a power, ``^{-1}`` an inverse;
* juxtaposition is a product, except after a function (``\\sigma``, ``\\log``, a
  callable, ``h_\\theta(x)`` defined in LaTeX), which takes the parenthesised
  group that follows — an unparenthesised argument only as the last factor; a
  power after that group (``\\exp(z)^2``: the value's or the argument's?) is refused,
  one on the name of a trigonometric, hyperbolic or log function is its value's (``\\tanh^2(z)``);
  an array computed from arguments may be followed by those arguments, ``\\mu_{ic}(w)``;
* ``I_d`` is the ``d × d`` identity, ``d`` a dimension of the inputs;
* ``\\sum_{i=1}^m`` binds ``i`` over the rest of the product; its bounds must be
  ``1`` and a dimension of the inputs, the range of ``i`` everywhere;
* every index has one range, taken from the axes it indexes, the bounds of its
  sum or its declaration; a clash or no range at all is an error.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import lark

from derivcheck._latex import _terms as T
from derivcheck._latex._scripts import power, sample_index, script_body, with_scripts
from derivcheck._latex._symbols import LatexError
from derivcheck._latex._table import Entry, Table, canon, index_names, split_factor

BUILTIN_FUNCTIONS = {
    "\\exp": ("jnp.exp", "\\exp"),
    "\\log": ("jnp.log", "\\log"),
    "\\ln": ("jnp.log", "\\log"),
    "\\sigma": ("jax.nn.sigmoid", "\\operatorname{sigmoid}"),
    "\\sqrt": ("jnp.sqrt", "\\sqrt"),
    "\\sin": ("jnp.sin", "\\sin"),
    "\\cos": ("jnp.cos", "\\cos"),
    "\\tan": ("jnp.tan", "\\tan"),
    "\\sinh": ("jnp.sinh", "\\sinh"),
    "\\cosh": ("jnp.cosh", "\\cosh"),
    "\\tanh": ("jnp.tanh", "\\tanh"),
}
POWERED = {"\\log", "\\ln", "\\sin", "\\cos", "\\tan", "\\sinh", "\\cosh", "\\tanh"}
"""Functions written with a power of their value on the name, by convention: ``\\tanh^2(z)`` is
``(\\tanh z)^2``, ``\\log^2 x`` is ``(\\log x)^2`` (``^{-1}`` would be the inverse function: refused)."""
BARE_ARGUMENT = {"\\exp", *POWERED}


@dataclasses.dataclass(frozen=True)
class Function:
    """Something applied to the parenthesised group after it."""

    name: str
    entry: Entry | None = None
    code: str = ""
    power: str = ""  # \\tanh^2: the value's power, applied after the function (see POWERED)


class Context:
    """The state of one reading: the table, index ranges, bound indices, local parameters."""

    def __init__(self, table: Table, dims: set[str]) -> None:
        self.table = table
        self.dims = dims
        self.letters = T.Letters()
        self.ranges: dict[str, Any] = {k: e.value for k, e in table.entries.items() if e.kind == "index"}
        self.bound: list[str] = []
        self.free_lhs: set[str] = set()
        self.locals: list[dict[str, T.Term]] = [{}]
        self.renames: list[dict[str, str]] = [{}]
        self.used: set[str] = set()
        self.pairs: list[tuple[str, str]] = []

    def name(self, index: str) -> str:
        return self.renames[-1].get(index, index)

    def unify(self, index: str, dim: Any, where: str) -> None:
        old = self.ranges.get(index)
        if old is not None and old != dim:
            raise LatexError(f"index {index} ranges over {old} and, in {where}, over {dim}: declare one range")
        self.ranges[index] = dim


_TOKEN_ATOMS = {"LETTER": "letter", "DIGIT": "number", "NUMBER": "number", "CMD": "command"}


def read(node: Any, ctx: Context) -> T.Term:
    """The term of an expression subtree."""
    if isinstance(node, lark.Token):
        node = lark.Tree(_TOKEN_ATOMS.get(node.type, "letter"), [node])
    data = node.data
    if data in ("plus", "minus"):
        a, b = read(node.children[0], ctx), read(node.children[1], ctx)
        return T.add(a, b, "+" if data == "plus" else "-", ctx.letters)
    if data == "neg":
        return T.scale(read(node.children[0], ctx), "-1", "-")
    if data == "product":
        return read_product(node.children, ctx)
    return read_product([node], ctx)


def read_product(children: list[Any], ctx: Context) -> T.Term:
    """A product of factors, functions applied to what follows them; ``\\odot`` between single factors."""
    ops = [i for i, c in enumerate(children) if isinstance(c, lark.Token) and c.type in ("DOT", "ODOT")]
    if any(i in (0, len(children) - 1) or i + 1 in ops for i in ops):
        raise LatexError(f"`{canon_all(children)}`: \\cdot and \\odot stand between two factors")
    if any(children[i].type == "ODOT" for i in ops):
        return _hadamard_chain(children, ops, ctx)
    children = [c for i, c in enumerate(children) if i not in ops]
    acc: T.Term | None = None
    i = 0
    while i < len(children):
        node = children[i]
        if getattr(node, "data", "") == "bigsum":
            value, i = read_sum(node, ctx), i + 1
        else:
            value, i = factor_value(children, i, ctx)
        acc = value if acc is None else T.multiply(acc, value, ctx.letters, f"`{canon_all(children)}`")
    assert acc is not None
    return acc


def _hadamard_chain(children: list[Any], ops: list[int], ctx: Context) -> T.Term:
    """``a \\odot b \\odot c``: each operand one factor (``a \\odot b c`` is refused as ambiguous)."""
    if any(children[i].type == "DOT" for i in ops):
        raise LatexError(f"`{canon_all(children)}`: \\cdot and \\odot together; add parentheses")
    bounds = [-1, *ops, len(children)]
    acc: T.Term | None = None
    for lo, hi in itertools.pairwise(bounds):
        group = children[lo + 1 : hi]
        value, used = factor_value(group, 0, ctx)
        if used != len(group):
            raise LatexError(f"`{canon_all(children)}`: a product next to \\odot is ambiguous; add parentheses")
        acc = value if acc is None else T.hadamard(acc, value, ctx.letters)
    assert acc is not None
    return acc


def canon_all(children: list[Any]) -> str:
    return " ".join(canon(c) for c in children)


def _paren_content(node: Any) -> Any | None:
    """What a function is applied to: ``(…)`` or, as ``\\sqrt{…}`` is written, ``{…}``."""
    atom, scripts = split_factor(node)
    if getattr(atom, "data", "") in ("paren", "group") and not scripts:
        return atom.children[0]
    return None


def _powered_paren(node: Any) -> bool:
    """``(…)^2``, ``(…)^{-1}``: a parenthesised group with a superscript other than ``^\\top``."""
    atom, scripts = split_factor(node)
    if getattr(atom, "data", "") not in ("paren", "group"):
        return False
    return any(getattr(s, "data", "") == "sup" and canon(s.children[0]) != "\\top" for s in scripts)


def factor_value(children: list[Any], i: int, ctx: Context) -> tuple[T.Term, int]:
    """The value of ``children[i]``, consuming the argument of a function.

    ``\\exp(z)^2`` is refused: read as a function applied to ``(z)^2`` it is ``e^{z²}``, while the
    usual meaning of ``f(x)^2`` is ``f(x)²`` (``\\sin(x)^2``); the dialect does not guess which.
    """
    head = resolve(children[i], ctx)
    nxt = children[i + 1] if i + 1 < len(children) else None
    if isinstance(head, Function) and nxt is not None and _powered_paren(nxt):
        atom, scripts = split_factor(nxt)
        left, right = ("(", ")") if atom.data == "paren" else ("{", "}")
        written = f"{head.name}{left}{canon(atom.children[0])}{right}{''.join(canon(s) for s in scripts)}"
        power = canon(scripts[-1])
        named = f"{head.name}{power}(…) or " if head.name in POWERED and power.strip("^{}").isdigit() else ""
        raise LatexError(
            f"`{written}`: the power of {head.name}'s value or of its argument? write "
            f"{named}({head.name}(…)){power} for the first, {head.name}((…){power}) for the second"
        )
    if isinstance(head, Function):
        content = _paren_content(nxt) if nxt is not None else None
        if content is not None:
            return apply_function(head, content, ctx), i + 2
        if nxt is not None and head.name in BARE_ARGUMENT and i + 2 == len(children):
            if getattr(nxt, "data", "") == "bigsum":
                return apply_function(head, nxt, ctx, bare=True), i + 2
            return apply_function(head, nxt, ctx, bare=True), i + 2
        if nxt is not None and head.name in BARE_ARGUMENT:
            raise LatexError(
                f"{head.name} {canon(nxt)} is followed by more factors: write {head.name}(…) to say what it takes"
            )
        raise LatexError(f"{head.name} is a function: write its argument in parentheses after it")
    term, params = head
    content = _paren_content(nxt) if nxt is not None and params else None
    if content is not None and _is_argument_list(content, params, ctx):
        return term, i + 2
    return term, i + 1


def _is_argument_list(content: Any, params: tuple[str, ...], ctx: Context) -> bool:
    """``(w)`` after ``\\mu_{ic}``: every item is a symbol naming one of its parameters."""
    items = content.children if content.data == "list" else [content]
    for item in items:
        factors = item.children if item.data == "product" else [item]
        if len(factors) != 1:
            return False
        entry = ctx.table.entries.get(canon(factors[0]))
        if entry is None or entry.kind != "arg" or entry.value not in params:
            return False
    return True


def apply_function(fn: Function, content: Any, ctx: Context, bare: bool = False) -> T.Term:
    if fn.entry is not None and fn.entry.kind == "function":
        return _apply_definition(fn.entry, content, ctx)
    if content.data == "list":
        raise LatexError(f"{fn.name} takes one argument, got {canon(content)}")
    arg = read(content, ctx) if not bare else read_product([content], ctx)
    if fn.name == "\\diag":
        if len(arg.hid) != 1:
            raise LatexError(f"\\operatorname{{diag}} of {arg.shape_words()}: it takes a vector")
        t = T.apply("diag", arg, "\\operatorname{diag}")
        return dataclasses.replace(t, hid=(arg.hid[0], arg.hid[0]), orient="")
    if fn.name == "\\softmax":
        if len(arg.hid) != 1:
            raise LatexError(f"\\operatorname{{softmax}} of {arg.shape_words()}: it takes a vector")
        t = T.apply("jax.nn.softmax", arg, "\\operatorname{softmax}")
        return dataclasses.replace(t, code=t.code[:-1] + ", axis=-1)")
    tex = fn.entry.key if fn.entry is not None else BUILTIN_FUNCTIONS[fn.name][1]
    value = T.apply(fn.code, arg, tex)
    if not fn.power:
        return value
    powered = power(value, fn.power, f"{fn.name}^{{{fn.power}}}", entrywise=True)
    return dataclasses.replace(powered, tex=f"{tex}^{{{fn.power}}}\\left({arg.tex}\\right)")


def _apply_definition(entry: Entry, content: Any, ctx: Context) -> T.Term:
    items = content.children if content.data == "list" else [content]
    if len(items) != len(entry.params):
        raise LatexError(f"{entry.key} takes {len(entry.params)} argument(s), got {canon(content)}")
    bound = {p: read(item, ctx) for p, item in zip(entry.params, items, strict=True)}
    ctx.locals.append(bound)
    try:
        body = read(entry.body, ctx)
    finally:
        ctx.locals.pop()
    return T.grouped(body, f"\\left({body.tex}\\right)")


def resolve(node: Any, ctx: Context) -> Function | tuple[T.Term, tuple[str, ...]]:
    """A factor as a function, or as a term (with the parameters it may be applied to)."""
    atom, scripts = split_factor(node)
    data = atom.data
    if data == "number":
        return with_scripts(T.constant(repr(float(canon(atom))), canon(atom)), scripts, ctx, canon(node)), ()
    if data == "paren":
        inner = read(atom.children[0], ctx)
        inner = T.grouped(T.materialize(inner), f"\\left({inner.tex}\\right)")
        return with_scripts(inner, scripts, ctx, canon(node)), ()
    if data == "group":
        return with_scripts(
            T.grouped(read(atom.children[0], ctx), read(atom.children[0], ctx).tex), scripts, ctx, canon(node)
        ), ()
    if data == "group":
        inner = read(atom.children[0], ctx)
        return with_scripts(T.grouped(inner, inner.tex), scripts, ctx, canon(node)), ()
    if data == "frac":
        return with_scripts(read_frac(atom, ctx), scripts, ctx, canon(node)), ()
    if data == "cases":
        return with_scripts(read_cases(atom, ctx), scripts, ctx, canon(node)), ()
    return resolve_symbol(node, atom, scripts, ctx)


# ----------------------------------------------------------------------------- symbols


def _lookup(atom: Any, scripts: list[Any], ctx: Context) -> tuple[Entry | T.Term | None, list[Any], str]:
    """The most specific declaration matching ``atom`` with (some of) its ``scripts``, and the scripts left."""
    base = canon(atom)
    subs = [s for s in scripts if s.data == "sub"]
    sups = [s for s in scripts if s.data == "sup"]
    found: list[tuple[Any, list[Any], str]] = []
    for keep in (scripts, sups, subs):
        if keep:
            key = base + "".join(canon(s) for s in keep)
            hit = ctx.locals[-1].get(key) or ctx.table.entries.get(key)
            if hit is not None and all(hit is not f[0] for f in found):
                found.append((hit, [s for s in scripts if s not in keep], key))
    if len(subs) == 1 and base in ctx.table.indexed:
        names = index_names(subs[0])
        for entry in ctx.table.indexed[base]:
            if names is not None and len(names) == len(entry.params):
                found.append((entry, [s for s in scripts if s is not subs[0]], base + canon(subs[0])))
    if len(found) > 1:
        keys = " and ".join(repr(f[0].key if isinstance(f[0], Entry) else f[2]) for f in found)
        raise LatexError(f"{canon(atom)}{''.join(canon(s) for s in scripts)} is ambiguous: it matches {keys}")
    if found:
        return found[0]
    plain = ctx.locals[-1].get(base) or ctx.table.entries.get(base)
    return plain, scripts, base


def resolve_symbol(node: Any, atom: Any, scripts: list[Any], ctx: Context):
    entry, rest, key = _lookup(atom, scripts, ctx)
    if isinstance(entry, T.Term):  # a parameter of a function defined in LaTeX
        return with_scripts(entry, rest, ctx, canon(node)), ()
    if entry is None:
        return _builtin(node, atom, scripts, ctx)
    if entry.kind == "index":
        raise LatexError(f"{key} is declared an index; it cannot stand alone as a value in {canon(node)}")
    if entry.kind in ("elementwise", "function"):
        if rest:
            raise LatexError(f"{canon(node)}: scripts on the function {key} are not in the dialect")
        return Function(entry.key, entry, entry.pyname)
    if entry.kind == "indexed":
        return with_scripts(_indexed(entry, scripts, rest, ctx), rest, ctx, canon(node)), ()
    return _array(entry, rest, ctx, canon(node))


def _indexed(entry: Entry, scripts: list[Any], rest: list[Any], ctx: Context) -> T.Term:
    """A LaTeX definition, its index parameters renamed to the indices written."""
    used = [s for s in scripts if s not in rest and s.data == "sub"]
    names = index_names(used[0]) if used else []
    renames = {p: ctx.name(n) for p, n in zip(entry.params, names or [], strict=True)}
    ctx.renames.append({**ctx.renames[-1], **renames})
    ctx.locals.append({})
    try:
        body = read(entry.body, ctx)
    finally:
        ctx.renames.pop()
        ctx.locals.pop()
    return T.grouped(body, f"\\left({body.tex}\\right)")


def _array(entry: Entry, scripts: list[Any], ctx: Context, where: str):
    """An argument or computed array, indexed by its ``(i)`` superscript and its subscripts."""
    names, other = split_indices(scripts, where)
    names = [ctx.name(n) for n in names]
    code = entry.value if entry.kind == "arg" else f"{entry.pyname}({', '.join(entry.params)})"
    ctx.table.pynames.add(code)
    if len(names) > len(entry.dims):
        raise LatexError(f"{where}: {len(names)} indices on {entry.key}, which has {len(entry.dims)} axes {entry.dims}")
    axis_label: dict[int, str] = {}
    for n, axis in zip(names, entry.axes, strict=False):
        ctx.unify(n, entry.dims[axis], where)
        axis_label[axis] = n
    hidden = [a for a in range(len(entry.dims)) if a not in axis_label]
    if len(hidden) > 2:
        raise LatexError(
            f"{where}: {entry.key} has {len(hidden)} axes left without indices; the dialect reads matrices at most"
        )
    ctx.letters.begin()
    hid_letters = {a: ctx.letters.fresh() for a in hidden}
    letters = "".join(
        ctx.letters.index(axis_label[a]) if a in axis_label else hid_letters[a] for a in range(len(entry.dims))
    )
    idx = tuple(dict.fromkeys(names))
    out = "".join(ctx.letters.index(n) for n in idx) + "".join(hid_letters[a] for a in hidden)
    shown = ",".join(axis_label.get(a, ":") for a in range(len(entry.dims)))
    label = f"\\mathtt{{{code}}}" if entry.kind == "arg" else f"{entry.key}"
    tex = f"{label}_{{{shown}}}" if entry.dims else label
    term = T.leaf(code, letters, out, idx, [entry.dims[a] for a in hidden], "col" if len(hidden) == 1 else "", tex)
    return with_scripts(term, other, ctx, where), (entry.params if entry.kind == "computed" else ())


def split_indices(scripts: list[Any], where: str) -> tuple[list[str], list[Any]]:
    """The indices written on an array (``^{(i)}`` first, then the subscripts) and the other scripts, in order."""
    samples = [n for s in scripts if s.data == "sup" and (n := sample_index(s)) is not None]
    names = list(samples)
    other = []
    for s in scripts:
        if s.data == "sub":
            idx = index_names(s)
            if idx is None:
                raise LatexError(
                    f"{where}: the subscript {canon(s)} is not a list of indices; declare {where} as a symbol"
                )
            names.extend(idx)
        elif not (s.data == "sup" and sample_index(s) is not None):
            other.append(s)
    if len(samples) > 1:
        raise LatexError(f"{where}: two ^{{(i)}} superscripts")
    return names, other


def _builtin(node: Any, atom: Any, scripts: list[Any], ctx: Context):
    base = canon(atom)
    where = canon(node)
    if base in BUILTIN_FUNCTIONS or base in ("\\diag", "\\softmax"):
        return Function(base, None, BUILTIN_FUNCTIONS.get(base, ("", ""))[0], _function_power(base, scripts, where))
    if base == "\\delta" and len(scripts) == 1 and scripts[0].data == "sub":
        names = index_names(scripts[0])
        if names is None or len(names) != 2:
            raise LatexError(f"{where}: the Kronecker delta takes two indices, \\delta_{{ij}}")
        a, b = (ctx.name(n) for n in names)
        if a in ctx.ranges and b in ctx.ranges:
            ctx.unify(a, ctx.ranges[b], where)
        la, lb = ctx.letters.index(a), ctx.letters.index(b)
        size = f"⟨{a}⟩" if a in ctx.ranges or b not in ctx.ranges else f"⟨{b}⟩"
        ctx.pairs.append((a, b))
        idx = tuple(dict.fromkeys((a, b)))
        tex = f"\\delta_{{{a} {b}}}"
        return T.leaf(f"jnp.eye({size})", la + lb, "".join(ctx.letters.index(n) for n in idx), idx, (), "", tex), ()
    if base == "e" and len(scripts) == 1 and scripts[0].data == "sup":
        arg = read(script_body(scripts[0]), ctx)
        return T.apply("jnp.exp", arg, "\\exp"), ()
    if base == "I":
        return _identity(scripts, ctx, where), ()
    if base in ctx.dims and all(s.data == "sup" for s in scripts):  # m, m^2, m^{-1}: a size is a number
        ctx.used.add(base)
        return with_scripts(T.constant(f"⟦{base}⟧", base), scripts, ctx, where), ()
    raise LatexError(
        f"unknown symbol {base} in {where}: declare it in symbols= (an argument name, dc.tensor(...), "
        "dc.index(...), a function, or a LaTeX definition)"
    )


def _identity(scripts: list[Any], ctx: Context, where: str) -> T.Term:
    """``I_d``: the ``d × d`` identity, ``d`` a dimension of ``inputs=`` (bare ``I`` is refused: its size is
    written, never inferred from what it is added to)."""
    names = index_names(scripts[0]) if len(scripts) == 1 and scripts[0].data == "sub" else None
    if not names or len(names) != 1 or names[0] not in ctx.dims:
        dims = ", ".join(sorted(ctx.dims)) or "none"
        raise LatexError(
            f"{where}: the identity matrix? write it with its size, I_d for d one of the dimensions of inputs= "
            f"({dims}), or declare {where} in symbols="
        )
    (dim,) = names
    ctx.letters.begin()
    a, b = ctx.letters.fresh(), ctx.letters.fresh()
    return T.leaf(f"jnp.eye(⟦{dim}⟧)", a + b, a + b, (), (dim, dim), "", f"I_{{{dim}}}")


def _function_power(base: str, scripts: list[Any], where: str) -> str:
    """The ``2`` of ``\\tanh^2`` (:data:`POWERED`), ``""`` without scripts; other scripts are refused."""
    if not scripts:
        return ""
    text = canon(script_body(scripts[0])) if len(scripts) == 1 and scripts[0].data == "sup" else ""
    if base in POWERED and text.isdigit() and int(text) >= 2:
        return text
    if base in POWERED and text == "-1":
        raise LatexError(
            f"{where}: the inverse function or the reciprocal? write \\frac{{1}}{{{base}(…)}} for the reciprocal; "
            "an inverse function is not in the dialect"
        )
    raise LatexError(f"{where}: scripts on {base} are not in the dialect")


# ----------------------------------------------------------------------------- forms


def read_frac(frac: Any, ctx: Context) -> T.Term:
    """``\\frac{N}{D}``: a quotient, or a given derivative ``\\frac{\\partial L}{\\partial y_k}``."""
    num, den = frac.children[1], frac.children[2]
    if num.data == "product" and canon(num.children[0]) == "\\partial":
        return _given_derivative(num, den, ctx)
    top, bottom = read(num, ctx), T.materialize(read(den, ctx))
    if bottom.hid:
        raise LatexError(f"\\frac{{{canon(num)}}}{{{canon(den)}}}: division by {bottom.shape_words()}")
    recip = dataclasses.replace(
        bottom,
        code=f"1 / {T.paren(bottom.code, bottom.prec, T.ATOM)}",
        prec=T.PRODUCT,
        nl=bottom.nl | set(bottom.idx),
        lin=frozenset(),
    )
    if canon(num) == "1":
        product = T.materialize(recip)
    else:
        product = T.multiply(top, recip, ctx.letters, canon(frac))
    return T.grouped(product, f"\\frac{{{top.tex}}}{{{bottom.tex}}}")


def _given_derivative(num: Any, den: Any, ctx: Context) -> T.Term:
    where = f"\\frac{{{canon(num)}}}{{{canon(den)}}}"
    if (
        len(num.children) != 2
        or den.data != "product"
        or len(den.children) != 2
        or canon(den.children[0]) != "\\partial"
    ):
        raise LatexError(
            f"{where}: a derivative on the right-hand side must be a declared one, \\frac{{\\partial L}}{{\\partial y}}"
        )
    atom, scripts = split_factor(den.children[1])
    entry = ctx.table.derivatives.get((canon(num.children[1]), canon(atom)))
    if entry is None:
        raise LatexError(
            f"{where} on the right-hand side: declare "
            f"\\frac{{\\partial {canon(num.children[1])}}}{{\\partial {canon(atom)}}} in symbols= (dc.tensor)"
        )
    term, _ = _array(entry, scripts, ctx, where)
    return dataclasses.replace(
        term, tex=f"\\frac{{\\partial {canon(num.children[1])}}}{{\\partial {canon(atom)}}}\\big[{term.tex}\\big]"
    )


def read_sum(node: Any, ctx: Context) -> T.Term:
    """``\\sum_{i=1}^m body`` or ``\\sum_i body``: ``i`` bound over the rest of the product."""
    if len(node.children) != 3:
        raise LatexError("\\sum without its index: write \\sum_{i=1}^m or \\sum_i")
    limits, body_node = node.children[1], node.children[2]
    index, bounds = _sum_index(limits, ctx)
    where = f"\\sum_{{{index}}}"
    if index in ctx.bound or index in ctx.free_lhs:
        raise LatexError(
            f"{where}: {index} is already "
            f"{'bound by an outer sum' if index in ctx.bound else 'a free index of the left-hand side'}"
        )
    if bounds is not None:
        ctx.unify(index, bounds, where)
    ctx.bound.append(index)
    try:
        body = read(body_node, ctx)
    finally:
        ctx.bound.pop()
    if index not in body.idx:
        raise LatexError(f"{where}: the summand {canon(body_node)} does not depend on {index}")
    total = T.summed(body, [index], ctx.letters)
    upper = f"^{{{bounds}}}" if bounds is not None else ""
    tex = f"\\sum_{{{index}{'=1' if bounds is not None else ''}}}{upper} {T.paren(body.tex, body.prec, T.PRODUCT)}"
    return dataclasses.replace(total, tex=tex, prec=T.PRODUCT, nl=total.nl - {index})


def _sum_index(limits: Any, ctx: Context) -> tuple[str, Any]:
    if limits.data == "bounded":
        name_node, lower, upper = limits.children
        index = canon(name_node)
        if canon(lower) != "1":
            raise LatexError(
                f"\\sum_{{{index}={canon(lower)}}}: the dialect's sums start at 1 (1-based, as ranges are declared)"
            )
        dim = canon(upper)
        if dim not in ctx.dims:
            raise LatexError(
                f"\\sum_{{{index}=1}}^{{{dim}}}: {dim} is not a dimension of the inputs {sorted(ctx.dims)}"
            )
        return index, dim
    names = index_names(lark.Tree("sub", [limits.children[0]]))
    if names is None or len(names) != 1:
        raise LatexError(f"\\sum_{{{canon(limits.children[0])}}}: sum over one index, \\sum_i or \\sum_{{i=1}}^m")
    return names[0], None


def _names(condition: Any) -> list[Any]:
    return [c for c in condition.children if isinstance(c, lark.Tree) and c.data == "index_name"]


def read_cases(node: Any, ctx: Context) -> T.Term:
    """``\\begin{cases} A & i = k \\\\ B & i \\neq k \\end{cases}``: ``A`` on the diagonal ``i = k``, ``B`` off it."""
    rows = [c for c in node.children if isinstance(c, lark.Tree) and c.data == "case_row"]
    if len(rows) != 2:
        raise LatexError("cases: the dialect reads two cases, i = k and i \\neq k (or otherwise)")
    conds = [r.children[1] for r in rows]
    kinds = [c.data for c in conds]
    eq_row = kinds.index("cond_eq") if "cond_eq" in kinds else None
    if eq_row is None or kinds[1 - eq_row] not in ("cond_ne", "cond_else"):
        raise LatexError("cases: the conditions must be i = k and i \\neq k (or otherwise): nothing else is read")
    a, b = (ctx.name(canon(n)) for n in _names(conds[eq_row]))
    if kinds[1 - eq_row] == "cond_ne" and {ctx.name(canon(n)) for n in _names(conds[1 - eq_row])} != {a, b}:
        raise LatexError(f"cases: the conditions {canon(conds[0])} and {canon(conds[1])} do not cover every {a}, {b}")
    on, off = read(rows[eq_row].children[0], ctx), read(rows[1 - eq_row].children[0], ctx)
    for n in (a, b):
        if n not in ctx.ranges and (a if n == b else b) in ctx.ranges:
            ctx.unify(n, ctx.ranges[a if n == b else b], "cases")
    ctx.pairs.append((a, b))
    if on.hid != off.hid and on.hid and off.hid:
        raise LatexError(f"cases: {on.shape_words()} in one case, {off.shape_words()} in the other")
    idx = tuple(dict.fromkeys(on.idx + off.idx + (a, b)))
    hid, orient = (on.hid, on.orient) if on.hid else (off.hid, off.orient)
    mask = T.Term(code=f"jnp.eye(⟨{a}⟩, dtype=bool)", idx=(a, b))
    codes = [T.align_code(t, idx, len(hid), ctx.letters)[0] for t in (mask, on, off)]
    tex = f"\\begin{{cases}} {on.tex} & {a} = {b} \\\\ {off.tex} & {a} \\neq {b} \\end{{cases}}"
    return T.Term(
        code=f"jnp.where({', '.join(codes)})",
        idx=idx,
        hid=hid,
        orient=orient,
        tex=tex,
        nl=on.nl | off.nl,
        lin=on.lin | off.lin | {a, b},
    )
