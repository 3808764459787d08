"""What the diagnosis reads: the evidence per size set, and the check's own bound per row.

:class:`Observations` wraps the engine's :class:`~derivcheck._result.Evidence`
(plain arrays) with what every step asks of it: the failing size sets, the
bound ``atol + rtol · max(‖x‖∞, ‖y‖∞, T) + rounding`` of each kept row
(:func:`derivcheck._compare.bound`), the entries it counts as wrong, and the
regions of entries (:class:`Region`) the structure and piecewise steps test.

Where the check also judged entry by entry (its statistics carry
``entry_excess``, :func:`derivcheck._compare.entry_excess`), "equal by the
check's own test" and "a wrong entry" mean both tests, as the check did: an
entry is wrong when ``|x_i − y_i| > atol + rtol (max(|x_i|, |y_i|) + ρ S) +
rounding`` as well, so a trial that failed only in its small entries has
wrong entries to read, and a relation fits only when the small entries agree
too. (The trial's rounding allowance stands in for each entry's own, which is
at most that: the diagnosis never calls an entry wrong that the check passed.)

A value made of the leaves of a pytree (several ``wrt`` arguments, a pytree
output, :attr:`~derivcheck._result.SizeSetEvidence.leaves`) whose wrong
entries all lie in some of its leaves (:func:`confined_leaves`) is read on
those leaves alone (:func:`in_leaves`): each row keeps the scale the check
judged it at, so a relation found there fits the whole value ``X`` (the
reference on the other leaves, the relation on these) by the check's test.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from derivcheck._compare import ResolvedTolerance, bound, entry_floor_fraction
from derivcheck._derivation import Derivation
from derivcheck._diagnose._words import dim_descriptions
from derivcheck._inputs import Sizes
from derivcheck._result import Entry, Evidence, Leaves, SizeRow, SizeSetEvidence

TOP_ENTRIES = 5


@dataclasses.dataclass
class Group:
    """The trials of one size set: everyone's inputs and verdicts, the kept failing rows' values.

    ``derived``/``reference`` hold the values of the failing trials ``rows``
    (the engine keeps at most ``MAX_ROWS`` of them); ``floor`` and ``slack`` are
    those trials' cancelled-terms scale ``T`` and rounding allowance, as the
    check measured.
    """

    sizes: Sizes
    regimes: np.ndarray
    failed: np.ndarray
    valid: np.ndarray
    rel_err: np.ndarray
    inputs: dict[str, np.ndarray]
    stats: dict[str, np.ndarray]
    rows: np.ndarray
    derived: np.ndarray
    reference: np.ndarray | None
    floor: np.ndarray
    slack: np.ndarray
    entrywise: bool = False  # the check also judged entry by entry
    leaves: Leaves = ()  # a pytree value's leaves, in raveled order

    @property
    def reference_values(self) -> np.ndarray:
        """``reference``, for the steps that compare both sides (run only where :func:`comparable` holds).

        Raises ``ValueError`` when the reference was not kept; :func:`derivcheck._diagnose.diagnose`
        reports that as no diagnosis.
        """
        if self.reference is None:
            raise ValueError(f"the reference values were not kept at {dict(self.sizes)}")
        return self.reference

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.derived.shape[1:])

    def kept_inputs(self, name: str) -> np.ndarray:
        return self.inputs[name][self.rows]

    @classmethod
    def of(cls, s: SizeSetEvidence) -> Group:
        """The group of one size set's evidence, with its kept rows' ``T`` and rounding allowance."""
        n = len(s.failed)
        return cls(
            sizes=s.sizes,
            regimes=s.regimes,
            failed=s.failed,
            valid=s.valid,
            rel_err=s.rel_err,
            inputs=s.inputs,
            stats=s.stats,
            rows=s.rows,
            derived=s.derived,
            reference=s.reference,
            floor=s.stats.get("terms", np.zeros(n))[s.rows].astype(float),
            slack=s.stats.get("rounding", np.zeros(n))[s.rows].astype(float),
            entrywise="entry_excess" in s.stats,
            leaves=s.leaves,
        )

    def in_leaves(self, names: tuple[str, ...]) -> Group:
        """The kept rows restricted to the leaves ``names`` (shaped as the leaf when one, else raveled).

        ``T`` becomes ``max(T, ‖D‖∞, ‖R_rest‖∞)`` over the whole value (``R_rest``: the reference on
        the other leaves), so that the bound of a row is the one the check applies to the whole value
        ``X`` = (the reference on the other leaves, a relation on these): a relation fits here exactly
        when ``X`` fits there, and an entry is wrong here exactly when the check called it wrong.
        """
        if not self.rows.size:
            return self
        k = self.rows.size
        d, r = self.derived.reshape(k, -1), self.reference_values.reshape(k, -1)
        inside, kept = leaf_mask(self.leaves, names)
        rest = norm(r[:, ~inside])
        return dataclasses.replace(
            self,
            derived=take(d, inside, kept),
            reference=take(r, inside, kept),
            floor=np.maximum(self.floor, np.maximum(norm(d), rest)),
            leaves=kept,
        )


@dataclasses.dataclass
class Observations:
    """Everything the diagnosis reads about one failing check (see :class:`~derivcheck._result.Evidence`)."""

    derivation: Derivation
    tol: ResolvedTolerance
    groups: list[Group]
    worst_derived: np.ndarray | None = None
    worst_reference: np.ndarray | None = None
    arg_names: tuple[str, ...] = ()
    analysis: str = "conditions"
    compile_options: dict[str, Any] | None = None
    worst_leaves: Leaves = ()
    part: tuple[str, ...] = ()
    """The leaves these observations are restricted to (:func:`in_leaves`); ``()``: the whole value."""

    @classmethod
    def of(cls, evidence: Evidence) -> Observations:
        return cls(
            derivation=evidence.derivation,
            tol=evidence.tol,
            groups=[Group.of(s) for s in evidence.size_sets],
            worst_derived=evidence.worst_derived,
            worst_reference=evidence.worst_reference,
            arg_names=evidence.arg_names,
            analysis=evidence.analysis,
            compile_options=evidence.compile_options,
            worst_leaves=evidence.worst_leaves,
        )

    @property
    def failing_groups(self) -> list[Group]:
        return [g for g in self.groups if g.rows.size]

    @property
    def dims(self) -> dict[str, str]:
        return dim_descriptions(self.derivation.inputs)


def segments(leaves: Leaves) -> list[tuple[str, slice, tuple[int, ...]]]:
    """Each leaf's name, its entries in the raveled value, and its shape."""
    out, start = [], 0
    for name, shape in leaves:
        size = math.prod(shape)
        out.append((name, slice(start, start + size), shape))
        start += size
    return out


