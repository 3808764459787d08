"""Step 3b: the error confined to one case of a piecewise step inside ``of`` or the derived function.

:func:`case_masks` runs a function's jaxpr through the shared interpreter
(:mod:`derivcheck._jaxpr`), entering ``jit`` and ``custom_jvp`` bodies, and
records the mask of every comparison (also inside ``max``, ``min``, ``abs``,
``sign``) on non-scalar operands; :func:`best_case` tests each case of ``of``
and of the derived function (a clamp ``x > 5`` the formula adds), and its
complement, as a region of the value, and names the function it belongs to.
An operand is named by what it is: an argument's name, a constant's value
(also one handed into a call body or broadcast), else ``u``, ``v``… one
name per value (:class:`Known`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from derivcheck import _jaxpr
from derivcheck._diagnose._evidence import Group, Observations, Region, aligned, coverage
from derivcheck._format import fmt_number

CASE_ROWS = 4  # failing trials per size set on which `of` is evaluated for piecewise cases


COMPARISONS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}


def case_masks(
    fn: Callable, args: Sequence[Any], arg_names: Sequence[str] = (), compiler_options: dict | None = None
) -> list[tuple[str, np.ndarray]]:
    """The cases of every piecewise step inside ``fn``, for a batch of trials: ``(label, bool masks)``.

    ``args`` carry a leading trial axis. ``fn``'s jaxpr is evaluated equation
    by equation (:func:`derivcheck._jaxpr.run`, entering ``jit`` and
    ``custom_jvp`` bodies) inside one ``jax.jit(jax.vmap(...))`` compiled with
    ``compiler_options``, in float64 as the check ran; every comparison
    ``a > b`` (also inside ``max``, ``min``, ``abs``, ``sign``) on non-scalar
    operands yields its mask, labelled like ``"u ≥ 0 in leaky_relu"`` (``u``:
    an intermediate value).
    """
    labels: list[str] = []

    def one(*xs):
        closed = jax.make_jaxpr(fn)(*xs)
        known = Known()
        env = dict(zip(closed.jaxpr.invars, xs, strict=False))
        for v, n in zip(closed.jaxpr.invars, arg_names, strict=False):
            known.name(env[v], n)
        out: list[tuple[str, Any]] = []

        def record(eqn, ins, scope):
            _record_case(eqn, ins, scope, known, out)

        _jaxpr.run(closed.jaxpr, closed.consts, list(xs), on_equation=record, on_outputs=known.follow, enter=True)
        labels[:] = [label for label, _ in out]
        return [mask for _, mask in out]

    with jax.enable_x64(True):  # the inputs are the check's float64 draws
        masks = jax.jit(jax.vmap(one), compiler_options=compiler_options)(*args)
    return [(label, np.asarray(m)) for label, m in zip(labels, masks, strict=True)]


SAME_VALUE = frozenset({"broadcast_in_dim", "convert_element_type", "reshape", "squeeze", "expand_dims", "copy"})
"""Primitives whose output is its input's value, re-laid: it keeps the input's name (``0`` broadcast is ``0``)."""


class Known:
    """What each traced value is called: an argument's name, or a constant's value carried through
    :data:`SAME_VALUE` primitives (``jnp.maximum(x, 0)`` compares ``x`` with a broadcast ``0``).

    Keyed by the value's identity (the interpreter hands the same object into ``jit`` bodies), holding
    the value so its identity stays unique while tracing.
    """

    def __init__(self) -> None:
        self._names: dict[int, tuple[Any, str]] = {}

    def name(self, value: Any, text: str) -> None:
        self._names[id(value)] = (value, text)

    def of(self, var: Any, value: Any) -> str | None:
        if _jaxpr.is_literal(var):
            return fmt_number(float(np.asarray(var.val)))
        if isinstance(value, np.ndarray | np.generic | int | float) and np.size(value) == 1 and np.isrealobj(value):
            return fmt_number(float(np.asarray(value)))  # a literal handed into a call body
        hit = self._names.get(id(value))
        return None if hit is None else hit[1]

    def follow(self, eqn, ins, outs):
        """The :func:`derivcheck._jaxpr.run` outputs hook: a re-laid named value keeps its name."""
        if eqn.primitive.name in SAME_VALUE and len(ins) == 1 and len(outs) == 1:
            text = self.of(eqn.invars[0], ins[0])
            if text is not None:
                self.name(outs[0], text)
        return outs


def _record_case(eqn, ins, scope: str, known: Known, out: list) -> None:
    prim = eqn.primitive.name
    arrays = [jnp.asarray(x) for x in ins]
    shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
    if not shape:
        return
    desc = _operands(eqn, ins, known)
    where = f" in {scope}" if scope else ""
    if prim in ("max", "min"):
        prim = "gt" if prim == "max" else "lt"
    if prim in COMPARISONS:
        a, b = arrays[0], arrays[1]
        mask = {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[prim]
        label = f"{desc[0]} {COMPARISONS[prim]} {desc[1]}"
    elif prim in ("abs", "sign"):
        mask, label = arrays[0] >= 0, f"{desc[0]} ≥ 0"
    else:
        return
    out.append((label + where, jnp.broadcast_to(mask, shape)))


def _operands(eqn, ins, known: Known) -> list[str]:
    """Each operand's name (:class:`Known`); unnamed intermediates are ``u``, ``v``, … one name per value."""
    neutral = iter("uvw")
    seen: dict[int, str] = {}
    out = []
    for var, value in zip(eqn.invars, ins, strict=True):
        text = known.of(var, value)
        if text is None:
            text = seen.get(id(value)) or next(neutral, "·")
            seen[id(value)] = text
        out.append(text)
    return out


