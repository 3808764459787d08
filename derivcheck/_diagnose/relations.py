"""Steps 0–2: a precision problem, a complex conjugate, a linear relation (sign, factor, transpose,
permutation), a swap.

Each step reads the kept failing rows and returns a :class:`~derivcheck._result.Diagnosis`
when its relation fits every one of them by the check's own test, else ``None``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from derivcheck._diagnose._evidence import (
    Group,
    Observations,
    expand,
    fits_row,
    fits_rows,
    index_grid,
    leaves_size,
    segments,
    wrong_entries,
)
from derivcheck._diagnose._words import (
    Factor,
    axis_names,
    dim_expressions,
    explain_factor,
    size_coincidences,
    sizes_of,
    times,
)
from derivcheck._format import fmt_number
from derivcheck._inputs import sizes_label
from derivcheck._result import Diagnosis

PRECISION_REL = 1e-5  # below this relative error, a failure is rounding, not a formula error
FACTOR_TRIALS = 3
"""A factor (a sign, a constant, a size expression) is named only when this many failing trials agree on it.

One trial's ``c = ⟨D, R⟩/⟨R, R⟩`` is a ratio, not a finding: with a one-entry
value it always fits, and a formula that is off by a constant fails wherever
the reference is not zero, so a systematic factor never fails only once or twice."""


def precision(obs: Observations) -> Diagnosis | None:
    """Every failing trial differs by less than :data:`PRECISION_REL` relative — unless the second
    opinion sides with the reference on one of them while other usable trials hold: independent
    differences of ``of`` then agree with JAX and not with the derivation, and the error is
    confined to some inputs, so it is a formula's (a clamp wrong by 3e-7 only where ``x > 15``),
    not a lower-precision step's, which shows on every input; the later steps say where it lies."""
    rel = np.concatenate([g.rel_err[g.failed] for g in obs.groups])
    confined = any((np.asarray(g.valid, bool) & ~np.asarray(g.failed, bool)).any() for g in obs.groups)
    if rel.size and 0 < np.nanmax(rel) < PRECISION_REL and not (confined and _reference_confirmed(obs)):
        return Diagnosis(
            kind="precision",
            summary=f"a precision problem, not a wrong formula: the largest relative error is {np.nanmax(rel):.1e}",
            evidence=(
                f"every failing trial differs by less than {PRECISION_REL:g} relative (rtol {obs.tol.rtol:g}); "
                "formula errors (a sign, a factor, a dropped term) are far larger — look for cancellation "
                "or a lower-precision step",
            ),
        )
    return None


def _reference_confirmed(obs: Observations) -> bool:
    """Whether the second opinion sided with the reference on some failing trial (:func:`precision`)."""
    for g in obs.groups:
        with_reference = np.asarray(g.stats.get("opinion_with_reference", np.zeros(len(g.failed))), bool)
        if (with_reference & np.asarray(g.failed, bool)).any():
            return True
    return False


def _axis_perms(obs: Observations) -> list[tuple[int, ...]]:
    """Permutations of the value's axes that keep its shape in every size set (identity first)."""
    shapes = [g.shape for g in obs.failing_groups]
    ndim = len(shapes[0])
    pool = itertools.permutations(range(ndim)) if ndim <= 4 else [tuple(range(ndim)), tuple(reversed(range(ndim)))]
    return [p for p in pool if all(tuple(s[i] for i in p) == s for s in shapes)]


def factors(obs: Observations, perm: tuple[int, ...]) -> list[np.ndarray] | None:
    """``c_t = ⟨P(R), D⟩ / ⟨P(R), P(R)⟩`` per kept row (``⟨a, b⟩ = Σ conj(a) b``), if ``D = c_t P(R)``
    fits every row; a complex ``c_t`` counts by its real part (the factors named are real, and each
    is verified again by the check's test)."""
    out = []
    for g in obs.failing_groups:
        pr = np.transpose(g.reference_values, (0, *(i + 1 for i in perm)))
        flat_d, flat_r = g.derived.reshape(len(pr), -1), pr.reshape(len(pr), -1)
        denom = np.einsum("ij,ij->i", np.conj(flat_r), flat_r).real
        if np.any(denom == 0):
            return None
        c = np.einsum("ij,ij->i", np.conj(flat_r), flat_d) / denom
        if not fits_rows(obs, g, g.derived, expand(c, pr) * pr).all():
            return None
        out.append(np.real(c))
    return out


