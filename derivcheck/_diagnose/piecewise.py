"""Step 3b: the error confined to one case of a piecewise step inside ``of``.

:func:`case_masks` runs ``of``'s jaxpr through the shared interpreter
(:mod:`derivcheck._jaxpr`), entering ``jit`` and ``custom_jvp`` bodies, and
records the mask of every comparison (also inside ``max``, ``min``, ``abs``,
``sign``) on non-scalar operands; :func:`best_case` tests each case, and its
complement, as a region of the value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from derivcheck import _jaxpr
from derivcheck._diagnose._evidence import Observations, Region, aligned, coverage
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
        names = {v: n for v, n in zip(closed.jaxpr.invars, arg_names, strict=False)}
        out: list[tuple[str, Any]] = []

        def record(eqn, ins, scope):
            _record_case(eqn, ins, scope, names, out)

        _jaxpr.run(closed.jaxpr, closed.consts, list(xs), on_equation=record, enter=True)
        labels[:] = [label for label, _ in out]
        return [mask for _, mask in out]

    with jax.enable_x64(True):  # the inputs are the check's float64 draws
        masks = jax.jit(jax.vmap(one), compiler_options=compiler_options)(*args)
    return [(label, np.asarray(m)) for label, m in zip(labels, masks, strict=True)]


def _record_case(eqn, ins, scope: str, names: dict, out: list) -> None:
    prim = eqn.primitive.name
    arrays = [jnp.asarray(x) for x in ins]
    shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
    if not shape:
        return
    desc = [_operand(v, names) for v in eqn.invars]
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


def _operand(v, names: dict) -> str:
    if _jaxpr.is_literal(v):
        return fmt_number(float(np.asarray(v.val)))
    return names.get(v, "u")


def best_case(obs: Observations, wrong: list[np.ndarray]) -> tuple[float, Region] | None:
    """The piecewise case (of a comparison inside ``of``) that holds every wrong entry, if any."""
    of = getattr(obs.derivation.claim, "of", None)
    if of is None:
        return None
    cases = _trace_cases(obs, of)
    if cases is None:
        return None
    best = None
    for key in cases[0]:
        for polarity in (True, False):
            region = _case_region(key, polarity, obs, cases)
            cover = coverage(obs, region, wrong, CASE_ROWS)
            if cover is not None and (best is None or cover < best[0] - 1e-12):
                best = (cover, region)
    return best


def _trace_cases(obs: Observations, of: Callable) -> list[dict[str, np.ndarray]] | None:
    """Per failing size set, each labelled case mask on the first :data:`CASE_ROWS` kept rows, stacked."""
    per_group = []
    for g in obs.failing_groups:
        k = min(g.rows.size, CASE_ROWS)
        try:
            rows = [g.kept_inputs(n)[:k] for n in obs.arg_names]
            masks = case_masks(of, rows, obs.arg_names, obs.compile_options)
        except Exception:
            return None
        found: dict[str, np.ndarray] = {}
        seen: dict[str, int] = {}
        for label, m in masks:
            seen[label] = seen.get(label, 0) + 1
            found[f"{label}#{seen[label]}"] = m
        per_group.append(found)
    return per_group


def _case_region(key: str, polarity: bool, obs: Observations, cases) -> Region:
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
    words = f"`{cond}` is {truth[0]}" + (f" (in {scope})" if scope else "")
    return Region(words, f"right where it is {truth[1]}", build, kind="piecewise")
