"""A derived function's source as syntax trees that can be edited and compiled back into functions.

:class:`Program` holds the trees of the derived function and of the helper
functions it calls that are defined in the same file (their edits count as
edits of the derivation), the file's text (for the text of an edit and its
diff), and the namespace to compile in: a *copy* of the function's globals
(plus its closure's values), so a candidate never touches the user's module
and the function ``of`` keeps calling the original helpers. Nothing is
written to disk; a candidate is compiled from its tree with the file name
and the original line numbers, so a traceback still points at the file.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import inspect
import linecache
import types
from collections.abc import Callable
from typing import Any, Protocol, cast, runtime_checkable

from derivcheck._derivation import DerivationError

REPAIR_NAME = "__derivcheck_repaired__"
"""The name a derived *lambda* is bound to when it is compiled back (a lambda has no name of its own)."""

MAX_HELPERS = 8
LIBRARIES = frozenset({"jax", "jaxlib", "numpy", "scipy", "math", "builtins"})
"""Packages whose functions are never edited: a derived function that *is* one has no source of its own."""


class NoSource(ValueError):
    """The derived function's source cannot be read or edited (the message says why, in one line)."""


@runtime_checkable
class Editable(Protocol):
    """A derived side made from a user's function it calls (a ``@dc.rule`` side: see :func:`read`)."""

    def editable(self) -> tuple[Callable[..., Any], Callable[[Callable[..., Any]], Callable[..., Any]]]:
        """The function a fix edits, and how an edited copy of it becomes the derived side again.

        Its parameters are read as the drawn arguments, in order (to find the dimensions a factor can be),
        only where the side says so with a true ``same_arguments`` attribute."""
        ...


def _editable(fn: Any) -> bool:
    """Whether ``fn`` is a derived side made from a user's function (:class:`Editable`), not that function."""
    return isinstance(fn, Editable) and not isinstance(fn, types.FunctionType)


@dataclasses.dataclass(frozen=True)
class Program:
    """The editable source of one derived function.

    ``trees[0]`` is the derived function (a ``def`` or an ``Assign`` of its
    lambda to :data:`REPAIR_NAME`), ``trees[1:]`` its helpers; ``names`` the
    names each tree binds; ``args`` the derived function's positional
    parameters.
    """

    file: str
    text: str
    trees: tuple[ast.stmt, ...]
    names: tuple[str, ...]
    namespace: dict[str, Any]
    args: tuple[str, ...]
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None
    """How the compiled function becomes the derived side, when the side is made from it (a custom rule's
    ``bwd``: the side calls it through the custom function); ``None``: it is the derived function."""

    def compile(self, trees: tuple[ast.stmt, ...]) -> Callable[..., Any]:
        """The derived function built from ``trees`` (edited copies of :attr:`trees`), in a fresh namespace copy."""
        module = ast.Module(body=[ast.fix_missing_locations(t) for t in trees], type_ignores=[])
        code = compile(module, self.file, "exec")
        namespace = dict(self.namespace)
        exec(code, namespace)  # the edited definitions only: no decorator, nothing registered
        fn = namespace[self.names[0]]
        return fn if self.wrap is None else self.wrap(fn)

    def fresh(self) -> list[ast.stmt]:
        """Deep copies of the trees, to edit."""
        return [copy.deepcopy(t) for t in self.trees]

    def line(self, lineno: int) -> str:
        lines = self.text.splitlines()
        return lines[lineno - 1] if 0 < lineno <= len(lines) else ""