def proportional(obs: Observations) -> Diagnosis | None:
    for perm in _axis_perms(obs):
        cs = factors(obs, perm)
        if cs is None:
            continue
        c = np.concatenate(cs)
        identity = perm == tuple(range(len(perm)))
        verify = _factor_check(obs, perm)
        if verify(np.ones_like(c)):  # derived = P(reference): for the identity, no relation to name (rounding)
            return None if identity else _permutation_diagnosis(obs, perm, None, c)
        if c.size < FACTOR_TRIALS:
            continue  # too few trials to name a factor (see FACTOR_TRIALS); step 7 reports the ratio
        factor = explain_factor(c, sizes_of(obs), obs.dims, verify)
        median = float(np.median(c))
        if factor is None and verify(np.full_like(c, median)):
            factor = Factor(fmt_number(median))
        if factor is None:
            continue
        if identity:
            return _factor_diagnosis(obs, factor, c)
        return _permutation_diagnosis(obs, perm, factor, c)
    return None


def conjugate(obs: Observations) -> Diagnosis | None:
    """``D = ±conj(P(R))`` on every kept row, for complex values only: a conjugation slip (``z`` where
    ``conj(z)`` is right, or the Hermitian transpose where the plain one is right), alone or with a sign.

    Real values never get here: for them ``conj(R) = R``, and that relation is the sign step's.
    """
    groups = obs.failing_groups
    if not any(np.iscomplexobj(g.derived) or np.iscomplexobj(g.reference_values) for g in groups):
        return None
    for perm in _axis_perms(obs):
        for sign in (1.0, -1.0):
            moved = [sign * np.conj(np.transpose(g.reference_values, (0, *(i + 1 for i in perm)))) for g in groups]
            if all(fits_rows(obs, g, g.derived, m).all() for g, m in zip(groups, moved, strict=True)):
                return _conjugate_diagnosis(obs, perm, sign)
    return _conjugated_derivative(obs)


def _conjugated_derivative(obs: Observations) -> Diagnosis | None:
    """An entry-wise VJP ``R = ct ⊙ f′(z)`` written ``D = ct ⊙ conj(f′(z))`` (PyTorch's convention, where
    JAX does not conjugate): ``D = ct ⊙ conj(R / ct)`` on every kept row, read where the evidence holds
    the cotangent shaped like the values and it has no zero entry (random draws)."""
    moved = []
    for g in obs.failing_groups:
        ct = g.inputs.get("cotangent")
        if ct is None or ct.shape[1:] != g.shape or not np.iscomplexobj(ct):
            return None
        ct = ct[g.rows]
        if np.any(ct == 0):
            return None
        moved.append(ct * np.conj(g.reference_values / ct))
    groups = obs.failing_groups
    if not all(fits_rows(obs, g, g.derived, m).all() for g, m in zip(groups, moved, strict=True)):
        return None
    n = sum(g.rows.size for g in groups)
    return Diagnosis(
        kind="conjugate",
        summary="the derivative is conjugated, the cotangent is not: derived = ct · conj(reference / ct)",
        evidence=(
            f"derived = ct · conj(reference / ct) entry by entry within tolerance on all {n} failing trials read",
            "jax.vjp of a holomorphic f gives ct · f′(z), not ct · conj(f′(z)) (PyTorch's convention)",
        ),
    )


