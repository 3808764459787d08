"""The registry of derivations, the decorators that fill it, and loading user files.

A decorator stores a frozen :class:`~derivcheck.derivation.Derivation` and
returns it; it stays callable exactly like the decorated function. A
derivation declared in a way that cannot be checked (``wrt`` naming no
argument, inputs that do not match the signature, a duplicate name) is still
registered, carrying its problem, so that the run reports it as an ``error``
with a one-line reason and goes on with the others.

Installed packages contribute derivations through the entry-point group
``derivcheck.derivations`` (each entry names a module to import); the default
registry loads them the first time :func:`registry` is called.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from derivcheck.compare import Tolerance
from derivcheck.derivation import (
    HOLDS,
    VJP,
    Definite,
    Derivation,
    DerivationError,
    Expect,
    Gradient,
    Hessian,
    Jacobian,
    positional_names,
    resolve_wrt,
)
from derivcheck.inputs import CustomInputs, InputSpecError, as_inputs

ENTRY_POINT_GROUP = "derivcheck.derivations"


class LoadError(Exception):
    """A user's module or file could not be loaded (one-line message)."""


class Registry:
    """Derivations by unique name, in registration order."""

    def __init__(self) -> None:
        self._items: dict[str, Derivation] = {}
        self._origins: dict[str, str] = {}
        self.problems: list[str] = []

    def add(self, d: Derivation, origin: str = "") -> Derivation:
        """Register ``d``; the same origin re-registering (a re-import) replaces it."""
        if d.name in self._items and self._origins.get(d.name) != origin:
            first = self._origins.get(d.name) or "elsewhere"
            problem = f"duplicate name {d.name!r} (first defined at {first}); pass a unique name="
            dup = _with_problem(d, f"{d.name}#duplicate@{origin or len(self._items)}", problem)
            self._items[dup.name] = dup
            self._origins[dup.name] = origin
            return d
        self._items[d.name] = d
        self._origins[d.name] = origin
        return d

    def __getitem__(self, name: str) -> Derivation:
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._items), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; `derivcheck list` shows them all"
            raise KeyError(f"no derivation named {name!r}{hint}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[Derivation]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        return list(self._items)

    def select(self, *patterns: str) -> list[Derivation]:
        """Derivations whose name matches any glob (all when no pattern), in order."""
        if not patterns:
            return list(self)
        return [d for d in self if any(fnmatch.fnmatchcase(d.name, p) for p in patterns)]

    def origin(self, name: str) -> str:
        return self._origins.get(name, "")

    def remove(self, name: str) -> None:
        self._items.pop(name, None)
        self._origins.pop(name, None)

    def __repr__(self) -> str:
        return f"Registry({len(self)} derivations)"


_DEFAULT = Registry()
_PLUGINS_LOADED = False


def registry() -> Registry:
    """The default registry, with installed packages' derivations loaded (once)."""
    global _PLUGINS_LOADED
    if not _PLUGINS_LOADED:
        _PLUGINS_LOADED = True
        for problem in load_entry_points():
            _DEFAULT.problems.append(problem)
    return _DEFAULT


def load_entry_points(group: str = ENTRY_POINT_GROUP) -> list[str]:
    """Import every module registered under ``group``; return one line per failure."""
    problems = []
    for ep in importlib.metadata.entry_points(group=group):
        try:
            ep.load()
        except Exception as exc:
            problems.append(f"entry point {ep.name!r} ({ep.value}) failed to load: {_one_line(exc)}")
    return problems


def load(target: str) -> list[Derivation]:
    """Import a module (``pkg.mod``) or a ``.py`` file and return what it registered.

    Raises :class:`LoadError` with a one-line message when it cannot be imported.
    """
    before = set(_DEFAULT.names())
    path = Path(target)
    try:
        if target.endswith(".py") or path.is_file():
            if not path.is_file():
                raise LoadError(f"{target}: no such file")
            mod_name = f"derivcheck_user_{path.stem}_{abs(hash(str(path.resolve()))) % 10**8}"
            spec = importlib.util.spec_from_file_location(mod_name, path)
            if spec is None or spec.loader is None:
                raise LoadError(f"{target}: not a Python file")
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            sys.path.insert(0, str(path.resolve().parent))
            try:
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(path.resolve().parent))
        else:
            importlib.import_module(target)
    except LoadError:
        raise
    except Exception as exc:
        raise LoadError(f"{target} failed to import: {_one_line(exc)}") from exc
    return [d for d in _DEFAULT if d.name not in before]


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    where = ""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        where = f" ({Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno})"
    return f"{type(exc).__name__}: {lines[0] if lines else ''}{where}"


# --------------------------------------------------------------------- decorators


def _with_problem(d: Derivation, name: str, problem: str) -> Derivation:
    return dataclasses.replace(d, name=name, problem=problem)


def _origin(fn: Callable[..., Any]) -> str:
    try:
        file = inspect.getsourcefile(fn) or "?"
        line = inspect.getsourcelines(fn)[1]
        return f"{Path(file).name}:{line}"
    except (TypeError, OSError):
        return getattr(fn, "__module__", "") or ""


