"""What kind of error a failing derivation makes, and where.

The engine hands every failing check to :func:`diagnose_run`, with the derived
value ``D`` (the actual) and the reference ``R`` (the expected) of the failing
trials, their inputs, sizes and regimes. The diagnosis tests, in this order,
which simple relation links them and reports the first that *fits within the
check's tolerance* on every failing trial it reads, with its evidence:

====  ============  ===============================================================
step  kind          relation tested (per failing trial ``t``)
====  ============  ===============================================================
0     precision     every failing trial has relative error below 1e-5: rounding
1     sign/factor   ``D = c_t · R`` with ``c_t = ⟨D, R⟩ / ⟨R, R⟩``, and ``c_t`` equal to
                    ``−1``, a simple constant, or an expression in the sizes
                    (``m``, ``1/m``, ``m − 1``, ``C/d``…) on every trial
1     transpose /   ``D = c · P(R)`` for a permutation ``P`` of ``R``'s axes
      permutation
2     swap          ``D = R`` with two indices (or two blocks) of one axis swapped
3     structure     ``D − R`` is zero outside one region: the diagonal, the
                    off-diagonal, blocks with ``c ≠ c′``, one row/column, the
                    entries where a 0/1 input is 1 (or 0)
3     piecewise     … or outside one case of a comparison inside ``of`` (``u ≥ 0``)
4     condition     the trials that fail are exactly those with a simple property
                    (``Σ y ≠ 1``, ``n = 1``, a regime)
5     term          ``D − R = β₁ b₁ + β₂ b₂`` with ``b`` among the constant 1 and
                    the inputs shaped like ``D``, and ``β`` constant or a scalar
                    feature of the inputs (``γ · mean(ct)``)
6     condition     the failures lie in some regimes or size sets only
7     unexplained   where the error mass is and how it grows with the sizes
====  ============  ===============================================================

"Fits" uses the check's own test: ``‖D − X‖∞ ≤ atol + rtol · max(‖D‖∞, ‖X‖∞, T) +
rounding``, with ``T`` and ``rounding`` the scales the check measured for that
trial (:mod:`derivcheck._compare`), so a relation holds exactly as far as the
check can tell. An entry counts as wrong when ``|D_i − R_i|`` exceeds the same
bound. A per-trial factor is accepted only when it is constant or a size
expression: with a free factor per trial, one-entry values would always fit.

Definiteness claims are diagnosed in spectrum terms (:func:`diagnose_spectrum`):
not symmetric, indefinite (how many eigenvalues have the wrong sign), singular
(the rank, and whether the null direction is ``1``, a coordinate axis, or the
null space of an input matrix), or numerically zero.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from derivcheck._compare import Tolerance
from derivcheck._derivation import DEFINITE_WORDS, Derivation
from derivcheck._format import fmt_number
from derivcheck._inputs import Inputs, Sizes, sizes_label

MAX_ROWS = 48  # failing trials per size set whose values the diagnosis reads
CASE_ROWS = 4  # failing trials per size set on which `of` is evaluated for piecewise cases
PRECISION_REL = 1e-5  # below this relative error, a failure is rounding, not a formula error
MATCH_RTOL = 1e-6  # a fitted factor or coefficient "equals" an expression within this
TOP_ENTRIES = 5

KINDS: tuple[str, ...] = (
    "precision",
    "sign",
    "factor",
    "transpose",
    "permutation",
    "swap",
    "structure",
    "index",
    "piecewise",
    "condition",
    "term",
    "asymmetric",
    "spectrum",
    "claim",
    "unexplained",
)


# --------------------------------------------------------------------------- records


@dataclasses.dataclass(frozen=True)
class Entry:
    """One entry of a trial's value: its index, both sides and their difference."""

    index: tuple[int, ...]
    derived: float
    reference: float | None

    @property
    def error(self) -> float:
        return float("nan") if self.reference is None else self.derived - self.reference

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": list(self.index),
            "derived": _num(self.derived),
            "reference": _num(self.reference),
            "error": _num(self.error),
        }


@dataclasses.dataclass(frozen=True)
class SizeRow:
    """The failures of one size set: how many, and the median relative error among them."""

    sizes: Sizes
    trials: int
    failures: int
    median_rel_err: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "sizes": dict(self.sizes),
            "trials": self.trials,
            "failures": self.failures,
            "median_rel_err": _num(self.median_rel_err),
        }


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """What is wrong with a failing derivation, in words, with the evidence.

    Attributes:
      kind: one of :data:`KINDS` (``"factor"``, ``"structure"``, ``"spectrum"``…).
      summary: one line a student would recognise ("off by a factor of m = 13 (rows of X)").
      evidence: the numbers behind it, one line each.
      where: the region or condition the error is confined to ("" when everywhere).
      expression: the factor or term found ("m", "−1", "y − 1"), "" when none.
      factor: the factor ``D/R`` in the worst failing trial, when the kind has one.
      regimes: the regimes with failures.
      failing, trials: failing and judged trials.
      worst_entries: the entries of the worst trial with the largest ``|D − R|``.
      by_size: failures and median relative error per size set (how the error scales).
    """

    kind: str
    summary: str
    evidence: tuple[str, ...] = ()
    where: str = ""
    expression: str = ""
    factor: float | None = None
    regimes: tuple[str, ...] = ()
    failing: int = 0
    trials: int = 0
    worst_entries: tuple[Entry, ...] = ()
    by_size: tuple[SizeRow, ...] = ()

    def __str__(self) -> str:
        return self.summary

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (README, "JSON schema: diagnosis")."""
        return {
            "kind": self.kind,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "where": self.where,
            "expression": self.expression,
            "factor": _num(self.factor),
            "regimes": list(self.regimes),
            "failing": self.failing,
            "trials": self.trials,
            "worst_entries": [e.to_dict() for e in self.worst_entries],
            "by_size": [r.to_dict() for r in self.by_size],
        }


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# ---------------------------------------------------------------------- observations


@dataclasses.dataclass
class Group:
    """The trials of one size set: everyone's inputs and verdicts, the kept failing rows' values.

    ``derived``/``reference`` hold the values of the failing trials ``rows``
    (at most :data:`MAX_ROWS`); ``floor`` and ``slack`` are those trials'
    cancelled-terms scale ``T`` and rounding allowance, as the check measured.
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

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.derived.shape[1:])

    def kept_inputs(self, name: str) -> np.ndarray:
        return self.inputs[name][self.rows]


