"""Derivations read from their LaTeX statement: a declared dialect, read into a JAX function.

* :mod:`._grammar` — the dialect's tokens and lark grammar (the parse, no meaning).
* :mod:`._symbols` — the symbol table: what each letter of a statement is.
* :mod:`._terms` — typed terms (named indices, hidden matrix axes) and their ``jnp`` code.
* :mod:`._reader` — the parse tree read into terms, by the symbol table, never guessing.
* :mod:`._lhs` — what the left-hand side claims, and the layout of the result.
* :mod:`._api` — :func:`latex`, which registers the derivation, and its echoed reading.
"""
