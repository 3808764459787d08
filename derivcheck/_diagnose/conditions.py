"""Steps 4–6: when the failures happen (a property of the inputs or sizes, a regime), and a missing term.

A condition explains the failures when every failing trial has it and most
trials with it fail (:data:`CONDITION_SHARE`); a term when ``D − R`` is, on
every kept row, ``β₁ b₁ (+ β₂ b₂)`` with ``b`` the constant 1 or an input shaped
like the value and ``β`` a constant or a simple combination of scalar features.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from derivcheck._diagnose._evidence import Group, Observations, comparable, fits_row
from derivcheck._diagnose._words import MATCH_RTOL, close, degenerate_holding, regime_line
from derivcheck._format import fmt_number
from derivcheck._inputs import REGIMES, sizes_label
from derivcheck._result import Diagnosis

CONDITION_SHARE = 0.75  # a condition explains the failures when this share of the trials it marks fail
CONDITION_HOLDING = 5  # … and at least this many trials without it hold


Feature = tuple[str, str, list[np.ndarray], bool]
"""``(holds words, fails words, per group, names a slip)``: a per-trial yes/no property of the inputs
or sizes; the last field is true for a property that is exactly where one slip vanishes (``W`` symmetric:
``W`` written for ``Wᵀ``), which stays a finding even when only degenerate draws have it."""


def _features(obs: Observations) -> list[Feature]:
    """Per-trial yes/no properties of the inputs and sizes (:data:`Feature`)."""
    groups = obs.groups
    out = []
    for name in groups[0].inputs:
        arrs = [g.inputs[name].reshape(len(g.failed), *g.inputs[name].shape[1:]) for g in groups]
        if any(a.ndim < 2 for a in arrs):
            continue
        out += _input_features(name, arrs)
    for dim, _ in groups[0].sizes:
        if _confounded_with_all_ones(obs, dim):
            continue
        out.append(
            (f"{dim} = 1", f"{dim} > 1", [np.full(len(g.failed), dict(g.sizes)[dim] == 1) for g in groups], False)
        )
    return out


def _all_ones(g: Group) -> bool:
    return all(v == 1 for _, v in g.sizes)


def _confounded_with_all_ones(obs: Observations, dim: str) -> bool:
    """``dim = 1`` only in size sets where every dimension is 1: "fails when dim > 1" is not about ``dim``.

    The first size set of every claim puts each dimension to 1 (:mod:`derivcheck._inputs`), where
    many formulas coincide (a transpose, a sum over one entry); with more than one dimension,
    nothing tells ``dim = 1`` from the others being 1 there.
    """
    ones = [g for g in obs.groups if dict(g.sizes).get(dim) == 1]
    return len(obs.groups[0].sizes) > 1 and bool(ones) and all(_all_ones(g) for g in ones)


def _input_features(name: str, arrs: list[np.ndarray]) -> list[Feature]:
    """Normalisation (sums to 1, per row too), symmetry and 0/1 patterns of one input."""
    flat = [a.reshape(len(a), -1) for a in arrs]
    out = []
    if all(np.all(a >= 0) for a in arrs):
        out.append(
            (
                f"Σ {name} = 1",
                f"Σ {name} ≠ 1",
                [np.isclose(f.sum(axis=1), 1.0, rtol=0, atol=1e-9) for f in flat],
                False,
            )
        )
        if all(a.ndim > 2 for a in arrs):
            rows = [np.isclose(a.sum(axis=-1), 1.0, rtol=0, atol=1e-9).reshape(len(a), -1).all(axis=1) for a in arrs]
            out.append((f"every row of {name} sums to 1", f"some row of {name} does not sum to 1", rows, False))
    if all(a.ndim == 3 and a.shape[1] == a.shape[2] for a in arrs) and any(a.shape[1] > 1 for a in arrs):
        sym = [np.isclose(a, np.swapaxes(a, 1, 2), rtol=1e-12, atol=0).reshape(len(a), -1).all(axis=1) for a in arrs]
        out.append((f"{name} is symmetric", f"{name} is not symmetric ({name} ≠ {name}ᵀ)", sym, True))
    if all(np.isin(a, (0.0, 1.0)).all() for a in arrs):
        out.append((f"every entry of {name} is 1", f"some entry of {name} is 0", [f.all(axis=1) for f in flat], False))
        out.append((f"every entry of {name} is 0", f"some entry of {name} is 1", [~f.any(axis=1) for f in flat], False))
    else:
        out.append((f"{name} = 0", f"{name} ≠ 0", [~f.any(axis=1) for f in flat], False))
    return out


def exact_condition(obs: Observations) -> Diagnosis | None:
    """A property every failing trial has, that most trials with it fail (:data:`CONDITION_SHARE`).

    The trials without it (at least :data:`CONDITION_HOLDING`) all hold. Not
    every trial with it must fail: the error it allows can vanish by chance
    (a dropout mask zeroing the wrong row, a saturated sigmoid).
    """
    failed = np.concatenate([g.failed[g.valid] for g in obs.groups])
    degenerate = _degenerate_trials(obs)
    commuting: np.ndarray | None = None  # computed once, when a slip property holds only on degenerate draws
    candidates: list[tuple[float, str, str, np.ndarray, bool]] = []
    for yes, no, per, slip in _features(obs):
        f = np.concatenate([p[g.valid] for p, g in zip(per, obs.groups, strict=True)])
        for cond, other, mask in ((yes, no, f), (no, yes, ~f)):
            only_degenerate = bool(degenerate[~mask].all())
            if only_degenerate:
                if not slip:
                    continue  # holds only on degenerate trials: e.g. "x = 0" only where every size is 1
                commuting = _commuting_trials(obs) if commuting is None else commuting
                if commuting[~mask].all():
                    continue  # … where two square inputs commute: every product order agrees, not only X vs Xᵀ
            share = _explains(mask, failed)
            if share is not None:
                candidates.append((share, cond, other, mask, only_degenerate))
    if candidates:
        share, cond, other, mask, only_degenerate = max(candidates, key=lambda c: c[0])  # the first of the best
        same = [c for c in candidates if c[0] == share and np.array_equal(c[3], mask)]
        cond, other = _either(same)
        found = _condition_diagnosis(obs, cond, other, mask, failed)
        if len(same) > 1:
            told = "these conditions mark the same trials here: a draw that separates them tells which one matters"
            found = dataclasses.replace(found, evidence=(*found.evidence, told))
        if only_degenerate:
            caveat = (
                f"every trial {_where(other)} is a degenerate draw (all entries equal, or every size 1), "
                "where other slips vanish too: a typical draw with that property would confirm it"
            )
            found = dataclasses.replace(found, evidence=(*found.evidence, caveat))
        return found
    regimes = np.concatenate([g.regimes[g.valid] for g in obs.groups])
    bad = sorted(set(regimes[failed]))
    mask = np.isin(regimes, bad)
    if set(regimes) - set(bad) and not degenerate_holding(obs) and _explains(mask, failed) is not None:
        cond = "in regime" + ("s " if len(bad) > 1 else " ") + ", ".join(bad)
        return _condition_diagnosis(obs, cond, "in the others", mask, failed, regime=True)
    return None


def _either(same: list[tuple[float, str, str, np.ndarray, bool]]) -> tuple[str, str]:
    """The words of conditions that mark the very same trials: ``"d > 1 or m > 1"`` and ``"d = 1, m = 1"``.

    On the trials drawn nothing tells them apart (the one size set where it holds has ``d = m = 1``;
    a sum of one-hot rows equals ``m``), so naming one would be a guess: all are named, sizes first.
    """

    def sizes_first(words: str) -> tuple[bool, str]:  # "d > 1" before "Σ Y ≠ 1" and "X is symmetric"
        return (words[:1].isupper() or not words[:1].isalpha(), words)

    conds = sorted(dict.fromkeys(c[1] for c in same), key=sizes_first)
    others = sorted(dict.fromkeys(c[2] for c in same), key=sizes_first)
    if len(conds) == 1:
        return conds[0], others[0]
    return ", ".join(conds[:-1]) + " or " + conds[-1], ", ".join(others)


def _degenerate_trials(obs: Observations) -> np.ndarray:
    """Per valid trial: drawn in a degenerate holding regime (:func:`degenerate_holding`) or where every size is 1.

    A condition whose holding trials are all such says only that the formulas coincide there.
    """
    regimes = degenerate_holding(obs)
    return np.concatenate([(np.isin(g.regimes, regimes) | _all_ones(g))[g.valid] for g in obs.groups])


def _commuting_trials(obs: Observations) -> np.ndarray:
    """Per valid trial: two square inputs of one shape commute, ``‖AB − BA‖∞ ≤ 64 n ε ‖A‖∞ ‖B‖∞``.

    Such a draw (``A = c·I``, two constant matrices, any ``1×1`` pair) is degenerate in a sense of its
    own: every formula that differs from another by the order of a product agrees there. A slip
    property (:data:`Feature`: ``X`` symmetric) whose holding draws are all degenerate stays a finding
    only when they are degenerate for ``X`` alone; where they also commute, "holds when ``X`` is
    symmetric" cannot be told from "holds when the factors commute" (``A⁻¹A⁻¹dA`` for ``A⁻¹dA A⁻¹``
    holds on a constant tangent only because the ``A`` drawn with it is ``c·I``). The allowance is
    the rounding of a product of ``n``-term sums, ``n ε |A||B|`` entry-wise, with a factor 64 for the
    inputs' own rounding.
    """
    out = []
    for g in obs.groups:
        square = [a for a in g.inputs.values() if a.ndim == 3 and a.shape[1] == a.shape[2]]
        hit = np.zeros(len(g.failed), bool)
        for a, b in itertools.combinations(square, 2):
            if a.shape != b.shape or not np.issubdtype(a.dtype, np.inexact) or not np.issubdtype(b.dtype, np.inexact):
                continue
            eps = max(np.finfo(a.dtype).eps, np.finfo(b.dtype).eps)
            gap = np.abs(a @ b - b @ a).reshape(len(a), -1).max(axis=1)
            scale = np.abs(a).reshape(len(a), -1).max(axis=1) * np.abs(b).reshape(len(b), -1).max(axis=1)
            hit |= gap <= 64 * a.shape[1] * eps * scale
        out.append(hit[g.valid])
    return np.concatenate(out)


def _explains(mask: np.ndarray, failed: np.ndarray) -> float | None:
    """The share of ``mask``'s trials that fail, if every failure is in ``mask`` and enough are."""
    if mask.all() or (~mask).sum() < CONDITION_HOLDING or (failed & ~mask).any():
        return None
    share = failed[mask].mean()
    return float(share) if share >= CONDITION_SHARE else None


