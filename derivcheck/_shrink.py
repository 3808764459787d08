"""Shrinking: the smallest, simplest input on which a failing derivation still fails.

Two stages, each bounded in time (``seconds``) and in work:

1. **Sizes.** Starting from the smallest size set that failed, each free
   dimension is lowered — to its minimum first (1, or what the specs allow:
   two classes for a one-hot label, ``rows ≥ cols`` for a full-rank design) —
   while a check restricted to that one size set still fails. Such a check is
   exactly ``derivcheck run NAME --seed S --trials T --sizes k=v,…`` (same
   draws), so the failing draw it finds can be replayed.
2. **Values.** From that check's worst trial, each argument is replaced by a
   simpler one while the trial still fails *clearly* (relative error at least
   :data:`KEEP_FRACTION` of the starting one, capped at 1e-2): first the whole
   array (zeros, ones, rounded, the identity design), then entry by entry
   (``0, 1, −1, 2, −2, …`` and the rounded value, simplest first). Every
   candidate keeps its spec's constraints — a one-hot row stays one-hot, a
   design keeps its rank, positive values stay positive, probability vectors
   stay on the simplex; arguments of unknown specs are left as drawn.

A candidate "fails" by the check's own verdict: the claim family's trial,
its rounding scales and its judge, at the check's tolerance (kinks of ``of``
excluded). Dimensions a derivation fixes (the same value in every size set)
are not changed.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import numpy as np

from derivcheck._checks import Plan, check_claim, plan_of
from derivcheck._checks._engine import CheckConfig, evaluate
from derivcheck._checks.robust import at_kink
from derivcheck._compare import ResolvedTolerance
from derivcheck._derivation import Derivation
from derivcheck._inputs import Inputs, Sizes
from derivcheck._registry import registry
from derivcheck._report.replay import Replay, quiet, sizes_arg
from derivcheck._result import Result, Trial, _array_json, _num

SHRINK_SECONDS = 20.0  # default time budget of one shrink
PER_REGIME = 16  # trials per regime of each size-set check (at least the run's own, so its failing cell recurs)
MAX_SIZE_CHECKS = 24
MAX_EVALUATIONS = 400  # candidate batches in the value stage
KEEP_FRACTION = 0.5
ENTRY_VALUES = (0.0, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0)


class ShrinkError(ValueError):
    """Sizes or a derivation that cannot be shrunk or restricted as asked (names what to fix)."""


# --------------------------------------------------------------------------- record


@dataclasses.dataclass(frozen=True)
class Counterexample:
    """The smallest, simplest failing input found, with both sides' values.

    ``derived`` is the actual, ``reference`` the expected (``None`` for a
    definiteness claim without ``of``; ``eigenvalues`` then tell the story).
    ``replay`` is the command whose worst trial is this input before its
    values were simplified; ``complete`` is False when the time or work budget
    stopped the search early.
    """

    name: str
    sizes: Sizes
    regime: str
    inputs: dict[str, np.ndarray]
    derived: np.ndarray | None
    reference: np.ndarray | None
    abs_err: float
    rel_err: float
    shrunk_from: Sizes
    simplified: tuple[str, ...] = ()
    eigenvalues: np.ndarray | None = None
    checks: int = 0
    evaluations: int = 0
    seconds: float = 0.0
    complete: bool = True
    replay: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (README, "JSON schema: counterexample")."""
        return {
            "sizes": dict(self.sizes),
            "regime": self.regime,
            "inputs": {k: _array_json(v) for k, v in self.inputs.items()},
            "derived": _array_json(self.derived),
            "reference": _array_json(self.reference),
            "abs_err": _num(self.abs_err),
            "rel_err": _num(self.rel_err),
            "eigenvalues": _array_json(self.eigenvalues),
            "shrunk_from": dict(self.shrunk_from),
            "simplified": list(self.simplified),
            "checks": self.checks,
            "evaluations": self.evaluations,
            "seconds": round(self.seconds, 3),
            "complete": self.complete,
            "replay": self.replay,
        }


# ------------------------------------------------------------------- size sets


def parse_sizes(text: str) -> dict[str, int]:
    """``"d=3,m=5"`` (or space-separated) → ``{"d": 3, "m": 5}``.

    >>> parse_sizes("d=3, m=5")
    {'d': 3, 'm': 5}
    """
    out: dict[str, int] = {}
    for part in text.replace(",", " ").split():
        name, eq, value = part.partition("=")
        if not eq or not name or not value.strip().isdigit():
            raise ShrinkError(f"--sizes: expected NAME=INT pairs like d=3,m=5, got {part!r}")
        out[name.strip()] = int(value)
    if not out:
        raise ShrinkError("--sizes: give at least one NAME=INT, e.g. d=3,m=5")
    return out


