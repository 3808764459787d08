"""Definiteness failures in spectrum terms: asymmetric, indefinite, singular (along what), zero, flipped.

Each kept failing matrix is symmetrized and its eigenvalues counted against the
check's margin; the count is named by :func:`derivcheck._spectrum.classify`
(the classification the check reports), and the most common failure mode
becomes the headline, with the rank as a size expression when most trials agree.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from derivcheck._compare import exceeds
from derivcheck._derivation import DEFINITE_WORDS
from derivcheck._diagnose._evidence import Observations
from derivcheck._diagnose._words import axis_names
from derivcheck._inputs import Sizes
from derivcheck._result import Diagnosis, Entry
from derivcheck._spectrum import classify


def failure(obs: Observations) -> tuple[str, int]:
    """What a failing definiteness check shows first, as the check judged it.

    ``("asymmetric", count)`` when ``‖H − Hᵀ‖∞`` exceeds the tolerance in
    ``count`` failing trials; ``("differs", 0)`` when ``H`` differs from
    ``jax.hessian(of)``; else ``("spectrum", 0)``: the eigenvalues break the claim.
    """
    st = {k: np.concatenate([g.stats[k] for g in obs.groups]) for k in obs.groups[0].stats}
    failed = np.concatenate([g.failed for g in obs.groups])
    asym = failed & exceeds(st["sym_err"], st["scale"], obs.tol)
    if asym.any():
        return "asymmetric", int(asym.sum())
    if "abs_err" in st and (failed & exceeds(st["abs_err"], st["eq_scale"], obs.tol)).any():
        return "differs", 0
    return "spectrum", 0


def asymmetric(obs: Observations, count: int) -> Diagnosis:
    """The largest ``|H_ij − H_ji|`` among the kept failing trials."""
    best = None
    for g in obs.failing_groups:
        for t in range(g.rows.size):
            h = g.derived[t]
            e = np.abs(h - h.T)
            i, j = np.unravel_index(int(np.argmax(e)), e.shape)
            if best is None or e[i, j] > best[0]:
                best = (e[i, j], int(min(i, j)), int(max(i, j)), h)
    if best is None:  # no failing trial's matrix was kept: diagnose() reports no diagnosis
        raise ValueError("no failing trial's matrix was kept to show the asymmetry")
    _, i, j, h = best
    summary = f"not symmetric: H[{i},{j}] = {h[i, j]:.4g} but H[{j},{i}] = {h[j, i]:.4g}"
    return Diagnosis(
        kind="asymmetric",
        summary=summary,
        evidence=(f"H ≠ Hᵀ beyond tolerance in {count} failing trials",),
        where=f"({i},{j})",
        worst_entries=(Entry((i, j), float(h[i, j]), float(h[j, i])),),
    )


@dataclasses.dataclass(frozen=True)
class _Mode:
    """What one failing trial's spectrum shows."""

    what: str  # "negative", "indefinite", "singular", "zero", "positive"
    wrong: int  # eigenvalues of the wrong sign (or zero ones, for singular)
    n: int
    null: str  # words for the null space ("" when none recognised)
    lam: float  # the offending extreme eigenvalue
    sizes: Sizes = ()  # the trial's size set


def spectrum(obs: Observations) -> Diagnosis:
    """The most common failing spectrum among the kept trials, in words, with the others as evidence."""
    kind = obs.derivation.claim.definiteness
    modes = []
    for g in obs.failing_groups:
        margin = g.stats["margin"][g.rows]
        for t in range(g.rows.size):
            inputs = {n: g.kept_inputs(n)[t] for n in g.inputs}
            modes.append(dataclasses.replace(_mode(g.derived[t], float(margin[t]), kind, inputs), sizes=g.sizes))
    groups: dict[tuple[str, str], list[_Mode]] = {}
    for m in modes:
        groups.setdefault((m.what, m.null), []).append(m)
    worst = _worst_mode(obs, modes)
    ranked = sorted(groups, key=lambda k: (k[0] == "zero", -len(groups[k]), not _holds(groups[k], worst), k[1] == ""))
    top = groups[ranked[0]]
    summary = _mode_words(top, kind, axis_names(obs))
    evidence = [f"{len(groups[k])} of {len(modes)} failing trials read: {_short_mode(groups[k])}" for k in ranked]
    if worst is not None and not _holds(top, worst):
        evidence.insert(0, f"the worst trial (the one the message shows) is another mode: {_short_mode([worst])}")
    return Diagnosis(kind="spectrum", summary=summary, evidence=tuple(evidence), where=ranked[0][1])


def _holds(ms: list[_Mode], m: _Mode | None) -> bool:
    return any(x is m for x in ms)


def _worst_mode(obs: Observations, modes: list[_Mode]) -> _Mode | None:
    """The mode of the check's worst trial (the matrix its message describes), if it is among the kept rows.

    The headline is the most common mode; among equally common ones, the worst trial's, so that the
    diagnosis and the message speak of the same matrix (else the evidence says which the worst is).
    """
    w = obs.worst_derived
    if w is None:
        return None
    rows = [h for g in obs.failing_groups for h in g.derived]
    for h, m in zip(rows, modes, strict=True):
        if h.shape == w.shape and np.array_equal(h, w, equal_nan=True):
            return m
    return None


