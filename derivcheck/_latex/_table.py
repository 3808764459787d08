"""The symbol table, read: each key of ``symbols=`` parsed into the form it declares.

A key is LaTeX, parsed with the statement's grammar and spelled canonically
(``\\hat y``, ``\\hat{y}`` and ``\\hat{\\mathbf{y}}`` are one key). Its form
says what it declares:

* ``x``, ``\\theta``, ``\\hat{y}`` — a plain symbol;
* ``z^{(2)}``, ``E_n``, ``h_\\theta`` — a decorated name (the scripts are part of it);
* ``\\mu_i``, ``H_{c,c'}`` with a LaTeX value — a definition indexed by ``i`` / ``c, c'``;
* ``h_\\theta(x)`` with a LaTeX value — a function of ``x``;
* ``\\frac{\\partial L}{\\partial y}`` with a :func:`tensor` — a given derivative.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable
from typing import Any

import lark

from derivcheck._latex._grammar import normalize, parse
from derivcheck._latex._symbols import Index, LatexError, Tensor


def canon(node: Any) -> str:
    """The canonical LaTeX spelling of a parse subtree (keys and uses compare by it)."""
    if isinstance(node, lark.Token):
        return str(node)
    data, ch = node.data, node.children
    if data in ("letter", "command", "number", "single", "index_name"):
        return "".join(canon(c) for c in ch) if data != "index_name" else canon(ch[0]) + "'" * (len(ch) - 1)
    if data == "accent":
        return f"{canon(ch[0])}{{{canon(ch[1])}}}"
    if data == "factor":
        return "".join(canon(c) for c in ch)
    if data in ("sub", "sup"):
        mark = "_" if data == "sub" else "^"
        return f"{mark}{{{canon(ch[0])}}}"
    if data == "prime":
        return "'"
    if data == "script_arg":
        return canon(ch[0])
    if data == "list":
        return ",".join(canon(c) for c in ch)
    if data == "top":
        return "\\top"
    if data == "paren":
        return f"({canon(ch[0])})"
    if data == "group":
        return canon(ch[0])
    if data == "product":
        return " ".join(canon(c) for c in ch)
    if data == "neg":
        return f"-{canon(ch[0])}"
    if data in ("plus", "minus"):
        return f"{canon(ch[0])} {'+' if data == 'plus' else '-'} {canon(ch[1])}"
    if data == "frac":
        return f"\\frac{{{canon(ch[1])}}}{{{canon(ch[2])}}}"
    return f"<{data}>"


def split_factor(node: Any) -> tuple[Any, list[Any]]:
    """``(atom, scripts)`` of a factor; primes stay with the atom's name."""
    if isinstance(node, lark.Tree) and node.data == "factor":
        return node.children[0], list(node.children[1:])
    return node, []


def index_names(script: Any) -> list[str] | None:
    """The index names in a subscript (``{ic}``, ``{c,c'}``, ``j``), or ``None`` if it is not a list of indices."""
    arg = script.children[0]
    body = arg.children[0]
    items = body.children if isinstance(body, lark.Tree) and body.data == "list" else [body]
    names: list[str] = []
    for item in items:
        factors = item.children if isinstance(item, lark.Tree) and item.data == "product" else [item]
        for f in factors:
            atom, scripts = split_factor(f)
            if isinstance(atom, lark.Token) and re.fullmatch(r"[a-zA-Z]", str(atom)):
                atom = lark.Tree("letter", [atom])
            if not (isinstance(atom, lark.Tree) and atom.data in ("letter", "single")) or any(
                s.data != "prime" for s in scripts
            ):
                return None
            letter = canon(atom)
            if not re.fullmatch(r"[a-zA-Z]", letter):
                return None
            names.append(letter + "'" * len(scripts))
    return names


@dataclasses.dataclass(frozen=True)
class Entry:
    """One declaration: ``kind`` is arg, computed, elementwise, function, indexed, index or derivative."""

    kind: str
    key: str
    value: Any = None
    dims: tuple[Any, ...] = ()
    axes: tuple[int, ...] = ()
    params: tuple[str, ...] = ()
    body: Any = None
    pyname: str = ""