def at_sizes(d: Derivation, sizes: Mapping[str, int]) -> Derivation:
    """``d`` checked at one size set only (same seeds, so the same draws as in a full run)."""
    if not isinstance(d.inputs, Inputs):
        raise ShrinkError(f"{d.name}: its inputs are a custom callable; --sizes needs dc.inputs(...) specs")
    needed = [k for k, _ in d.inputs.sizes[0]]
    missing = [k for k in needed if k not in sizes]
    unknown = [k for k in sizes if k not in needed]
    if missing or unknown:
        what = f"misses {missing}" if missing else f"has unknown dimensions {unknown}"
        close = [(m, u) for m in missing for u in unknown if u.lower() == m.lower()]
        hint = f" (did you mean {close[0][0]}= for {close[0][1]}=?)" if close else ""
        raise ShrinkError(f"{d.name}: --sizes {what}{hint}; it needs {', '.join(needed) or 'none'}")
    chosen = tuple((k, int(sizes[k])) for k in needed)
    problem = _size_problem(d.inputs, dict(chosen))
    if problem:
        raise ShrinkError(f"{d.name}: --sizes {sizes_arg(chosen)}: {problem}")
    return dataclasses.replace(d, inputs=dataclasses.replace(d.inputs, sizes=(chosen,)))


def _size_problem(inputs: Inputs, sizes: dict[str, int]) -> str:
    """Why ``sizes`` break a spec's limits (a one-hot needs 2 classes, a design rows ≥ cols), or ""."""
    for _, spec in inputs.specs:
        for dim, low in spec.min_sizes().items():
            if sizes.get(dim, low) < low:
                return f"{dim} must be at least {low}"
        for big, small, offset in spec.constraints():
            if sizes[big] < sizes[small] + offset:
                return f"{big} must be at least {small}{f' + {offset}' if offset else ''}"
    if any(v < 1 for v in sizes.values()):
        return "every size must be at least 1"
    return ""


# ------------------------------------------------------------------ the search


@dataclasses.dataclass
class _Budget:
    seconds: float
    start: float = dataclasses.field(default_factory=time.perf_counter)
    checks: int = 0
    evaluations: int = 0
    cut: bool = False
    per: int = PER_REGIME  # trials per regime of a size-set check

    def left(self) -> bool:
        over = (
            time.perf_counter() - self.start > self.seconds
            or self.checks >= MAX_SIZE_CHECKS
            or self.evaluations >= MAX_EVALUATIONS
        )
        self.cut |= over
        return not over


@dataclasses.dataclass(frozen=True)
class _Failing:
    """A failing check and its worst trial, the point a shrink starts from."""

    result: Result
    worst: Trial

    @classmethod
    def of(cls, result: Result | None) -> _Failing | None:
        """``None`` unless ``result`` fails with a worst trial (an error outcome or a hold has none to shrink)."""
        if result is None or result.outcome != "fails" or result.worst is None:
            return None
        return cls(result, result.worst)

    @property
    def tol(self) -> ResolvedTolerance:
        """The tolerance the check judged with."""
        return ResolvedTolerance(self.result.rtol, self.result.atol)


def minimal_counterexample(
    derivation: Derivation | str,
    result: Result | None = None,
    *,
    trials: int | None = None,
    seed: int | None = None,
    seconds: float = SHRINK_SECONDS,
    loads: tuple[str, ...] = (),
) -> Counterexample | None:
    """The smallest, simplest input on which ``derivation`` fails (``None`` when it holds).

    ``result`` is its failing check (run here with ``trials``/``seed`` when
    not given). ``seconds`` bounds the search; what was found by then is
    returned with ``complete=False``. ``loads`` only enter the replay command.
    Which claims are shrunk, and with what, is their row of the ``Kind`` table
    (:func:`derivcheck._checks.plan_of`): candidates are judged by the very
    family and derivation the check runs.
    """
    d = _resolve(derivation)
    if result is None:
        result = _checked(d, CheckConfig(trials=trials or CheckConfig.trials, seed=seed or 0))
    failing = _Failing.of(result)
    if failing is None:
        return None
    result = failing.result
    seed = result.seed if seed is None else seed
    budget = _Budget(seconds)
    with jax.enable_x64(True):
        if not isinstance(d.inputs, Inputs) or plan_of(d) is None:
            return _as_is(d, failing, budget, Replay.of_worst(d, result, loads).run())
        budget.per = max(PER_REGIME, max((c.trials for c in result.cells), default=0))
        sizes, found = _shrink_sizes(d, _smallest_failing(d, failing), seed, budget, failing)
        cx = _simplify(d, found, budget)
    replay = Replay(d.name, seed, budget.per * len(d.inputs.regimes), sizes, tuple(loads), verbose=quiet(result)).run()
    return dataclasses.replace(
        cx,
        shrunk_from=failing.worst.sizes,
        checks=budget.checks,
        evaluations=budget.evaluations,
        seconds=time.perf_counter() - budget.start,
        complete=not budget.cut,
        replay=replay,
    )