def leaves_size(leaves: Leaves) -> int:
    """How many entries the raveled value of ``leaves`` has."""
    return sum(math.prod(shape) for _, shape in leaves)


def leaf_mask(leaves: Leaves, names: tuple[str, ...]) -> tuple[np.ndarray, Leaves]:
    """Which entries of the raveled value lie in the leaves ``names``, and those leaves."""
    inside = np.zeros(leaves_size(leaves), bool)
    for name, where, _ in segments(leaves):
        inside[where] = name in names
    return inside, tuple(leaf for leaf in leaves if leaf[0] in names)


def take(flat: np.ndarray, inside: np.ndarray, kept: Leaves) -> np.ndarray:
    """Rows ``(k, N)`` of a raveled value restricted to ``inside``: shaped as the leaf when one, else ``(k, n)``."""
    part = flat[:, inside]
    return part.reshape(len(flat), *kept[0][1]) if len(kept) == 1 else part


def confined_leaves(obs: Observations) -> tuple[str, ...]:
    """The leaves that hold every wrong entry of the kept failing rows, when that is some of the value's
    leaves and not all (``()`` otherwise, and when the value is one array)."""
    groups = obs.failing_groups
    names = tuple(name for name, _ in groups[0].leaves) if groups else ()
    if len(names) < 2 or not all(_leaves_fit(g, names) for g in groups):
        return ()
    hit: set[str] = set()
    for g in groups:
        wrong = wrong_entries(obs, g).reshape(g.rows.size, -1)
        hit.update(name for name, where, _ in segments(g.leaves) if wrong[:, where].any())
    chosen = tuple(name for name in names if name in hit)
    return chosen if len(chosen) < len(names) else ()


