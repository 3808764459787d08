"""The dialect's grammar: LaTeX math as a tree of sums, products and scripted atoms.

The grammar knows no meaning: ``x_j^{(i)}`` is an atom ``x`` with a subscript
and a superscript, ``\\mu_{ic}(w)`` is an atom followed by a parenthesised
factor, ``\\frac{\\partial J}{\\partial \\theta_j}`` a fraction. What they are
(an entry of a matrix, an application, a derivative) is decided by the
reader from the symbol table. The parse uses lark's Earley parser with
``ambiguity="explicit"``: a statement with two parses is refused, never
resolved silently.

Before parsing, :func:`normalize` removes what carries no meaning in the
dialect (``\\left``/``\\right``, spacing, ``\\mathbf``/``\\bm`` fonts,
a final full stop) and spells equivalent forms one way (``^T``, ``^\\top``,
``^{\\mathsf T}`` are all ``^\\top``; ``\\frac1m`` is ``\\frac{1}{m}``;
``:=`` is ``=``; ``\\operatorname{diag}`` is ``\\diag``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import tempfile
from typing import Any

import lark

from derivcheck import _cache
from derivcheck._latex._symbols import LatexError

GRAMMAR = r"""
?start: equation
equation: sum ("=" sum)*

?sum: term
    | sum "+" term          -> plus
    | sum "-" term          -> minus
?term: product
     | "-" term             -> neg
     | "+" term
product: item+
       | item* bigsum
?item: factor | DOT | ODOT
bigsum: SUM limits? product
limits: "_" "{" index_name "=" sum "}" "^" script_arg   -> bounded
      | "_" script_arg                                    -> over

?factor: atom script*
script: "_" script_arg      -> sub
      | "^" script_arg      -> sup
      | "'"                 -> prime
script_arg: "{" script_body "}" | single
?script_body: sum ("," sum)*  -> list
single: LETTER | DIGIT | CMD | TOP | "(" sum ")" -> paren

?atom: LETTER                         -> letter
     | NUMBER                         -> number
     | DIGIT                          -> number
     | CMD                            -> command
     | HAT "{" sum "}"                -> accent
     | HAT (LETTER | CMD)             -> accent
     | "(" sum ")"                    -> paren
     | "(" tuple ")"                  -> paren
     | "[" sum "]"                    -> paren
     | "{" sum "}"                    -> group
     | FRAC "{" sum "}" "{" sum "}"   -> frac
     | CASES_BEGIN case_row (CR case_row)* CASES_END -> cases
tuple: sum ("," sum)+             -> list
case_row: sum "&" condition
condition: index_name "=" index_name       -> cond_eq
         | index_name NEQ index_name       -> cond_ne
         | OTHERWISE                       -> cond_else
index_name: LETTER "'"*