def _resolve(derivation: Derivation | str) -> Derivation:
    return registry()[derivation] if isinstance(derivation, str) else derivation


def _checked(d: Derivation, config: CheckConfig) -> Result | None:
    """The check of ``d`` (as :func:`derivcheck.check` runs it), ``None`` when it cannot run."""
    try:
        return check_claim(d, config)
    except Exception:  # an error outcome: nothing fails, nothing to shrink
        return None


def _at(d: Derivation, sizes: Sizes) -> Derivation:
    return dataclasses.replace(d, inputs=dataclasses.replace(d.inputs, sizes=(sizes,)))


def _smallest_failing(d: Derivation, run: _Failing) -> Sizes:
    """The failing size set with the fewest entries (the run's worst trial's when no cells)."""
    failing = {c.sizes for c in run.result.cells if c.failures}
    if not failing:
        return run.worst.sizes
    return min(failing, key=lambda s: (math.prod(v for _, v in s), list(d.inputs.sizes).index(s)))


def _check_at(d: Derivation, sizes: Sizes, seed: int, budget: _Budget, cache: dict) -> _Failing | None:
    """The check restricted to ``sizes`` (cached); ``None`` when it does not fail."""
    if sizes not in cache:
        budget.checks += 1
        r = _checked(_at(d, sizes), CheckConfig(trials=budget.per * len(d.inputs.regimes), seed=seed))
        cache[sizes] = _Failing.of(r)
    return cache[sizes]


def _free_dims(d: Derivation) -> list[str]:
    """Dimensions the derivation lets vary: not equal in every size set (all, with one set), not derived."""
    sets = [dict(s) for s in d.inputs.sizes]
    names = [k for k, _ in d.inputs.sizes[0] if k not in _derived_dims(d)]
    if len(sets) == 1:
        return names
    return [k for k in names if len({s[k] for s in sets}) > 1]


def _derived_dims(d: Derivation) -> dict[str, Callable[[dict], int]]:
    """Dimensions that are a function of others in every size set: ``DC = D·C``, ``p = d + 1``, ``n = a + b``."""
    sets = [dict(s) for s in d.inputs.sizes]
    if len(sets) < 2:
        return {}
    names = list(sets[0])
    out: dict[str, Callable[[dict], int]] = {}
    for k in names:
        others = [a for a in names if a != k and a not in out]
        rules = [(lambda s, a=a, b=b: s[a] * s[b]) for a, b in itertools.combinations(others, 2)]
        rules += [(lambda s, a=a, b=b: s[a] + s[b]) for a, b in itertools.combinations(others, 2)]
        rules += [(lambda s, a=a, c=c: s[a] + c) for a in others for c in (1, 2, 3)]
        for rule in rules:
            if all(s[k] == rule(s) for s in sets) and len({s[k] for s in sets}) > 1:
                out[k] = rule
                break
    return out


def _with_derived(d: Derivation, sizes: Sizes) -> Sizes:
    values = dict(sizes)
    for k, rule in _derived_dims(d).items():
        values[k] = rule(values)
    return tuple((k, values[k]) for k, _ in sizes)


def _lowest(d: Derivation, dim: str) -> int:
    lows = [spec.min_sizes().get(dim, 1) for _, spec in d.inputs.specs]
    return max([1, *lows])


