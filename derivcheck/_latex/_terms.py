"""Typed terms: what a piece of a statement is, as ``jnp`` code and as re-rendered LaTeX.

A term's array has its *named indices* first (``i``, ``c'``: the index
notation of the statement) and then at most two *hidden* axes (the matrix
notation: a column or row vector, or a matrix). Products follow both
notations at once:

* named indices shared by two factors are multiplied entry by entry
  (``a_i b_i`` is the vector of products); they are summed only by an explicit
  ``\\sum`` or, at the end, when absent from the left-hand side (Einstein/Tullio);
* hidden axes multiply as matrices: ``A B``, ``A v``, ``u^\\top A``,
  ``u^\\top v`` (a number), ``u v^\\top`` (an outer product); any other pair
  (a column times a column) is a shape error, never broadcast.

A product is kept *lazy* — a list of factors with einsum letters — until a
nonlinear operation or a sum needs its value, so that a whole product and its
summations become one ``jnp.einsum``. Sizes of indices appear in code as
``⟨i⟩`` until the reading knows them.
"""

from __future__ import annotations

import dataclasses
import string

from derivcheck._latex._symbols import LatexError

ATOM, PRODUCT, SUM = 3, 2, 1


@dataclasses.dataclass(frozen=True)
class Term:
    """A value of the statement.

    ``code`` evaluates to an array with axes ``idx + hid``; ``orient`` is
    ``"col"`` or ``"row"`` for one hidden axis. ``nl``: the named indices that
    passed through a nonlinear operation; ``lin``: those that also stand in a
    product outside any (Einstein: only those may be summed implicitly).
    A lazy product has ``factors`` (code, einsum letters), ``out`` (the letters
    of its axes) and scalar ``coefs``; its ``code`` is empty until materialized.
    """

    code: str
    idx: tuple[str, ...] = ()
    hid: tuple[str | int, ...] = ()
    orient: str = ""
    tex: str = ""
    prec: int = ATOM
    nl: frozenset[str] = frozenset()
    lin: frozenset[str] = frozenset()
    factors: tuple[tuple[str, str], ...] | None = None
    out: str = ""
    coefs: tuple[str, ...] = ()

    @property
    def lazy(self) -> bool:
        return self.factors is not None

    def shape_words(self) -> str:
        kind = {0: "a number", 1: "a column vector", 2: "a matrix"}[len(self.hid)]
        if self.orient == "row":
            kind = "a row vector"
        dims = " × ".join(map(str, self.hid))
        return f"{kind}{f' ({dims})' if dims else ''}" + (f" indexed by {', '.join(self.idx)}" if self.idx else "")


class Letters:
    """Einsum letters: an index's own letter when free, fresh capitals for hidden axes."""

    def __init__(self) -> None:
        self.of_index: dict[str, str] = {}
        self._next = 0
        self._since = 0

    def index(self, name: str) -> str:
        if name not in self.of_index:
            used = set(self.of_index.values())
            own = name[0] if name[0] in string.ascii_lowercase and "'" not in name else ""
            pool = [own] if own and own not in used else []
            pool += [c for c in string.ascii_lowercase if c not in used]
            if not pool:
                raise LatexError("the statement has more than 26 indices")
            self.of_index[name] = pool[0]
        return self.of_index[name]

    def begin(self) -> None:
        """Start one einsum: the hidden letters handed out from here on must be distinct."""
        self._since = 0

    def fresh(self) -> str:
        """A capital letter for a hidden axis (cycling: every einsum re-letters its factors)."""
        self._since += 1
        if self._since > len(string.ascii_uppercase):
            raise LatexError("one product of the statement has more than 26 matrix axes to read")
        letter = string.ascii_uppercase[self._next % len(string.ascii_uppercase)]
        self._next += 1
        return letter


def paren(code: str, prec: int, need: int) -> str:
    return code if prec >= need else f"({code})"