def _mode(h: np.ndarray, margin: float, kind: str, inputs: dict) -> _Mode:
    lam, vecs = np.linalg.eigh((h + h.T) / 2)
    n = lam.size
    sign = -1.0 if kind in ("nd", "nsd") else 1.0
    lam_s = sign * lam
    neg = int((lam_s < -margin).sum())
    pos = int((lam_s > margin).sum())
    found = classify(pos, neg, n)  # in the claim's sign: "nd"/"nsd" is the flipped sign
    extreme = float(lam[0] if sign > 0 else lam[-1])
    if found in ("nd", "nsd"):
        return _Mode("negative", neg, n, "", extreme)
    if found == "indefinite":
        return _Mode("indefinite", neg, n, "", extreme)
    if found == "zero":
        return _Mode("zero", n, n, "", float(lam[np.argmax(np.abs(lam))]))
    zero = n - neg - pos
    null = vecs[:, np.abs(lam) <= margin]
    return _Mode("singular", zero, n, _null_words(null, inputs), float(lam[np.argmin(np.abs(lam))]))


def _null_words(null: np.ndarray, inputs: dict[str, np.ndarray]) -> str:
    """Recognise the null space: the all-ones direction, coordinate axes, an input matrix's null space."""
    n, k = null.shape
    if k == 0:
        return ""
    ones = np.ones(n) / math.sqrt(n)
    if np.linalg.norm(null.T @ ones) > 1 - 1e-6:
        return "1 (the all-ones direction)"
    axes = [i for i in range(n) if np.linalg.norm(null[i]) > 1 - 1e-6]
    if len(axes) == k:
        return "the coordinate axes " + ", ".join(f"e{i}" for i in axes)
    for name, a in inputs.items():
        if a.ndim == 2 and a.shape[1] == n and np.abs(a).max() > 0:
            if np.linalg.norm(a @ null) <= 1e-8 * np.linalg.norm(a) * math.sqrt(k):
                return f"the null space of {name} ({name} v = 0)"
    return ""


def _count(ms: list[_Mode], noun: str) -> str:
    lo, hi = min(m.wrong for m in ms), max(m.wrong for m in ms)
    return f"{lo} {noun}{'s' if lo > 1 else ''}" if lo == hi else f"{lo} to {hi} {noun}s"


def _mode_words(ms: list[_Mode], kind: str, names: list[str]) -> str:
    """The headline for the most common kind of failing spectrum."""
    m = ms[0]
    dim = names[0] if names and names[0] else "n"
    word = DEFINITE_WORDS[kind]
    lam = max(abs(x.lam) for x in ms)
    if m.what == "singular":
        along = f" along {m.null}" if m.null else ""
        return f"singular{along}: {_rank_words(ms, dim)}, so not {word} (zero eigenvalues within the rounding margin)"
    if m.what == "zero":
        return f"numerically zero: every eigenvalue is within the rounding margin (|λ| ≤ {lam:.2g}), so not {word}"
    if m.what == "negative":
        flipped = "negative" if kind in ("pd", "psd") else "positive"
        return f"{flipped} (semi-)definite instead: the sign is flipped (extreme λ = {m.lam:.3g})"
    sign = "negative" if kind in ("pd", "psd") else "positive"
    return f"indefinite: {_count(ms, sign + ' eigenvalue')} (λ = {m.lam:.3g}), so not {word}"


def _rank_words(ms: list[_Mode], dim: str) -> str:
    """``rank K − 1``, ``rank 1``, ``rank DC − D``: the rank as a constant or a size, if most trials agree."""
    best, hits = "", 0
    fits: list[bool] = []  # which trials the best rank expression fits (set once hits > 0)
    for text, fn in _rank_candidates(ms[0].sizes, dim):
        match = [fn(dict(m.sizes), m.n) == m.n - m.wrong for m in ms]
        if sum(match) > hits:
            best, hits, fits = text, sum(match), match
    if hits * 2 < len(ms):
        return _count(ms, "zero eigenvalue")
    rank = f"rank {best}"
    if hits < len(ms):
        others = [m for m, ok in zip(ms, fits, strict=True) if not ok]
        rank += f" in {hits} of {len(ms)} trials (the others: {_count(others, 'zero eigenvalue')})"
    return rank


def _rank_candidates(sizes: Sizes, dim: str) -> list[tuple[str, Callable[[dict, int], int]]]:
    """Rank expressions in the matrix size ``dim`` (n) and the sizes: ``n − 1``, ``1``, ``m``, ``n − D``…"""
    out: list[tuple[str, Callable[[dict, int], int]]] = []
    for c in (1, 2, 3):
        out += [(f"{dim} − {c}", lambda s, n, c=c: n - c), (str(c), lambda s, n, c=c: c)]
    for k, _ in sizes:
        if k != dim:
            out += [(k, lambda s, n, k=k: s[k]), (f"{k} − 1", lambda s, n, k=k: s[k] - 1)]
            out.append((f"{dim} − {k}", lambda s, n, k=k: n - s[k]))
    return out


def _short_mode(ms: list[_Mode]) -> str:
    m = ms[0]
    if m.what == "singular":
        return "singular, " + _count(ms, "zero eigenvalue") + (f" along {m.null}" if m.null else "")
    if m.what == "indefinite":
        return "indefinite, " + _count(ms, "eigenvalue") + " of the wrong sign"
    return {"zero": "numerically zero", "negative": "the sign is flipped"}.get(m.what, m.what)