def _leaves_fit(g: Group, names: tuple[str, ...]) -> bool:
    """``g``'s leaves are ``names`` and tile its raveled value."""
    return tuple(name for name, _ in g.leaves) == names and len(g.shape) == 1 and leaves_size(g.leaves) == g.shape[0]


def in_leaves(obs: Observations, names: tuple[str, ...]) -> Observations:
    """``obs`` read on the leaves ``names`` alone (:meth:`Group.in_leaves`), the worst trial's value too."""
    worst_d = worst_r = None
    kept: Leaves = ()
    d, r = obs.worst_derived, obs.worst_reference
    if d is not None and r is not None and d.size == r.size == leaves_size(obs.worst_leaves):
        inside, kept = leaf_mask(obs.worst_leaves, names)
        worst_d, worst_r = (take(v.reshape(1, -1), inside, kept)[0] for v in (d, r))
    return dataclasses.replace(
        obs,
        groups=[g.in_leaves(names) for g in obs.groups],
        worst_derived=worst_d,
        worst_reference=worst_r,
        worst_leaves=kept,
        part=names,
    )


def entry_label(obs: Observations, index: tuple[int, ...]) -> str:
    """An entry of the worst trial's value, named by its leaf when the value has leaves (``mu1[2]``,
    where raveled it is ``(22,)``); its index otherwise."""
    d = obs.worst_derived
    if not obs.worst_leaves or d is None:
        return str(index)
    j = int(np.ravel_multi_index(index, d.shape))
    for name, where, shape in segments(obs.worst_leaves):
        if where.start <= j < where.stop:
            local = np.unravel_index(j - where.start, shape) if shape else ()
            return f"{name}[{', '.join(str(int(i)) for i in local)}]" if shape else name
    return str(index)


def comparable(obs: Observations) -> bool:
    """Both sides are kept, with the same shape, for every size set with failures."""
    return all(g.reference is not None and g.reference.shape == g.derived.shape for g in obs.failing_groups)


def norm(x: np.ndarray) -> np.ndarray:
    """``‖x_t‖∞`` per row of a stacked array ``(k, ...)``."""
    flat = np.abs(np.asarray(x)).reshape(len(x), -1)
    return flat.max(axis=1, initial=0.0)


def expand(v: np.ndarray, like: np.ndarray) -> np.ndarray:
    return np.asarray(v).reshape((-1,) + (1,) * (np.ndim(like) - 1))