def _shrink_sizes(d: Derivation, start: Sizes, seed: int, budget: _Budget, result: _Failing) -> tuple[Sizes, _Failing]:
    """Lower each free dimension while the restricted check still fails (a few passes)."""
    cache: dict[Sizes, _Failing | None] = {}
    current = start
    found = _check_at(d, current, seed, budget, cache)
    if found is None:  # the failing cell drawn again did not fail (a non-deterministic function): keep the run's
        return result.worst.sizes, result
    for _ in range(3):
        changed = False
        for dim in sorted(_free_dims(d), key=lambda k: dict(current)[k]):
            for value in _smaller(_lowest(d, dim), dict(current)[dim]):
                cand = _with_derived(d, tuple((k, value if k == dim else v) for k, v in current))
                if _size_problem(d.inputs, dict(cand)) or not budget.left():
                    continue
                r = _check_at(d, cand, seed, budget, cache)
                if r is not None:
                    current, found, changed = cand, r, True
                    break
        if not changed:
            break
    return current, found


def _smaller(low: int, current: int) -> list[int]:
    """Candidate values below ``current``, smallest first: the minimum, its neighbours, halfway."""
    picks = {low, low + 1, low + 2, (low + current) // 2, current - 1}
    return sorted(v for v in picks if low <= v < current)


# ----------------------------------------------------------------- the values


@dataclasses.dataclass
class _Trial:
    """One candidate input: the arguments in order and the claim's extra inputs (a VJP's cotangent)."""

    args: dict[str, np.ndarray]
    extra: dict[str, np.ndarray]

    def with_value(self, name: str, value: np.ndarray) -> _Trial:
        if name in self.args:
            return _Trial({**self.args, name: value}, self.extra)
        return _Trial(self.args, {**self.extra, name: value})

    def get(self, name: str) -> np.ndarray:
        return self.args[name] if name in self.args else self.extra[name]


class _Evaluator:
    """Runs candidate trials through the claim family exactly as the check does, in small batches.

    Each batch goes through the engine's judge step (:func:`derivcheck._checks._engine.evaluate`);
    a trial on a kink of ``of`` (where any subgradient is right) does not count as failing.
    """

    def __init__(self, d: Derivation, family: Any, tol: ResolvedTolerance, sizes: Sizes, budget: _Budget):
        self.d, self.family, self.tol, self.sizes, self.budget = d, family, tol, sizes, budget

    def run(self, cands: list[_Trial]) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, Any]:
        """``(stats, failed, rel_err, values)`` of the candidates."""
        self.budget.evaluations += 1
        names = list(cands[0].args)
        args = tuple(np.stack([c.args[n] for c in cands]) for n in names)
        extra = {k: np.stack([c.extra[k] for c in cands]) for k in cands[0].extra}
        v = evaluate(self.d, self.family, args, extra, self.tol, sizes=self.sizes)
        return v.stats, v.failed & ~_kinks(v.stats), v.rel_err, v.values