@dataclasses.dataclass
class Observations:
    """Everything the diagnosis reads about one failing check."""

    derivation: Derivation
    tol: Tolerance
    groups: list[Group]
    worst_derived: np.ndarray | None = None
    worst_reference: np.ndarray | None = None
    arg_names: tuple[str, ...] = ()
    analysis: str | None = None  # the family's: "equality" (value relations), "spectrum", or None

    @property
    def failing_groups(self) -> list[Group]:
        return [g for g in self.groups if g.rows.size]

    @property
    def dims(self) -> dict[str, str]:
        return dim_descriptions(self.derivation.inputs)


def diagnose_run(d: Derivation, family: Any, run: Any, batches: Sequence[Any]) -> Diagnosis | None:
    """The engine's hook: the diagnosis of a finished run, ``None`` when nothing failed.

    ``run`` is the engine's ``Run`` and ``batches`` its per-size-set batches
    (``sizes``, ``names``, ``args``, ``extra``, ``values``, ``call``). Never
    raises: a diagnosis that cannot be made says so in its summary.
    """
    if not np.asarray(run.failed).any():
        return None
    try:
        obs = observe(d, family, run, batches)
        return diagnose(obs)
    except Exception as exc:  # the verdict stands even when the diagnosis cannot be made
        return Diagnosis(kind="unexplained", summary=f"no diagnosis ({type(exc).__name__}: {exc})"[:200])


def observe(d: Derivation, family: Any, run: Any, batches: Sequence[Any]) -> Observations:
    """Collect the failing trials' values (recomputed for a few rows when not kept) per size set."""
    groups = []
    start = 0
    names = d.arg_names or tuple(f"arg{i}" for i in range(len(batches[0].args)))
    for b in batches:
        n = len(b.names)
        sl = slice(start, start + n)
        start += n
        failed = np.asarray(run.failed[sl], bool)
        rows = _pick_rows(np.flatnonzero(failed))
        values = _values(b, family, d, rows)
        stats = {k: np.asarray(v)[sl] for k, v in run.stats.items()}
        inputs = {nm: np.asarray(a) for nm, a in zip(names, b.args, strict=False)}
        inputs.update({k: np.asarray(v) for k, v in b.extra.items()})
        groups.append(
            Group(
                sizes=b.sizes,
                regimes=np.asarray(b.names),
                failed=failed,
                valid=np.asarray(run.stats["finite_reference"][sl], bool),
                rel_err=np.asarray(run.rel_err[sl], float),
                inputs=inputs,
                stats=stats,
                rows=rows,
                derived=values[0],
                reference=values[1],
                floor=stats.get("terms", np.zeros(n))[rows].astype(float),
                slack=stats.get("rounding", np.zeros(n))[rows].astype(float),
            )
        )
    w = run.worst
    return Observations(
        derivation=d,
        tol=run.tol,
        groups=groups,
        worst_derived=None if w is None else _as_array(w.derived),
        worst_reference=None if w is None else _as_array(w.reference),
        arg_names=names,
        analysis=getattr(family, "analysis", None),
    )


def _pick_rows(failing: np.ndarray) -> np.ndarray:
    """At most :data:`MAX_ROWS` failing rows, spread evenly (rows are grouped by regime: each is read)."""
    if failing.size <= MAX_ROWS:
        return failing
    return failing[np.unique(np.linspace(0, failing.size - 1, MAX_ROWS).round().astype(int))]