def grouped(t: Term, tex: str) -> Term:
    """``t`` shown as ``tex`` (already bracketed) and used as an atom: its code parenthesised if needed."""
    if t.lazy:
        return dataclasses.replace(t, tex=tex, prec=ATOM)
    return dataclasses.replace(t, code=paren(t.code, t.prec, ATOM), tex=tex, prec=ATOM)


def constant(code: str, tex: str) -> Term:
    return Term(code=code, tex=tex)


def leaf(code: str, letters: str, out: str, idx, hid, orient, tex) -> Term:
    """An array whose axes carry ``letters`` (repeats take a diagonal), read as axes ``out``."""
    idx = tuple(idx)
    return Term(
        code="",
        idx=idx,
        hid=tuple(hid),
        orient=orient,
        tex=tex,
        factors=((code, letters),),
        out=out,
        lin=frozenset(idx),
    )


def _as_factors(t: Term, letters: Letters) -> tuple[list[tuple[str, str]], str, list[str]]:
    """``t`` as einsum factors with fresh hidden letters (so a term may be used twice)."""
    if not t.lazy:
        if not t.idx and not t.hid:
            return [], "", [paren(t.code, t.prec, PRODUCT)]
        out = "".join(letters.index(i) for i in t.idx) + "".join(letters.fresh() for _ in t.hid)
        return [(paren(t.code, t.prec, PRODUCT), out)], out, []
    rename: dict[str, str] = {}
    for _, ls in t.factors or ():
        for ch in ls:
            if ch.isupper() and ch not in rename:
                rename[ch] = letters.fresh()

    def sub(ls: str) -> str:
        return "".join(rename.get(ch, ch) for ch in ls)

    return [(c, sub(ls)) for c, ls in t.factors or ()], sub(t.out), list(t.coefs)


def _apart(fa: list, oa: str, fb: list, ob: str, letters: Letters) -> tuple[list, list]:
    """Rename the summed (bound) letters of each side that the other side also uses."""

    def used(fs: list) -> set[str]:
        return {ch for _, ls in fs for ch in ls}

    def bound(fs: list, out: str) -> set[str]:
        return used(fs) - set(out)

    def rename(fs: list, clash: set[str]) -> list:
        new = {ch: letters.fresh() for ch in sorted(clash)}
        return [(c, _relabel(ls, new)) for c, ls in fs]

    fb = rename(fb, bound(fb, ob) & used(fa))
    fa = rename(fa, bound(fa, oa) & used(fb))
    return fa, fb


def _relabel(letters: str, table: dict[str, str]) -> str:
    """``letters`` with each one renamed as ``table`` says (the others kept)."""
    return "".join(table.get(ch, ch) for ch in letters)


def _matrix_rule(a: Term, b: Term, ha: str, hb: str, what: str):
    """How hidden axes multiply: (renames of ``b``'s letters, result letters, result dims, orientation)."""
    ka = {0: "s", 1: a.orient or "col", 2: "mat"}[len(a.hid)]
    kb = {0: "s", 1: b.orient or "col", 2: "mat"}[len(b.hid)]
    if ka == "s":
        return {}, hb, b.hid, b.orient
    if kb == "s":
        return {}, ha, a.hid, a.orient
    contract = {("mat", "mat"): "", ("mat", "col"): "col", ("row", "mat"): "row", ("row", "col"): ""}
    if (ka, kb) in contract:
        da, db = a.hid[-1], b.hid[0]
        if da != db:
            raise LatexError(f"shape mismatch in {what}: {a.shape_words()} times {b.shape_words()} ({da} ≠ {db})")
        return {hb[0]: ha[-1]}, ha[:-1] + hb[1:], a.hid[:-1] + b.hid[1:], contract[(ka, kb)]
    if (ka, kb) == ("col", "row"):
        return {}, ha + hb, a.hid + b.hid, ""
    raise LatexError(
        f"shape mismatch in {what}: {a.shape_words()} times {b.shape_words()}; "
        "transpose one (^\\top), use \\odot, or index them"
    )


