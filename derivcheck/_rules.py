"""Custom JAX rules (``jax.custom_vjp``, ``jax.custom_jvp``), checked where they live.

``@dc.rule(inputs=...)`` stacked on a custom function registers derivations
that compare its rule with JAX autodiff of its *primal* definition
(``custom.fun``, the undecorated function: autodiff through it never calls
the rule). Nothing new is checked here: each side of the rule becomes a
plain function of the drawn arguments and the existing claims check it:

==========================  ================================================  ==========
derivation                  derived side                                      claim
==========================  ================================================  ==========
``f[rule wrt x]``           ``bwd(*nondiff, res, ct)[k]``, ``res`` of ``fwd``  ``vjp``
                            (custom_vjp), or ``jvp(*nondiff, primals,          ``jvp``
                            tangents)[1]`` with the tangent ``t`` in slot
                            ``k``, zeros elsewhere (custom_jvp)
``f[rule output]``          the primal output the rule returns                ``identity``
==========================  ================================================  ==========

one ``wrt`` derivation per differentiable argument (not in ``nondiff_argnums``,
drawn as floats), each checked against ``jax.vjp``/``jax.jvp`` of ``custom.fun``.
Arguments in ``nondiff_argnums`` are static to JAX (a traced value there is an
error), so they are declared with ``dc.constant(value)`` and passed as that value,
never drawn per trial nor differentiated.

``expect=dc.deviates("why")``: the rule's derivatives are meant to differ from
autodiff of the primal (gradient clipping, a straight-through estimator). The
derivative derivations are then *expected failures* with that reason: they still
run, a deviation is reported as expected, and a rule that starts matching its
primal is reported as an unexpected hold. The forward output must still equal the
primal's (a deviation is about derivatives only).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from derivcheck import _registry
from derivcheck._derivation import HOLDS, JVP, VJP, DerivationError, Expect, Identity, positional_parameters
from derivcheck._format import callable_name
from derivcheck._inputs import Constant, CustomInputs, Inputs, InputSpecError, as_inputs, spec_leaves

RULE_ATTRIBUTE = "__derivcheck_rules__"


def is_custom(fn: Any) -> bool:
    """Whether ``fn`` is a ``jax.custom_vjp`` or ``jax.custom_jvp`` function."""
    return isinstance(fn, jax.custom_vjp | jax.custom_jvp)


def _kind(custom: Any) -> str:
    return "custom_vjp" if isinstance(custom, jax.custom_vjp) else "custom_jvp"


@dataclasses.dataclass(frozen=True, eq=False)
class Layout:
    """Where the primal's arguments come from: drawn (by name) or fixed (``nondiff_argnums``, by value)."""

    names: tuple[str, ...]  # the primal's positional parameters
    static: dict[int, Any]  # position -> value, for the nondiff_argnums
    nondiff: tuple[int, ...]

    @property
    def drawn(self) -> tuple[str, ...]:
        return tuple(n for i, n in enumerate(self.names) if i not in self.static)

    @property
    def diff(self) -> tuple[int, ...]:
        return tuple(i for i in range(len(self.names)) if i not in self.nondiff)

    def full(self, drawn: tuple) -> list[Any]:
        """The primal's arguments in order: the drawn ones with the fixed ones put back."""
        it = iter(drawn)
        return [self.static[i] if i in self.static else next(it) for i in range(len(self.names))]


def _signature(names: tuple[str, ...], extra: str | None) -> inspect.Signature:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature([inspect.Parameter(n, kind) for n in (*names, *([extra] if extra else []))])


class _Side:
    """One side of a rule as a plain function of the drawn arguments (named like the primal's)."""

    def __init__(self, custom: Any, layout: Layout, what: str, extra: str | None = None) -> None:
        self.custom, self.layout = custom, layout
        self.__signature__ = _signature(layout.drawn, extra)
        self.__qualname__ = self.__name__ = f"{callable_name(custom)}[{what}]"
        self.__module__ = getattr(custom, "__module__", None) or "?"
        self.__doc__ = f"The {what} of the {_kind(custom)} rule of {callable_name(custom)}."

    edited: str = ""
    """The rule function (``bwd``, ``fwd``, ``jvp``) a fix of this side edits; none for the primal."""

    def rule(self, attribute: str, define: str) -> Callable[..., Any]:
        fn = getattr(self.custom, attribute, None)
        if fn is None:
            name = callable_name(self.custom)
            raise DerivationError(f"{name} has no rule yet: call {name}.{define} before checking it")
        return fn

    def editable(self) -> tuple[Callable[..., Any], Callable[[Callable[..., Any]], Any]]:
        """The user's function a fix of this side edits (the rule's :attr:`edited`), and how an edited copy
        of it becomes this side again (the same custom function with that one rule function replaced)."""
        if not self.edited:
            raise DerivationError(f"{self.__name__} is the primal, not a rule: there is no rule function to edit")
        define = "defvjp(fwd, bwd)" if isinstance(self.custom, jax.custom_vjp) else "defjvp(jvp)"
        fn = self.rule(self.edited, define)

        def rebuilt(edited: Callable[..., Any]) -> Any:
            side = copy.copy(self)
            side.custom = _redefined(self.custom, self.edited, edited)
            return side

        return fn, rebuilt