def _values(b: Any, family: Any, d: Derivation, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Both sides of the kept rows: from the batch, or recomputed when it did not keep them.

    A family whose values are not two arrays (or an array and ``None``) gives
    no values: only the conditions of its failures are diagnosed.
    """
    if not rows.size:
        return np.zeros((0, 0)), None
    try:
        if b.values is not None:
            got, ref = b.values
        else:
            got, ref = b.call(family, d, "values", rows=rows)[1]
            rows = np.arange(rows.size)
        got = np.asarray(got, dtype=np.float64)[rows]
        ref = None if ref is None else np.asarray(ref, dtype=np.float64)[rows]
    except (TypeError, ValueError, IndexError):
        return np.zeros((rows.size, 0)), None
    return got, ref


def _as_array(x: Any) -> np.ndarray | None:
    try:
        return None if x is None else np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        return None


# -------------------------------------------------------------------------- dispatch


def diagnose(obs: Observations) -> Diagnosis | None:
    """The first relation of the table in the module docstring that fits the failing trials.

    Value relations are tested only for equality claims (derivatives and
    identities: ``D`` and ``R`` side by side); other claim families
    (expectations, convexity…) get the conditions under which they fail, or
    ``None`` (then :func:`ensure_diagnosis` relays the family's own finding).
    """
    if obs.analysis == "spectrum":
        return diagnose_spectrum(obs)
    if obs.analysis == "equality" and _comparable(obs):
        return _finish(obs, _differential(obs))
    found = _exact_condition(obs) or _partial_condition(obs)
    return None if found is None else _finish(obs, found)


def _comparable(obs: Observations) -> bool:
    """Both sides are kept, with the same shape, for every size set with failures."""
    return all(g.reference is not None and g.reference.shape == g.derived.shape for g in obs.failing_groups)


def _differential(obs: Observations) -> Diagnosis:
    """Steps 0–7 of the module docstring's table, in order; the first that fits wins."""
    steps: tuple[Callable[[Observations], Diagnosis | None], ...] = (
        _precision,
        _relations,
        _swaps,
        _structure,
        _ignored_index,
        _exact_condition,
        _terms,
        _partial_condition,
    )
    for step in steps:
        found = step(obs)
        if found is not None:
            return found
    return _unexplained(obs)


def _finish(obs: Observations, diag: Diagnosis) -> Diagnosis:
    """Add what every diagnosis carries: counts, regimes, worst entries, the error by size."""
    failing = sum(int(g.failed.sum()) for g in obs.groups)
    trials = sum(int(g.valid.sum()) for g in obs.groups)
    regimes = tuple(dict.fromkeys(r for g in obs.groups for r in g.regimes[g.failed]))
    evidence = list(diag.evidence)
    line = _regime_line(obs)
    if line and diag.kind != "condition":
        evidence.append(line)
    return dataclasses.replace(
        diag,
        evidence=tuple(evidence),
        regimes=regimes,
        failing=failing,
        trials=trials,
        worst_entries=diag.worst_entries or _worst_entries(obs.worst_derived, obs.worst_reference),
        by_size=_by_size(obs),
    )


def ensure_diagnosis(result: Any) -> Any:
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


# ------------------------------------------------------------------------ tolerances


def _norm(x: np.ndarray) -> np.ndarray:
    """``‖x_t‖∞`` per row of a stacked array ``(k, ...)``."""
    flat = np.abs(np.asarray(x, float)).reshape(len(x), -1)
    return flat.max(axis=1, initial=0.0)


def _expand(v: np.ndarray, like: np.ndarray) -> np.ndarray:
    return np.asarray(v).reshape((-1,) + (1,) * (np.ndim(like) - 1))


def _allowed(obs: Observations, g: Group, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The check's bound per row: ``atol + rtol · max(‖x‖, ‖y‖, T) + rounding``."""
    scale = np.maximum(np.maximum(_norm(x), _norm(y)), g.floor)
    return obs.tol.atol + obs.tol.rtol * scale + g.slack


def _fits(obs: Observations, g: Group, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which rows have ``x`` equal to ``y`` by the check's own test."""
    return _norm(x - y) <= _allowed(obs, g, x, y)


def _wrong_entries(obs: Observations, g: Group) -> np.ndarray:
    """Entries whose error alone would fail the trial: ``|D_i − R_i| > bound``."""
    bound = _allowed(obs, g, g.derived, g.reference)
    return np.abs(g.derived - g.reference) > _expand(bound, g.derived)


# ------------------------------------------------------------------- names and sizes


def dim_descriptions(inputs: Any) -> dict[str, str]:
    """Each symbolic dimension in words, from the first argument that uses it: ``m → rows of X``."""
    out: dict[str, str] = {}
    if not isinstance(inputs, Inputs):
        return out
    for name, spec in inputs.specs:
        dims = tuple(getattr(spec, "dims", ()))
        classes = getattr(spec, "classes", None)
        if classes is not None:
            dims = (*dims, classes)
        for axis, dim in enumerate(dims):
            if isinstance(dim, str) and dim not in out:
                out[dim] = _axis_words(name, axis, len(dims), classes is not None)
    return out


def _axis_words(name: str, axis: int, ndim: int, one_hot: bool) -> str:
    if one_hot and axis == ndim - 1:
        return f"classes of {name}"
    if ndim == 1:
        return f"length of {name}"
    if ndim == 2:
        return f"{'rows' if axis == 0 else 'columns'} of {name}"
    return f"axis {axis} of {name}"


def _sizes_of(obs: Observations) -> dict[str, list[int]]:
    """Each dimension's value in every kept failing row, in order."""
    out: dict[str, list[int]] = {}
    for g in obs.failing_groups:
        for k, v in g.sizes:
            out.setdefault(k, []).extend([v] * g.rows.size)
    return out


def axis_names(obs: Observations) -> list[str]:
    """The dimension each axis of the value stands for ("" where the sizes do not say)."""
    groups = [g for g in obs.groups if g.derived.ndim > 1] or obs.groups
    ndim = len(groups[0].shape)
    names = []
    for a in range(ndim):
        cands = [k for k, _ in groups[0].sizes if all(g.shape[a] == dict(g.sizes).get(k) for g in groups)]
        names.append(cands[0] if len(cands) == 1 else _prefer_wrt(obs, a, cands))
    return names


def _prefer_wrt(obs: Observations, axis: int, cands: list[str]) -> str:
    """Among dims of equal size, the one the differentiated argument uses at that axis."""
    d = obs.derivation
    if not cands or not isinstance(d.inputs, Inputs) or not hasattr(d.claim, "wrt"):
        return ""
    spec = dict(d.inputs.specs).get(d.arg_names[d.wrt_index]) if d.arg_names else None
    dims = [x for x in getattr(spec, "dims", ()) if isinstance(x, str)]
    return next((x for x in dims if x in cands), "")


def _symbol(dim: str, fallback: str) -> str:
    return dim.lower() if dim else fallback


# ------------------------------------------------------------------------- numbers


SIMPLE_CONSTANTS: tuple[float, ...] = (-1.0, 2.0, 0.5, -2.0, -0.5, 3.0, 1 / 3, 4.0, 0.25, -3.0, -1 / 3, -4.0, -0.25)


def _dim_expressions(dims: Sequence[str]) -> list[tuple[str, tuple[str, ...], Callable[[dict], float]]]:
    """Expressions in the sizes a factor may equal: ``(text, dims used, value(sizes))``."""
    out: list[tuple[str, tuple[str, ...], Callable[[dict], float]]] = []
    one = {
        "{k}": lambda k: k,
        "1/{k}": lambda k: 1 / k,
        "{k} − 1": lambda k: k - 1,
        "1/({k} − 1)": lambda k: 1 / (k - 1) if k != 1 else math.nan,
        "{k} + 1": lambda k: k + 1,
        "1/({k} + 1)": lambda k: 1 / (k + 1),
        "2{k}": lambda k: 2 * k,
        "1/(2{k})": lambda k: 1 / (2 * k),
        "{k}/2": lambda k: k / 2,
        "{k}/({k} − 1)": lambda k: k / (k - 1) if k != 1 else math.nan,
        "({k} − 1)/{k}": lambda k: (k - 1) / k,
        "{k}²": lambda k: k * k,
        "1/{k}²": lambda k: 1 / (k * k),
        "√{k}": lambda k: math.sqrt(k),
        "1/√{k}": lambda k: 1 / math.sqrt(k),
    }
    for k in dims:
        for text, fn in one.items():
            out.append((text.format(k=k), (k,), lambda s, k=k, fn=fn: fn(s[k])))
    for k, j in itertools.permutations(dims, 2):
        out.append((f"{k}/{j}", (k, j), lambda s, k=k, j=j: s[k] / s[j]))
        if k < j:
            out.append((f"{k}{j}", (k, j), lambda s, k=k, j=j: s[k] * s[j]))
            out.append((f"1/({k}{j})", (k, j), lambda s, k=k, j=j: 1 / (s[k] * s[j])))
    signed = []
    for text, used, fn in out:
        negated = f"−({text})" if " " in text else f"−{text}"
        signed.append((negated, used, lambda s, fn=fn: -fn(s)))
    return out + signed


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return bool(np.all(np.isfinite(b)) and np.all(np.abs(a - b) <= MATCH_RTOL * np.maximum(np.abs(a), 1e-300)))


@dataclasses.dataclass(frozen=True)
class Factor:
    """A factor explained: its expression, the dims it uses, and their words."""

    text: str
    dims: tuple[str, ...] = ()
    words: str = ""


def explain_factor(
    c: np.ndarray,
    sizes: dict[str, list[int]],
    dims: dict[str, str],
    verify: Callable[[np.ndarray], bool] | None = None,
) -> Factor | None:
    """Which simple constant or size expression equals the factor ``c_t`` on every trial.

    ``verify(values)`` decides whether a candidate's per-trial values fit (by
    default: equal to ``c`` within :data:`MATCH_RTOL`; the diagnosis passes the
    check's own test, since a fitted ``c_t`` is imprecise where terms cancel).
    A simple constant wins; then an expression whose value varies with the
    sizes; then one that is constant on these trials.

    >>> explain_factor(np.array([5.0, 13.0]), {"m": [5, 13], "d": [3, 8]}, {"m": "rows of X"}).words
    'm = 13 (rows of X)'
    """
    c = np.asarray(c, float)
    if c.size == 0:
        return None
    verify = verify or (lambda vals: _close(c, vals))
    for k in SIMPLE_CONSTANTS:
        if verify(np.full(c.shape, k)):
            return Factor(fmt_number(k))
    matches = []
    for text, used, fn in _dim_expressions(sorted(sizes)):
        vals = np.array([fn({k: sizes[k][i] for k in used}) for i in range(c.size)], float)
        if np.all(np.isfinite(vals)) and verify(vals):
            varies = len({tuple(sizes[k][i] for k in used) for i in range(c.size)}) > 1
            matches.append((not varies, len(text), text, used))
    if not matches:
        return None
    _, _, text, used = min(matches)
    return Factor(text, used, _factor_words(text, used, sizes, dims))


def _factor_words(text: str, used: tuple[str, ...], sizes: dict[str, list[int]], dims: dict[str, str]) -> str:
    """``m = 13 (rows of X)`` for a bare dim; ``m − 1, with m = 13 (rows of X)`` otherwise."""
    parts = [f"{k} = {max(sizes[k])}" + (f" ({dims[k]})" if k in dims else "") for k in used]
    if text.lstrip("−") == used[0] and len(used) == 1:
        sign = "−" if text.startswith("−") else ""
        return sign + parts[0]
    return f"{text}, with " + " and ".join(parts)


# --------------------------------------------------------------------- step 0: precision


def _precision(obs: Observations) -> Diagnosis | None:
    rel = np.concatenate([g.rel_err[g.failed] for g in obs.groups])
    if rel.size and 0 < np.nanmax(rel) < PRECISION_REL:
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


# ------------------------------------------------------------- step 1: linear relations


def _axis_perms(obs: Observations) -> list[tuple[int, ...]]:
    """Permutations of the value's axes that keep its shape in every size set (identity first)."""
    shapes = [g.shape for g in obs.failing_groups]
    ndim = len(shapes[0])
    pool = itertools.permutations(range(ndim)) if ndim <= 4 else [tuple(range(ndim)), tuple(reversed(range(ndim)))]
    return [p for p in pool if all(tuple(s[i] for i in p) == s for s in shapes)]


def _factors(obs: Observations, perm: tuple[int, ...]) -> list[np.ndarray] | None:
    """``c_t = ⟨D, P(R)⟩ / ⟨P(R), P(R)⟩`` per kept row, if ``D = c_t P(R)`` fits every row."""
    out = []
    for g in obs.failing_groups:
        pr = np.transpose(g.reference, (0, *(i + 1 for i in perm)))
        flat_d, flat_r = g.derived.reshape(len(pr), -1), pr.reshape(len(pr), -1)
        denom = np.einsum("ij,ij->i", flat_r, flat_r)
        if np.any(denom == 0):
            return None
        c = np.einsum("ij,ij->i", flat_d, flat_r) / denom
        if not _fits(obs, g, g.derived, _expand(c, pr) * pr).all():
            return None
        out.append(c)
    return out


def _relations(obs: Observations) -> Diagnosis | None:
    for perm in _axis_perms(obs):
        cs = _factors(obs, perm)
        if cs is None:
            continue
        c = np.concatenate(cs)
        identity = perm == tuple(range(len(perm)))
        verify = _factor_check(obs, perm)
        if verify(np.ones_like(c)):
            return _permutation_diagnosis(obs, perm, None, c)
        factor = explain_factor(c, _sizes_of(obs), obs.dims, verify)
        median = float(np.median(c))
        if factor is None and verify(np.full_like(c, median)):
            factor = Factor(fmt_number(median))
        if factor is None:
            continue
        if identity:
            return _factor_diagnosis(obs, factor, c)
        return _permutation_diagnosis(obs, perm, factor, c)
    return None


def _factor_check(obs: Observations, perm: tuple[int, ...]) -> Callable[[np.ndarray], bool]:
    """``verify(values)``: does ``D = value_t · P(R)`` pass the check's test on every kept row?"""

    def verify(values: np.ndarray) -> bool:
        start = 0
        for g in obs.failing_groups:
            k = g.rows.size
            pr = np.transpose(g.reference, (0, *(i + 1 for i in perm)))
            if not _fits(obs, g, g.derived, _expand(values[start : start + k], pr) * pr).all():
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
    if factor.text == "−1":
        summary = "sign error: derived = −reference"
        kind = "sign"
    else:
        what = factor.words or factor.text
        summary = f"off by a factor of {what}: derived = {_times(factor.text)}reference"
        kind = "factor"
    return Diagnosis(kind=kind, summary=summary, evidence=tuple(evidence), expression=factor.text, factor=float(c[-1]))


def _times(text: str) -> str:
    return f"({text}) · " if any(ch in text for ch in " /") and not text.startswith("1/") else f"{text} · "


def _factor_is_one(obs: Observations, factor: Factor) -> str:
    """Size sets where the size expression equals 1 and nothing fails (e.g. ``m = 1``)."""
    if not factor.dims:
        return ""
    exprs = {t: fn for t, _, fn in _dim_expressions(sorted(factor.dims))}
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
        formula = "derived = " + ("" if factor is None else _times(factor.text)) + "referenceᵀ"
    else:
        kind, what = "permutation", "axes permuted"
        letters = "ijklmnop"[:ndim]
        src = [""] * ndim
        for a, p in enumerate(perm):
            src[p] = letters[a]
        formula = f"derived[{','.join(letters)}] = " + ("" if factor is None else _times(factor.text))
        formula += f"reference[{','.join(src)}]"
    evidence = (f"{formula} within tolerance on all {c.size} failing trials read",)
    return Diagnosis(
        kind=kind,
        summary=f"{what}{scaled}: {formula}",
        evidence=evidence,
        expression="" if factor is None else factor.text,
        factor=None if factor is None else float(c[-1]),
    )


# ------------------------------------------------------------------- step 2: swaps


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


def _swaps(obs: Observations) -> Diagnosis | None:
    for axes in _swap_axes(obs):
        found = _swap_on(obs, axes)
        if found:
            return _swap_diagnosis(obs, axes, found)
    return None


def _swap_on(obs: Observations, axes: tuple[int, ...]) -> list[tuple[int, int]] | None:
    """The swapped pair of every kept row, if each row is ``R`` with one pair swapped along ``axes``."""
    pairs = []
    for g in obs.failing_groups:
        wrong = _wrong_entries(obs, g)
        for t in range(g.rows.size):
            pair = _swap_pair(obs, g, t, wrong[t], axes)
            if pair is None:
                return None
            pairs.append(pair)
    return pairs


def _swap_pair(obs: Observations, g: Group, t: int, wrong: np.ndarray, axes: tuple[int, ...]) -> tuple[int, int] | None:
    """The pair ``(i, j)`` whose swap along ``axes`` turns row ``t``'s reference into its derived value."""
    grid = _grid(wrong.shape)
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
        moved = _swapped(g.reference[t], axes, int(i), int(j))
        if _fits_row(obs, g, t, moved):
            return int(i), int(j)
    return None


def _fits_row(obs: Observations, g: Group, t: int, other: np.ndarray) -> bool:
    d = g.derived[t]
    scale = max(np.abs(d).max(initial=0), np.abs(other).max(initial=0), g.floor[t])
    return bool(np.abs(d - other).max(initial=0) <= obs.tol.atol + obs.tol.rtol * scale + g.slack[t])


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


# --------------------------------------------------------------- step 3: structure


@dataclasses.dataclass(frozen=True)
class Region:
    """A set of entries, built per size set for the kept rows (``(k, *shape)`` bool, or None)."""

    words: str  # the region: "the off-diagonal entries (i ≠ j)"
    rest: str  # what is right: "the diagonal is right"
    build: Callable[[Group], np.ndarray | None]
    kind: str = "structure"


def _grid(shape: tuple[int, ...]) -> list[np.ndarray]:
    return list(np.indices(shape)) if shape else []


def _per_row(g: Group, mask: np.ndarray | None) -> np.ndarray | None:
    return None if mask is None else np.broadcast_to(mask, (g.rows.size, *g.shape))


def _pair_regions(obs: Observations, names: list[str]) -> list[Region]:
    """Diagonal/off-diagonal (2-D), or blocks with ``c = c′`` / ``c ≠ c′`` for each pair of equal axes."""
    shapes = [g.shape for g in obs.failing_groups]
    ndim = len(shapes[0])
    out = []
    for a, b in itertools.combinations(range(ndim), 2):
        if not all(s[a] == s[b] for s in shapes):
            continue

        def eq(g, a=a, b=b):
            grid = _grid(g.shape)
            return _per_row(g, grid[a] == grid[b])

        def ne(g, a=a, b=b):
            grid = _grid(g.shape)
            return _per_row(g, grid[a] != grid[b])

        if ndim == 2:
            out += [
                Region("the diagonal (i = j)", "the off-diagonal entries are right", eq),
                Region("the off-diagonal entries (i ≠ j)", "the diagonal is right", ne),
            ]
        else:
            s = _symbol(names[a], "ijklmn"[a])
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
                lambda g: _per_row(g, np.triu(np.ones(g.shape, bool), 1)),
            ),
            Region(
                "the strict lower triangle (i > j)",
                "the rest is right",
                lambda g: _per_row(g, np.tril(np.ones(g.shape, bool), -1)),
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
            return _per_row(g, m if same else ~m)

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
                return _per_row(g, _grid(g.shape)[a] == (i % g.shape[a]))

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
            grid = _grid(g.shape)
            k = i % g.shape[a]
            m = (grid[a] == k) | (grid[b] == k)
            return _per_row(g, m & (grid[a] != grid[b]) if off else m)

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


def _aligned(mask: np.ndarray, shape: tuple[int, ...]) -> list[np.ndarray]:
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
                masks = _aligned(g.kept_inputs(name) == value, g.shape)
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


def _coverage(obs: Observations, region: Region, wrong: list[np.ndarray], rows: int | None = None) -> float | None:
    """Fraction of entries in ``region`` if it holds every wrong entry and leaves right ones out.

    Right entries count only where they are not zero on both sides: a region
    is no finding when everything outside it is trivially ``0 = 0``.
    """
    inside = total = outside = 0
    for g, w in zip(obs.failing_groups, wrong, strict=True):
        m = region.build(g)
        w, live = w[:rows], _nonzero(obs, g)[:rows]
        if m is None or m.shape != w.shape or (w & ~m).any():
            return None
        inside += int(m.sum())
        total += m.size
        outside += int((~m & live).sum())
    return inside / total if outside and inside else None


def _nonzero(obs: Observations, g: Group) -> np.ndarray:
    """Entries where either side is non-zero beyond the check's bound."""
    bound = _expand(_allowed(obs, g, g.derived, g.reference), g.derived)
    return np.maximum(np.abs(g.derived), np.abs(g.reference)) > bound


def _structure(obs: Observations) -> Diagnosis | None:
    wrong = [_wrong_entries(obs, g) for g in obs.failing_groups]
    if not any((~w & _nonzero(obs, g)).any() for w, g in zip(wrong, obs.failing_groups, strict=True)):
        return None  # no non-zero entry is right: no region can hold the error alone
    best: tuple[float, Region] | None = None
    for region in _regions(obs):
        cover = _coverage(obs, region, wrong)
        if cover is not None and (best is None or cover < best[0] - 1e-12):
            best = (cover, region)
    if best is None:
        best = _best_case(obs, wrong)
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
        for t in range(min(g.rows.size, len(m))):  # a piecewise region covers the traced rows only
            ds.append(g.derived[t][m[t]])
            rs.append(g.reference[t][m[t]])
            for k, v in g.sizes:
                sizes.setdefault(k, []).append(v)
    tol = obs.tol
    if all(
        np.abs(d).max(initial=0) <= tol.atol + tol.rtol * np.abs(r).max(initial=0) for d, r in zip(ds, rs, strict=True)
    ):
        return "derived is 0: a term is missing"
    if all(
        np.abs(r).max(initial=0) <= tol.atol + tol.rtol * np.abs(d).max(initial=0) for d, r in zip(ds, rs, strict=True)
    ):
        return "the reference is 0: derived has an extra term"
    c = [float(d @ r / (r @ r)) if r @ r > 0 else math.nan for d, r in zip(ds, rs, strict=True)]
    fit = all(
        np.abs(d - k * r).max(initial=0) <= tol.atol + tol.rtol * max(np.abs(d).max(initial=0), np.abs(k * r).max())
        for d, r, k in zip(ds, rs, c, strict=True)
        if d.size
    )
    if fit and np.all(np.isfinite(c)):
        factor = explain_factor(np.array(c), sizes, obs.dims)
        if factor is not None:
            return (
                "derived = −reference (the sign is flipped)"
                if factor.text == "−1"
                else (f"derived = {_times(factor.text)}reference")
            )
    diffs = [d - r for d, r in zip(ds, rs, strict=True)]
    if all(np.ptp(e) <= tol.atol + tol.rtol * np.abs(e).max() for e in diffs if e.size):
        firsts = np.array([e[0] for e in diffs if e.size])
        if _close(firsts, np.full_like(firsts, firsts[0])):
            return f"derived − reference = {fmt_number(firsts[0])} in every such entry"
        return "derived − reference is the same in every such entry (it varies between trials)"
    return ""


# ------------------------------------------------------------ step 3c: an ignored index


def _index_symbols(names: list[str]) -> list[str]:
    """``["D", "C", "D", "C"]`` → ``["d", "c", "d′", "c′"]`` (a repeated dimension gets a prime)."""
    out = []
    for a, name in enumerate(names):
        base = _symbol(name, "ijklmn"[a % 6])
        out.append(base + "′" * sum(1 for n in names[:a] if n == name and name))
    return out


def _spread(obs: Observations, g: Group, x: np.ndarray, axis: int) -> tuple[int, bool]:
    """Along ``axis``: how many fibres have two non-zero entries, and whether all such are constant."""
    bound = _expand(_allowed(obs, g, g.derived, g.reference), x)
    live = np.abs(x) > bound
    f = np.moveaxis(x, axis + 1, -1)
    lv = np.moveaxis(live, axis + 1, -1)
    b = np.broadcast_to(bound, x.shape)
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
        x = {"derived": g.derived, "reference": g.reference, "error": g.derived - g.reference}[which]
        n, ok = _spread(obs, g, x, axis)
        fibres += n
        constant &= ok
    return constant if fibres else None


def _ignored_index(obs: Observations) -> Diagnosis | None:
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


# ----------------------------------------------------------- step 3b: piecewise cases


COMPARISONS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}


def case_masks(fn: Callable, args: Sequence[Any], arg_names: Sequence[str] = ()) -> list[tuple[str, np.ndarray]]:
    """The cases of every piecewise step inside ``fn``, for a batch of trials: ``(label, bool masks)``.

    ``args`` carry a leading trial axis. ``fn``'s jaxpr is evaluated equation
    by equation (entering ``jit`` and ``custom_jvp`` bodies) inside one
    ``jax.jit(jax.vmap(...))``; every comparison ``a > b`` (also inside ``max``,
    ``min``, ``abs``, ``sign``) on non-scalar operands yields its mask,
    labelled like ``"u ≥ 0 in leaky_relu"`` (``u``: an intermediate value).
    """
    import jax

    labels: list[str] = []

    def one(*xs):
        closed = jax.make_jaxpr(fn)(*xs)
        names = {v: n for v, n in zip(closed.jaxpr.invars, arg_names, strict=False)}
        out: list[tuple[str, Any]] = []
        _walk(closed.jaxpr, closed.consts, list(xs), "", names, out)
        labels[:] = [label for label, _ in out]
        return [mask for _, mask in out]

    from derivcheck._checks._engine import fast_compile_options  # a few failing trials: compile time dominates

    masks = jax.jit(jax.vmap(one), compiler_options=fast_compile_options())(*args)
    return [(label, np.asarray(m)) for label, m in zip(labels, masks, strict=True)]


def _walk(jaxpr, consts, invals, scope: str, names: dict, out: list) -> list:
    import jax.extend as jex

    env = dict(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, invals, strict=True))

    def read(v):
        return v.val if isinstance(v, jex.core.Literal) else env[v]

    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        sub = _sub_jaxpr(eqn)
        if sub is not None:
            inner = eqn.params.get("name") or scope
            outs = _walk(sub[0], sub[1], ins, str(inner), {}, out)
        else:
            params = eqn.primitive.get_bind_params(eqn.params)
            outs = eqn.primitive.bind(*ins, **params)
            outs = outs if eqn.primitive.multiple_results else [outs]
            _record_case(eqn, ins, scope, names, out)
        for var, val in zip(eqn.outvars, outs, strict=True):
            env[var] = val
    return [read(v) for v in jaxpr.outvars]


def _sub_jaxpr(eqn):
    import jax.extend as jex

    for key in ("jaxpr", "call_jaxpr"):
        sub = eqn.params.get(key)
        if isinstance(sub, jex.core.ClosedJaxpr) and len(sub.jaxpr.invars) == len(eqn.invars):
            return sub.jaxpr, sub.consts
    return None


def _record_case(eqn, ins, scope: str, names: dict, out: list) -> None:
    import jax.numpy as jnp

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
    import jax.extend as jex

    if isinstance(v, jex.core.Literal):
        return fmt_number(float(np.asarray(v.val)))
    return names.get(v, "u")


def _best_case(obs: Observations, wrong: list[np.ndarray]) -> tuple[float, Region] | None:
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
            cover = _coverage(obs, region, wrong, CASE_ROWS)
            if cover is not None and (best is None or cover < best[0] - 1e-12):
                best = (cover, region)
    return best


def _trace_cases(obs: Observations, of: Callable) -> list[dict[str, np.ndarray]] | None:
    """Per failing size set, each labelled case mask on the first :data:`CASE_ROWS` kept rows, stacked."""
    per_group = []
    for g in obs.failing_groups:
        k = min(g.rows.size, CASE_ROWS)
        try:
            masks = case_masks(of, [g.kept_inputs(n)[:k] for n in obs.arg_names], obs.arg_names)
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
        laid = _aligned(stacked if polarity else ~stacked, g.shape)
        return laid[0] if laid else None

    cond, _, scope = label.partition(" in ")
    truth = ("true", "false") if polarity else ("false", "true")
    words = f"`{cond}` is {truth[0]}" + (f" (in {scope})" if scope else "")
    return Region(words, f"right where it is {truth[1]}", build, kind="piecewise")


# ---------------------------------------------------------------- step 4/6: conditions


def _features(obs: Observations) -> list[tuple[str, str, list[np.ndarray]]]:
    """Per-trial yes/no properties of the inputs and sizes: ``(holds words, fails words, per group)``."""
    groups = obs.groups
    out = []
    for name in groups[0].inputs:
        arrs = [g.inputs[name].reshape(len(g.failed), *g.inputs[name].shape[1:]) for g in groups]
        if any(a.ndim < 2 for a in arrs):
            continue
        out += _input_features(name, arrs)
    for dim, _ in groups[0].sizes:
        out.append((f"{dim} = 1", f"{dim} > 1", [np.full(len(g.failed), dict(g.sizes)[dim] == 1) for g in groups]))
    return out


def _input_features(name: str, arrs: list[np.ndarray]) -> list[tuple[str, str, list[np.ndarray]]]:
    """Normalisation (sums to 1, per row too) and 0/1 patterns of one input."""
    flat = [a.reshape(len(a), -1) for a in arrs]
    out = []
    if all(np.all(a >= 0) for a in arrs):
        out.append(
            (f"Σ {name} = 1", f"Σ {name} ≠ 1", [np.isclose(f.sum(axis=1), 1.0, rtol=0, atol=1e-9) for f in flat])
        )
        if all(a.ndim > 2 for a in arrs):
            rows = [np.isclose(a.sum(axis=-1), 1.0, rtol=0, atol=1e-9).reshape(len(a), -1).all(axis=1) for a in arrs]
            out.append((f"every row of {name} sums to 1", f"some row of {name} does not sum to 1", rows))
    if all(a.ndim == 3 and a.shape[1] == a.shape[2] for a in arrs) and any(a.shape[1] > 1 for a in arrs):
        sym = [np.isclose(a, np.swapaxes(a, 1, 2), rtol=1e-12, atol=0).reshape(len(a), -1).all(axis=1) for a in arrs]
        out.append((f"{name} is symmetric", f"{name} is not symmetric ({name} ≠ {name}ᵀ)", sym))
    if all(np.isin(a, (0.0, 1.0)).all() for a in arrs):
        out.append((f"every entry of {name} is 1", f"some entry of {name} is 0", [f.all(axis=1) for f in flat]))
        out.append((f"every entry of {name} is 0", f"some entry of {name} is 1", [~f.any(axis=1) for f in flat]))
    else:
        out.append((f"{name} = 0", f"{name} ≠ 0", [~f.any(axis=1) for f in flat]))
    return out


CONDITION_SHARE = 0.75  # a condition explains the failures when this share of the trials it marks fail
CONDITION_HOLDING = 5  # … and at least this many trials without it hold


def _exact_condition(obs: Observations) -> Diagnosis | None:
    """A property every failing trial has, that most trials with it fail (:data:`CONDITION_SHARE`).

    The trials without it (at least :data:`CONDITION_HOLDING`) all hold. Not
    every trial with it must fail: the error it allows can vanish by chance
    (a dropout mask zeroing the wrong row, a saturated sigmoid).
    """
    failed = np.concatenate([g.failed[g.valid] for g in obs.groups])
    best = None
    for yes, no, per in _features(obs):
        f = np.concatenate([p[g.valid] for p, g in zip(per, obs.groups, strict=True)])
        for cond, other, mask in ((yes, no, f), (no, yes, ~f)):
            share = _explains(mask, failed)
            if share is not None and (best is None or share > best[0]):
                best = (share, cond, other, mask)
    if best is not None:
        share, cond, other, mask = best
        return _condition_diagnosis(obs, cond, other, mask, failed)
    regimes = np.concatenate([g.regimes[g.valid] for g in obs.groups])
    bad = sorted(set(regimes[failed]))
    mask = np.isin(regimes, bad)
    if set(regimes) - set(bad) and _explains(mask, failed) is not None:
        cond = "in regime" + ("s " if len(bad) > 1 else " ") + ", ".join(bad)
        return _condition_diagnosis(obs, cond, "in the others", mask, failed, regime=True)
    return None


def _explains(mask: np.ndarray, failed: np.ndarray) -> float | None:
    """The share of ``mask``'s trials that fail, if every failure is in ``mask`` and enough are."""
    if mask.all() or (~mask).sum() < CONDITION_HOLDING or (failed & ~mask).any():
        return None
    share = failed[mask].mean()
    return float(share) if share >= CONDITION_SHARE else None


def _condition_diagnosis(
    obs: Observations, cond: str, other: str, mask: np.ndarray, failed: np.ndarray, regime: bool = False
) -> Diagnosis:
    from derivcheck._inputs import REGIMES

    words = cond
    if regime:
        words += " (" + "; ".join(REGIMES.get(r, r) for r in cond.split(" ", 2)[-1].split(", ")) + ")"
    for dim, desc in obs.dims.items():
        if cond.startswith(f"{dim} ") and desc:
            words += f" ({dim}: {desc})"
    n_cond, n_fail, n_hold = int(mask.sum()), int(failed.sum()), int((~mask).sum())
    evidence = [f"{n_fail} of the {n_cond} trials {_where(cond)} fail; all {n_hold} trials {_where(other)} hold"]
    equality = obs.analysis == "equality" and _comparable(obs)
    term = _terms(obs) if equality else None
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


def _partial_condition(obs: Observations) -> Diagnosis | None:
    """Failures confined to some regimes or some size sets (not every trial there fails)."""
    all_regimes = list(dict.fromkeys(r for g in obs.groups for r in g.regimes))
    bad = list(dict.fromkeys(r for g in obs.groups for r in g.regimes[g.failed]))
    if len(bad) < len(all_regimes):
        line = _regime_line(obs)
        return Diagnosis(kind="condition", summary=line, evidence=(line,), where="regimes " + ", ".join(bad))
    bad_sizes = [g for g in obs.groups if g.failed.any()]
    if len(bad_sizes) < len(obs.groups):
        at = "; ".join(sizes_label(g.sizes) for g in bad_sizes)
        ok = "; ".join(sizes_label(g.sizes) for g in obs.groups if not g.failed.any())
        return Diagnosis(kind="condition", summary=f"fails only at sizes {at}; holds at {ok}", where=at)
    return None


def _regime_line(obs: Observations) -> str:
    """Which regimes fail, describing the smaller side: "fails only in regime large (…)"."""
    from derivcheck._inputs import REGIMES

    all_regimes = list(dict.fromkeys(r for g in obs.groups for r in g.regimes))
    bad = list(dict.fromkeys(r for g in obs.groups for r in g.regimes[g.failed]))
    good = [r for r in all_regimes if r not in bad]
    if len(all_regimes) <= 1:
        return ""
    if not good:
        return "fails in every regime"
    if len(bad) <= len(good):
        described = ", ".join(f"{r} ({REGIMES.get(r, r)})" for r in bad)
        return f"fails only in regime{'s' if len(bad) > 1 else ''} {described}; holds in {', '.join(good)}"
    described = ", ".join(f"{r} ({REGIMES.get(r, r)})" for r in good)
    return f"holds only in regime{'s' if len(good) > 1 else ''} {described}; fails in {', '.join(bad)}"


# ---------------------------------------------------------------------- step 5: terms


def _scalar_features(g: Group, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Per kept row: the scalar inputs, and the mean and sum of every array input."""
    out = {}
    for name in names:
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


def _terms(obs: Observations) -> Diagnosis | None:
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
    """Per kept row, least-squares ``β`` with ``D − R = Σ β_b b``, if it fits every row."""
    coefs: list[list[float]] = [[] for _ in subset]
    for g in obs.failing_groups:
        err = (g.derived - g.reference).reshape(g.rows.size, -1)
        for t in range(g.rows.size):
            cols = [np.ones(err.shape[1]) if b == "1" else g.kept_inputs(b)[t].reshape(-1) for b in subset]
            a = np.stack(cols, axis=1)
            beta, *_ = np.linalg.lstsq(a, err[t], rcond=None)
            resid = np.abs(err[t] - a @ beta).max(initial=0)
            bound = obs.tol.atol + obs.tol.rtol * max(
                np.abs(g.derived[t]).max(), np.abs(g.reference[t]).max(), g.floor[t]
            )
            if resid > bound + g.slack[t] or np.linalg.matrix_rank(a) < len(subset):
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
    if _close(c, np.full_like(c, c[0])):
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
    if not all(_is_simple(k) for k in kappa) or not _close(c, a @ kappa):
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


# --------------------------------------------------------------- step 7: unexplained


def _unexplained(obs: Observations) -> Diagnosis:
    entries = _worst_entries(obs.worst_derived, obs.worst_reference)
    evidence = []
    if entries:
        where = ", ".join(str(e.index) for e in entries[:3])
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
    summary = "no simple relation fits (sign, factor, transpose, swap, one region, one term)"
    if entries:
        summary += f"; the largest error is at {entries[0].index}"
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
    rows = [r for r in _by_size(obs) if r.failures]
    if len(rows) < 2:
        return ""
    parts = ", ".join(f"{sizes_label(r.sizes)}: {r.median_rel_err:.2g}" for r in rows)
    return f"median relative error by size: {parts}"


def _proportional_line(obs: Observations) -> str:
    cs = _factors(obs, tuple(range(len(obs.failing_groups[0].shape))))
    if cs is None:
        return ""
    c = np.concatenate(cs)
    return (
        f"derived is proportional to reference in each trial, by a factor that varies ({c.min():.3g} to {c.max():.3g})"
    )


# ------------------------------------------------------------------ common evidence


def _worst_entries(d: np.ndarray | None, r: np.ndarray | None, k: int = TOP_ENTRIES) -> tuple[Entry, ...]:
    if d is None or r is None or d.shape != r.shape:
        return ()
    err = np.abs(d - r)
    order = np.argsort(-err.ravel(), kind="stable")[:k]
    return tuple(
        Entry(tuple(int(i) for i in np.unravel_index(j, d.shape)), float(d.ravel()[j]), float(r.ravel()[j]))
        for j in order
        if err.ravel()[j] > 0
    )


def _by_size(obs: Observations) -> tuple[SizeRow, ...]:
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


# ------------------------------------------------------------------------ spectrum


def diagnose_spectrum(obs: Observations) -> Diagnosis:
    """Definiteness failures in spectrum terms: asymmetric, mismatched, indefinite, singular, zero."""
    st = {k: np.concatenate([g.stats[k] for g in obs.groups]) for k in obs.groups[0].stats}
    failed = np.concatenate([g.failed for g in obs.groups])
    tol = obs.tol
    asym = failed & (st["sym_err"] > tol.atol + tol.rtol * st["scale"])
    if asym.any():
        return _finish(obs, _asymmetric(obs, int(asym.sum())))
    if "abs_err" in st and (failed & (st["abs_err"] > tol.atol + tol.rtol * st["eq_scale"])).any():
        inner = _differential(obs)
        return _finish(obs, dataclasses.replace(inner, summary=f"differs from jax.hessian(of): {inner.summary}"))
    return _finish(obs, _spectrum(obs))


def _asymmetric(obs: Observations, count: int) -> Diagnosis:
    best = None
    for g in obs.failing_groups:
        for t in range(g.rows.size):
            h = g.derived[t]
            e = np.abs(h - h.T)
            i, j = np.unravel_index(int(np.argmax(e)), e.shape)
            if best is None or e[i, j] > best[0]:
                best = (e[i, j], int(min(i, j)), int(max(i, j)), h)
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


def _spectrum(obs: Observations) -> Diagnosis:
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
    ranked = sorted(groups, key=lambda k: (k[0] == "zero", -len(groups[k]), k[1] == ""))
    top = groups[ranked[0]]
    summary = _mode_words(top, kind, axis_names(obs))
    evidence = [f"{len(groups[k])} of {len(modes)} failing trials read: {_short_mode(groups[k])}" for k in ranked]
    return Diagnosis(kind="spectrum", summary=summary, evidence=tuple(evidence), where=ranked[0][1])


def _mode(h: np.ndarray, margin: float, kind: str, inputs: dict) -> _Mode:
    lam, vecs = np.linalg.eigh((h + h.T) / 2)
    n = lam.size
    sign = -1.0 if kind in ("nd", "nsd") else 1.0
    lam_s = sign * lam
    neg = int((lam_s < -margin).sum())
    pos = int((lam_s > margin).sum())
    zero = n - neg - pos
    if neg and not pos and kind in ("pd", "nd", "psd", "nsd"):
        return _Mode("negative", neg, n, "", float(lam[0] if sign > 0 else lam[-1]))
    if neg:
        return _Mode("indefinite", neg, n, "", float(lam[0] if sign > 0 else lam[-1]))
    if zero == n:
        return _Mode("zero", n, n, "", float(lam[np.argmax(np.abs(lam))]))
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
    best, hits, fits = "", 0, None
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
