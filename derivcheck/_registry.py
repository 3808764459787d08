"""The registry of derivations, the decorators that fill it, and loading user files.

A decorator stores a frozen :class:`~derivcheck._derivation.Derivation` and
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

import contextlib
import dataclasses
import difflib
import fnmatch
import importlib
import importlib.metadata
import importlib.util
import inspect
import re
import sys
import sysconfig
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from derivcheck import _derivation as _claims
from derivcheck import _pytree
from derivcheck._compare import Tolerance
from derivcheck._derivation import (
    HOLDS,
    JVP,
    VJP,
    Definite,
    Derivation,
    DerivationError,
    Expect,
    Gradient,
    Hessian,
    Jacobian,
    positional_parameters,
    resolve_wrt,
)
from derivcheck._format import callable_name, one_line
from derivcheck._inputs import CustomInputs, InputSpecError, as_inputs, stable_hash

ENTRY_POINT_GROUP = "derivcheck.derivations"


class LoadError(Exception):
    """A user's module or file could not be loaded (one-line message)."""


def name_matches(name: str, pattern: str) -> bool:
    """Whether ``pattern`` chooses ``name``: a glob (``softmax_*``), or the name itself — a name with glob
    characters, ``layers.gelu[rule wrt x]`` as a table prints it, is found when pasted as it is."""
    return name == pattern or fnmatch.fnmatchcase(name, pattern)


class Registry:
    """Derivations by unique name, in registration order."""

    def __init__(self) -> None:
        self._items: dict[str, Derivation] = {}
        self._origins: dict[str, str] = {}
        self._modules: dict[str, str] = {}
        self.problems: list[str] = []

    def add(self, d: Derivation, origin: str = "", module: str = "") -> Derivation:
        """Register ``d``; the same origin re-registering (a re-import) replaces it.

        ``module`` names the module whose code declared ``d`` (see :meth:`declared_in`).
        """
        if d.name in self._items and self._origins.get(d.name) != origin:
            first = self._origins.get(d.name) or "elsewhere"
            problem = f"duplicate name {d.name!r} (first defined at {first}); pass a unique name="
            where = Path(origin).name if origin else len(self._items)  # file.py:line, the folder left out
            dup = _with_problem(d, f"{d.name}#duplicate@{where}", problem)
            self._items[dup.name] = dup
            self._origins[dup.name] = origin
            self._modules[dup.name] = module
            return d
        self._items[d.name] = d
        self._origins[d.name] = origin
        self._modules[d.name] = module
        return d

    def declared_in(self, module: str) -> list[Derivation]:
        """The derivations declared by code in ``module`` (its ``__name__``), duplicates included."""
        return [d for name, d in self._items.items() if self._modules.get(name) == module]

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
        return [d for d in self if any(name_matches(d.name, p) for p in patterns)]

    def origin(self, name: str) -> str:
        return self._origins.get(name, "")

    def remove(self, name: str) -> None:
        self._items.pop(name, None)
        self._origins.pop(name, None)
        self._modules.pop(name, None)

    def __repr__(self) -> str:
        return f"Registry({len(self)} derivations)"


_DEFAULT = Registry()
_PLUGINS_LOADED = False


def registry(*, installed: bool = True) -> Registry:
    """The default registry, with installed packages' derivations loaded (once).

    ``installed=False`` returns it without importing them (the command line's
    ``run --load FILE``, which checks only what FILE registers).
    """
    global _PLUGINS_LOADED
    if installed and not _PLUGINS_LOADED:
        _PLUGINS_LOADED = True
        for problem in load_entry_points():
            _DEFAULT.problems.append(problem)
    return _DEFAULT