def _conjugate_diagnosis(obs: Observations, perm: tuple[int, ...], sign: float) -> Diagnosis:
    n = sum(g.rows.size for g in obs.failing_groups)
    minus = "−" if sign < 0 else ""
    if perm == tuple(range(len(perm))):
        formula, what = f"derived = {minus}conj(reference)", "complex conjugate"
    elif len(perm) == 2:
        formula = f"derived = {minus}conj(reference)ᵀ"
        what = "conjugate transpose (Hermitian where plain, or plain where Hermitian)"
    else:
        letters = "ijklmnop"[: len(perm)]
        src = [""] * len(perm)
        for a, p in enumerate(perm):
            src[p] = letters[a]
        formula = f"derived[{','.join(letters)}] = {minus}conj(reference[{','.join(src)}])"
        what = "complex conjugate with axes permuted"
    evidence = (
        f"{formula} within tolerance on all {n} failing trials read",
        "JAX's conventions: for a real-valued f of complex z = x + iy, jax.grad gives ∂f/∂x − i ∂f/∂y "
        "(2·conj(z) for |z|²); jax.vjp pulls a cotangent back without conjugating it (ct · f′(z) when f is "
        "holomorphic); jax.jvp is linear (f′(z) · t)",
    )
    sign_words = " and a sign error" if sign < 0 else ""
    return Diagnosis(kind="conjugate", summary=f"{what}{sign_words}: {formula}", evidence=evidence)


def _factor_check(obs: Observations, perm: tuple[int, ...]) -> Callable[[np.ndarray], bool]:
    """``verify(values)``: does ``D = value_t · P(R)`` pass the check's test on every kept row?"""

    def verify(values: np.ndarray) -> bool:
        start = 0
        for g in obs.failing_groups:
            k = g.rows.size
            pr = np.transpose(g.reference_values, (0, *(i + 1 for i in perm)))
            if not fits_rows(obs, g, g.derived, expand(values[start : start + k], pr) * pr).all():
                return False
            start += k
        return True

    return verify


def _factor_diagnosis(obs: Observations, factor: Factor, c: np.ndarray) -> Diagnosis:
    n = c.size
    per_size = ", ".join(
        f"{fmt_number(float(np.median(cs)))} at {sizes_label(g.sizes)}"
        for g, cs in zip(
            obs.failing_groups, np.split(c, np.cumsum([g.rows.size for g in obs.failing_groups])[:-1]), strict=True
        )
    )
    evidence = [f"derived = c · reference within tolerance on all {n} failing trials read; c = {per_size}"]
    holds_at = _factor_is_one(obs, factor)
    if holds_at:
        evidence.append(f"where the factor is 1 ({holds_at}) every trial holds")
    same = [] if factor.dims else size_coincidences(float(np.median(c)), sizes_of(obs))
    if same:
        evidence.append(
            f"{factor.text} equals {' and '.join(same)} at the sizes that fail; "
            "a size set where that differs would tell whether it is a size"
        )
    if factor.text == "−1":
        summary = "sign error: derived = −reference"
        kind = "sign"
    else:
        what = factor.words or factor.text
        summary = f"off by a factor of {what}: derived = {times(factor.text)}reference"
        kind = "factor"
    return Diagnosis(kind=kind, summary=summary, evidence=tuple(evidence), expression=factor.text, factor=float(c[-1]))


def _factor_is_one(obs: Observations, factor: Factor) -> str:
    """Size sets where the size expression equals 1 and nothing fails (e.g. ``m = 1``)."""
    if not factor.dims:
        return ""
    exprs = {t: fn for t, _, fn in dim_expressions(sorted(factor.dims))}
    fn = exprs.get(factor.text)
    if fn is None:
        return ""
    ones = [g for g in obs.groups if not g.failed.any() and math.isclose(fn(dict(g.sizes)), 1.0)]
    return "; ".join(sizes_label(g.sizes) for g in ones)