def _condition_diagnosis(
    obs: Observations, cond: str, other: str, mask: np.ndarray, failed: np.ndarray, regime: bool = False
) -> Diagnosis:
    words = cond
    if regime:
        words += " (" + "; ".join(REGIMES.get(r, r) for r in cond.split(" ", 2)[-1].split(", ")) + ")"
    for dim, desc in obs.dims.items():
        if cond.startswith(f"{dim} ") and desc:
            words += f" ({dim}: {desc})"
    n_cond, n_fail, n_hold = int(mask.sum()), int(failed.sum()), int((~mask).sum())
    evidence = [f"{n_fail} of the {n_cond} trials {_where(cond)} fail; all {n_hold} trials {_where(other)} hold"]
    equality = obs.analysis == "equality" and comparable(obs)
    term = terms(obs) if equality else None
    if term is not None:
        evidence.append(f"there {term.summary}")
    exactly = "exactly " if n_fail == n_cond else "only "
    return Diagnosis(
        kind="condition",
        summary=f"fails {exactly}{_plain(words)}; holds {_plain(other)}",
        evidence=tuple(evidence),
        where=cond,
    )


def _plain(other: str) -> str:
    return other if other.startswith("in ") else f"when {other}"


def _where(cond: str) -> str:
    return cond if cond.startswith("in ") else f"where {cond}"