@contextlib.contextmanager
def scoped_registry() -> Iterator[Registry]:
    """Within the block, the default registry is a new, empty one; the previous one comes back after.

    Decorators without ``registry=``, :func:`derivcheck.check` by name,
    :func:`derivcheck.run` and the command line all see the scoped registry,
    so a test or a notebook can declare derivations without leaking them.
    The installed derivations are imported into the outer registry first
    (that happens once per process).

    >>> import derivcheck as dc, jax.numpy as jnp
    >>> with dc.scoped_registry() as reg:
    ...     @dc.gradient(of=lambda x: jnp.sum(x**2), inputs=dc.inputs(x=dc.normal("n")), name="sq")
    ...     def sq_grad(x):
    ...         return 2 * x
    ...     reg.names()
    ['sq']
    >>> "sq" in dc.registry()
    False
    """
    global _DEFAULT
    registry()
    outer, _DEFAULT = _DEFAULT, Registry()
    try:
        yield _DEFAULT
    finally:
        _DEFAULT = outer


def declared_in(module: str) -> list[Derivation]:
    """Derivations of the default registry declared in ``module``, without loading entry points.

    The pytest plugin collects these, so a test run never pulls in the
    derivations that installed packages contribute.
    """
    return _DEFAULT.declared_in(module)


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
            mod_name = file_module_name(path)
            _FILE_MODULES[mod_name] = path.stem
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
    except SystemExit as exc:  # sys.exit() at import must not end the command with "success"
        raise LoadError(f"{target} failed to import: it called sys.exit({exc.code!r})") from exc
    except Exception as exc:
        raise LoadError(f"{target} failed to import: {_one_line(exc)}") from exc
    return [d for d in _DEFAULT if d.name not in before]


_FILE_MODULES: dict[str, str] = {}  # module name of a file loaded by path -> the label its derivations carry


def file_module_name(path: Path) -> str:
    """The name a file loaded by path is imported under: the same in every process.

    It must not be the bare stem (a file ``json.py`` would shadow the standard
    library), and must not use Python's salted ``hash()``.
    """
    return f"derivcheck_user_{path.stem}_{stable_hash(str(path.resolve())) % 10**8:08d}"


def module_label(module: str) -> str:
    """How derivations declared in ``module`` are named by default: a loaded file's stem, else the module's name.

    So ``derivcheck run --load mine.py`` names ``def g`` in it ``mine.g``, as
    ``import mine`` from Python does, in every process (workers included).
    """
    return _FILE_MODULES.get(module, module)


def _one_line(exc: BaseException) -> str:
    """``Type: first line (file.py:line)`` (:func:`~derivcheck._format.one_line`), at the user's line that
    raised (:func:`_user_frame`)."""
    where = _user_frame(exc.__traceback__)
    return one_line(exc) + (f" ({where})" if where else "")