def _kinks(stats: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(at_kink(stats), bool) if "abs_err" in stats else np.zeros(len(stats["finite_reference"]), bool)


def _simplify(d: Derivation, found: _Failing, budget: _Budget) -> Counterexample:
    """Replace values by simpler ones while the trial still clearly fails (module docstring)."""
    w = found.worst
    names = d.arg_names or tuple(k for k in w.inputs if k != d.claim.extra_arg)
    trial = _Trial(
        {n: np.asarray(w.inputs[n]) for n in names}, {k: np.asarray(v) for k, v in w.inputs.items() if k not in names}
    )
    plan = plan_of(_at(d, w.sizes))  # what the check at these sizes ran: the path and the dense products
    simplified: list[str] = []
    if plan is not None:
        ev = _Evaluator(plan.derivation, plan.family, found.tol, w.sizes, budget)
        stats, failed, rel, _ = ev.run([trial])
        if failed[0]:
            keep = _keeper(stats, rel[0])
            trial, simplified = _greedy(d, ev, trial, keep, dict(w.sizes), budget)
    return _counterexample(d, found, trial, tuple(simplified), plan)


def _keeper(start: dict[str, np.ndarray], rel0: float) -> Callable:
    """Which candidates still fail clearly: relative error kept, and a definite matrix (its eigenvalue
    counts ``n_pos``/``n_neg`` among the statistics) not zeroed out."""
    floor = KEEP_FRACTION * min(float(rel0), 1e-2) if math.isfinite(rel0) else 0.0
    informative = "n_pos" in start and int(start["n_pos"][0] + start["n_neg"][0]) > 0

    def keep(stats: dict[str, np.ndarray], failed: np.ndarray, rel: np.ndarray) -> np.ndarray:
        ok = failed & (np.nan_to_num(rel, nan=0.0) >= floor)
        if informative:
            ok &= (np.asarray(stats["n_pos"]) + np.asarray(stats["n_neg"])) > 0
        return ok

    return keep


def _greedy(
    d: Derivation, ev: _Evaluator, trial: _Trial, keep: Callable, sizes: dict[str, int], budget: _Budget
) -> tuple[_Trial, list[str]]:
    """Whole-array replacements first, then entry by entry (two passes), simplest first."""
    specs = dict(d.inputs.specs)
    order = [*trial.args, *trial.extra]
    changed: list[str] = []

    def first_keeper(cands: list[tuple[str, np.ndarray]]) -> tuple[str, np.ndarray] | None:
        for start in range(0, len(cands), 8):
            chunk = cands[start : start + 8]
            if not budget.left():
                return None
            stats, failed, rel, _ = ev.run([trial.with_value(n, v) for n, v in chunk])
            hits = np.flatnonzero(keep(stats, failed, rel))
            if hits.size:
                return chunk[int(hits[0])]
        return None

    for _ in range(len(order) + 1):
        cands = [(n, v) for n in order for v in _whole(specs.get(n), trial.get(n), sizes)]
        hit = first_keeper(cands)
        if hit is None:
            break
        trial = trial.with_value(*hit)
        changed.append(hit[0])
    for _ in range(2):
        moved = False
        for name in order:
            for cands in _entries(specs.get(name), trial.get(name), sizes):
                hit = first_keeper([(name, v) for v in cands])
                if hit is not None:
                    trial, moved = trial.with_value(*hit), True
                    changed.append(name)
        if not moved or not budget.left():
            break
    return trial, list(dict.fromkeys(changed))


def _counterexample(
    d: Derivation, found: _Failing, trial: _Trial, simplified: tuple[str, ...], plan: Plan | None
) -> Counterexample:
    w = found.worst
    derived, reference, abs_err, rel_err = w.derived, w.reference, w.abs_err, w.rel_err
    if plan is not None and simplified:
        ev = _Evaluator(plan.derivation, plan.family, found.tol, w.sizes, _Budget(math.inf))
        stats, _, rel, values = ev.run([trial])
        derived, reference = (None if v is None else np.asarray(v[0]) for v in values)
        abs_err = float(np.asarray(stats.get("abs_err", [np.nan]))[0])
        rel_err = float(rel[0])
    eig = _eigenvalues(derived) if d.definiteness else None
    return Counterexample(
        name=d.name,
        sizes=w.sizes,
        regime=w.regime,
        inputs={**trial.args, **trial.extra},
        derived=None if derived is None else np.asarray(derived),
        reference=None if reference is None else np.asarray(reference),
        abs_err=abs_err,
        rel_err=rel_err,
        shrunk_from=w.sizes,
        simplified=simplified,
        eigenvalues=eig,
    )


def _eigenvalues(derived: Any) -> np.ndarray | None:
    """A definiteness claim's matrix's eigenvalues (symmetrized); ``None`` when the values are
    products with probes (the matrix-free path), not the matrix."""
    h = None if derived is None else np.asarray(derived, float)
    if h is None or h.ndim != 2 or h.shape[0] != h.shape[1]:
        return None
    return np.linalg.eigvalsh((h + h.T) / 2)


def _as_is(d: Derivation, result: _Failing, budget: _Budget, replay: str) -> Counterexample:
    """Custom inputs (sizes and constraints unknown) or a claim judged by its own statistics: the worst trial."""
    w = result.worst
    return dataclasses.replace(
        _counterexample(d, result, _Trial(dict(w.inputs), {}), (), None),
        seconds=time.perf_counter() - budget.start,
        replay=replay,
    )


# ------------------------------------------------- simpler values, spec by spec


def complexity(v: float | complex) -> float:
    """How simple a number is: ``0 < 1 < −1 < 2 < −2 < …`` < any non-integer; a complex
    number is as simple as its two parts together.

    >>> [complexity(v) for v in (0, 1, -1, 2, 0.5)]
    [0, 1, 2, 3, 100.5]
    >>> complexity(1j), complexity(2 - 1j)
    (1, 5)
    """
    if isinstance(v, complex) or np.iscomplexobj(v):
        z = complex(v)
        return complexity(z.real) + complexity(z.imag)
    x = float(v)
    if x == 0:
        return 0
    if x.is_integer():
        return 2 * abs(int(x)) - (x > 0)
    return 100 + abs(x)


def _kind(spec: Any) -> str:
    return type(spec).__name__ if spec is not None else "Extra"


def _valid(spec: Any, x: np.ndarray, sizes: dict[str, int]) -> bool:
    """Does ``x`` keep the spec's constraint (one-hot, rank, positivity, range, simplex)?"""
    kind = _kind(spec)
    if not np.all(np.isfinite(x)):
        return False
    if kind == "Uniform":  # a complex one: each part in the range (see derivcheck._inputs._as_dtype)
        return all(bool(np.all((p >= spec.low) & (p < spec.high))) for p in _parts(x))
    if kind == "Positive":
        return bool(np.all(x > 0))
    if kind == "Bernoulli":
        return bool(np.isin(x, (0.0, 1.0)).all())
    if kind == "OneHot":
        return bool(np.isin(x, (0.0, 1.0)).all() and np.all(x.sum(axis=-1) == 1))
    if kind == "Simplex":
        return bool(np.all(x >= 0) and np.allclose(x.sum(axis=-1), 1.0))
    if kind == "Design":
        return x.ndim == 2 and np.linalg.matrix_rank(x) == spec.rank(sizes)
    return kind in ("Normal", "Extra")


def _whole(spec: Any, x: np.ndarray, sizes: dict[str, int]) -> Iterator[np.ndarray]:
    """Whole-array replacements, simplest first, that keep the constraint and change ``x``."""
    kind = _kind(spec)
    cands: list[np.ndarray] = []
    if kind in ("Normal", "Extra", "Uniform", "Positive", "Bernoulli"):
        cands += [np.zeros_like(x), np.ones_like(x), np.round(x)]
    elif kind == "OneHot":
        cands.append(np.zeros_like(x))
        cands[-1][..., 0] = 1
    elif kind == "Simplex":
        cands.append(np.full_like(x, 1.0 / x.shape[-1]))
    elif kind == "Design":
        eye = np.eye(*x.shape, dtype=x.dtype)
        if spec.deficiency:
            eye[np.arange(min(x.shape))[-spec.deficiency :], np.arange(min(x.shape))[-spec.deficiency :]] = 0
        cands += [eye, np.round(x)]
    seen = [x]
    for c in cands:
        fresh = not any(np.array_equal(c, s) for s in seen)
        if fresh and _valid(spec, c, sizes) and array_complexity(c) < array_complexity(x):
            seen.append(c)
            yield c


def array_complexity(x: np.ndarray) -> float:
    """The sum of :func:`complexity` over the entries: a candidate must lower it to count as simpler."""
    return float(sum(complexity(v) for v in _numbers(x)))


def _numbers(x: np.ndarray) -> list[float | complex]:
    """The entries as Python numbers (``complex`` for a complex array, else ``float``)."""
    kind = complex if np.iscomplexobj(x) else float
    return [kind(v) for v in np.asarray(x).ravel()]


def _parts(x: np.ndarray) -> tuple[np.ndarray, ...]:
    """The real and imaginary parts of a complex array; a real array alone."""
    return (np.real(x), np.imag(x)) if np.iscomplexobj(x) else (x,)


def _simpler(v: float | complex) -> list[float | complex]:
    """Values simpler than ``v`` (:func:`complexity`), simplest first: a complex entry changes one part at a time."""
    if isinstance(v, complex):
        re = [complex(new, v.imag) for new in _simpler(v.real)]
        im = [complex(v.real, new) for new in _simpler(v.imag)]
        return sorted(re + im, key=complexity)
    options = sorted({*ENTRY_VALUES, float(np.round(v))}, key=complexity)
    return [new for new in options if complexity(new) < complexity(v)]


def _entries(spec: Any, x: np.ndarray, sizes: dict[str, int]) -> Iterator[list[np.ndarray]]:
    """Per entry (per row for one-hot labels): the simpler single-entry changes that keep the constraint."""
    kind = _kind(spec)
    if kind == "OneHot":
        yield from _one_hot_rows(x)
        return
    if kind not in ("Normal", "Extra", "Uniform", "Positive", "Bernoulli", "Design"):
        return
    for i, v in enumerate(_numbers(x)):
        out = []
        for new in _simpler(v):
            y = x.copy()
            y.flat[i] = new
            if _valid(spec, y, sizes):
                out.append(y)
        if out:
            yield out


def _one_hot_rows(x: np.ndarray) -> Iterator[list[np.ndarray]]:
    rows = x.reshape(-1, x.shape[-1])
    for r in range(rows.shape[0]):
        hot = int(np.argmax(rows[r]))
        out = []
        for c in range(hot):
            y = rows.copy()
            y[r] = 0
            y[r, c] = 1
            out.append(y.reshape(x.shape))
        if out:
            yield out