def allowed(obs: Observations, g: Group, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The check's bound per row: ``atol + rtol · max(‖x‖, ‖y‖, T) + rounding``."""
    scale = np.maximum(np.maximum(norm(x), norm(y)), g.floor)
    return bound(obs.tol, scale, g.slack)


def fits_rows(obs: Observations, g: Group, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which rows have ``x`` equal to ``y`` by the check's own test (norm-wise, and entry-wise where it was made)."""
    ok = norm(x - y) <= allowed(obs, g, x, y)
    if g.entrywise:
        over = np.abs(np.asarray(x) - np.asarray(y)) > entry_allowed(obs, g, x, y)
        ok = ok & ~over.reshape(len(over), -1).any(axis=1)
    return ok


def small_entries_only(obs: Observations) -> tuple[int, int]:
    """``(k, n)``: ``k`` of the ``n`` kept failing rows pass the norm-wise test, failed only entry-wise.

    Their wrong entries are far smaller than the largest (their errors are below ``rtol ‖D‖∞``),
    and a relation read at the scale of the whole value would hide them.
    """
    k = n = 0
    for g in obs.failing_groups:
        n += g.rows.size
        if g.entrywise:
            x, y = g.derived, g.reference_values
            k += int((norm(x - y) <= allowed(obs, g, x, y)).sum())
    return k, n


def wrong_entries(obs: Observations, g: Group) -> np.ndarray:
    """Entries whose error alone would fail the trial: ``|D_i − R_i|`` over the norm-wise bound or the entry's own."""
    x, y = g.derived, g.reference_values
    limit = expand(allowed(obs, g, x, y), x)
    if g.entrywise:
        limit = np.minimum(limit, entry_allowed(obs, g, x, y))
    return np.abs(x - y) > limit


def fits_row(obs: Observations, g: Group, t: int, other: np.ndarray) -> bool:
    """Row ``t``'s derived value equals ``other`` by the check's own test."""
    one = dataclasses.replace(g, floor=g.floor[t : t + 1], slack=g.slack[t : t + 1])
    return bool(fits_rows(obs, one, g.derived[t][None], np.asarray(other)[None])[0])


def entry_allowed(obs: Observations, g: Group, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The entry-wise bound ``atol + rtol (max(|x_i|, |y_i|) + ρ S) + rounding``, ``S = max(‖x‖, ‖y‖, T)`` per row."""
    size = np.maximum(np.abs(np.asarray(x)), np.abs(np.asarray(y)))
    scale = expand(np.maximum(np.maximum(norm(x), norm(y)), g.floor), size)
    return bound(obs.tol, size + entry_floor_fraction(np.asarray(x).dtype) * scale, expand(g.slack, size))


def nonzero(obs: Observations, g: Group) -> np.ndarray:
    """Entries where either side is non-zero beyond the check's bound."""
    limit = expand(allowed(obs, g, g.derived, g.reference_values), g.derived)
    return np.maximum(np.abs(g.derived), np.abs(g.reference_values)) > limit


@dataclasses.dataclass(frozen=True)
class Region:
    """A set of entries, built per size set for the kept rows (``(k, *shape)`` bool, or None)."""

    words: str  # the region: "the off-diagonal entries (i ≠ j)"
    rest: str  # what is right: "the diagonal is right"
    build: Callable[[Group], np.ndarray | None]
    kind: str = "structure"


def index_grid(shape: tuple[int, ...]) -> list[np.ndarray]:
    return list(np.indices(shape)) if shape else []


def per_row(g: Group, mask: np.ndarray | None) -> np.ndarray | None:
    return None if mask is None else np.broadcast_to(mask, (g.rows.size, *g.shape))


def aligned(mask: np.ndarray, shape: tuple[int, ...]) -> list[np.ndarray]:
    """``mask`` (k, *s) laid over values of ``shape``: equal, leading or trailing axes."""
    s = mask.shape[1:]
    if not s:
        return []
    out = []
    if s == shape:
        return [mask]
    if shape[: len(s)] == s:
        out.append(mask.reshape(mask.shape + (1,) * (len(shape) - len(s))))
    if shape[len(shape) - len(s) :] == s:
        out.append(mask.reshape((mask.shape[0],) + (1,) * (len(shape) - len(s)) + s))
    return [np.broadcast_to(m, (mask.shape[0], *shape)) for m in out]


def coverage(obs: Observations, region: Region, wrong: list[np.ndarray], rows: int | None = None) -> float | None:
    """Fraction of entries in ``region`` if it holds every wrong entry and leaves right ones out.

    Right entries count only where they are not zero on both sides: a region
    is no finding when everything outside it is trivially ``0 = 0``.
    """
    inside = total = outside = 0
    for g, w in zip(obs.failing_groups, wrong, strict=True):
        m = region.build(g)
        w, live = w[:rows], nonzero(obs, g)[:rows]
        if m is None or m.shape != w.shape or (w & ~m).any():
            return None
        inside += int(m.sum())
        total += m.size
        outside += int((~m & live).sum())
    return inside / total if outside and inside else None


def worst_entries(d: np.ndarray | None, r: np.ndarray | None, k: int = TOP_ENTRIES) -> tuple[Entry, ...]:
    if d is None or r is None or d.shape != r.shape:
        return ()
    err = np.abs(d - r)
    order = np.argsort(-err.ravel(), kind="stable")[:k]
    return tuple(
        Entry(tuple(int(i) for i in np.unravel_index(j, d.shape)), scalar(d.ravel()[j]), scalar(r.ravel()[j]))
        for j in order
        if err.ravel()[j] > 0
    )


def scalar(v: Any) -> float | complex:
    """One entry as a Python number: ``complex`` when it is complex, else ``float``."""
    return complex(v) if np.iscomplexobj(v) else float(v)


def by_size(obs: Observations) -> tuple[SizeRow, ...]:
    out = []
    for g in obs.groups:
        rel = g.rel_err[g.failed & g.valid]
        out.append(
            SizeRow(
                sizes=g.sizes,
                trials=int(g.valid.sum()),
                failures=int(g.failed.sum()),
                median_rel_err=float(np.median(rel)) if rel.size else float("nan"),
            )
        )
    return tuple(out)
