"""What kind of error a failing derivation makes, and where.

The engine gathers, for every failing check, the *evidence*
(:class:`~derivcheck._result.Evidence`): the derived value ``D`` (the actual)
and the reference ``R`` (the expected) of the failing trials, their inputs,
sizes and regimes; :func:`attach` turns it into the Result's diagnosis. For a
claim whose family compares a derived value with a reference (the
``"equality"`` analysis), :func:`diagnose` tests, in this order (:data:`STEPS`),
which simple relation links them and reports the first that *fits within the
check's tolerance* on every failing trial it reads, with its evidence:

====  ============  ===============================================================
step  kind          relation tested (per failing trial ``t``)
====  ============  ===============================================================
0     precision     every failing trial has relative error below 1e-5: rounding
0     conjugate     complex values only: ``D = ±conj(P(R))``, ``P`` the identity or a
                    permutation of the axes (a conjugation slip), or an entry-wise
                    VJP's derivative conjugated: ``D = ct ⊙ conj(R / ct)``
1     sign/factor   ``D = c_t · R`` with ``c_t = ⟨D, R⟩ / ⟨R, R⟩``, and ``c_t`` equal to
                    ``−1``, a simple constant, or an expression in the sizes
                    (``m``, ``1/m``, ``m − 1``, ``C/d``…) on every trial
1     transpose /   ``D = c · P(R)`` for a permutation ``P`` of ``R``'s axes
      permutation
2     swap          ``D = R`` with two indices (or two blocks) of one axis swapped, or (first,
                    for a pytree value) two leaves of one shape exchanged
3     structure     ``D − R`` is zero outside one region: the diagonal, the
                    off-diagonal, blocks with ``c ≠ c′``, one row/column, the
                    entries where a 0/1 input is 1 (or 0)
3     piecewise     … or outside one case of a comparison inside ``of`` (``u ≥ 0``) or
                    inside the derived function (``x > 5`` in a clamp)
4     condition     the trials that fail are exactly those with a simple property
                    (``Σ y ≠ 1``, ``n = 1``, a regime)
5     term          ``D − R = β₁ b₁ + β₂ b₂`` with ``b`` among the constant 1 and
                    the inputs shaped like ``D``, and ``β`` constant or a scalar
                    feature of the inputs (``γ · mean(ct)``)
6     condition     the failures lie in some regimes or size sets only
7     unexplained   where the error mass is and how it grows with the sizes
====  ============  ===============================================================

"Fits" uses the check's own test: ``‖D − X‖∞ ≤ atol + rtol · max(‖D‖∞, ‖X‖∞, T) +
rounding`` (:func:`derivcheck._compare.bound`), with ``T`` and ``rounding`` the
scales the check measured for that trial, and, where the check also judged entry by
entry, the entry-wise bound of :func:`derivcheck._compare.entry_excess` on every entry:
a relation fits exactly as far as the check can tell, by the test that failed (one
place, :func:`derivcheck._diagnose._evidence.fits_rows`, for every step). An entry
counts as wrong when ``|D_i − R_i|`` exceeds the same bound. A per-trial factor is
accepted only when it is constant or a size expression: with a free factor per trial,
one-entry values would always fit.

A value made of a pytree's leaves (a gradient with respect to several
arguments, a VJP's ``(dx, dγ, dβ)``, a JVP of a pytree output) whose wrong
entries all lie in some of its leaves is read on those leaves alone, each
with its own shape, and the finding names them: ``in mu1: sign error:
derived = −reference`` (:func:`differential`); each row keeps the scale the
check judged the whole value at, so "fits" still means the check's own test.

Definiteness claims (the ``"spectrum"`` analysis) are diagnosed in spectrum
terms (:mod:`derivcheck._diagnose.spectrum`): not symmetric, indefinite (how
many eigenvalues have the wrong sign), singular (the rank, and whether the null
direction is ``1``, a coordinate axis, or the null space of an input matrix),
or numerically zero. Other families (``"conditions"``) get the conditions
under which they fail (steps 4 and 6), or their own message relayed
(:func:`relay`).

The steps live in one module each: ``relations`` (0–2), ``regions`` (3, 3c),
``piecewise`` (3b), ``conditions`` (4–6), ``spectrum``; ``_evidence`` holds
what they read and the per-row bound, ``_words`` how they name dims and factors.
The diagnosis reads only the evidence (NumPy arrays); it imports nothing from
the checks.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np

from derivcheck._diagnose import conditions, regions, relations, spectrum
from derivcheck._diagnose._evidence import (
    Observations,
    by_size,
    comparable,
    confined_leaves,
    entry_label,
    in_leaves,
    small_entries_only,
    worst_entries,
)
from derivcheck._diagnose._words import regime_line
from derivcheck._inputs import Sizes, sizes_label
from derivcheck._result import Diagnosis, Evidence, Result, SizeRow

Step = Callable[[Observations], Diagnosis | None]

log = logging.getLogger("derivcheck")

STEPS: tuple[Step, ...] = (
    relations.precision,  # 0
    relations.conjugate,  # 0: complex values only
    relations.proportional,  # 1: sign, factor, transpose, permutation
    relations.swaps,  # 2
    regions.structure,  # 3, and 3b (piecewise) when no fixed region holds the error
    regions.ignored_index,  # 3c
    conditions.exact_condition,  # 4
    conditions.terms,  # 5
    conditions.partial_condition,  # 6
)
"""The table of the module docstring, in its order; the first step that fits wins (else step 7)."""


def attach(result: Result) -> Result:
    """``result`` with its diagnosis made from the engine's evidence, and the evidence dropped.

    The orchestration's one call (:func:`derivcheck.check`): every failure
    leaves with a diagnosis — the steps' finding, or the family's own message
    relayed (:func:`relay`).
    """
    diagnosis = result.diagnosis
    if diagnosis is None and result.evidence is not None:
        diagnosis = diagnose(result.evidence)
    return relay(dataclasses.replace(result, diagnosis=diagnosis, evidence=None))


def diagnose(evidence: Evidence) -> Diagnosis | None:
    """The diagnosis of one failing check, ``None`` when its analysis finds nothing.

    Never raises: a diagnosis that cannot be made says so in its summary.
    """
    if evidence.problem:
        return _no_diagnosis(evidence.problem)
    try:
        return analyse(Observations.of(evidence))
    except Exception:  # the verdict stands even when the diagnosis cannot be made
        log.debug("the diagnosis of %s raised", evidence.derivation.name, exc_info=True)
        return _no_diagnosis("the analysis could not be completed")


def _no_diagnosis(problem: str) -> Diagnosis:
    return Diagnosis(kind="unexplained", summary=f"no diagnosis ({problem})"[:200])


def analyse(obs: Observations) -> Diagnosis | None:
    """The analysis the claim's family asked for (:attr:`~derivcheck._result.Evidence.analysis`).

    Value relations are tested only for ``"equality"`` (derivatives and
    identities: ``D`` and ``R`` side by side, when both are kept with one
    shape); ``"spectrum"`` is definiteness; every other family (expectations,
    convexity…) gets the conditions under which it fails, or ``None`` (then
    :func:`relay` passes on the family's own finding).
    """
    if obs.analysis == "spectrum":
        return _spectrum(obs)
    if obs.analysis == "equality" and comparable(obs):
        return finish(obs, differential(obs))
    found = attempt(conditions.exact_condition, obs) or attempt(conditions.partial_condition, obs)
    return None if found is None else finish(obs, found)


def differential(obs: Observations) -> Diagnosis:
    """The steps of :data:`STEPS`, on the leaves that hold every wrong entry when a pytree value's error
    is confined to some of them (:func:`~derivcheck._diagnose._evidence.confined_leaves`), else on the
    whole value; the finding then names those leaves (:func:`in_part`)."""
    swapped = attempt(relations.leaf_swap, obs)
    if swapped is not None:
        return swapped
    try:
        names = confined_leaves(obs)
    except Exception:  # the whole value is still read
        log.debug("the leaves of %s could not be read", obs.derivation.name, exc_info=True)
        names = ()
    if not names:
        return steps(obs)
    return in_part(obs, names, steps(in_leaves(obs, names)))


def in_part(obs: Observations, names: tuple[str, ...], diag: Diagnosis) -> Diagnosis:
    """``diag``, read on the leaves ``names`` alone, said so: ``in mu1: sign error: derived = −reference``."""
    part = ", ".join(names)
    others = ", ".join(name for name, _ in obs.failing_groups[0].leaves if name not in names)
    n = sum(g.rows.size for g in obs.failing_groups)
    line = f"the other leaves ({others}) match within tolerance on all {n} failing trials read: {part} read alone"
    return dataclasses.replace(
        diag,
        summary=f"in {part}: {diag.summary}",
        evidence=(line, *diag.evidence),
        where=f"{part}: {diag.where}" if diag.where else part,
    )


def steps(obs: Observations) -> Diagnosis:
    """The steps of :data:`STEPS`, in order; the first that fits wins, else step 7 (unexplained).

    A step that raises is skipped (:func:`attempt`): the remaining steps still
    speak, and the internal error goes to the ``derivcheck`` log, not to the user.
    """
    for step in STEPS:
        found = attempt(step, obs)
        if found is not None:
            return found
    return unexplained(obs)


def attempt(step: Step, obs: Observations) -> Diagnosis | None:
    """``step(obs)``, or ``None`` when the step raises (logged at debug level with its traceback).

    A diagnosis step is a heuristic over arrays the user's claim shaped; an
    input it did not foresee must cost that one finding, never the others.
    """
    try:
        return step(obs)
    except Exception:
        log.debug("diagnosis step %s raised on %s", step.__name__, obs.derivation.name, exc_info=True)
        return None


def _spectrum(obs: Observations) -> Diagnosis:
    """Definiteness: not symmetric, not ``jax.hessian(of)`` (then the steps above), or the spectrum's mode."""
    what, count = spectrum.failure(obs)
    if what == "asymmetric":
        return finish(obs, spectrum.asymmetric(obs, count))
    if what == "differs":
        inner = differential(obs)
        return finish(obs, dataclasses.replace(inner, summary=f"differs from jax.hessian(of): {inner.summary}"))
    return finish(obs, spectrum.spectrum(obs))


def finish(obs: Observations, diag: Diagnosis) -> Diagnosis:
    """Add what every diagnosis carries: counts, regimes, worst entries, the error by size."""
    failing = sum(int(g.failed.sum()) for g in obs.groups)
    trials = sum(int(g.valid.sum()) for g in obs.groups)
    regimes = tuple(dict.fromkeys(r for g in obs.groups for r in g.regimes[g.failed]))
    evidence = list(diag.evidence)
    line = regime_line(obs)
    if line and diag.kind != "condition":
        evidence.append(line)
    return dataclasses.replace(
        diag,
        evidence=tuple(evidence),
        regimes=regimes,
        failing=failing,
        trials=trials,
        worst_entries=diag.worst_entries or worst_entries(obs.worst_derived, obs.worst_reference),
        by_size=by_size(obs),
    )


def relay(result: Result) -> Result:
    """A failing result without a diagnosis gets the claim family's own finding as one (``kind="claim"``).

    Claims beyond derivatives (convexity, limits, Monte Carlo expectations,
    convergence orders) are judged by their own statistics, and their message
    already says what is wrong ("converges with order 1.000, not 2"); the
    diagnosis relays it with the regimes and sizes that fail, so every failure
    carries one.
    """
    if result.outcome != "fails" or result.diagnosis is not None:
        return result
    regimes = tuple(dict.fromkeys(c.regime for c in result.cells if c.failures))
    every = {c.regime for c in result.cells}
    evidence = []
    if regimes and len(regimes) < len(every):
        evidence.append("fails only in regime" + ("s " if len(regimes) > 1 else " ") + ", ".join(regimes))
    by_size: dict[Sizes, list[int]] = {}
    for c in result.cells:
        by_size.setdefault(c.sizes, [0, 0])
        by_size[c.sizes][0] += c.trials
        by_size[c.sizes][1] += c.failures
    rows = tuple(SizeRow(s, t, f, float("nan")) for s, (t, f) in by_size.items())
    diag = Diagnosis(
        kind="claim",
        summary=result.message,
        evidence=tuple(evidence),
        regimes=regimes,
        failing=sum(c.failures for c in result.cells),
        trials=result.trials,
        by_size=rows,
    )
    return dataclasses.replace(result, diagnosis=diag)


def unexplained(obs: Observations) -> Diagnosis:
    entries = worst_entries(obs.worst_derived, obs.worst_reference)
    evidence = []
    if entries:
        where = ", ".join(entry_label(obs, e.index) for e in entries[:3])
        evidence.append(f"largest errors of the worst trial at {where}")
    mass = _mass_line(obs)
    if mass:
        evidence.append(mass)
    scaling = _scaling_line(obs)
    if scaling:
        evidence.append(scaling)
    prop = _proportional_line(obs)
    if prop:
        evidence.append(prop)
    k, n = small_entries_only(obs)
    if k:
        evidence.append(
            f"{k} of the {n} failing trials read fail only entry by entry: their wrong entries are far smaller "
            "than the largest, so no relation read at the scale of the whole value describes them"
        )
    summary = "no simple relation fits (sign, factor, transpose, swap, one region, one term)"
    if entries:
        summary += f"; the largest error is at {entry_label(obs, entries[0].index)}"
    return Diagnosis(kind="unexplained", summary=summary, evidence=tuple(evidence))


def _mass_line(obs: Observations) -> str:
    d, r = obs.worst_derived, obs.worst_reference
    if d is None or r is None or d.size < 4:
        return ""
    err = np.sort(np.abs(d - r).ravel())[::-1]
    total = err.sum()
    if total == 0:
        return ""
    k = max(1, d.size // 10)
    share = err[:k].sum() / total
    return f"the {k} largest of {d.size} entries carry {share:.0%} of the error mass of the worst trial"


def _scaling_line(obs: Observations) -> str:
    rows = [r for r in by_size(obs) if r.failures]
    if len(rows) < 2:
        return ""
    parts = ", ".join(f"{sizes_label(r.sizes)}: {r.median_rel_err:.2g}" for r in rows)
    return f"median relative error by size: {parts}"


def _proportional_line(obs: Observations) -> str:
    cs = relations.factors(obs, tuple(range(len(obs.failing_groups[0].shape))))
    if cs is None:
        return ""
    c = np.concatenate(cs)
    if c.size < relations.FACTOR_TRIALS:
        ratios = ", ".join(f"{x:.4g}" for x in c)
        return (
            f"derived is proportional to reference on the {c.size} failing trial{'s' if c.size > 1 else ''} read "
            f"(ratio {ratios}): too few trials to tell a constant factor"
        )
    return (
        f"derived is proportional to reference in each trial, by a factor that varies ({c.min():.3g} to {c.max():.3g})"
    )