def _redefined(custom: Any, attribute: str, fn: Callable[..., Any]) -> Any:
    """A copy of the custom function ``custom`` whose rule function ``attribute`` is ``fn`` (the others kept)."""
    nondiff = tuple(getattr(custom, "nondiff_argnums", ()) or ())
    if isinstance(custom, jax.custom_vjp):
        new = jax.custom_vjp(custom.fun, nondiff_argnums=nondiff)
        rules = {"fwd": custom.fwd, "bwd": custom.bwd, attribute: fn}
        new.defvjp(rules["fwd"], rules["bwd"])
        return new
    new = jax.custom_jvp(custom.fun, nondiff_argnums=nondiff)
    new.defjvp(fn)
    return new


class Primal(_Side):
    """``custom.fun``, the primal definition (what JAX differentiates for the reference)."""

    def __init__(self, custom: Any, layout: Layout) -> None:
        super().__init__(custom, layout, "primal")
        self.__qualname__ = self.__name__ = callable_name(custom)

    def __call__(self, *drawn: Any) -> Any:
        return self.custom.fun(*self.layout.full(drawn))


class Forward(_Side):
    """The primal output the rule returns (``fwd(*args)[0]``, or ``jvp``'s first output)."""

    def __init__(self, custom: Any, layout: Layout, what: str) -> None:
        super().__init__(custom, layout, what)
        self.edited = "fwd" if isinstance(custom, jax.custom_vjp) else "jvp"

    def __call__(self, *drawn: Any) -> Any:
        args = self.layout.full(drawn)
        if isinstance(self.custom, jax.custom_vjp):
            return self.rule("fwd", "defvjp(fwd, bwd)")(*args)[0]
        return _jvp_rule(self, args, None)[0]


class Pullback(_Side):
    """``bwd``'s cotangent for the ``k``-th differentiable argument (custom_vjp)."""

    def __init__(self, custom: Any, layout: Layout, k: int) -> None:
        super().__init__(custom, layout, f"rule wrt {layout.names[layout.diff[k]]}", "cotangent")
        self.k, self.edited = k, "bwd"

    def __call__(self, *drawn_and_ct: Any) -> Any:
        *drawn, ct = drawn_and_ct
        args = self.layout.full(tuple(drawn))
        _, res = self.rule("fwd", "defvjp(fwd, bwd)")(*args)
        nondiff = [args[i] for i in self.layout.nondiff]
        cts = self.rule("bwd", "defvjp(fwd, bwd)")(*nondiff, res, ct)
        if not isinstance(cts, tuple | list) or len(cts) != len(self.layout.diff):
            raise DerivationError(
                f"the bwd of {callable_name(self.custom)} must return a tuple of {len(self.layout.diff)} "
                f"cotangents (one per differentiable argument), got {type(cts).__name__}"
            )
        return cts[self.k]


class Pushforward(_Side):
    """The rule's output tangent for a tangent in the ``k``-th differentiable argument alone (custom_jvp)."""

    def __init__(self, custom: Any, layout: Layout, k: int) -> None:
        super().__init__(custom, layout, f"rule wrt {layout.names[layout.diff[k]]}", "tangent")
        self.k, self.edited = k, "jvp"

    def __call__(self, *drawn_and_t: Any) -> Any:
        *drawn, t = drawn_and_t
        return _jvp_rule(self, self.layout.full(tuple(drawn)), (self.k, t))[1]