SUM.3: "\\sum"
FRAC.3: "\\frac"
HAT.3: /\\(hat|tilde|bar)(?![a-zA-Z])/
TOP.3: "\\top"
NEQ.3: "\\neq"
OTHERWISE.3: "\\otherwise"
CASES_BEGIN.3: "\\begin{cases}"
CASES_END.3: "\\end{cases}"
CR.3: "\\cr"
DOT.3: /\\cdot(?![a-zA-Z])/
ODOT.3: /\\odot(?![a-zA-Z])/
CMD: /\\(?!(top|sum|frac|hat|tilde|bar|neq|otherwise|cr|begin|end|cdot|odot)(?![a-zA-Z]))[a-zA-Z]+/
LETTER: /[a-zA-Z]/
DIGIT: /[0-9]/
NUMBER.2: /[0-9]+\.[0-9]+|[0-9][0-9]+/
%ignore /\s+/
"""

_FONTS = ("mathbf", "bm", "boldsymbol", "mathbfit", "vec")
_DROP = re.compile(
    r"\\(left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg|Bigg|displaystyle|textstyle)(?![a-zA-Z])"
)
_SPACES = re.compile(r"\\[,;:! ]|\\quad(?![a-zA-Z])|\\qquad(?![a-zA-Z])|~")
_TRANSPOSE = re.compile(
    r"\^\s*(\{\s*(\\top|T|\\mathsf\{T\}|\\mathrm\{T\}|\\intercal|\\mathsf T|\\mathrm T)\s*\}"
    r"|\\top|T(?![a-zA-Z])|\\intercal)"
)
_INDEX_TRANSPOSE = re.compile(r"\^\s*\{\s*(\([^(){}]*\))\s*(\\top|T|\\intercal)\s*\}")
"""``x^{(i)\\top}``: the ``i``-th row, transposed — spelled ``x^{(i)}^\\top`` for the grammar."""
_FRAC_SHORT = re.compile(r"\\frac\s*([0-9a-zA-Z])\s*([0-9a-zA-Z])")
_TEXT = re.compile(r"\\text\{\s*(if|for|when)\s*\}|,\s*(?=&)|\\text\{\s*otherwise\s*\}|\\text\{\s*else\s*\}")


def _strip_font(text: str, font: str) -> str:
    """``\\font{body}`` → ``body`` and ``\\font x`` → ``x`` (braces balanced)."""
    pattern = re.compile(rf"\\{font}(?![a-zA-Z])\s*")
    while (m := pattern.search(text)) is not None:
        start, i = m.start(), m.end()
        if i < len(text) and text[i] == "{":
            depth, j = 0, i
            for j in range(i, len(text)):
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                if depth == 0:
                    break
            body = text[i + 1 : j].strip()
            single = re.fullmatch(r"[a-zA-Z]|\\[a-zA-Z]+", body) is not None
            text = text[:start] + (body if single else "{" + body + "}") + text[j + 1 :]
        else:
            text = text[:start] + text[i:]
    return text


def normalize(statement: str) -> str:
    """The statement with meaningless markup removed and equivalent forms spelled one way.

    >>> normalize(r"\\left( \\mathbf{x}^T \\bm y \\right).")
    '( x^\\\\top y )'
    """
    text = statement.strip()
    text = re.sub(r"[.,;]\s*$", "", text).strip()
    text = text.replace(":=", "=").replace("=:", "=")
    text = text.replace("\\\\", r" \cr ")
    text = _DROP.sub("", text)
    text = _SPACES.sub(" ", text)
    for font in _FONTS:
        text = _strip_font(text, font)
    text = re.sub(r"\\operatorname\{\s*([a-zA-Z]+)\s*\}", r"\\\1", text)
    text = re.sub(r"\\mathrm\{\s*(diag|softmax)\s*\}", r"\\\1", text)
    text = text.replace(r"\text{diag}", r"\diag")
    text = _INDEX_TRANSPOSE.sub(r"^{\1}^\\top", text)
    text = _TRANSPOSE.sub(r"^\\top", text)
    text = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", text)
    text = _TEXT.sub(lambda m: r" \otherwise " if "otherwise" in m.group() or "else" in m.group() else " ", text)
    text = text.replace(r"\ne ", r"\neq ").replace(r"\prime", "'")
    return text.strip()


@functools.lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    return lark.Lark(GRAMMAR, parser="earley", lexer="dynamic", ambiguity="explicit", propagate_positions=False)


def _ambiguous(tree: lark.Tree) -> bool:
    return any(t.data == "_ambig" for t in tree.iter_subtrees())


@functools.lru_cache(maxsize=512)
def parse(text: str) -> lark.Tree:
    """The parse tree of ``text`` (already :func:`normalize`-d); :class:`LatexError` if not in the dialect.

    A tree read before is taken from the persistent cache's folder when there is one
    (:func:`stored_parse`): the Earley parse costs ~50 ms a statement, and the catalog's
    statements and symbol tables, some 60 parses, were 3 of the 3.4 s every process that
    loads the catalog spent before its first check (each worker of ``derivcheck run`` too).
    """
    folder = _cache.store()
    path = None if folder is None else folder / f"latex-{_digest(text)}.json"
    if path is not None:
        stored = stored_parse(path)
        if stored is not None:
            return stored
    tree = _parse(text)
    if path is not None:
        _keep(path, tree)
    return tree


def _parse(text: str) -> lark.Tree:
    try:
        tree = _parser().parse(text)
    except lark.exceptions.UnexpectedInput as exc:
        context = exc.get_context(text, span=20).splitlines()[0].strip() if text else ""
        raise LatexError(f"cannot read {text!r}: not in the dialect at {context!r}") from None
    except lark.exceptions.LarkError as exc:
        raise LatexError(f"cannot read {text!r}: {str(exc).splitlines()[0]}") from None
    if _ambiguous(tree):
        raise LatexError(f"cannot read {text!r}: it has two readings; add braces or parentheses")
    return tree


STORE_FORMAT = "1"
"""Part of every stored tree's key, with the grammar and lark's version: a change to any of them reads afresh."""


def _digest(text: str) -> str:
    key = "\0".join((STORE_FORMAT, lark.__version__, GRAMMAR, text))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _encoded(node: Any) -> Any:
    """A tree as JSON: ``[data, children]`` for a subtree, ``{"type": value}`` for a token."""
    if isinstance(node, lark.Token):
        return {node.type: str(node)}
    return [str(node.data), [_encoded(c) for c in node.children]]


def _decoded(node: Any) -> Any:
    if isinstance(node, dict):
        ((kind, value),) = node.items()
        return lark.Token(kind, value)
    data, children = node
    return lark.Tree(data, [_decoded(c) for c in children])


def stored_parse(path: os.PathLike[str]) -> lark.Tree | None:
    """The tree stored at ``path``, or ``None`` when there is none or it cannot be read (then it is parsed)."""
    try:
        with open(path, encoding="utf-8") as f:
            return _decoded(json.load(f))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _keep(path: Any, tree: lark.Tree) -> None:
    """Store ``tree`` at ``path`` atomically (concurrent processes write the same content); best effort."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".latex-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(_encoded(tree), f, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
