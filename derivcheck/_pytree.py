"""Pytrees at the claim boundary: arguments, ``wrt`` selections and outputs that are not one array.

A JAX user's derivatives live on pytrees: a dict of parameters, a tuple
``(W, b)``, a layer-norm backward returning ``(dx, dγ, dβ)``, a function with
outputs ``(sign, logabsdet)``. The engine, the comparison, shrinking and the
reports see arrays only; this module turns the one into the other at the
boundary, in two steps.

*Arguments* (:func:`flatten_arguments`, at declaration). An argument whose
spec is a dict, tuple or list of specs (``params={"W": dc.normal("m", "n"),
"b": dc.normal("m")}``) is drawn as its leaves, each an argument of its own
named by its path (``params['W']``, ``params['b']``, as
``jax.tree_util.keystr`` writes it); the derived function and ``of`` are
called with the pytree rebuilt (:class:`Rebuilt`). ``wrt="params"`` becomes
``wrt=("params['W']", "params['b']")``, and the derived side returns (or, for
a JVP, is given) the structure of ``params``, checked leaf for leaf.

*Selections and outputs* (:func:`flat_sides`, in the traced trial). A
gradient, VJP or JVP with respect to several arguments (``wrt=("x", "gamma",
"beta")``) differentiates ``of`` with respect to the tuple of them; an ``of``
whose output is a pytree is differentiated as its raveled output
``ravel_pytree(of(...))``. Both sides of the comparison are then raveled:
``ravel(pytree) = concatenate(leaf.ravel() for leaf in leaves)``, a linear
bijection, so the derived side equals the reference exactly when every leaf
does, and the error of a leaf is its segment of the difference. The trailing
argument (a VJP's cotangent, a JVP's tangent) is drawn raveled and unraveled
into the structure each side expects.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from derivcheck._derivation import DerivationError, leaf_name
from derivcheck._format import callable_name
from derivcheck._inputs import CustomInputs, Inputs, is_spec


def is_array(x: Any) -> bool:
    """One array (or its abstract shape), as opposed to a tuple, dict or other pytree of them."""
    return not isinstance(x, tuple | list | dict) and hasattr(x, "shape") and hasattr(x, "dtype")


def describe(tree: Any) -> str:
    """A pytree's structure in words: ``an array``, ``a tuple of 3``, ``a dict with keys ['W', 'b']``."""
    if tree is None:
        return "None"
    if is_array(tree):
        return "an array"
    if isinstance(tree, dict):
        return f"a dict with keys {sorted(tree, key=str)}"
    if isinstance(tree, tuple | list):
        return f"a {type(tree).__name__} of {len(tree)}"
    return f"a {type(tree).__name__}"