def _arg_names(fn, claim, spec) -> tuple[str, ...]:
    names = positional_names(fn)
    if isinstance(claim, VJP) and names:
        names = names[:-1]  # the trailing cotangent
    if isinstance(spec, CustomInputs):
        return names
    declared = spec.names
    if not names:
        return declared
    if set(names) != set(declared):
        missing = [n for n in names if n not in declared]
        extra = [n for n in declared if n not in names]
        parts = []
        if missing:
            parts.append(f"no input spec for {missing}")
        if extra:
            parts.append(f"inputs {extra} are not arguments")
        raise DerivationError(f"inputs do not match the arguments {list(names)} of {fn.__name__}: " + "; ".join(parts))
    return names


def declare(
    make_claim: Callable[[], Any],
    fn: Callable[..., Any],
    *,
    inputs: Any,
    name: str | None = None,
    source: str = "",
    statement: str = "",
    expect: Expect = HOLDS,
    rtol: float | None = None,
    atol: float | None = None,
    registry: Registry | None = None,
) -> Derivation:
    """Build a :class:`Derivation` for ``fn`` and add it to ``registry`` (default: the global one).

    ``make_claim`` builds the claim record; any declaration problem is kept on
    the derivation (``problem``) and reported when it is checked.
    """
    target = _DEFAULT if registry is None else registry
    name = name or f"{fn.__module__}.{fn.__qualname__}"
    tolerance = None if rtol is None and atol is None else Tolerance(rtol=rtol, atol=atol)
    problem = ""
    arg_names: tuple[str, ...] = ()
    spec = inputs
    claim = None
    try:
        claim = make_claim()
        if not isinstance(name, str) or not name:
            raise DerivationError("name= must be a non-empty string")
        if not isinstance(expect, Expect):
            raise DerivationError("expect= must be dc.HOLDS or dc.fails('reason')")
        spec = as_inputs(inputs)
        of = getattr(claim, "of", None)
        if of is not None and not callable(of):
            raise DerivationError(f"of= must be a function, got {of!r}")
        arg_names = _arg_names(fn, claim, spec)
        if hasattr(claim, "wrt"):
            resolve_wrt(claim.wrt, arg_names, name)
    except (DerivationError, InputSpecError) as exc:
        problem = str(exc)
    d = Derivation(
        name=name,
        derived=fn,
        claim=claim,
        inputs=spec,
        source=source,
        statement=statement,
        expect=expect if isinstance(expect, Expect) else HOLDS,
        tolerance=tolerance,
        arg_names=arg_names,
        doc=inspect.getdoc(fn) or "",
        problem=problem,
    )
    return target.add(d, origin=_origin(fn))


def _decorator(make_claim: Callable[[], Any], **options: Any) -> Callable[[Callable], Derivation]:
    def decorate(fn: Callable[..., Any]) -> Derivation:
        return declare(make_claim, fn, **options)

    return decorate


def gradient(*, of: Callable, wrt: int | str = 0, inputs: Any, **options: Any):
    """Register ``fn`` as the gradient of scalar ``of`` w.r.t. ``wrt`` (checked against ``jax.grad``).

    Options: ``name``, ``source``, ``statement``, ``expect``, ``rtol``, ``atol``, ``registry``.
    """
    return _decorator(lambda: Gradient(of=of, wrt=wrt), inputs=inputs, **options)


def jacobian(*, of: Callable, wrt: int | str = 0, inputs: Any, **options: Any):
    """Register ``fn`` as the Jacobian of ``of`` w.r.t. ``wrt`` (shape ``out + in``, as ``jax.jacfwd``)."""
    return _decorator(lambda: Jacobian(of=of, wrt=wrt), inputs=inputs, **options)


def hessian(*, of: Callable, wrt: int | str = 0, inputs: Any, **options: Any):
    """Register ``fn`` as the Hessian of scalar ``of`` w.r.t. ``wrt`` (shape ``in * 2``)."""
    return _decorator(lambda: Hessian(of=of, wrt=wrt), inputs=inputs, **options)


def vjp(*, of: Callable, wrt: int | str = 0, inputs: Any, **options: Any):
    """Register ``fn(*args, ct)`` as the pull-back of cotangent ``ct`` through ``of`` to ``wrt``."""
    return _decorator(lambda: VJP(of=of, wrt=wrt), inputs=inputs, **options)


def definite(kind: str, *, inputs: Any, of: Callable | None = None, wrt: int | str = 0, **options: Any):
    """Register ``fn`` as a matrix that is ``kind`` (``"pd"``, ``"psd"``, ``"nd"``, ``"nsd"``).

    With ``of=``, the matrix must also equal ``jax.hessian(of)`` w.r.t. ``wrt``.
    """
    return _decorator(lambda: Definite(definiteness=kind, of=of, wrt=wrt), inputs=inputs, **options)