def _jvp_rule(side: _Side, args: list[Any], tangent: tuple[int, Any] | None) -> Any:
    """``jvp(*nondiff, primals, tangents)``: zero tangents except ``tangent = (k, t)``."""
    primals = tuple(args[i] for i in side.layout.diff)
    tangents = [jax.tree.map(jnp.zeros_like, p) for p in primals]
    if tangent is not None:
        tangents[tangent[0]] = tangent[1]
    nondiff = [args[i] for i in side.layout.nondiff]
    return side.rule("jvp", "defjvp(jvp)")(*nondiff, primals, tuple(tangents))


def _layout(custom: Any, spec: Any) -> Layout:
    """The primal's parameters, and the values of its ``nondiff_argnums`` (declared with ``dc.constant``)."""
    names = tuple(p.name for p in positional_parameters(custom.fun))
    if not names:
        raise DerivationError(
            f"the primal of {callable_name(custom)} takes no named positional parameters: "
            "dc.rule draws its arguments by name (def f(x, params), not def f(*args))"
        )
    nondiff = tuple(getattr(custom, "nondiff_argnums", ()) or ())
    if isinstance(spec, CustomInputs):
        if nondiff:
            raise DerivationError(
                "nondiff_argnums need their values declared: use dc.inputs(..., name=dc.constant(value))"
            )
        return Layout(names, {}, ())
    table = dict(spec.specs)
    static = {}
    for i in nondiff:
        given = table.get(names[i]) if i < len(names) else None
        if not isinstance(given, Constant):
            raise DerivationError(
                f"argument {names[i] if i < len(names) else i!r} is in nondiff_argnums, which JAX needs fixed "
                f"(not drawn): declare it as {names[i] if i < len(names) else 'it'}=dc.constant(value)"
            )
        static[i] = given.value
    return Layout(names, static, nondiff)


def _floats(spec: Any, names: tuple[str, ...]) -> set[str]:
    """The primal's arguments (of ``names``) drawn as floats: the differentiable ones.

    A custom sampler's outputs are read abstractly, once (``jax.eval_shape``): integer labels and PRNG
    keys it draws are not differentiated. A sampler that cannot be read, or an argument without a spec,
    counts as floats (its check names the problem).
    """
    if isinstance(spec, CustomInputs):
        try:
            drawn = jax.eval_shape(spec.draw, jax.random.PRNGKey(0))
        except Exception:
            return set(names)
        drawn = tuple(drawn) if isinstance(drawn, list | tuple) else (drawn,)
        return {
            name
            for i, name in enumerate(names)
            if i >= len(drawn) or all(jnp.issubdtype(x.dtype, jnp.inexact) for x in jax.tree.leaves(drawn[i]))
        }
    table = dict(spec.specs) if isinstance(spec, Inputs) else {}
    return {
        name
        for name in names
        if name not in table
        or all(np.issubdtype(np.dtype(getattr(s, "dtype", "float64")), np.inexact) for s in spec_leaves(table[name]))
    }


def deviates(reason: str) -> Expect:
    """Mark a custom rule as deliberately different from autodiff of its primal (clipping, straight-through).

    Its derivative derivations are expected failures with this reason (a rule
    that starts matching is reported); its forward output must still match.

    >>> deviates("clips the gradient to [-1, 1]").word
    'fails'
    """
    if not isinstance(reason, str) or not reason.strip():
        raise DerivationError("deviates(reason): say how the rule deviates, e.g. 'clips the gradient to [-1, 1]'")
    return Expect(holds=False, reason=f"deviates on purpose: {reason.strip()}", deviates=True)


def rule(*, inputs: Any, name: str | None = None, expect: Expect = HOLDS, **options: Any) -> Callable[[Any], Any]:
    """Check the rule of a ``jax.custom_vjp``/``jax.custom_jvp`` function against autodiff of its primal.

    Stack it on the custom function (above ``@jax.custom_vjp``); it returns the
    function unchanged. ``inputs`` draws the primal's arguments (its
    ``nondiff_argnums`` as ``dc.constant(value)``); ``name`` replaces the
    derivations' base name (default ``module.function``); ``expect``:
    :data:`HOLDS`, :func:`derivcheck.fails`, or :func:`deviates`. Other options
    (``source``, ``rtol``, ``atol``, ``registry``) as for :func:`derivcheck.vjp`.
    """

    def decorate(custom: Any) -> Any:
        caller = sys._getframe(1)  # the code applying @dc.rule: the user's file
        base = name or f"{_registry.module_label(getattr(custom, '__module__', None) or '?')}.{callable_name(custom)}"
        try:
            made = _declare_rule(custom, inputs, base, expect, options)
        except (DerivationError, InputSpecError) as exc:  # one error row; the rest of the file loads and runs
            made = (_declaration_error(custom, base, exc, _line(caller), expect, options),)
        if is_custom(custom) or _defined_in(custom, caller):  # a plain function of the user's: its error row
            setattr(custom, RULE_ATTRIBUTE, made)  # is found by --rules too (rules_of)
        return custom

    return decorate