def leaf_paths(prefix: str, tree: Any) -> list[str]:
    """``prefix`` followed by each leaf's path: ``params['W']``, ``out[0]``."""
    return [prefix + jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def unraveler(abstract: Any):
    """The inverse of :func:`ravel` for pytrees shaped like ``abstract`` (arrays or ``ShapeDtypeStruct``)."""
    zeros = jax.tree.map(lambda s: jnp.zeros(jnp.shape(s), s.dtype), abstract)
    return ravel_pytree(zeros)[1]


def ravel(tree: Any) -> jax.Array:
    """The leaves of ``tree`` raveled and concatenated, in ``jax.tree.leaves`` order."""
    return ravel_pytree(tree)[0]


def conform(result: Any, expected: Any, what: str, names: Sequence[str] = ()) -> Any:
    """``result`` as the comparison reads it: itself when one array is expected, else raveled after
    checking it has ``expected``'s structure and leaf shapes (a one-line :class:`DerivationError` if not).

    ``names``: what the user calls ``expected``'s leaves (``params['b']``), in order; else their paths in it.
    """
    if is_array(expected):
        return result
    want, got = jax.tree.structure(expected), jax.tree.structure(result)
    if want != got:
        raise DerivationError(f"{what} returns {describe(result)}, expected {describe(expected)} (as {want})")
    pairs = zip(jax.tree.leaves(result), jax.tree.leaves(expected), strict=True)
    for path, (r, e) in zip(names or leaf_paths("", expected), pairs, strict=True):
        if jnp.shape(r) != jnp.shape(e):
            raise DerivationError(f"{what} returns shape {jnp.shape(r)} for {path}, expected {jnp.shape(e)}")
    return ravel(result)


# ------------------------------------------------------------------- the wrt selection


def selection(of: Any, indices: Sequence[int], several: bool, args: tuple):
    """``of`` as a function of the differentiated arguments (one, or a tuple of several), and their value."""
    if not several:
        (i,) = indices

        def one(x):
            return of(*args[:i], x, *args[i + 1 :])

        return one, args[i]

    def many(xs):
        full = list(args)
        for i, x in zip(indices, xs, strict=True):
            full[i] = x
        return of(*full)

    return many, tuple(args[i] for i in indices)


def flat_output(f, x):
    """``f`` with its output raveled when it is a pytree, and that output's abstract value."""
    out = jax.eval_shape(f, x)
    if is_array(out):
        return f, out
    return (lambda y: ravel(f(y))), out


class _Wrapper:
    """What our wrappers share: the user's function (``user_function``), its name, source and docstring."""

    def __init__(self, fn: Any) -> None:
        functools.update_wrapper(self, fn)
        self.user_function = getattr(fn, "user_function", fn)

    def __call__(self, *args: Any) -> Any:  # each wrapper says how it calls the user's function
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{callable_name(self.user_function)}>"


class _Calls(_Wrapper):
    """A wrapper that calls a function ``self.fn`` (the user's, or another wrapper of it) with rearranged arguments."""

    fn: Any
    same_arguments = False

    def editable(self) -> tuple[Any, Any]:
        """The function this wrapper calls, and how an edited copy of it is wrapped the same way (a fix's
        search edits the user's function: :func:`derivcheck._repair._source.read`). ``same_arguments``: whether
        that function gets the drawn arguments in their order (else they are rearranged, or rebuilt into trees)."""

        def rewrapped(edited: Any) -> Any:
            side = copy.copy(self)
            side.fn = edited
            return side

        return self.fn, rewrapped


class FlatSides(_Calls):
    """A gradient's, VJP's or JVP's derived function as the comparison calls it.

    It takes the trailing argument raveled (unraveled here into the structure
    the user's function expects: ``of``'s output for a cotangent, the ``wrt``
    selection for a tangent) and returns a raveled result when that result is
    a pytree (the ``wrt`` selection for a gradient or VJP, ``of``'s output for a
    JVP), after checking its structure.
    """

    same_arguments = True  # it passes the drawn arguments on as they are (see _Calls.editable)

    def __init__(
        self, fn: Any, of: Any, extra_arg: str | None, indices: tuple[int, ...], several: bool, names: tuple[str, ...]
    ) -> None:
        super().__init__(fn)
        self.fn, self.of, self.extra_arg, self.indices, self.several = fn, of, extra_arg, indices, several
        self.wrt_names = tuple(names[i] for i in indices)  # the selection's leaves, as messages name them

    def __call__(self, *given: Any) -> Any:
        args = given if self.extra_arg is None else given[:-1]
        f, x = selection(self.of, self.indices, self.several, tuple(args))
        if self.extra_arg is None:
            return conform(self.fn(*args), x, "derived function", self.wrt_names)
        extra = given[-1]
        out = jax.eval_shape(f, x)
        if self.extra_arg == "tangent":
            tangent = extra if is_array(x) else unraveler(x)(extra)
            return conform(self.fn(*args, tangent), out, "derived function")
        cotangent = extra if is_array(out) else unraveler(out)(extra)
        return conform(self.fn(*args, cotangent), x, "derived function", self.wrt_names)


# ------------------------------------------------------------------- pytree arguments


class Rebuilt(_Calls):
    """``fn`` called with its pytree arguments rebuilt from their leaves (see the module docstring).

    ``trees``: per argument, the treedef of its spec; ``wrt_tree``: the
    structure of the differentiated selection when it holds a pytree argument
    (then the trailing tangent and a gradient's or VJP's result pass as its
    tuple of leaves), else ``None``.
    """

    def __init__(self, fn: Any, trees: tuple, names: tuple[str, ...], extra_arg: str | None = None, wrt_tree=None):
        super().__init__(fn)
        self.fn, self.trees, self.extra_arg, self.wrt_tree = fn, trees, extra_arg, wrt_tree
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        params = [inspect.Parameter(_identifier(n, i), kind) for i, n in enumerate(names)]
        if extra_arg:
            params.append(inspect.Parameter(extra_arg, kind))
        self.__signature__ = inspect.Signature(params)  # the leaves' (inspect.signature stops here, not at __wrapped__)

    def __call__(self, *leaves: Any) -> Any:
        n = sum(t.num_leaves for t in self.trees)
        args, it = [], iter(leaves[:n])
        for t in self.trees:
            args.append(t.unflatten([next(it) for _ in range(t.num_leaves)]))
        if self.extra_arg is None or len(leaves) == n:
            return self._leaves(self.fn(*args), self.extra_arg is None)
        extra = leaves[n]
        if self.wrt_tree is not None and self.extra_arg == "tangent":
            extra = self.wrt_tree.unflatten(list(extra))
        return self._leaves(self.fn(*args, extra), self.extra_arg == "cotangent")

    def _leaves(self, result: Any, is_wrt_shaped: bool) -> Any:
        """A gradient's or VJP's result (the selection's structure) as the tuple of its leaves."""
        if self.wrt_tree is None or not is_wrt_shaped:
            return result
        got = jax.tree.structure(result)
        if got != self.wrt_tree:
            raise DerivationError(
                f"derived function returns {describe(result)}, expected the structure of the wrt argument "
                f"({self.wrt_tree})"
            )
        return tuple(jax.tree.leaves(result))


def _identifier(name: str, i: int) -> str:
    """A parameter name for a leaf (``params['W']`` is no identifier): ``leaf{i}``."""
    return name if name.isidentifier() else f"leaf{i}"


def argument_trees(spec: Any, arg_names: tuple[str, ...]) -> list | None:
    """Per argument, its leaves ``[(path, spec or abstract value)]`` and its treedef; ``None`` when it
    cannot be told (a custom sampler that fails to trace: the check then says why).

    A custom ``key -> args`` sampler is traced once (``jax.eval_shape``) to learn its structure.
    """
    if isinstance(spec, Inputs):
        table = dict(spec.specs)
        return [jax.tree_util.tree_flatten_with_path(table[n], is_leaf=is_spec) for n in arg_names]
    if not isinstance(spec, CustomInputs):
        return None
    try:
        drawn = jax.eval_shape(spec.draw, jax.random.PRNGKey(0))
    except Exception:
        return None
    args = tuple(drawn) if isinstance(drawn, list | tuple) else (drawn,)
    if len(args) != len(arg_names):
        return None
    return [jax.tree_util.tree_flatten_with_path(a) for a in args]


def leaf_names(arg_names: tuple[str, ...], trees: list | None) -> tuple[str, ...]:
    """The paths of the leaves of pytree arguments (``"p['b']"``), what a ``wrt`` may name besides an argument."""
    if trees is None:
        return ()
    return tuple(
        name + jax.tree_util.keystr(path)
        for name, (flat, tree) in zip(arg_names, trees, strict=True)
        if not jax.tree_util.treedef_is_leaf(tree)
        for path, _ in flat
    )


def nested(trees: list | None) -> bool:
    """Whether some argument is drawn as a pytree of arrays (per :func:`argument_trees`)."""
    return trees is not None and any(not jax.tree_util.treedef_is_leaf(tree) for _, tree in trees)


class LeafDraw(_Wrapper):
    """A custom sampler's draw with its pytree arguments flattened to their leaves (in order)."""

    def __call__(self, key: Any) -> tuple:
        drawn = self.user_function(key)
        return tuple(jax.tree.leaves(tuple(drawn) if isinstance(drawn, list | tuple) else (drawn,)))


def flatten_arguments(claim: Any, fn: Any, spec: Any, arg_names: tuple[str, ...], per_arg: list):
    """``(claim, fn, spec, arg_names)`` of the same derivation with every pytree argument drawn as its leaves."""
    trees, leaf_names, leaf_specs = [], [], []
    for name, (flat, tree) in zip(arg_names, per_arg, strict=True):
        trees.append(tree)
        for path, leaf in flat:
            leaf_names.append(name + jax.tree_util.keystr(path))
            leaf_specs.append(leaf)
    names = tuple(leaf_names)
    leaves_of = {}
    start = 0
    for name, tree in zip(arg_names, trees, strict=True):
        leaves_of[name] = names[start : start + tree.num_leaves]
        start += tree.num_leaves
    for leaf in names:  # a wrt may name one leaf (wrt="p['b']"): an array argument of the flat derivation
        leaves_of.setdefault(leaf, (leaf,))
    leaf_tree = jax.tree.structure(0)
    tree_of = {name: tree for name, tree in zip(arg_names, trees, strict=True)}
    wrt_tree, new_claim = None, claim
    if hasattr(claim, "wrt"):
        wrt = claim.wrt
        chosen = wrt if isinstance(wrt, tuple) else (wrt,)
        chosen_names = [arg_names[w] if isinstance(w, int) else leaf_name(w) for w in chosen]
        selected = [tree_of.get(n, leaf_tree) for n in chosen_names]
        pytree_wrt = any(not jax.tree_util.treedef_is_leaf(t) for t in selected)
        if pytree_wrt and not getattr(claim, "several_wrt", False):
            raise DerivationError(
                f"wrt={wrt!r} is a pytree argument; this claim differentiates one array: name one of its leaves "
                f"({', '.join(f'wrt={n!r}' for n in leaves_of[chosen_names[0]])}), or check a gradient, vjp or jvp"
            )
        flat_wrt = tuple(leaf for n in chosen_names for leaf in leaves_of[n])
        if len(set(flat_wrt)) != len(flat_wrt):
            raise DerivationError(f"wrt={wrt!r} names a leaf twice (an argument and one of its leaves); name it once")
        if pytree_wrt:
            several = jax.tree.structure(tuple(_dummy(t) for t in selected))
            wrt_tree = several if isinstance(wrt, tuple) else selected[0]
            new_wrt: Any = flat_wrt
        else:
            new_wrt = flat_wrt if isinstance(wrt, tuple) else flat_wrt[0]
        new_claim = _replace(claim, wrt=new_wrt)
    of = getattr(claim, "of", None)
    if of is not None:
        new_claim = _replace(new_claim, of=Rebuilt(of, tuple(trees), names))
    derived = Rebuilt(fn, tuple(trees), names, getattr(claim, "extra_arg", None), wrt_tree)
    if isinstance(spec, Inputs):
        flat_spec: Any = Inputs(tuple(zip(names, leaf_specs, strict=True)), spec.sizes, spec.regimes)
    else:
        flat_spec = dataclasses.replace(spec, draw=LeafDraw(spec.draw))
    return new_claim, derived, flat_spec, names


def _dummy(tree) -> Any:
    return tree.unflatten([0] * tree.num_leaves)


def _replace(claim: Any, **changes: Any) -> Any:
    return dataclasses.replace(claim, **changes)


def leaf_errors(
    names: Sequence[str], sizes: Sequence[int], got: np.ndarray, ref: np.ndarray
) -> list[tuple[str, float]]:
    """Each leaf's largest absolute difference in one raveled trial (``sizes``: its leaves' entry counts)."""
    out, start = [], 0
    diff = np.abs(np.ravel(got) - np.ravel(ref))
    for name, size in zip(names, sizes, strict=True):
        seg = diff[start : start + size]
        out.append((name, float(seg.max()) if seg.size else 0.0))
        start += size
    return out