class Table:
    """``symbols=`` read against the arguments and their symbolic shapes."""

    def __init__(self, symbols: dict[str, Any], arg_dims: dict[str, tuple[Any, ...]]) -> None:
        if not isinstance(symbols, dict):
            raise LatexError(f"symbols= must be a dict from LaTeX symbols to what they are, got {symbols!r}")
        self.arg_dims = arg_dims
        self.entries: dict[str, Entry] = {}
        self.indexed: dict[str, list[Entry]] = {}
        self.derivatives: dict[tuple[str, str], Entry] = {}
        self.pynames: set[str] = set(arg_dims)
        for key, value in symbols.items():
            self._declare(key, value)

    def _pyname(self, key: str) -> str:
        base = re.sub(r"[^0-9a-zA-Z_]", "_", key.replace("\\", "")).strip("_") or "f"
        name = base if base.isidentifier() else f"f_{base}"
        while name in self.pynames or name in ("jnp", "jax"):
            name += "_"
        self.pynames.add(name)
        return name

    def _tree(self, key: str) -> Any:
        if not isinstance(key, str):
            raise LatexError(f"symbols=: keys are LaTeX strings, got {key!r}")
        eq = parse(normalize(key))
        if len(eq.children) != 1 or eq.children[0].data != "product":
            raise LatexError(f"symbols=: the key {key!r} is not a symbol")
        return eq.children[0].children

    def _declare(self, key: str, value: Any) -> None:
        factors = self._tree(key)
        if len(factors) == 1 and getattr(factors[0], "data", "") == "frac":
            self._derivative(key, factors[0], value)
        elif len(factors) == 2 and getattr(split_factor(factors[1])[0], "data", "") == "paren":
            self._function(key, factors[0], factors[1], value)
        elif len(factors) == 1:
            self._symbol(key, factors[0], value)
        else:
            raise LatexError(f"symbols=: the key {key!r} is not a symbol, a function f(x) or a derivative")

    def _derivative(self, key: str, frac: Any, value: Any) -> None:
        num, den = frac.children[1].children, frac.children[2].children
        if not (len(num) == 2 and len(den) == 2 and canon(num[0]) == canon(den[0]) == "\\partial"):
            raise LatexError(
                f"symbols=: the key {key!r}: write a given derivative as \\frac{{\\partial L}}{{\\partial y}}"
            )
        if not isinstance(value, Tensor) or not isinstance(value.source, str) or value.dims is None:
            raise LatexError(f"symbols[{key!r}]: a given derivative is dc.tensor('argument', *dims)")
        entry = Entry("arg", key, value.source, value.dims, value.axes or tuple(range(len(value.dims))))
        self.derivatives[(canon(num[1]), canon(split_factor(den[1])[0]))] = entry

    def _function(self, key: str, head: Any, args: Any, value: Any) -> None:
        if not isinstance(value, str):
            raise LatexError(f"symbols[{key!r}]: a function f(x) is defined by its LaTeX body, got {value!r}")
        inner = split_factor(args)[0].children[0]
        params = inner.children if inner.data == "list" else [inner]
        names = tuple(canon(p) for p in params)
        self.entries[canon(head)] = Entry("function", key, value, params=names, body=_body(key, value))

    def _symbol(self, key: str, node: Any, value: Any) -> None:
        atom, scripts = split_factor(node)
        subs = [s for s in scripts if s.data == "sub"]
        idx = index_names(subs[0]) if len(subs) == 1 and len(scripts) == 1 else None
        if idx is not None and isinstance(value, str) and value not in self.arg_dims:
            self.indexed.setdefault(canon(atom), []).append(
                Entry("indexed", key, value, params=tuple(idx), body=_body(key, value))
            )
            return
        self.entries[canon(node)] = self._value(key, canon(node), value)

    def _value(self, key: str, name: str, value: Any) -> Entry:
        if isinstance(value, Index):
            return Entry("index", key, value.dim)
        if isinstance(value, str) and value in self.arg_dims:
            value = Tensor(value)
        if isinstance(value, Tensor):
            return self._tensor(key, value)
        if isinstance(value, str):
            return Entry("indexed", key, value, body=_body(key, value))
        if callable(value):
            return Entry("elementwise", key, value, pyname=self._pyname(name))
        raise LatexError(
            f"symbols[{key!r}] = {value!r}: give an argument name, dc.tensor(...), dc.index(...), a function or LaTeX"
        )

    def _tensor(self, key: str, t: Tensor) -> Entry:
        if isinstance(t.source, str):
            if t.source not in self.arg_dims and t.dims is None:
                raise LatexError(
                    f"symbols[{key!r}]: {t.source!r} is not an argument; give its dims: dc.tensor({t.source!r}, ...)"
                )
            dims = t.dims if t.dims is not None else self.arg_dims[t.source]
            if t.source in self.arg_dims and tuple(dims) != tuple(self.arg_dims[t.source]):
                raise LatexError(f"symbols[{key!r}]: {t.source} is {self.arg_dims[t.source]} in inputs=, not {dims}")
            return Entry("arg", key, t.source, tuple(dims), _axes(key, t, dims))
        dims = t.dims if t.dims is not None else ()  # a function's value without dims is a number
        params = _params(key, t.source, self.arg_dims)
        return Entry("computed", key, t.source, dims, _axes(key, t, dims), params, pyname=self._pyname(key))


def _axes(key: str, t: Tensor, dims: tuple[Any, ...]) -> tuple[int, ...]:
    if t.axes is None:
        return tuple(range(len(dims)))
    if len(t.axes) != len(dims):
        raise LatexError(f"symbols[{key!r}]: axes={t.axes} for an array of {len(dims)} axes")
    return t.axes


def _params(key: str, fn: Callable[..., Any], arg_dims: dict[str, Any]) -> tuple[str, ...]:
    try:
        names = tuple(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        raise LatexError(f"symbols[{key!r}]: cannot read the parameters of {fn!r}") from None
    unknown = [n for n in names if n not in arg_dims]
    if unknown:
        raise LatexError(f"symbols[{key!r}]: its function takes {unknown}, which are not arguments {sorted(arg_dims)}")
    return names


def _body(key: str, text: str) -> Any:
    eq = parse(normalize(text))
    if len(eq.children) != 1:
        raise LatexError(f"symbols[{key!r}]: a definition is one expression, without '='")
    return eq.children[0]
