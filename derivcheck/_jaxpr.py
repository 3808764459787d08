"""One jaxpr interpreter, equation by equation, with hooks.

:func:`run` evaluates a jaxpr the way ``jax.core.eval_jaxpr`` does (each
equation's primitive bound to its inputs), and lets a caller watch it:

==============  ==============================================================
hook            called with
==============  ==============================================================
``on_value``    every value the jaxpr holds: its constants and inputs first,
                then each equation's outputs, in order
``on_equation`` each equation bound as a primitive, with its input values and
                the name of the call it sits in (``""`` at the top)
``on_outputs``  each primitive equation, its inputs and outputs; it returns the
                outputs, which it may replace (the
                rounding estimate perturbs them: :func:`derivcheck._compare.rounding_spread`)
==============  ==============================================================

With ``enter=True`` the interpreter steps into ``jit`` and ``custom_jvp``
bodies (a closed sub-jaxpr taking the equation's inputs) instead of binding
them whole, so a comparison inside a library function is seen too.

Two users: :func:`derivcheck._compare.rounding_spread` (Monte Carlo
arithmetic: every result perturbed) and the diagnosis' piecewise
cases (:mod:`derivcheck._diagnose.piecewise`: the masks of every comparison).
Traceable: called inside ``jax.jit``/``jax.vmap`` the values are tracers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax.extend as jex

ValueHook = Callable[[Any], None]
EquationHook = Callable[[Any, list, str], None]
OutputsHook = Callable[[Any, list, list], list]


def run(
    jaxpr,
    consts: Sequence[Any],
    args: Sequence[Any],
    *,
    on_value: ValueHook | None = None,
    on_equation: EquationHook | None = None,
    on_outputs: OutputsHook | None = None,
    enter: bool = False,
    scope: str = "",
) -> list:
    """The outputs of ``jaxpr`` at ``args`` (a flat list), calling the hooks on the way (module docstring)."""
    env = dict(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, args, strict=True))

    def read(v):
        return v.val if isinstance(v, jex.core.Literal) else env[v]

    if on_value is not None:
        for value in env.values():
            on_value(value)
    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        sub = sub_jaxpr(eqn) if enter else None
        if sub is not None:
            inner = str(eqn.params.get("name") or scope)
            hooks = {"on_value": on_value, "on_equation": on_equation, "on_outputs": on_outputs}
            outs = run(sub[0], sub[1], ins, **hooks, enter=True, scope=inner)
        else:
            outs = bind(eqn, ins)
            if on_equation is not None:
                on_equation(eqn, ins, scope)
            if on_outputs is not None:
                outs = on_outputs(eqn, ins, outs)
        for var, value in zip(eqn.outvars, outs, strict=True):
            env[var] = value
            if on_value is not None and sub is None:
                on_value(value)
    return [read(v) for v in jaxpr.outvars]


def equations(jaxpr) -> list:
    """The primitive equations :func:`run` binds with ``enter=True``, in order (call bodies stepped into)."""
    out = []
    for eqn in jaxpr.eqns:
        sub = sub_jaxpr(eqn)
        out.extend(equations(sub[0]) if sub is not None else [eqn])
    return out


def bind(eqn, ins: Sequence[Any]) -> list:
    """One equation's outputs (always a list), as ``jax.core.eval_jaxpr`` binds it."""
    params = eqn.primitive.get_bind_params(eqn.params)
    outs = eqn.primitive.bind(*ins, **params)
    return outs if eqn.primitive.multiple_results else [outs]


def sub_jaxpr(eqn) -> tuple[Any, Any] | None:
    """``(jaxpr, consts)`` of a call equation's body (``jit``, ``custom_jvp``), ``None`` for a primitive."""
    for key in ("jaxpr", "call_jaxpr"):
        sub = eqn.params.get(key)
        if isinstance(sub, jex.core.ClosedJaxpr) and len(sub.jaxpr.invars) == len(eqn.invars):
            return sub.jaxpr, sub.consts
    return None


def is_literal(v) -> bool:
    """Whether a jaxpr operand is a literal constant (its value is ``v.val``)."""
    return isinstance(v, jex.core.Literal)