def _defined_in(fn: Any, frame: types.FrameType) -> bool:
    """Whether ``fn`` is a plain function of the module running ``frame`` (never a library's)."""
    return isinstance(fn, types.FunctionType) and fn.__module__ == frame.f_globals.get("__name__")


def _line(frame: types.FrameType) -> str:
    """``file.py:line`` where ``frame`` is (the decorator line in the user's file)."""
    return f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"


def _declaration_error(custom: Any, base: str, exc: Exception, where: str, expect: Any, options: dict) -> Any:
    """The ``base[rule]`` derivation that reports a rule's declaration error when it is checked."""

    def problem() -> Any:
        raise DerivationError(f"{exc} ({where})")

    fn = custom if callable(custom) else problem  # the derived side is never run: the claim cannot be made
    return _registry.declare(problem, fn, inputs=None, name=f"{base}[rule]", expect=expect, **options)


def _declare_rule(custom: Any, inputs: Any, base: str, expect: Expect, options: dict) -> tuple[Any, ...]:
    """The derivations of one custom rule: its forward output, and its derivative wrt each float argument."""
    if not is_custom(custom):
        raise DerivationError(
            f"@dc.rule decorates a jax.custom_vjp or jax.custom_jvp function (put it above "
            f"@jax.custom_vjp), got {callable_name(custom)}"
        )
    spec = as_inputs(inputs)
    layout = _layout(custom, spec)
    if isinstance(spec, Inputs):  # the nondiff_argnums are passed as their values, not drawn
        fixed = {layout.names[i] for i in layout.static}
        spec = dataclasses.replace(spec, specs=tuple((n, s) for n, s in spec.specs if n not in fixed))
    primal = Primal(custom, layout)
    forward = Forward(custom, layout, "rule output")
    made = [
        _registry.declare(
            lambda: Identity(of=primal),
            forward,
            inputs=spec,
            name=f"{base}[rule output]",
            expect=HOLDS if getattr(expect, "deviates", False) else expect,  # a deviation is in derivatives only
            **options,
        )
    ]
    side, claim = (Pullback, VJP) if isinstance(custom, jax.custom_vjp) else (Pushforward, JVP)
    floats = _floats(spec, layout.names)
    for k, i in enumerate(layout.diff):
        arg = layout.names[i]
        if arg not in floats:
            continue
        made.append(
            _registry.declare(
                lambda arg=arg, claim=claim: claim(of=primal, wrt=arg),
                side(custom, layout, k),
                inputs=spec,
                name=f"{base}[rule wrt {arg}]",
                expect=expect,
                **options,
            )
        )
    return tuple(made)


# ---------------------------------------------------------------------- --rules


def rules_of(module: Any) -> tuple[list[Any], list[str]]:
    """The derivations of every custom rule ``module`` defines, and one line per rule left unchecked."""
    label = _registry.module_label(module.__name__)
    found, skipped = [], []
    for attr, value in vars(module).items():
        made = getattr(value, RULE_ATTRIBUTE, None)
        if not (is_custom(value) or made) or getattr(value, "__module__", None) != module.__name__:
            continue
        if made:
            found.extend(made)
        else:
            skipped.append(
                f"skipped {label}.{attr}: a {_kind(value)} rule without declared inputs "
                "(stack @dc.rule(inputs=dc.inputs(...)) on it to check it)"
            )
    return found, skipped


def checked_rules(module: Any) -> list[Any]:
    """The derivations of every ``@dc.rule``-checked custom function in ``module``'s namespace, defined
    there or imported (what the pytest plugin collects from a test module that imports them)."""
    return [d for value in list(vars(module).values()) if is_custom(value) for d in getattr(value, RULE_ATTRIBUTE, ())]


def load_rules(target: str) -> tuple[list[Any], list[str]]:
    """Import ``target`` (``pkg.mod`` or a ``.py`` file) and return :func:`rules_of` its module.

    Raises :class:`derivcheck._registry.LoadError` with a one-line message when it cannot be imported.
    """
    _registry.load(target)
    path = Path(target)
    key = _registry.file_module_name(path) if target.endswith(".py") or path.is_file() else target
    return rules_of(sys.modules[key])