def _permutation_diagnosis(obs: Observations, perm: tuple[int, ...], factor: Factor | None, c: np.ndarray) -> Diagnosis:
    ndim = len(perm)
    scaled = "" if factor is None else f" and off by a factor of {factor.words or factor.text}"
    if ndim == 2:
        kind, what = "transpose", "transposed"
        formula = "derived = " + ("" if factor is None else times(factor.text)) + "referenceᵀ"
    else:
        kind, what = "permutation", "axes permuted"
        letters = "ijklmnop"[:ndim]
        src = [""] * ndim
        for a, p in enumerate(perm):
            src[p] = letters[a]
        formula = f"derived[{','.join(letters)}] = " + ("" if factor is None else times(factor.text))
        formula += f"reference[{','.join(src)}]"
    evidence = (f"{formula} within tolerance on all {c.size} failing trials read",)
    return Diagnosis(
        kind=kind,
        summary=f"{what}{scaled}: {formula}",
        evidence=evidence,
        expression="" if factor is None else factor.text,
        factor=None if factor is None else float(c[-1]),
    )


def _swapped(x: np.ndarray, axes: tuple[int, ...], i: int, j: int) -> np.ndarray:
    """``x`` with indices ``i`` and ``j`` exchanged along each of ``axes`` (axes of one trial)."""
    order = np.arange(x.shape[axes[0]])
    order[[i, j]] = order[[j, i]]
    for a in axes:
        x = np.take(x, order, axis=a)
    return x


def _swap_axes(obs: Observations) -> list[tuple[int, ...]]:
    """Single axes, then pairs of axes of the same size (a Hessian's rows and columns)."""
    shapes = [g.shape for g in obs.failing_groups]
    ndim = len(shapes[0])
    single = [(a,) for a in range(ndim)]
    pairs = [(a, b) for a, b in itertools.combinations(range(ndim), 2) if all(s[a] == s[b] for s in shapes)]
    return pairs + single


def swaps(obs: Observations) -> Diagnosis | None:
    for axes in _swap_axes(obs):
        found = _swap_on(obs, axes)
        if found:
            return _swap_diagnosis(obs, axes, found)
    return None


def _swap_on(obs: Observations, axes: tuple[int, ...]) -> list[tuple[int, int]] | None:
    """The swapped pair of every kept row, if each row is ``R`` with one pair swapped along ``axes``.

    A row with no entry the evidence can call wrong (it failed entry by entry, by less than the
    trial's rounding allowance, which the evidence keeps only as a whole) says nothing either way."""
    pairs = []
    for g in obs.failing_groups:
        wrong = wrong_entries(obs, g)
        for t in range(g.rows.size):
            if not wrong[t].any():  # failed entry-wise within the rounding the evidence cannot split by entry
                continue
            pair = _swap_pair(obs, g, t, wrong[t], axes)
            if pair is None:
                return None
            pairs.append(pair)
    return pairs


def _swap_pair(obs: Observations, g: Group, t: int, wrong: np.ndarray, axes: tuple[int, ...]) -> tuple[int, int] | None:
    """The pair ``(i, j)`` whose swap along ``axes`` turns row ``t``'s reference into its derived value."""
    grid = index_grid(wrong.shape)
    hit = [np.unique(grid[a][wrong]) for a in axes]
    support = np.unique(np.concatenate(hit)) if hit else np.array([], int)
    if support.size < 2 or (len(axes) == 1 and support.size != 2):
        return None
    for i, j in itertools.combinations(support.tolist(), 2):
        covered = np.zeros(wrong.shape, bool)
        for a in axes:
            covered |= np.isin(grid[a], (i, j))
        if (wrong & ~covered).any():
            continue
        moved = _swapped(g.reference_values[t], axes, int(i), int(j))
        if fits_row(obs, g, t, moved):
            return int(i), int(j)
    return None