def partial_condition(obs: Observations) -> Diagnosis | None:
    """Failures confined to some regimes or some size sets (not every trial there fails)."""
    all_regimes = list(dict.fromkeys(r for g in obs.groups for r in g.regimes))
    bad = list(dict.fromkeys(r for g in obs.groups for r in g.regimes[g.failed]))
    if len(bad) < len(all_regimes) and not degenerate_holding(obs):
        line = regime_line(obs)
        return Diagnosis(kind="condition", summary=line, evidence=(line,), where="regimes " + ", ".join(bad))
    bad_sizes = [g for g in obs.groups if g.failed.any()]
    good_sizes = [g for g in obs.groups if not g.failed.any()]
    if good_sizes and all(_all_ones(g) for g in good_sizes):
        return None  # holding only where every dimension is 1 is no finding (see _confounded_with_all_ones)
    if len(bad_sizes) < len(obs.groups):
        at = "; ".join(sizes_label(g.sizes) for g in bad_sizes)
        ok = "; ".join(sizes_label(g.sizes) for g in obs.groups if not g.failed.any())
        return Diagnosis(kind="condition", summary=f"fails only at sizes {at}; holds at {ok}", where=at)
    return None


def _scalar_features(g: Group, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Per kept row: the scalar inputs, and the mean and sum of every array input."""
    out = {}
    for name in names:
        if np.iscomplexobj(g.inputs[name]):
            continue  # the features are real numbers; a complex input has none of these
        a = g.kept_inputs(name).astype(float)
        if a.ndim == 1:
            out[name] = a
        else:
            flat = a.reshape(len(a), -1)
            out[f"mean({name})"] = flat.mean(axis=1)
            out[f"Σ{name}"] = flat.sum(axis=1)
    return out


def _basis(obs: Observations) -> list[str]:
    """Term candidates: the constant 1 and every input shaped like the value in every size set."""
    names = [
        n for n in obs.failing_groups[0].inputs if all(g.inputs[n].shape[1:] == g.shape for g in obs.failing_groups)
    ]
    return ["1", *names]


def terms(obs: Observations) -> Diagnosis | None:
    """Step 5 (real values only: its coefficients are named as real constants and features)."""
    if any(np.iscomplexobj(g.derived) or np.iscomplexobj(g.reference_values) for g in obs.failing_groups):
        return None
    basis = _basis(obs)
    for size in (1, 2):
        for subset in itertools.combinations(basis, size):
            coefs = _fit_terms(obs, subset)
            if coefs is None:
                continue
            words = [_explain_coef(obs, np.array(c)) for c in coefs]
            if size > 1 and any(w is None for w in words):
                continue  # two free coefficients per trial fit too much to mean anything
            expr = _term_expr(subset, words)
            return _term_diagnosis(obs, subset, expr, words)
    return None


def _fit_terms(obs: Observations, subset: tuple[str, ...]) -> list[list[float]] | None:
    """Per kept row, least-squares ``β`` with ``D − R = Σ β_b b``, if it fits every row.

    "Fits" is :func:`~derivcheck._diagnose._evidence.fits_row`: ``D`` equals ``R + Σ β_b b`` by the
    check's own test, entry-wise too where the check judged entry by entry, so a term is never
    named for a failure in entries far smaller than the largest (which the norm-wise bound hides).
    """
    coefs: list[list[float]] = [[] for _ in subset]
    for g in obs.failing_groups:
        err = (g.derived - g.reference_values).reshape(g.rows.size, -1)
        for t in range(g.rows.size):
            cols = [np.ones(err.shape[1]) if b == "1" else g.kept_inputs(b)[t].reshape(-1) for b in subset]
            a = np.stack(cols, axis=1)
            beta, *_ = np.linalg.lstsq(a, err[t], rcond=None)
            term = (a @ beta).reshape(g.shape)
            if np.linalg.matrix_rank(a) < len(subset) or not fits_row(obs, g, t, g.reference_values[t] + term):
                return None
            for k, b in enumerate(beta):
                coefs[k].append(float(b))
    return coefs


def _explain_coef(obs: Observations, c: np.ndarray) -> str | None:
    """A coefficient that is a simple constant, ``κ f`` or ``κ₁ f₁ + κ₂ f₂`` of per-trial features.

    Features: scalar inputs, means and sums of array inputs, their products
    with a scalar input, and ``1/k``, ``k`` for each size ``k``; the ``κ`` must
    be simple fractions (:func:`_is_simple`).
    """
    if close(c, np.full_like(c, c[0])):
        return fmt_number(c[0])
    feats = _coef_features(obs, c.size)
    singles = list(feats)
    for name in singles:
        text = _fit_combo(c, [name], feats)
        if text:
            return text
    for a, b in itertools.combinations(singles, 2):
        text = _fit_combo(c, [a, b], feats)
        if text:
            return text
    return None


def _coef_features(obs: Observations, n: int) -> dict[str, np.ndarray]:
    feats: dict[str, list[float]] = {}
    for g in obs.failing_groups:
        names = obs.arg_names + tuple(k for k in g.inputs if k not in obs.arg_names)
        for k, v in _scalar_features(g, names).items():
            feats.setdefault(k, []).extend(v.tolist())
        for dim, size in g.sizes:
            feats.setdefault(f"1/{dim}", []).extend([1 / size] * g.rows.size)
            feats.setdefault(dim, []).extend([float(size)] * g.rows.size)
    base = {k: np.array(v) for k, v in feats.items() if len(v) == n and np.ptp(v) > 0}
    scalars = [k for k in base if "(" not in k and "Σ" not in k and "/" not in k and k not in dict(obs.groups[0].sizes)]
    out = dict(base)
    for i, s_ in enumerate(scalars):
        for k in base:
            if k not in scalars[: i + 1] and k not in dict(obs.groups[0].sizes) and not k.startswith("1/"):
                out[f"{s_}·{k}"] = base[s_] * base[k]
    return out


def _fit_combo(c: np.ndarray, names: list[str], feats: dict[str, np.ndarray]) -> str | None:
    a = np.stack([feats[k] for k in names], axis=1)
    kappa, *_ = np.linalg.lstsq(a, c, rcond=None)
    if not all(_is_simple(k) for k in kappa) or not close(c, a @ kappa):
        return None
    pairs = sorted(
        zip(kappa, names, strict=True), key=lambda p: p[1].startswith("1/") or (p[1].isalpha() and len(p[1]) <= 2)
    )
    text = " + ".join(_scaled(k, name) for k, name in pairs)
    return text.replace("+ −", "− ")


def _is_simple(k: float) -> bool:
    if not math.isfinite(k) or k == 0:
        return False
    frac = Fraction(k).limit_denominator(12)
    return abs(float(frac) - k) <= MATCH_RTOL * abs(k) and abs(frac.numerator) <= 12


def _scaled(kappa: float, name: str) -> str:
    k = fmt_number(kappa)
    return name if k == "1" else f"−{name}" if k == "−1" else f"{k}·{name}"


def _term_expr(subset: tuple[str, ...], words: list[str | None]) -> str:
    parts = []
    for b, w in zip(subset, words, strict=True):
        w = w or "β"
        if b == "1":
            parts.append(w)
        elif w == "1":
            parts.append(b)
        elif w == "−1":
            parts.append(f"−{b}")
        else:
            parts.append(f"{w}·{b}" if " " not in w else f"({w})·{b}")
    text = " + ".join(parts).replace("+ −", "− ")
    return text


def _term_diagnosis(obs: Observations, subset: tuple[str, ...], expr: str, words: list[str | None]) -> Diagnosis:
    rows = sum(g.rows.size for g in obs.failing_groups)
    same = subset == ("1",)
    what = " (the same in every entry)" if same else ""
    varying = " with β varying between trials" if any(w is None for w in words) else ""
    summary = f"a term is missing or extra: derived − reference = {expr}{what}{varying}"
    evidence = (f"D − R = {expr} within tolerance on all {rows} failing trials read",)
    return Diagnosis(kind="term", summary=summary, evidence=evidence, expression=expr)