_LIBRARIES = (str(Path(__file__).resolve().parent), sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"])


def _user_frame(tb) -> str:
    """``file.py:line`` of the innermost frame of ``tb`` in the user's code — not in derivcheck, the
    standard library or an installed package (an input spec that derivcheck refuses points at the
    user's call, not at derivcheck's check) —, else of the innermost frame; ``""`` without one."""
    frames = [(frame.f_code.co_filename, line) for frame, line in traceback.walk_tb(tb)]
    if not frames:
        return ""
    mine = [f for f in frames if not str(Path(f[0]).resolve()).startswith(_LIBRARIES)]
    file, line = (mine or frames)[-1]
    return f"{Path(file).name}:{line}"


# --------------------------------------------------------------------- decorators


def _with_problem(d: Derivation, name: str, problem: str) -> Derivation:
    return dataclasses.replace(d, name=name, problem=problem)


def _origin(fn: Callable[..., Any]) -> str:
    """``/full/path/file.py:line`` of ``fn``: two files with one basename are two origins."""
    try:
        file = inspect.getsourcefile(fn) or "?"
        line = inspect.getsourcelines(fn)[1]
        return f"{Path(file).resolve() if file != '?' else file}:{line}"
    except (TypeError, OSError):
        return getattr(fn, "__module__", "") or ""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` safe to print and paste: control characters and lone surrogates as escapes.

    >>> printable("a\\nb\\x1b[31m")
    'a\\\\nb\\\\x1b[31m'
    """
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _arg_names(fn, claim, spec) -> tuple[str, ...]:
    """The names of ``fn``'s drawn arguments, in order.

    A claim with a trailing argument (a VJP's cotangent, a JVP's tangent, the
    vector of a Hessian-vector product) takes it as the last parameter without
    a default: ``def vjp(x, ct, axis=-1)`` draws ``x``, is passed ``ct``, and
    ``axis`` keeps its default. Other claims draw the parameters without a
    default and any defaulted ones the input spec names (in order).
    """
    params = positional_parameters(fn)
    required = tuple(p.name for p in params if p.default is inspect.Parameter.empty)
    declared = None if isinstance(spec, CustomInputs) else spec.names
    if claim.extra_arg is not None:
        names = required[:-1]
        late = [p.name for p in params[len(required) :] if declared is not None and p.name in declared]
        if required and late:
            raise DerivationError(
                f"inputs {late} of {callable_name(fn)} come after its {claim.extra_arg} {required[-1]!r}, which is "
                f"passed last: put them before {required[-1]!r}, or fix them with functools.partial"
            )
    else:
        named = [i for i, p in enumerate(params) if declared is not None and p.name in declared]
        names = tuple(p.name for p in params[: max([len(required) - 1, *named]) + 1])
    if declared is None:
        return names
    if not names and not params:
        return declared
    if set(names) != set(declared):
        missing = [n for n in names if n not in declared]
        extra = [n for n in declared if n not in names]
        parts = []
        if missing:
            parts.append(f"no input spec for {missing}")
        if extra:
            parts.append(f"inputs {extra} are not arguments")
        raise DerivationError(
            f"inputs do not match the arguments {list(names)} of {callable_name(fn)}: " + "; ".join(parts)
        )
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
    if not callable(fn):
        raise DerivationError(f"a derivcheck decorator must decorate a function, got {fn!r}")
    target = _DEFAULT if registry is None else registry
    default_name = f"{module_label(getattr(getattr(fn, 'func', fn), '__module__', None) or '?')}.{callable_name(fn)}"
    tolerance = None if rtol is None and atol is None else Tolerance(rtol=rtol, atol=atol)
    problem = ""
    arg_names: tuple[str, ...] = ()
    spec = inputs
    claim = None
    derived = fn
    try:
        claim = make_claim()
        if name is not None and (not isinstance(name, str) or not name):
            raise DerivationError(f"name= must be a non-empty string, got {name!r}")
        if name is not None and printable(name) != name:
            raise DerivationError(f"name= must be printable text (no control characters), got {name!r}")
        for option, value in (("source", source), ("statement", statement)):
            if not isinstance(value, str):
                raise DerivationError(f"{option}= must be a string, got {value!r}")
        if not isinstance(expect, Expect):
            raise DerivationError("expect= must be dc.HOLDS or dc.fails('reason')")
        for option, value in (("rtol", rtol), ("atol", atol)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0):
                raise DerivationError(f"{option}= must be a number >= 0, got {value!r}")
        spec = as_inputs(inputs)
        of = getattr(claim, "of", None)
        if of is not None and not callable(of):
            raise DerivationError(f"of= must be a function, got {of!r}")
        arg_names = _arg_names(fn, claim, spec)
        trees = _pytree.argument_trees(spec, arg_names) if arg_names else None
        if hasattr(claim, "wrt"):
            label, several = "" if name is None else name, getattr(claim, "several_wrt", False)
            resolve_wrt(claim.wrt, arg_names, label, several, _pytree.leaf_names(arg_names, trees))
        claim, derived, spec, arg_names = _pytree_boundary(claim, fn, spec, arg_names, trees)
    except (DerivationError, InputSpecError) as exc:
        problem = str(exc)
    except Exception as exc:
        problem = f"the declaration is invalid: {_one_line(exc)}"
    name = printable(name) if isinstance(name, str) and name else default_name
    d = Derivation(
        name=name,
        derived=derived,
        claim=claim,
        inputs=spec,
        source=printable(source) if isinstance(source, str) else repr(source),
        statement=statement if isinstance(statement, str) else repr(statement),
        expect=expect if isinstance(expect, Expect) else HOLDS,
        tolerance=tolerance,
        arg_names=arg_names,
        doc=inspect.getdoc(fn) or "",
        problem=problem,
    )
    return target.add(d, origin=_origin(fn), module=_declaring_module())


def _pytree_boundary(claim: Any, fn: Callable[..., Any], spec: Any, arg_names: tuple[str, ...], trees: list | None):
    """The derivation as the engine sees it: pytree arguments drawn as their leaves, and a gradient's,
    VJP's or JVP's derived side taking and giving raveled pytrees (see :mod:`derivcheck._pytree`);
    ``trees``: :func:`derivcheck._pytree.argument_trees` of the arguments."""
    derived = fn
    if _pytree.nested(trees):
        claim, derived, spec, arg_names = _pytree.flatten_arguments(claim, fn, spec, arg_names, trees or [])
    if getattr(claim, "several_wrt", False):
        wrt = claim.wrt
        indices = tuple(resolve_wrt(w, arg_names) for w in (wrt if isinstance(wrt, tuple) else (wrt,)))
        derived = _pytree.FlatSides(derived, claim.of, claim.extra_arg, indices, isinstance(wrt, tuple), arg_names)
    return claim, derived, spec, arg_names


def _declaring_module() -> str:
    """``__name__`` of the module whose code called the decorator (the first frame outside this one)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") in (__name__, "derivcheck._rules"):
        frame = frame.f_back
    return "" if frame is None else str(frame.f_globals.get("__name__", ""))


def _decorator(make_claim: Callable[[], Any], **options: Any) -> Callable[[Callable], Derivation]:
    def decorate(fn: Callable[..., Any]) -> Derivation:
        return declare(make_claim, fn, **options)

    return decorate


def _wrt(wrt: Any) -> Any:
    """A list of arguments to differentiate is a tuple of them (claims are hashable records)."""
    return tuple(wrt) if isinstance(wrt, list) else wrt


def gradient(*, of: Callable, wrt: Any = 0, inputs: Any, holomorphic: bool = False, **options: Any):
    """Register ``fn`` as the gradient of scalar ``of`` w.r.t. ``wrt`` (checked against ``jax.grad``).

    ``holomorphic=True``: ``of`` is complex and holomorphic, ``fn`` its derivative ``f'(z)``; without
    it a complex ``wrt`` follows JAX's convention for real ``of`` (``∂f/∂x − i ∂f/∂y``).
    Options: ``name``, ``source``, ``statement``, ``expect``, ``rtol``, ``atol``, ``registry``.
    """
    return _decorator(lambda: Gradient(of=of, wrt=_wrt(wrt), holomorphic=holomorphic), inputs=inputs, **options)


def jacobian(*, of: Callable, wrt: int | str = 0, inputs: Any, holomorphic: bool = False, **options: Any):
    """Register ``fn`` as the Jacobian of ``of`` w.r.t. ``wrt`` (shape ``out + in``, as ``jax.jacfwd``);
    ``holomorphic=True`` for the complex derivative of a holomorphic ``of``."""
    return _decorator(lambda: Jacobian(of=of, wrt=wrt, holomorphic=holomorphic), inputs=inputs, **options)


def hessian(
    *,
    of: Callable,
    wrt: int | str = 0,
    inputs: Any,
    hvp: bool = False,
    matrix_free: bool | None = None,
    **options: Any,
):
    """Register ``fn`` as the Hessian of scalar ``of`` w.r.t. ``wrt`` (shape ``in * 2``).

    ``hvp=True``: ``fn(*args, v)`` returns the Hessian-vector product ``H v``
    instead. ``matrix_free``: check with Hessian-vector products against random
    probes (``True``), with dense Hessians (``False``), or by size (``None``,
    above :data:`derivcheck.MATRIX_FREE_THRESHOLD` entries of ``wrt``).
    """
    return _decorator(lambda: Hessian(of=of, wrt=wrt, hvp=hvp, matrix_free=matrix_free), inputs=inputs, **options)


def vjp(*, of: Callable, wrt: Any = 0, inputs: Any, **options: Any):
    """Register ``fn(*args, ct)`` as the pull-back of cotangent ``ct`` through ``of`` to ``wrt``.

    ``wrt`` names one argument (an array or a pytree, e.g. a dict of parameters) or a tuple of them;
    ``fn`` returns the cotangent in that structure, and ``ct`` has the structure of ``of``'s output.
    """
    return _decorator(lambda: VJP(of=of, wrt=_wrt(wrt)), inputs=inputs, **options)


def jvp(*, of: Callable, wrt: Any = 0, inputs: Any, **options: Any):
    """Register ``fn(*args, t)`` as the push-forward of tangent ``t`` (shaped like ``args[wrt]``) through ``of``.

    Checked against ``jax.jvp``; ``fn`` returns the tangent of ``of``'s output (its shape).
    """
    return _decorator(lambda: JVP(of=of, wrt=_wrt(wrt)), inputs=inputs, **options)


def definite(
    kind: str,
    *,
    inputs: Any,
    of: Callable | None = None,
    wrt: int | str = 0,
    hvp: bool = False,
    matrix_free: bool | None = None,
    **options: Any,
):
    """Register ``fn`` as a matrix that is ``kind`` (``"pd"``, ``"psd"``, ``"nd"``, ``"nsd"``).

    With ``of=``, the matrix must also equal ``jax.hessian(of)`` w.r.t. ``wrt``.
    ``hvp=True``: ``fn(*args, v)`` returns the matrix times ``v`` (shaped like
    ``args[wrt]``). ``matrix_free`` as for :func:`hessian`: extreme eigenvalues
    by Lanczos instead of ``eigvalsh``.
    """
    return _decorator(
        lambda: Definite(definiteness=kind, of=of, wrt=wrt, hvp=hvp, matrix_free=matrix_free), inputs=inputs, **options
    )


# ------------------------------------------------------- claims beyond derivatives

_MONTE_CARLO_OPTIONS = ("false_alarm", "power", "effect", "min_samples", "max_samples", "draws")


def _monte_carlo(options: dict[str, Any]) -> dict[str, Any]:
    """Pop the Monte Carlo options (:class:`~derivcheck._derivation.MonteCarlo`'s fields) from ``options``."""
    return {k: options.pop(k) for k in _MONTE_CARLO_OPTIONS if k in options}


def identity(*, of: Callable, inputs: Any, **options: Any):
    """Register ``fn`` as an expression equal to ``of`` on every input (either side may use JAX transforms)."""
    return _decorator(lambda: _claims.Identity(of=of), inputs=inputs, **options)


def special_case(*, of: Callable, at: dict[str, Any], inputs: Any, **options: Any):
    """Register ``fn`` as what ``of`` becomes at special sizes or arguments, e.g. ``at={"n": 1}``."""
    pairs = tuple(at.items()) if isinstance(at, dict) else ()
    return _decorator(lambda: _claims.SpecialCase(of=of, at=pairs), inputs=inputs, **options)


def limit(*, of: Callable, along: str, inputs: Any, to: float = float("inf"), points=(), min_rate=0.25, **options: Any):
    """Register ``fn`` as the limit of ``of`` as ``along`` (a dimension or scalar argument) tends to ``to``.

    ``points``: the sizes (or argument values) to approach it along; ``min_rate``:
    the relative difference must shrink at least like ``h^min_rate``.
    """
    return _decorator(
        lambda: _claims.Limit(of=of, along=along, to=float(to), points=tuple(points), min_rate=float(min_rate)),
        inputs=inputs,
        **options,
    )


def expectation(*, of: Callable, noise: Callable, inputs: Any, exact: Callable | None = None, **options: Any):
    """Register ``fn(*args)`` as ``E[of(*args, ξ)]``, ``ξ = noise(key, *args)`` (checked by Monte Carlo).

    ``exact``: a closed form of the expectation, also checked. Monte Carlo
    options: ``false_alarm``, ``power``, ``effect``, ``min_samples``, ``max_samples``, ``draws``.
    """
    mc = _monte_carlo(options)
    return _decorator(
        lambda: _claims.Expectation(of=of, noise=noise, exact=exact, mc=_claims.MonteCarlo(**mc)),
        inputs=inputs,
        **options,
    )


def expected_gradient(
    *, of: Callable, noise: Callable, inputs: Any, wrt: int | str = 0, exact: Callable | None = None, **options: Any
):
    """Register ``fn(*args)`` as ``E[∇_wrt of(*args, ξ)]``, ``ξ = noise(key, *args)``.

    ``exact``: a closed form of ``E[of(*args, ξ)]``; then ``fn`` must also equal
    its gradient exactly. Monte Carlo options as for :func:`expectation`.
    """
    mc = _monte_carlo(options)
    return _decorator(
        lambda: _claims.ExpectedGradient(of=of, noise=noise, wrt=wrt, exact=exact, mc=_claims.MonteCarlo(**mc)),
        inputs=inputs,
        **options,
    )


def equivalent_objective(
    *, of: Callable, noise: Callable, inputs: Any, wrt: int | str = 0, up_to_constant: bool = False, **options: Any
):
    """Register the objective ``fn(*args)`` as equivalent to minimising ``E[of(*args, ξ)]`` over ``wrt``.

    Checked as ``E[of] = fn`` and ``E[∇of] = ∇fn`` (only the gradients with
    ``up_to_constant``). Monte Carlo options as for :func:`expectation`.
    """
    mc = _monte_carlo(options)
    return _decorator(
        lambda: _claims.EquivalentObjective(
            of=of, noise=noise, wrt=wrt, up_to_constant=up_to_constant, mc=_claims.MonteCarlo(**mc)
        ),
        inputs=inputs,
        **options,
    )


def convergence_order(
    order: float | None = 2.0,
    *,
    inputs: Any,
    constant: Any = None,
    root: Callable | None = None,
    steps: int = 100,
    order_tol: float = 0.1,
    constant_tol: float = 0.1,
    **options: Any,
):
    """Register the iteration step ``fn(x, *params)`` as converging with order ``order`` (``None``: converging).

    ``constant``: the asymptotic constant ``C`` in ``|e_{k+1}| ≈ C|e_k|^p`` (a number
    or ``constant(x_star, *params)``); ``root(x0, *params)``: the limit ``x*``.

    >>> import jax.numpy as jnp, derivcheck as dc
    >>> starts = dc.inputs(x=dc.uniform(low=1.0, high=3.0), a=dc.uniform(low=1.0, high=4.0), regimes=("typical",))
    >>> @dc.convergence_order(2.0, root=lambda x, a: jnp.sqrt(a), inputs=starts, registry=dc.Registry())
    ... def newton_sqrt(x, a):
    ...     return (x + a / x) / 2
    >>> dc.check(newton_sqrt, trials=20).outcome
    'holds'
    """
    return _decorator(
        lambda: _claims.ConvergenceOrder(
            order=order,
            constant=constant,
            root=root,
            steps=steps,
            order_tol=order_tol,
            constant_tol=constant_tol,
        ),
        inputs=inputs,
        **options,
    )


def convex(*, inputs: Any, wrt: int | str = 0, strict: bool = False, **options: Any):
    """Register the objective ``fn`` as (``strict``ly) convex in ``wrt`` (Hessian PSD, chord test)."""
    return _decorator(lambda: _claims.Convex(wrt=wrt, strict=strict), inputs=inputs, **options)


def concave(*, inputs: Any, wrt: int | str = 0, strict: bool = False, **options: Any):
    """Register the objective ``fn`` as (``strict``ly) concave in ``wrt``."""
    return _decorator(lambda: _claims.Convex(wrt=wrt, strict=strict, concave=True), inputs=inputs, **options)


def has_minimum(*, inputs: Any, wrt: int | str = 0, steps: int = 60, **options: Any):
    """Register the claim that the objective ``fn`` attains its infimum over ``wrt`` on every input drawn."""
    return _decorator(lambda: _claims.HasMinimum(wrt=wrt, steps=steps), inputs=inputs, **options)


def descent(*, of: Callable, inputs: Any, wrt: int | str = 0, step: int | str = -1, **options: Any):
    """Register the update ``fn(*args)`` (the new ``wrt``) as decreasing ``of`` for every small step size.

    ``step`` names the step-size argument; its drawn value is the largest step tried.
    """
    return _decorator(lambda: _claims.Descent(of=of, wrt=wrt, step=step), inputs=inputs, **options)
