"""Scripts on a value: ``^\\top``, ``^2``, ``^{-1}``, ``^{(i)}`` and subscripts on hidden axes.

``^\\top`` swaps a matrix's hidden axes and turns a column into a row; an
integer power (``^2``, ``^{-2}``) or an inverse of a number is entrywise over its named indices; ``^{-1}`` of a
matrix is its inverse; a power of a vector or matrix is refused (entrywise or
matrix power? the dialect does not guess). ``(…)_i`` names hidden axes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import lark

from derivcheck._latex import _terms as T
from derivcheck._latex._symbols import LatexError
from derivcheck._latex._table import canon, index_names, split_factor


def script_body(script: Any) -> Any:
    """The content of a script: ``{…}`` unwrapped down to its single item."""
    body = script.children[0].children[0]
    while isinstance(body, lark.Tree) and body.data in ("list", "product", "single") and len(body.children) == 1:
        body = body.children[0]
    return body


def sample_index(script: Any) -> str | None:
    """``^{(i)}``: the index ``i``; anything else ``None``."""
    body = script_body(script)
    if isinstance(body, lark.Tree) and body.data == "paren":
        inner = body.children[0]
        inner = inner.children[0] if inner.data == "product" and len(inner.children) == 1 else inner
        if inner.data != "product":
            atom, scr = split_factor(inner)
            if getattr(atom, "data", "") == "letter" and all(s.data == "prime" for s in scr):
                return canon(atom) + "'" * len(scr)
    return None


def with_scripts(term: T.Term, scripts: list[Any], ctx: Any, where: str) -> T.Term:
    """``^\\top``, ``^2``, ``^{-1}`` and subscripts (indices on hidden axes) applied in order."""
    for s in scripts:
        term = _script(term, s, ctx, where)
    return term


def _script(term: T.Term, s: Any, ctx: Any, where: str) -> T.Term:
    if s.data == "prime":
        raise LatexError(f"{where}: a prime on a value (a derivative?) is not in the dialect; name it in symbols=")
    if s.data == "sub":
        names = index_names(s)
        if names is None:
            raise LatexError(f"{where}: the subscript {canon(s)} is not a list of indices")
        return _index_hidden(term, [ctx.name(n) for n in names], ctx, where)
    body = script_body(s)
    text = canon(body)
    if text == "\\top":
        return _transpose(term, where)
    if text.isdigit() or (text[:1] == "-" and text[1:].isdigit() and text != "-1"):
        return power(term, text, where)
    if text == "-1":
        m = T.materialize(term)
        if len(m.hid) == 2:
            return dataclasses.replace(
                m,
                code=f"jnp.linalg.inv({m.code})",
                tex=f"{T.paren(m.tex, m.prec, T.ATOM)}^{{-1}}",
                prec=T.ATOM,
                nl=m.nl | set(m.idx),
                lin=frozenset(),
            )
        if not m.hid:
            return dataclasses.replace(
                m,
                code=f"1 / {T.paren(m.code, m.prec, T.ATOM)}",
                tex=f"{T.paren(m.tex, m.prec, T.ATOM)}^{{-1}}",
                prec=T.PRODUCT,
                nl=m.nl | set(m.idx),
                lin=frozenset(),
            )
        raise LatexError(f"{where}: the inverse of {m.shape_words()}")
    raise LatexError(
        f"{where}: the superscript ^{{{text}}} is not \\top, a power, ^{{-1}} or ^{{(i)}}; declare the symbol with it"
    )


def power(term: T.Term, exponent: str, where: str, entrywise: bool = False) -> T.Term:
    """``term^k`` for an integer ``k`` (``"2"``, ``"-2"``; ``^{-1}`` is :func:`_script`'s inverse), entrywise
    over the named indices. Of a vector or matrix it is refused (entrywise or a matrix power?) unless
    ``entrywise``: the power of an elementwise function's value, ``\\tanh^2(z)``."""
    if term.hid and not entrywise:
        raise LatexError(f"{where}: ^{{{exponent}}} of {term.shape_words()} is ambiguous (entrywise? a matrix power?)")
    m = T.materialize(term)
    base = T.paren(m.code, m.prec, T.ATOM)
    code = f"{base} ** {exponent}" if exponent.isdigit() else f"1 / {base} ** {exponent[1:]}"
    return dataclasses.replace(
        m,
        code=code,
        tex=f"{T.paren(m.tex, m.prec, T.ATOM)}^{{{exponent}}}",
        prec=T.PRODUCT,
        nl=m.nl | set(m.idx),
        lin=frozenset(),
    )


def _transpose(term: T.Term, where: str) -> T.Term:
    tex = f"{T.paren(term.tex, term.prec, T.ATOM)}^\\top"
    if len(term.hid) == 1:
        return dataclasses.replace(term, orient="row" if term.orient != "row" else "col", tex=tex, prec=T.ATOM)
    if len(term.hid) == 2:
        if term.lazy:
            k = len(term.idx)
            out = term.out[:k] + term.out[k + 1] + term.out[k]
            return dataclasses.replace(term, out=out, hid=term.hid[::-1], tex=tex, prec=T.ATOM)
        m = T.materialize(term)
        return dataclasses.replace(m, code=f"jnp.swapaxes({m.code}, -1, -2)", hid=m.hid[::-1], tex=tex, prec=T.ATOM)
    raise LatexError(f"{where}: the transpose of {term.shape_words()}")


def _index_hidden(term: T.Term, names: list[str], ctx: Any, where: str) -> T.Term:
    """``(…)_i``: indices on the hidden axes of a value, in order."""
    if len(names) > len(term.hid):
        raise LatexError(f"{where}: {len(names)} indices on {term.shape_words()}")
    m = T.materialize(term)
    for n, d in zip(names, m.hid, strict=False):
        ctx.unify(n, d, where)
    own = "".join(ctx.letters.index(i) for i in m.idx)
    ctx.letters.begin()
    hidden = [ctx.letters.fresh() for _ in m.hid]
    labels = [ctx.letters.index(n) for n in names] + hidden[len(names) :]
    idx = m.idx + tuple(n for n in dict.fromkeys(names) if n not in m.idx)
    out = "".join(ctx.letters.index(i) for i in idx) + "".join(hidden[len(names) :])
    tex = f"{T.paren(m.tex, m.prec, T.ATOM)}_{{{','.join(names)}}}"
    rest = m.hid[len(names) :]
    return T.Term(
        lin=m.lin | set(names),
        code="",
        idx=idx,
        hid=rest,
        orient="col" if len(rest) == 1 else "",
        tex=tex,
        nl=m.nl,
        factors=((m.code, own + "".join(labels)),),
        out=out,
    )
