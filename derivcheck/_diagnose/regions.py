"""Steps 3 and 3c: the error confined to one region of entries, or independent of one index.

Regions: the diagonal and off-diagonal (or blocks with ``c = c′`` / ``c ≠ c′``),
triangles, a block grid of a flattened matrix, one row/column/entry, a row with
its column, the entries where a 0/1 input is 1 (or 0), and — when none holds
every wrong entry — one case of a comparison inside ``of``
(:mod:`derivcheck._diagnose.piecewise`). The smallest region that holds every
wrong entry and leaves some non-zero entry right wins.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from derivcheck._compare import fits
from derivcheck._diagnose._evidence import (
    Group,
    Observations,
    Region,
    aligned,
    allowed,
    coverage,
    expand,
    index_grid,
    nonzero,
    per_row,
    wrong_entries,
)
from derivcheck._diagnose._words import axis_names, close, explain_factor, symbol, times
from derivcheck._diagnose.piecewise import CASE_ROWS, best_case
from derivcheck._format import fmt_number
from derivcheck._result import Diagnosis


def _pair_regions(obs: Observations, names: list[str]) -> list[Region]:
    """Diagonal/off-diagonal (2-D), or blocks with ``c = c′`` / ``c ≠ c′`` for each pair of equal axes."""
    shapes = [g.shape for g in obs.failing_groups]
    ndim = len(shapes[0])
    out = []
    for a, b in itertools.combinations(range(ndim), 2):
        if not all(s[a] == s[b] for s in shapes):
            continue

        def eq(g, a=a, b=b):
            grid = index_grid(g.shape)
            return per_row(g, grid[a] == grid[b])

        def ne(g, a=a, b=b):
            grid = index_grid(g.shape)
            return per_row(g, grid[a] != grid[b])

        if ndim == 2:
            out += [
                Region("the diagonal (i = j)", "the off-diagonal entries are right", eq),
                Region("the off-diagonal entries (i ≠ j)", "the diagonal is right", ne),
            ]
        else:
            s = symbol(names[a], "ijklmn"[a])
            dim = names[a] or f"axis-{a}"
            out += [
                Region(
                    f"the entries with {s} = {s}′ (the diagonal {dim}-blocks)",
                    f"the entries with {s} ≠ {s}′ are right",
                    eq,
                ),
                Region(
                    f"the entries with {s} ≠ {s}′ (the off-diagonal {dim}-blocks)",
                    f"the entries with {s} = {s}′ are right",
                    ne,
                ),
            ]
    if ndim == 2 and all(s[0] == s[1] for s in shapes):
        out += [
            Region(
                "the strict upper triangle (i < j)",
                "the rest is right",
                lambda g: per_row(g, np.triu(np.ones(g.shape, bool), 1)),
            ),
            Region(
                "the strict lower triangle (i > j)",
                "the rest is right",
                lambda g: per_row(g, np.tril(np.ones(g.shape, bool), -1)),
            ),
        ]
    return out


def _block_view_regions(obs: Observations) -> list[Region]:
    """For a flat ``(n, n)`` value with ``n = a·b`` (two dims), its ``a × a`` grid of ``b × b`` blocks."""
    groups = obs.failing_groups
    if len(groups[0].shape) != 2 or any(s[0] != s[1] for s in (g.shape for g in groups)):
        return []
    out = []
    dims = [k for k, _ in groups[0].sizes]
    for outer, inner in itertools.permutations(dims, 2):
        if not all(g.shape[0] == dict(g.sizes)[outer] * dict(g.sizes)[inner] for g in groups):
            continue
        if all(dict(g.sizes)[outer] == 1 or dict(g.sizes)[inner] == 1 for g in groups):
            continue

        def block(g, same, outer=outer, inner=inner):
            b = dict(g.sizes)[inner]
            i, j = np.indices(g.shape)
            m = (i // b) == (j // b)
            return per_row(g, m if same else ~m)

        grid = f"{outer} × {outer} grid of {inner} × {inner} blocks"
        out += [
            Region(f"the diagonal blocks ({grid})", "the off-diagonal blocks are right", lambda g, f=block: f(g, True)),
            Region(
                f"the off-diagonal blocks ({grid})", "the diagonal blocks are right", lambda g, f=block: f(g, False)
            ),
        ]
    return out


def _index_regions(obs: Observations, names: list[str]) -> list[Region]:
    """One index of one axis (a row, a column, an entry), and a row with its column."""
    shapes = [g.shape for g in obs.failing_groups]
    ndim = len(shapes[0])
    out = []
    for a in range(ndim):
        smallest = min(s[a] for s in shapes)
        for i in [*range(min(smallest, 12)), -1]:
            if i == -1 and smallest <= 1:
                continue
            words = _index_words(a, i, ndim, names[a])

            def one(g, a=a, i=i):
                return per_row(g, index_grid(g.shape)[a] == (i % g.shape[a]))

            out.append(Region(words, "the others are right", one))
    for a, b in itertools.combinations(range(ndim), 2):
        if all(s[a] == s[b] for s in shapes):
            out += _cross_regions(a, b, ndim, min(s[a] for s in shapes))
    return out


def _cross_regions(a: int, b: int, ndim: int, smallest: int) -> list[Region]:
    """Row and column ``i`` together (a Hessian's entries involving variable ``i``), and their off-diagonal part."""
    out = []
    for i in [*range(min(smallest, 12)), -1]:
        if i == -1 and smallest <= 1:
            continue
        name = (
            ("the last row and column" if i == -1 else f"row and column {i}")
            if ndim == 2
            else (f"index {'−1' if i == -1 else i} of axes {a} and {b}")
        )

        def cross(g, i=i, off=False):
            grid = index_grid(g.shape)
            k = i % g.shape[a]
            m = (grid[a] == k) | (grid[b] == k)
            return per_row(g, m & (grid[a] != grid[b]) if off else m)

        out.append(Region(name, "the rest is right", cross))
        out.append(
            Region(f"the off-diagonal entries of {name}", "the rest is right", lambda g, f=cross: f(g, off=True))
        )
    return out


def _index_words(axis: int, i: int, ndim: int, dim: str) -> str:
    pos = "the last" if i == -1 else None
    if ndim == 1:
        return f"{pos} entry" if pos else f"entry {i}"
    if ndim == 2:
        what = "row" if axis == 0 else "column"
        return f"{pos} {what}" if pos else f"{what} {i}"
    at = f"axis {axis}{f' ({dim})' if dim else ''}"
    return f"{pos} index of {at}" if pos else f"index {i} of {at}"


def _input_regions(obs: Observations) -> list[Region]:
    """The entries where a 0/1 input (labels, one-hot) is 1, or 0."""
    out = []
    d = obs.derivation
    one_hot = {n for n, s in getattr(d.inputs, "specs", ()) if hasattr(s, "classes")}
    for name in obs.failing_groups[0].inputs:
        vals = [g.kept_inputs(name) for g in obs.failing_groups]
        if not all(v.ndim > 1 and np.isin(v, (0.0, 1.0)).all() for v in vals):
            continue
        for value in (1.0, 0.0):
            tag = ""
            if name in one_hot:
                tag = " (the true class)" if value else " (the other classes)"

            def build(g, name=name, value=value):
                masks = aligned(g.kept_inputs(name) == value, g.shape)
                return masks[0] if masks else None

            out.append(
                Region(
                    f"the entries where {name} = {value:g}{tag}",
                    f"the entries where {name} = {1 - value:g} are right",
                    build,
                )
            )
    return out


def _regions(obs: Observations) -> list[Region]:
    names = axis_names(obs)
    return _pair_regions(obs, names) + _block_view_regions(obs) + _index_regions(obs, names) + _input_regions(obs)


def structure(obs: Observations) -> Diagnosis | None:
    wrong = [wrong_entries(obs, g) for g in obs.failing_groups]
    if not any((~w & nonzero(obs, g)).any() for w, g in zip(wrong, obs.failing_groups, strict=True)):
        return None  # no non-zero entry is right: no region can hold the error alone
    best: tuple[float, Region] | None = None
    for region in _regions(obs):
        cover = coverage(obs, region, wrong)
        if cover is not None and (best is None or cover < best[0] - 1e-12):
            best = (cover, region)
    if best is None:
        best = best_case(obs, wrong)
    if best is None:
        return None
    region = best[1]
    return _region_diagnosis(obs, region)


def _region_diagnosis(obs: Observations, region: Region) -> Diagnosis:
    inside = _inside_words(obs, region)
    summary = f"wrong only in {region.words}; {region.rest}"
    if region.kind == "piecewise":
        summary = f"wrong only where {region.words}: one case of a piecewise formula; {region.rest}"
    if inside:
        summary += f" — there {inside}"
    read = sum(min(g.rows.size, CASE_ROWS if region.kind == "piecewise" else g.rows.size) for g in obs.failing_groups)
    evidence = (f"every wrong entry of the {read} failing trials read lies there",)
    return Diagnosis(kind=region.kind, summary=summary, evidence=evidence, where=region.words)


def _inside_words(obs: Observations, region: Region) -> str:
    """What the error is inside the region: derived 0, reference 0, a sign, a factor, a constant."""
    ds, rs = [], []
    sizes: dict[str, list[int]] = {}
    for g in obs.failing_groups:
        m = region.build(g)
        if m is None:  # the region was chosen because it builds for every failing size set (see coverage)
            raise ValueError(f"{region.words} does not build at {dict(g.sizes)}")
        for t in range(min(g.rows.size, len(m))):  # a piecewise region covers the traced rows only
            ds.append(g.derived[t][m[t]])
            rs.append(g.reference_values[t][m[t]])
            for k, v in g.sizes:
                sizes.setdefault(k, []).append(v)
    tol = obs.tol
    if all(fits(np.abs(d).max(initial=0), tol, np.abs(r).max(initial=0)) for d, r in zip(ds, rs, strict=True)):
        return "derived is 0: a term is missing"
    if all(fits(np.abs(r).max(initial=0), tol, np.abs(d).max(initial=0)) for d, r in zip(ds, rs, strict=True)):
        return "the reference is 0: derived has an extra term"
    # c = ⟨r, d⟩/⟨r, r⟩ (conjugated for complex values), named only when real: verified just below
    c = [_ratio(d, r) for d, r in zip(ds, rs, strict=True)]
    fit = all(
        fits(np.abs(d - k * r).max(initial=0), tol, max(np.abs(d).max(initial=0), np.abs(k * r).max()))
        for d, r, k in zip(ds, rs, c, strict=True)
        if d.size
    )
    if fit and np.all(np.isfinite(c)):
        factor = explain_factor(np.array(c), sizes, obs.dims)
        if factor is not None:
            return (
                "derived = −reference (the sign is flipped)"
                if factor.text == "−1"
                else (f"derived = {times(factor.text)}reference")
            )
    diffs = [d - r for d, r in zip(ds, rs, strict=True)]
    if any(np.iscomplexobj(e) for e in diffs):
        return ""  # a constant difference is named as a real number
    if all(fits(np.ptp(e), tol, np.abs(e).max()) for e in diffs if e.size):
        firsts = np.array([e[0] for e in diffs if e.size])
        if close(firsts, np.full_like(firsts, firsts[0])):
            return f"derived − reference = {fmt_number(firsts[0])} in every such entry"
        return "derived − reference is the same in every such entry (it varies between trials)"
    return ""


def _ratio(d: np.ndarray, r: np.ndarray) -> float:
    """``Re ⟨r, d⟩ / ⟨r, r⟩`` (``⟨a, b⟩ = Σ conj(a) b``; NaN when ``r = 0``): the real factor nearest ``d = c r``."""
    rr = float(np.vdot(r, r).real)
    return float(np.real(np.vdot(r, d))) / rr if rr > 0 else math.nan


def _index_symbols(names: list[str]) -> list[str]:
    """``["D", "C", "D", "C"]`` → ``["d", "c", "d′", "c′"]`` (a repeated dimension gets a prime)."""
    out = []
    for a, name in enumerate(names):
        base = symbol(name, "ijklmn"[a % 6])
        out.append(base + "′" * sum(1 for n in names[:a] if n == name and name))
    return out


def _spread(obs: Observations, g: Group, x: np.ndarray, axis: int) -> tuple[int, bool]:
    """Along ``axis``: how many fibres have two non-zero entries, and whether all such are constant."""
    limit = expand(allowed(obs, g, g.derived, g.reference_values), x)
    live = np.abs(x) > limit
    f = np.moveaxis(x, axis + 1, -1)
    lv = np.moveaxis(live, axis + 1, -1)
    b = np.broadcast_to(limit, x.shape)
    b = np.moveaxis(b, axis + 1, -1)[..., 0]
    hi = np.where(lv, f, -np.inf).max(axis=-1)
    lo = np.where(lv, f, np.inf).min(axis=-1)
    fibres = lv.sum(axis=-1) >= 2
    return int(fibres.sum()), bool(np.all((hi - lo)[fibres] <= 2 * b[fibres]))


def _independent(obs: Observations, which: str, axis: int) -> bool | None:
    """Does ``which`` (derived, reference or error) stay constant along ``axis`` where non-zero? None: no evidence."""
    fibres, constant = 0, True
    for g in obs.failing_groups:
        if g.shape[axis] < 2:
            continue
        x = {"derived": g.derived, "reference": g.reference_values, "error": g.derived - g.reference_values}[which]
        n, ok = _spread(obs, g, x, axis)
        fibres += n
        constant &= ok
    return constant if fibres else None


def ignored_index(obs: Observations) -> Diagnosis | None:
    names = axis_names(obs)
    if len(names) < 2:
        return None
    symbols = _index_symbols(names)
    for a, sym in enumerate(symbols):
        at = f"axis {a}" + (f", {names[a]}" if names[a] else "")
        if _independent(obs, "derived", a) and _independent(obs, "reference", a) is False:
            return Diagnosis(
                kind="index",
                summary=f"derived ignores the index {sym} ({at}): it is the same for every {sym} where the reference "
                f"depends on it — an index slip (another index written where {sym} belongs)",
                evidence=(f"along {sym}, every non-zero entry of derived is equal; the reference's are not",),
                where=sym,
            )
        if _independent(obs, "error", a) and _independent(obs, "reference", a) is False:
            return Diagnosis(
                kind="index",
                summary=f"the error does not depend on the index {sym} ({at}): a term without {sym} is extra or "
                f"missing (e.g. a δ or an index that should carry {sym})",
                evidence=(f"along {sym}, every non-zero entry of derived − reference is equal",),
                where=sym,
            )
    return None