def multiply(a: Term, b: Term, letters: Letters, what: str) -> Term:
    """``a b``: named indices entry by entry, hidden axes as matrices (see the module docstring)."""
    letters.begin()
    fa, oa, ca = _as_factors(a, letters)
    fb, ob, cb = _as_factors(b, letters)
    fa, fb = _apart(fa, oa, fb, ob, letters)
    ha, hb = oa[len(a.idx) :], ob[len(b.idx) :]
    rename, hid_letters, hid, orient = _matrix_rule(a, b, ha, hb, what)
    fb = [(c, _relabel(ls, rename)) for c, ls in fb]
    idx = a.idx + tuple(i for i in b.idx if i not in a.idx)
    out = "".join(letters.index(i) for i in idx) + hid_letters
    tex = f"{paren(a.tex, a.prec, PRODUCT)} \\, {paren(b.tex, b.prec, PRODUCT)}"
    return Term(
        code="",
        idx=idx,
        hid=tuple(hid),
        orient=orient,
        tex=tex,
        prec=PRODUCT,
        nl=a.nl | b.nl,
        lin=a.lin | b.lin,
        factors=tuple(fa + fb),
        out=out,
        coefs=tuple(ca + cb),
    )


def hadamard(a: Term, b: Term, letters: Letters) -> Term:
    """``a \\odot b``: entry by entry, hidden shapes equal."""
    if a.hid != b.hid or (len(a.hid) == 1 and (a.orient or "col") != (b.orient or "col")):
        raise LatexError(f"shape mismatch in \\odot: {a.shape_words()} and {b.shape_words()}")
    letters.begin()
    fa, oa, ca = _as_factors(a, letters)
    fb, ob, cb = _as_factors(b, letters)
    fa, fb = _apart(fa, oa, fb, ob, letters)
    rename = dict(zip(ob[len(b.idx) :], oa[len(a.idx) :], strict=True))
    fb = [(c, _relabel(ls, rename)) for c, ls in fb]
    idx = a.idx + tuple(i for i in b.idx if i not in a.idx)
    out = "".join(letters.index(i) for i in idx) + oa[len(a.idx) :]
    tex = f"{paren(a.tex, a.prec, PRODUCT)} \\odot {paren(b.tex, b.prec, PRODUCT)}"
    return dataclasses.replace(
        a,
        idx=idx,
        tex=tex,
        prec=PRODUCT,
        nl=a.nl | b.nl,
        lin=a.lin | b.lin,
        factors=tuple(fa + fb),
        out=out,
        coefs=tuple(ca + cb),
    )


def scale(t: Term, coef: str, tex_prefix: str) -> Term:
    """``coef · t`` kept lazy (``-1`` for a negation)."""
    if not t.lazy:
        code = f"-{paren(t.code, t.prec, PRODUCT)}" if coef == "-1" else f"{coef} * {paren(t.code, t.prec, PRODUCT)}"
        tex = f"{tex_prefix}{paren(t.tex, t.prec, PRODUCT)}"
        return Term(code=code, idx=t.idx, hid=t.hid, orient=t.orient, tex=tex, prec=PRODUCT, nl=t.nl, lin=t.lin)
    return dataclasses.replace(
        t, coefs=(coef, *t.coefs), tex=f"{tex_prefix}{paren(t.tex, t.prec, PRODUCT)}", prec=PRODUCT
    )


def summed(t: Term, names: list[str], letters: Letters) -> Term:
    """``t`` with the named indices ``names`` summed (one einsum with the product)."""
    if not names:
        return t
    letters.begin()
    fs, out, cs = _as_factors(t, letters)
    if not fs:
        raise LatexError(f"summing over {', '.join(names)}: the summand does not depend on it")
    drop = {letters.index(n) for n in names}
    idx = tuple(i for i in t.idx if i not in names)
    return dataclasses.replace(
        t,
        code="",
        idx=idx,
        lin=t.lin - set(names),
        factors=tuple(fs),
        out="".join(ch for ch in out if ch not in drop),
        coefs=tuple(cs),
    )


