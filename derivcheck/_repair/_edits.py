"""The catalogue of errors made when deriving by hand, as single edits of a syntax tree.

Every edit replaces one node of the derived function (or of a helper it
calls) by another expression. The kinds, with the words a diagnosis uses:

==========  ===============================================================================
kind        edits
==========  ===============================================================================
sign        ``e`` → ``-(e)``, a unary minus removed, ``+`` ↔ ``−``, ``a − b`` → ``b − a``,
            a constant ``c`` → ``−c``
factor      ``e`` → ``e·2``, ``e/2``, ``e·D``, ``e/D`` (``D`` a dimension of an argument,
            ``x.shape[i]``, or the local it is bound to: ``m``); a factor or divisor dropped;
            ``·`` ↔ ``/``; ``e`` or ``1 − e`` → ``e·(1 − e)`` (``σ`` → ``σ(1−σ)``); ``c`` → ``2c``, ``c/2``
transpose   ``e`` → ``e.T``; a ``.T`` or ``jnp.transpose`` removed; ``a @ b`` → ``b @ a``;
            the output indices of an ``einsum`` swapped
term        one term of a sum dropped; a variable of the function added (``e`` → ``e ± v``,
            ``−e`` → ``v − e``: a dropped term restored, where it is a variable)
index       an axis (``axis=``) changed, added or removed; an integer index or a
            ``[:, None]`` changed; a constant ``c`` → ``c ± 1`` (an exponent)
swap        a variable replaced by another variable of the function
function    ``f`` swapped for its usual confusion (``exp``/``log``, ``sin``/``cos``,
            ``sum``/``mean``, ``tanh``/``1 − tanh²``); ``f(x)`` → ``x``; ``x`` → ``f(x)``
            for a one-argument ``f`` the function calls
==========  ===============================================================================

The index kind also holds the Kronecker delta written with two equal indices:
``δ_{c,c}`` (1 for every pair) where ``δ_{c,c′}`` is meant is, in array code,
``ones((n, n))`` where ``eye(n)`` belongs, and the reverse slip ``eye`` ↔
``ones`` (an index of one loop variable swapped for the other's).

Edits are produced from a tree (:func:`edits`); each one knows its *site* —
the node's position in a fixed depth-first order — so it applies to a deep
copy of that tree (:func:`apply`). A pair of edits is an edit of an edited
tree. Whether a node is a number (an array) is read from its context, not
typed: a wrong guess makes a candidate that fails to run, and it is dropped.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

KIND_ORDER = ("factor", "sign", "transpose", "term", "index", "function", "swap")
"""Edit kinds in the order their candidates are tried (the most common hand-derivation errors first)."""

DIAGNOSIS_KIND = {
    "sign": "sign",
    "factor": "factor",
    "transpose": "transpose",
    "term": "term",
    "index": "index",
    "swap": "swap",
    "function": "term",
}
"""The :attr:`~derivcheck.Diagnosis.kind` a fix of each edit kind names."""

REDUCTIONS = {"sum", "mean", "max", "min", "prod", "softmax", "log_softmax", "logsumexp", "cumsum", "argmax", "norm"}
CONFUSIONS = {"exp": ("log",), "log": ("exp",), "sin": ("cos",), "cos": ("sin",), "sum": ("mean",), "mean": ("sum",)}
NON_NUMERIC_KEYWORDS = {"axis", "axes", "keepdims", "dtype", "shape", "ord", "newshape", "precision", "out"}


@dataclasses.dataclass(frozen=True)
class Dim:
    """A dimension a factor can be: its expression (``X.shape[0]``, or the local ``m`` bound to it)."""

    text: str
    after_line: int = 0  # a local is usable only below the line that binds it
    before_line: int = 1 << 30  # an expression a local names is written as the local below its line


@dataclasses.dataclass(frozen=True)
class Edit:
    """One edit: ``before`` (the node's source) becomes ``after`` at ``line`` of tree ``tree``."""

    kind: str
    tree: int
    site: int
    line: int
    before: str
    after: str
    why: str
    depth: int
    build: Callable[[ast.expr], ast.expr] = dataclasses.field(compare=False, repr=False)


@dataclasses.dataclass(frozen=True)
class Slot:
    """One node in its parent: ``parent.field`` (``[index]`` for lists), with whether it is a number."""

    parent: ast.AST
    field: str
    index: int | None
    node: ast.AST
    numeric: bool
    depth: int = 0  # below the statement's own expression (0: the returned or assigned value itself)


def slots(tree: ast.AST, namespace: dict[str, Any]) -> list[Slot]:
    """Every node below ``tree`` in a fixed depth-first order, with its numeric context."""
    out: list[Slot] = []

    def visit(parent: ast.AST, numeric: bool, depth: int) -> None:
        for field, value in ast.iter_fields(parent):
            items = value if isinstance(value, list) else [value]
            for i, child in enumerate(items):
                if not isinstance(child, ast.AST):
                    continue
                is_num = numeric and _numeric_child(parent, field, child, namespace)
                out.append(Slot(parent, field, i if isinstance(value, list) else None, child, is_num, depth))
                inner = is_num or _opens_numeric(child) or (numeric and _returned_tuple(parent, child))
                visit(child, inner, depth + 1 if isinstance(child, ast.expr) else 0)

    visit(tree, False, 0)
    return out


def _opens_numeric(node: ast.AST) -> bool:
    """Statements whose expressions are numbers: ``return e``, ``x = e``, ``x += e``, a lambda's body."""
    return isinstance(node, ast.Return | ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Lambda | ast.Expr)


def _returned_tuple(parent: ast.AST, child: ast.AST) -> bool:
    """A tuple or list of numbers a statement returns or binds (``return (dx, dw)``, a custom rule's ``bwd``
    cotangents): not a number itself, but its entries are (a tuple in a call, ``zeros((n, m))``, is not)."""
    listed = isinstance(child, ast.Tuple | ast.List) and isinstance(getattr(child, "ctx", None), ast.Load)
    return listed and isinstance(parent, ast.Return | ast.Assign | ast.Lambda | ast.Tuple | ast.List)


def _numeric_child(parent: ast.AST, field: str, child: ast.AST, namespace: dict[str, Any]) -> bool:
    if not isinstance(child, ast.expr) or isinstance(getattr(child, "ctx", None), ast.Store | ast.Del):
        return False
    if isinstance(parent, ast.Call) and field == "func":
        return False
    if isinstance(parent, ast.keyword) or (isinstance(parent, ast.Subscript) and field == "slice"):
        return False
    if isinstance(parent, ast.Attribute):
        return parent.attr in ("T", "mT")
    if isinstance(child, ast.Constant):
        return isinstance(child.value, int | float) and not isinstance(child.value, bool)
    if isinstance(child, ast.Name):
        value = namespace.get(child.id)
        return not isinstance(value, types.ModuleType) and not callable(value)
    if isinstance(child, ast.Attribute):
        return child.attr in ("T", "mT", "real", "imag") or _is_shape(child)
    return not isinstance(child, ast.Compare | ast.BoolOp | ast.Tuple | ast.List | ast.Lambda | ast.Starred)


def _is_dimension(node: ast.AST) -> bool:
    """``x.shape[i]``, ``len(x)``."""
    length = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"
    return _is_shape(node) or length


def _is_shape(node: ast.AST) -> bool:
    return isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "shape"


def apply(trees: Sequence[ast.stmt], edit: Edit, namespace: dict[str, Any]) -> list[ast.stmt]:
    """Deep copies of ``trees`` with ``edit`` made (its site found again in the copy)."""
    out = [copy.deepcopy(t) for t in trees]
    slot = slots(out[edit.tree], namespace)[edit.site]
    new = ast.copy_location(edit.build(copy.deepcopy(slot.node)), slot.node)  # type: ignore[arg-type]
    if slot.index is None:
        setattr(slot.parent, slot.field, new)
    else:
        getattr(slot.parent, slot.field)[slot.index] = new
    return out


# ------------------------------------------------------------------------ the catalogue


@dataclasses.dataclass
class _Context:
    text: str
    namespace: dict[str, Any]
    dims: tuple[Dim, ...]
    names: tuple[str, ...]  # the function's variables (arguments and locals)
    unary: tuple[str, ...]  # one-argument functions it calls, as written (``jax.nn.sigmoid``)


def edits(trees: Sequence[ast.stmt], text: str, namespace: dict[str, Any], dims: Sequence[Dim]) -> list[Edit]:
    """Every single edit of ``trees`` in the catalogue in the order the search tries them: the edits
    that remove something first (:func:`_removes`), then those of the derived function before those
    of its helpers (a helper is shared — by other derivations, by ``of`` — and a fix there changes
    them too), then outer expressions first (to depth 3), then by :data:`KIND_ORDER`, then the
    shorter result first, then by position."""
    found: list[Edit] = []
    lines = text.splitlines()
    for t, tree in enumerate(trees):
        own = tuple(dims) if t == 0 else ()  # dimensions are read from the derived function's arguments
        ctx = _Context(text, namespace, own, _variables(tree), _unary_calls(tree))
        for site, slot in enumerate(slots(tree, namespace)):
            node = slot.node
            if not isinstance(node, ast.expr):
                continue
            before = _text(node, lines)
            for kind, build, why in _node_edits(slot, ctx):
                try:
                    new = ast.fix_missing_locations(build(copy.deepcopy(node)))
                    after = ast.unparse(new)
                except Exception:  # an edit that makes no valid expression is not an edit
                    continue
                if after != before and after != ast.unparse(node):
                    after = _in_context(after, new, slot, lines)
                    found.append(Edit(kind, t, site, getattr(node, "lineno", 0), before, after, why, slot.depth, build))
    rank = {k: i for i, k in enumerate(KIND_ORDER)}
    return sorted(
        found, key=lambda e: (not _removes(e), e.tree != 0, min(e.depth, 3), rank[e.kind], len(e.after) - len(e.before))
    )


def _removes(e: Edit) -> bool:
    """Whether an edit takes something away (a minus, a factor, a transpose, a term): few, and each
    undoes an addition, half of the slips there are; they are tried first, wherever they are."""
    return len(e.after) < len(e.before) and e.kind != "swap"


ATOMS = (ast.Name, ast.Constant, ast.Call, ast.Attribute, ast.Subscript, ast.List, ast.Tuple, ast.Dict, ast.Set)
OPEN = (ast.Return, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.keyword, ast.List, ast.Tuple)


def _in_context(after: str, new: ast.expr, slot: Slot, lines: list[str]) -> str:
    """``after`` as it reads in place of the node: in parentheses where an operator around it needs them
    (``X`` → ``(X / 2)`` in ``X.T``), unless the source already has them around the node."""
    parent = slot.parent
    opened = isinstance(parent, OPEN) or (isinstance(parent, ast.Call) and slot.field != "func")
    if isinstance(new, ATOMS) or opened or isinstance(parent, ast.Lambda):
        return after
    node = slot.node
    try:
        line, end = lines[node.lineno - 1], lines[node.end_lineno - 1]  # type: ignore[attr-defined]
        before = line.encode()[: node.col_offset].decode().rstrip()  # type: ignore[attr-defined]
        behind = end.encode()[node.end_col_offset :].decode().lstrip()  # type: ignore[attr-defined]
        if before.endswith("(") and behind.startswith(")"):
            return after
    except (AttributeError, IndexError, TypeError, UnicodeDecodeError):
        pass
    return f"({after})"


def _text(node: ast.AST, lines: list[str]) -> str:
    """The node's own source text when it is on one line (as the user wrote it), else its unparsed form."""
    line, end = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
    if line is None or line != end or not 0 < line <= len(lines):
        return ast.unparse(node)
    raw = lines[line - 1].encode()
    try:
        return raw[node.col_offset : node.end_col_offset].decode()  # type: ignore[attr-defined]
    except UnicodeDecodeError:
        return ast.unparse(node)


def _variables(tree: ast.stmt) -> tuple[str, ...]:
    names: list[str] = []
    if isinstance(tree, ast.FunctionDef):
        names += [a.arg for a in tree.args.args]
    elif isinstance(tree, ast.Assign) and isinstance(tree.value, ast.Lambda):
        names += [a.arg for a in tree.value.args.args]
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.append(node.id)
    return tuple(dict.fromkeys(names))


def _unary_calls(tree: ast.stmt) -> tuple[str, ...]:
    calls = [
        ast.unparse(n.func)
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and len(n.args) == 1 and not n.keywords and isinstance(n.func, ast.Attribute)
    ]
    return tuple(dict.fromkeys(c for c in calls if c.rsplit(".", 1)[-1] not in REDUCTIONS | {"transpose", "diag"}))


Build = Callable[[ast.expr], ast.expr]


def _expr(text: str) -> ast.expr:
    return ast.parse(text, mode="eval").body


def _wrap(template: str) -> Build:
    """An edit that puts the node in ``template`` (``{}`` stands for it)."""

    def build(node: ast.expr) -> ast.expr:
        return _expr(template.format(f"({ast.unparse(node)})"))

    return build


def _const(value: ast.expr) -> Build:
    return lambda node: value


def _node_edits(slot: Slot, ctx: _Context) -> Iterator[tuple[str, Build, str]]:
    node = slot.node
    if isinstance(node, ast.Call):
        yield from _call_edits(node, ctx)
    if isinstance(node, ast.Subscript):
        yield from _index_edits(node)
    if not slot.numeric or not isinstance(node, ast.expr) or _is_dimension(node):
        return  # a dimension is not negated, scaled or transposed: the factor edits name dimensions
    if isinstance(node, ast.Constant):
        yield from _constant_edits(node)
        return
    yield from _numeric_edits(node, slot, ctx)


def _numeric_edits(node: ast.expr, slot: Slot, ctx: _Context) -> Iterator[tuple[str, Build, str]]:
    text = ast.unparse(node)
    line = getattr(node, "lineno", 0)
    # factor: a dimension, 2 or 1/2 multiplied in or divided out
    for dim in ctx.dims:
        if dim.after_line < line <= dim.before_line and dim.text != text:
            yield "factor", _wrap("{} * " + dim.text), f"a factor {dim.text} missing"
            yield "factor", _wrap("{} / " + dim.text), f"a factor 1/{dim.text} missing"
    yield "factor", _wrap("{} * 2"), "a factor 2 missing"
    yield "factor", _wrap("{} / 2"), "a factor 1/2 missing"
    if isinstance(node, ast.Name | ast.Call):
        yield "factor", _wrap("{0} * (1 - {0})"), f"the factor (1 − {text}) is missing"
    if isinstance(node, ast.BinOp):
        yield from _binop_edits(node)
    # sign
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        yield "sign", lambda n: n.operand, "a sign: the minus is wrong"  # type: ignore[attr-defined]
    elif not (isinstance(slot.parent, ast.UnaryOp) and isinstance(slot.parent.op, ast.USub)):
        yield "sign", _wrap("-{}"), "a sign: a minus is missing"
    # transpose
    if isinstance(node, ast.Attribute) and node.attr in ("T", "mT"):
        yield "transpose", lambda n: n.value, "a transpose too many"  # type: ignore[attr-defined]
    elif not _is_shape(node):
        yield "transpose", _wrap("{}.T"), "a transpose missing"
    # swap a variable for another; a variable for a function of it
    if isinstance(node, ast.Name):
        for other in ctx.names:
            if other != node.id:
                yield "swap", _const(ast.Name(other, ast.Load())), f"`{other}` belongs where `{node.id}` is"
        for fn in ctx.unary:
            yield "function", _wrap(fn + "{}"), f"`{fn}({node.id})` belongs where `{node.id}` is"
    # a term of a sum dropped: a variable of the function added back (outer expressions only: they are many)
    if slot.depth <= 2 and isinstance(node, ast.Name | ast.Call | ast.Subscript | ast.UnaryOp):
        for other in ctx.names:
            if other == getattr(node, "id", None):
                continue
            if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
                yield "term", _minus(other), f"the term `{other}` is missing"
            elif not isinstance(node, ast.UnaryOp):
                yield "term", _wrap("{} - " + other), f"the term `−{other}` is missing"
                yield "term", _wrap("{} + " + other), f"the term `{other}` is missing"


def _minus(name: str) -> Build:
    """``-e`` → ``name - e``: the first term of a difference restored."""

    def build(n: ast.expr) -> ast.expr:
        assert isinstance(n, ast.UnaryOp)
        return ast.BinOp(ast.Name(name, ast.Load()), ast.Sub(), n.operand)

    return build


def _binop_edits(node: ast.BinOp) -> Iterator[tuple[str, Build, str]]:
    left, right, op = node.left, node.right, node.op

    def with_op(new_op: ast.operator) -> Build:
        return lambda n: ast.BinOp(n.left, new_op, n.right)  # type: ignore[attr-defined]

    def take(side: str, negate: bool = False) -> Build:
        def build(n: ast.expr) -> ast.expr:
            part = getattr(n, side)
            return ast.UnaryOp(ast.USub(), part) if negate else part

        return build

    swap: Build = lambda n: ast.BinOp(n.right, n.op, n.left)  # type: ignore[attr-defined]
    if isinstance(op, ast.Add):
        yield "sign", with_op(ast.Sub()), "a sign: + where − is meant"
        yield "term", take("right"), f"a term too many: `{ast.unparse(left)}`"
        yield "term", take("left"), f"a term too many: `{ast.unparse(right)}`"
    elif isinstance(op, ast.Sub):
        yield "sign", with_op(ast.Add()), "a sign: − where + is meant"
        yield "sign", swap, "a sign: the difference is the wrong way round"
        yield "term", take("right", negate=True), f"a term too many: `{ast.unparse(left)}`"
        yield "term", take("left"), f"a term too many: `{ast.unparse(right)}`"
        if isinstance(left, ast.Constant) and left.value == 1:
            restore: Build = lambda n: ast.BinOp(copy.deepcopy(n.right), ast.Mult(), n)  # type: ignore[attr-defined]
            yield "factor", restore, f"the factor `{ast.unparse(right)}` is missing"
    elif isinstance(op, ast.Mult):
        yield "factor", take("left"), f"a factor too many: `{ast.unparse(right)}`"
        yield "factor", take("right"), f"a factor too many: `{ast.unparse(left)}`"
        yield "factor", with_op(ast.Div()), f"`{ast.unparse(right)}` divides, not multiplies"
    elif isinstance(op, ast.Div):
        yield "factor", take("left"), f"a divisor too many: `{ast.unparse(right)}`"
        yield "factor", with_op(ast.Mult()), f"`{ast.unparse(right)}` multiplies, not divides"
    elif isinstance(op, ast.MatMult):
        yield "transpose", swap, "the product is in the wrong order"


def _constant_edits(node: ast.Constant) -> Iterator[tuple[str, Build, str]]:
    c = node.value
    if not isinstance(c, int | float) or isinstance(c, bool):
        return
    choices = [("sign", -c, "a sign"), ("factor", c * 2, "a factor 2"), ("factor", c / 2, "a factor 1/2")]
    if isinstance(c, int):
        choices += [("index", c + 1, "off by one"), ("index", c - 1, "off by one")]
    for kind, value, why in choices:
        if value != c:
            yield kind, _const(_number(value)), f"{why}: {c} should be {_fmt(value)}"


def _number(value: float) -> ast.expr:
    if value < 0:
        return ast.UnaryOp(ast.USub(), ast.Constant(-value))
    return ast.Constant(value)


def _fmt(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() else repr(value)


def _call_edits(node: ast.Call, ctx: _Context) -> Iterator[tuple[str, Build, str]]:
    func = ast.unparse(node.func)
    base = func.rsplit(".", 1)[-1]
    for other in CONFUSIONS.get(base, ()):
        new_func = func[: len(func) - len(base)] + other
        yield "function", _with_func(new_func), f"`{other}` belongs where `{base}` is"
    if base == "tanh":
        yield "function", _wrap("1 - {} ** 2"), "the derivative of tanh is 1 − tanh²"
    if len(node.args) == 1 and not node.keywords and base not in REDUCTIONS:
        yield "function", lambda n: n.args[0], f"`{ast.unparse(node.args[0])}` belongs where `{func}(…)` is"  # type: ignore[attr-defined]
    if base == "transpose" and len(node.args) == 1:
        yield "transpose", lambda n: n.args[0], "a transpose too many"  # type: ignore[attr-defined]
    if base in REDUCTIONS:
        yield from _axis_edits(node)
    if base == "einsum" and node.args and isinstance(node.args[0], ast.Constant):
        yield from _einsum_edits(node)
    if base in ("ones", "eye"):
        yield from _delta_edits(node, func[: len(func) - len(base)], base)


def _delta_edits(node: ast.Call, module: str, base: str) -> Iterator[tuple[str, Build, str]]:
    """``ones((a, b))`` ↔ ``eye(a, b)``: the Kronecker delta ``δ_{c,c′}`` written ``δ_{c,c}`` (1 for
    every pair), or the reverse (keywords such as ``dtype`` kept)."""
    args = node.args
    if base == "ones" and len(args) == 1 and isinstance(args[0], ast.Tuple) and len(args[0].elts) == 2:
        a, b = (ast.unparse(e) for e in args[0].elts)
        dims = a if a == b else f"{a}, {b}"
        yield "index", _call(f"{module}eye({dims})"), "δ_{c,c′} is meant where δ_{c,c} (= 1) is written"
    elif base == "eye" and 1 <= len(args) <= 2:
        a = ast.unparse(args[0])
        b = ast.unparse(args[1]) if len(args) == 2 else a
        yield "index", _call(f"{module}ones(({a}, {b}))"), "δ_{c,c} (= 1) is meant where δ_{c,c′} is written"


def _call(text: str) -> Build:
    """An edit that makes the node the call ``text``, with the node's keywords."""

    def build(n: ast.expr) -> ast.expr:
        new = _expr(text)
        assert isinstance(new, ast.Call) and isinstance(n, ast.Call)
        return ast.Call(new.func, new.args, n.keywords)

    return build


def _with_func(name: str) -> Build:
    def build(n: ast.expr) -> ast.expr:
        assert isinstance(n, ast.Call)
        return ast.Call(_expr(name), n.args, n.keywords)

    return build


def _axis_edits(node: ast.Call) -> Iterator[tuple[str, Build, str]]:
    current = next((k for k in node.keywords if k.arg == "axis"), None)
    now = ast.unparse(current.value) if current is not None else None
    for value in ("0", "1", "-1", "None"):
        if value == now or (current is None and value == "None"):
            continue

        def build(n: ast.expr, value: str = value) -> ast.expr:
            assert isinstance(n, ast.Call)
            keywords = [k for k in n.keywords if k.arg != "axis"]
            if value != "None":
                keywords.append(ast.keyword("axis", _expr(value)))
            return ast.Call(n.func, n.args, keywords)

        yield "index", build, f"the wrong axis: axis={value} is meant"


def _index_edits(node: ast.Subscript) -> Iterator[tuple[str, Build, str]]:
    index = node.slice
    if isinstance(index, ast.Constant) and isinstance(index.value, int) and not isinstance(index.value, bool):
        for value in sorted({0, 1, -1, index.value + 1, index.value - 1} - {index.value}):
            yield "index", _subscript(_number(value)), f"the wrong index: {value} is meant"
    if isinstance(index, ast.Tuple) and len(index.elts) == 2:
        a, b = index.elts
        flipped = ast.Tuple([b, a], ast.Load())
        yield "index", _subscript(flipped), "the indices are the wrong way round"


def _subscript(index: ast.expr) -> Build:
    def build(n: ast.expr) -> ast.expr:
        assert isinstance(n, ast.Subscript)
        return ast.Subscript(n.value, copy.deepcopy(index), ast.Load())

    return build


def _einsum_edits(node: ast.Call) -> Iterator[tuple[str, Build, str]]:
    spec = node.args[0]
    assert isinstance(spec, ast.Constant) and isinstance(spec.value, str)
    text = spec.value.replace(" ", "")
    if "->" not in text:
        return
    inputs, output = text.split("->")
    variants = []
    if len(output) == 2:
        variants.append((f"{inputs}->{output[::-1]}", "transpose", "the result is transposed"))
    parts = inputs.split(",")
    for i, p in enumerate(parts):
        if len(p) == 2:
            flipped = ",".join(q[::-1] if j == i else q for j, q in enumerate(parts))
            variants.append((f"{flipped}->{output}", "transpose", f"operand {i + 1} is transposed"))
    for new, kind, why in variants:

        def build(n: ast.expr, new: str = new) -> ast.expr:
            assert isinstance(n, ast.Call)
            return ast.Call(n.func, [ast.Constant(new), *n.args[1:]], n.keywords)

        yield kind, build, why