def read(fn: Callable[..., Any]) -> Program:
    """The :class:`Program` of ``fn``; :class:`NoSource` when there is none to edit.

    A derived side made from a user's function it calls (a ``@dc.rule`` side, made from the rule's
    ``bwd``, ``fwd`` or ``jvp``) says so with ``editable() -> (function, rebuild)``: that function is read
    and edited, and ``rebuild`` makes each edited copy the derived side again. Its parameters are not the
    drawn arguments (``bwd(res, ct)``, a dict rebuilt from its leaves), so no dimension is read from them,
    unless the side says they are (``same_arguments``).
    """
    shown = _name(fn)
    fn = inspect.unwrap(fn, stop=_editable)  # a jax.jit or functools.wraps wrapper: the function it wraps
    if _editable(fn):
        try:
            inner, rebuild = cast(Editable, fn).editable()
        except DerivationError as exc:
            raise NoSource(f"{shown} is made from its rule function: {exc}") from exc
        try:
            program = read(inner)
        except NoSource as exc:
            if hasattr(fn, "user_function"):  # a wrapper of the user's own function (pytree arguments): its reason
                raise
            raise NoSource(f"{shown} is made from its rule function: {exc}") from exc
        within = program.wrap  # the function read is itself made into a side (a rule's bwd with pytree arguments)
        args = program.args if getattr(fn, "same_arguments", False) else ()
        return dataclasses.replace(program, args=args, wrap=rebuild if within is None else lambda e: rebuild(within(e)))
    code = getattr(fn, "__code__", None)
    if not isinstance(fn, types.FunctionType) or code is None:
        raise NoSource(f"{shown} is not a Python function (a builtin or a compiled callable): no source to edit")
    module = str(getattr(fn, "__module__", ""))
    if module.split(".")[0] in LIBRARIES or module.startswith("derivcheck._"):  # derivcheck's own machinery
        raise NoSource(f"{shown} is a library function ({fn.__module__}), not a derivation's source to edit")
    file = code.co_filename
    text = "".join(linecache.getlines(file, fn.__globals__))
    if file.startswith("<latex"):  # compiled by dc.latex from a statement
        raise NoSource(f"{_name(fn)} is read from LaTeX (dc.latex): there is no Python source to edit")
    if not text or file.startswith("<"):
        raise NoSource(f"the source of {_name(fn)} is not in a file ({file}): define it in a .py file to get a fix")
    try:
        module = ast.parse(text, file)
    except SyntaxError as exc:
        raise NoSource(f"the file of {_name(fn)} does not parse: {exc.msg} (line {exc.lineno})") from exc
    target = _find(module, fn)
    namespace = dict(fn.__globals__)
    for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
        try:
            namespace[name] = cell.cell_contents
        except ValueError:  # an empty cell: the name is not bound yet
            pass
    trees, names = [target], [REPAIR_NAME if isinstance(target, ast.Assign) else fn.__name__]
    for helper in _helpers(module, target, fn, file):
        trees.append(helper)
        names.append(helper.name)
    return Program(file, text, tuple(trees), tuple(names), namespace, _arg_names(fn))


def _name(fn: Any) -> str:
    return f"`{getattr(fn, '__qualname__', None) or getattr(fn, '__name__', None) or type(fn).__name__}`"


def _arg_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return ()
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p.name for p in params if p.kind in kinds)


def _find(module: ast.Module, fn: types.FunctionType) -> ast.stmt:
    """The ``def`` of ``fn`` (by name and first line), or an ``Assign`` wrapping its lambda."""
    first = fn.__code__.co_firstlineno
    args = [a for a in fn.__code__.co_varnames[: fn.__code__.co_argcount]]
    for node in ast.walk(module):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == fn.__name__:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if start == first or node.lineno == first:
                if isinstance(node, ast.AsyncFunctionDef):
                    raise NoSource(f"{_name(fn)} is a coroutine; a derivation must be a plain function")
                return _undecorated(node)
    if fn.__name__ == "<lambda>":
        for node in ast.walk(module):
            if isinstance(node, ast.Lambda) and node.lineno == first and [a.arg for a in node.args.args] == args:
                assign = ast.Assign(targets=[ast.Name(REPAIR_NAME, ast.Store())], value=node, lineno=node.lineno)
                return ast.copy_location(assign, node)
    raise NoSource(f"the definition of {_name(fn)} was not found in {fn.__code__.co_filename} (edited since loaded?)")


def _undecorated(node: ast.FunctionDef) -> ast.FunctionDef:
    node = copy.deepcopy(node)
    node.decorator_list = []
    return node


def _helpers(module: ast.Module, target: ast.stmt, fn: types.FunctionType, file: str) -> list[ast.FunctionDef]:
    """The functions defined at the top of the same file that ``target`` calls or passes on (a
    function handed to a helper that calls it, ``_blocks(w, X, _delta)``), and theirs in turn."""
    defs = {n.name: n for n in module.body if isinstance(n, ast.FunctionDef)}
    found: list[ast.FunctionDef] = []
    queue = [target]
    seen = {getattr(target, "name", REPAIR_NAME)}
    while queue and len(found) < MAX_HELPERS:
        node = queue.pop()
        for sub in ast.walk(node):
            if not (isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)):
                continue
            name = sub.id
            if name in seen or name not in defs or not _same_file(fn.__globals__.get(name), file):
                continue
            seen.add(name)
            helper = _undecorated(defs[name])
            found.append(helper)
            queue.append(helper)
    return found


def _same_file(obj: Any, file: str) -> bool:
    obj = getattr(obj, "derived", obj)  # a helper that is itself a registered derivation
    code = getattr(inspect.unwrap(obj), "__code__", None) if callable(obj) else None
    return code is not None and code.co_filename == file