def materialize(t: Term) -> Term:
    """``t`` with its code written out: one ``jnp.einsum`` for a lazy product."""
    if not t.lazy:
        return t
    fs = list(t.factors or ())
    if len(fs) == 1 and fs[0][1] == t.out:
        body, prec = fs[0][0], ATOM
    elif fs:
        spec = ",".join(ls for _, ls in fs) + "->" + t.out
        body, prec = f"jnp.einsum('{spec}', {', '.join(c for c, _ in fs)})", ATOM
    else:
        body, prec = "", ATOM
    coefs = list(t.coefs)
    sign = ""
    while "-1" in coefs:
        coefs.remove("-1")
        sign = "" if sign else "-"
    parts = [*coefs, body] if body else coefs or ["1.0"]
    code = " * ".join(paren(p, PRODUCT, PRODUCT) if i < len(parts) - 1 else p for i, p in enumerate(parts))
    if len(parts) > 1:
        prec = PRODUCT
    if sign:
        code, prec = f"-{paren(code, prec, PRODUCT)}", PRODUCT
    return Term(code=code, idx=t.idx, hid=t.hid, orient=t.orient, tex=t.tex, prec=prec, nl=t.nl, lin=t.lin)


def align_code(t: Term, idx: tuple[str, ...], n_hid: int, letters: Letters) -> tuple[str, int]:
    """Code (and its precedence) for ``t`` laid out as ``idx`` (a superset of its indices) and ``n_hid`` hidden axes."""
    t = materialize(t)
    order = tuple(i for i in idx if i in t.idx)
    code, prec = t.code, t.prec
    if order != t.idx:
        hidden = string.ascii_uppercase[: len(t.hid)]
        src = "".join(letters.index(i) for i in t.idx) + hidden
        dst = "".join(letters.index(i) for i in order) + hidden
        code, prec = f"jnp.einsum('{src}->{dst}', {code})", ATOM
    if order == idx and len(t.hid) == n_hid:
        return code, prec
    if not t.idx and not t.hid:
        return code, prec  # a number broadcasts as it is
    slots = [":" if i in t.idx else "None" for i in idx] + [":"] * len(t.hid) + ["None"] * (n_hid - len(t.hid))
    return f"{paren(code, prec, ATOM)}[{', '.join(slots)}]", ATOM


def add(a: Term, b: Term, sign: str, letters: Letters) -> Term:
    """``a ± b``: named indices broadcast, hidden shapes equal (a number broadcasts)."""
    if a.hid and b.hid and (a.hid != b.hid or (len(a.hid) == 1 and (a.orient or "col") != (b.orient or "col"))):
        raise LatexError(f"shape mismatch in {sign}: {a.shape_words()} and {b.shape_words()}")
    if len(a.hid) + len(b.hid) == 2 and not (a.hid and b.hid):
        raise LatexError(
            f"a number {sign} a matrix is ambiguous ({a.tex} {sign} {b.tex}): times the identity, or entrywise? "
            "write the identity with its size (\\lambda I_d) or declare the matrix you mean in symbols="
        )
    idx = a.idx + tuple(i for i in b.idx if i not in a.idx)
    hid, orient = (a.hid, a.orient) if a.hid else (b.hid, b.orient)
    ca, pa = align_code(a, idx, len(hid), letters)
    cb, pb = align_code(b, idx, len(hid), letters)
    ca, cb = paren(ca, pa, SUM), paren(cb, pb, PRODUCT if sign == "-" else SUM)
    tex = f"{a.tex} {sign} {paren(b.tex, b.prec, PRODUCT if sign == '-' else SUM)}"
    return Term(
        code=f"{ca} {sign} {cb}", idx=idx, hid=hid, orient=orient, tex=tex, prec=SUM, nl=a.nl | b.nl, lin=a.lin | b.lin
    )


def apply(fn_code: str, t: Term, tex_name: str) -> Term:
    """An elementwise function of ``t``: its named indices become nonlinear (never summed implicitly)."""
    m = materialize(t)
    return Term(
        code=f"{fn_code}({m.code})",
        idx=m.idx,
        hid=m.hid,
        orient=m.orient,
        tex=f"{tex_name}\\left({t.tex}\\right)",
        nl=m.nl | set(m.idx),
    )