def best_case(obs: Observations, wrong: list[np.ndarray]) -> tuple[float, Region] | None:
    """The piecewise case that holds every wrong entry, if any: of a comparison inside ``of``, or
    inside the derived function itself (a case it splits where ``of`` does not: ``x > 5`` in a clamp).

    The smallest such case wins; on a tie, ``of``'s (the case the reference has).
    """
    best = None
    for whose, fn, names, rows in _traced_functions(obs):
        cases = _trace_cases(obs, fn, names, rows)
        if cases is None:
            continue
        for key in cases[0]:
            for polarity in (True, False):
                region = _case_region(key, polarity, obs, cases, whose)
                cover = coverage(obs, region, wrong, CASE_ROWS)
                if cover is not None and (best is None or cover < best[0] - 1e-12):
                    best = (cover, region)
    return best


Rows = Callable[[Group, int], list[np.ndarray]]


def _traced_functions(obs: Observations) -> list[tuple[str, Callable, tuple[str, ...], Rows]]:
    """``(whose, function, argument names, its first k kept rows of a group)`` for ``of`` and the derived function."""
    names = obs.arg_names
    extra = getattr(obs.derivation.claim, "extra_arg", None)
    out: list[tuple[str, Callable, tuple[str, ...], Rows]] = []
    of = getattr(obs.derivation.claim, "of", None)
    if of is not None:
        out.append(("", of, names, lambda g, k: [g.kept_inputs(n)[:k] for n in names]))
    derived = (*names, extra) if extra else names
    out.append(("the derived function", obs.derivation, derived, lambda g, k: [g.kept_inputs(n)[:k] for n in derived]))
    return out


def _trace_cases(
    obs: Observations, fn: Callable, names: tuple[str, ...], rows: Rows
) -> list[dict[str, np.ndarray]] | None:
    """Per failing size set, each labelled case mask of ``fn`` on the first :data:`CASE_ROWS` kept rows, stacked."""
    per_group = []
    for g in obs.failing_groups:
        try:
            masks = case_masks(fn, rows(g, min(g.rows.size, CASE_ROWS)), names, obs.compile_options)
        except Exception:
            return None
        found: dict[str, np.ndarray] = {}
        seen: dict[str, int] = {}
        for label, m in masks:
            seen[label] = seen.get(label, 0) + 1
            found[f"{label}#{seen[label]}"] = m
        per_group.append(found)
    return per_group


def _case_region(key: str, polarity: bool, obs: Observations, cases, whose: str = "") -> Region:
    label = key.split("#")[0]
    groups = obs.failing_groups

    def build(g):
        stacked = cases[groups.index(g)].get(key)
        if stacked is None or len(stacked) != min(g.rows.size, CASE_ROWS):
            return None
        laid = aligned(stacked if polarity else ~stacked, g.shape)
        return laid[0] if laid else None

    cond, _, scope = label.partition(" in ")
    truth = ("true", "false") if polarity else ("false", "true")
    within = ", ".join(f"in {w}" for w in (scope, whose) if w)
    words = f"`{cond}` is {truth[0]}" + (f" ({within})" if within else "")
    return Region(words, f"right where it is {truth[1]}", build, kind="piecewise")