def _swap_diagnosis(obs: Observations, axes: tuple[int, ...], pairs: list[tuple[int, int]]) -> Diagnosis:
    names = axis_names(obs)
    ndim = len(names)
    i, j = max(set(pairs), key=pairs.count)
    same = len(set(pairs)) == 1
    if len(axes) == 2 and ndim == 2:
        what = f"indices {i} and {j} swapped in both rows and columns"
    elif len(axes) == 2:
        dim = names[axes[0]] or f"axis {axes[0]}"
        what = f"blocks {i} and {j} swapped along both {dim} axes"
    elif ndim == 1:
        what = f"entries {i} and {j} swapped"
    elif ndim == 2:
        what = f"{'rows' if axes[0] == 0 else 'columns'} {i} and {j} swapped"
    else:
        what = f"indices {i} and {j} of axis {axes[0]}{f' ({names[axes[0]]})' if names[axes[0]] else ''} swapped"
    evidence = [f"derived equals reference with that swap within tolerance on all {len(pairs)} failing trials read"]
    if not same:
        evidence.append(f"the swapped pair varies between trials: {sorted(set(pairs))[:6]}")
    return Diagnosis(kind="swap", summary=f"a swap: {what}", evidence=tuple(evidence), where=what)


MAX_LEAF_ORDERS = 120
"""Orders of same-shaped leaves :func:`leaf_swap` tries at most (every order of up to five leaves)."""


def leaf_swap(obs: Observations) -> Diagnosis | None:
    """Leaves of a pytree value returned in another order: ``D[a] = R[σ(a)]`` for a permutation ``σ`` of
    leaves of the same shape, every other leaf as the reference, on every failing row read (``dγ`` returned
    as ``dβ`` and back; ``(dV, dQ, dK)`` for ``(dQ, dK, dV)``). Exchanges of two are tried first."""
    groups = obs.failing_groups
    if not groups:
        return None
    shapes = dict(groups[0].leaves)
    for order in itertools.islice(_leaf_orders(shapes), MAX_LEAF_ORDERS):
        if all(_leaves_moved(obs, g, order) for g in groups):
            return _reordered(order, sum(g.rows.size for g in groups))
    return None


def _leaf_orders(shapes: dict[str, tuple[int, ...]]):
    """``{a: σ(a)}`` for the leaves that move, over permutations within each class of equal shapes: every
    exchange of two first, then longer cycles, each once."""
    classes: dict[tuple[int, ...], list[str]] = {}
    for name, shape in shapes.items():
        classes.setdefault(shape, []).append(name)
    for names in classes.values():
        for a, b in itertools.combinations(names, 2):
            yield {a: b, b: a}
    for names in classes.values():
        for perm in itertools.permutations(names):
            moved = {a: b for a, b in zip(names, perm, strict=True) if a != b}
            if len(moved) > 2:
                yield moved


def _reordered(order: dict[str, str], n: int) -> Diagnosis:
    if len(order) == 2:
        a, b = order
        summary = f"a swap: leaves {a} and {b} exchanged (derived {a} = reference {b}, and back)"
        evidence = f"derived equals reference with {a} and {b} exchanged"
    else:
        pairs = ", ".join(f"derived {a} = reference {b}" for a, b in order.items())
        summary = f"leaves returned in another order: {pairs}"
        evidence = "derived equals reference with its leaves in that order"
    evidence += f" within tolerance on all {n} failing trials read"
    return Diagnosis(kind="swap", summary=summary, evidence=(evidence,), where=", ".join(order))


def _leaves_moved(obs: Observations, g: Group, order: dict[str, str]) -> bool:
    """Whether every kept row of ``g`` is its reference with leaf ``a`` replaced by leaf ``order[a]``."""
    where = {name: part for name, part, _ in segments(g.leaves)}
    k = g.rows.size
    d, r = g.derived.reshape(k, -1), g.reference_values.reshape(k, -1)
    if not all(a in where and b in where for a, b in order.items()) or d.shape[1] != leaves_size(g.leaves):
        return False
    moved = r.copy()
    for a, b in order.items():
        moved[:, where[a]] = r[:, where[b]]
    return bool(fits_rows(obs, g, d, moved).all())
