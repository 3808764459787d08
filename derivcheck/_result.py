"""What a check found: :class:`Result` and its parts, with a stable JSON form.

``outcome`` is what happened (``holds``, ``fails``, ``inconclusive`` when the
derivation and the reference disagree by little and a second opinion sides with
the derivation, or ``error`` when the check itself could not run); ``ok`` says
whether that matches what the author expected. An ``error`` is never ok; an
``inconclusive`` outcome is not a ``holds``, so it is ok only for a derivation
expected to fail (its author has declared it does not hold against the reference).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any, Literal, overload

import numpy as np

from derivcheck._compare import ResolvedTolerance
from derivcheck._derivation import Derivation, Expect
from derivcheck._inputs import Sizes, sizes_label

Outcome = Literal["holds", "fails", "inconclusive", "error"]
OUTCOMES: tuple[str, ...] = ("holds", "fails", "inconclusive", "error")
SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Cell:
    """The trials of one size set in one regime."""

    sizes: Sizes
    regime: str
    trials: int
    failures: int
    max_rel_err: float
    max_abs_err: float

    @property
    def label(self) -> str:
        return f"{sizes_label(self.sizes)} [{self.regime}]"


@dataclasses.dataclass(frozen=True)
class Trial:
    """One trial, with both sides' values: the worst one of a check.

    ``derived`` is the hand-derived value (the *actual*), ``reference`` what
    JAX computes (the *expected*).
    """

    sizes: Sizes
    regime: str
    index: int
    inputs: dict[str, np.ndarray]
    derived: np.ndarray | None
    reference: np.ndarray | None
    abs_err: float
    rel_err: float


@dataclasses.dataclass(frozen=True)
class Spectrum:
    """Eigenvalues of a (symmetrized) matrix claim, at the trial closest to violating it.

    ``found`` is the strongest definiteness the spectrum supports
    (``pd``/``psd``/``nd``/``nsd``/``indefinite``/``zero``); ``rank`` counts
    eigenvalues larger than ``margin`` in magnitude.
    """

    n: int
    lambda_min: float
    lambda_max: float
    rank: int
    margin: float
    found: str
    null_direction: np.ndarray | None = None
    min_rank: int = 0
    max_rank: int = 0


# ------------------------------------------------------------------ the diagnosis

KINDS: tuple[str, ...] = (
    "precision",
    "conjugate",
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
"""Every :attr:`Diagnosis.kind` (the README's table of diagnoses, in the order they are tried)."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One entry of a trial's value: its index, both sides and their difference."""

    index: tuple[int, ...]
    derived: float | complex
    reference: float | complex | None

    @property
    def error(self) -> float | complex:
        return float("nan") if self.reference is None else self.derived - self.reference

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": list(self.index),
            "derived": _opt_num(self.derived),
            "reference": _opt_num(self.reference),
            "error": _opt_num(self.error),
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
            "median_rel_err": _opt_num(self.median_rel_err),
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
            "factor": _opt_num(self.factor),
            "regimes": list(self.regimes),
            "failing": self.failing,
            "trials": self.trials,
            "worst_entries": [e.to_dict() for e in self.worst_entries],
            "by_size": [r.to_dict() for r in self.by_size],
        }


Leaves = tuple[tuple[str, tuple[int, ...]], ...]
"""The leaves of a pytree value in its raveled order: each one's name (``params['W']``) and shape."""


@dataclasses.dataclass(frozen=True)
class SizeSetEvidence:
    """What a diagnosis reads about the trials of one size set (every regime).

    Every trial's regime, verdict, relative error, inputs (arguments and extra
    inputs, by name) and statistics; and both sides' values of the failing
    trials ``rows`` the engine picked (``derived`` and ``reference`` are
    ``(len(rows), ...)``; ``reference`` is ``None``, or ``derived`` has no
    entries, when the claim's values are not two arrays).
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
    leaves: Leaves = ()
    """The leaves of a pytree value (several ``wrt`` arguments, a pytree output), in the raveled order of
    ``derived`` and ``reference``: each one's name and shape; ``()`` when the value is one array."""


@dataclasses.dataclass(frozen=True)
class Evidence:
    """Everything the diagnosis of one failing check reads: plain arrays, computed by the engine.

    ``analysis`` is decided by the claim's family: ``"equality"`` (a derived
    value against a reference: relations, regions, terms), ``"spectrum"``
    (definiteness) or ``"conditions"`` (only when the failures happen; else the
    family's own message is relayed). ``compile_options`` are what the
    diagnosis compiles its few helper functions with (the piecewise cases of
    ``of``). ``problem`` is set when the engine could not gather the evidence.
    """

    derivation: Derivation
    analysis: str
    tol: ResolvedTolerance
    size_sets: tuple[SizeSetEvidence, ...] = ()
    arg_names: tuple[str, ...] = ()
    worst_derived: np.ndarray | None = None
    worst_reference: np.ndarray | None = None
    worst_leaves: Leaves = ()
    """The leaves of the worst trial's value, as :attr:`SizeSetEvidence.leaves`."""
    compile_options: dict[str, Any] | None = None
    problem: str = ""


@dataclasses.dataclass(frozen=True)
class Result:
    """The verdict of one check of one derivation."""

    name: str
    kind: str
    outcome: Outcome
    expect: Expect
    message: str
    trials: int = 0
    seconds: float = 0.0
    seed: int = 0
    max_abs_err: float = float("nan")
    max_rel_err: float = float("nan")
    rtol: float = float("nan")
    atol: float = float("nan")
    source: str = ""
    worst: Trial | None = None
    cells: tuple[Cell, ...] = ()
    spectrum: Spectrum | None = None
    notes: tuple[str, ...] = ()
    diagnosis: Diagnosis | None = None
    counterexample: Any = None
    path: str = ""
    """How the check ran: ``"dense"`` (both sides computed in full, batched)
    or ``"matrix-free"`` (Hessian-vector products and Lanczos, at large
    dimension); ``""`` when it could not run."""
    details: dict[str, Any] | None = None
    """Numbers particular to a claim kind beyond derivatives (a Monte Carlo
    estimate with its standard error and z-score, an estimated convergence
    order with its spread, a limit's rate…); in the JSON form."""
    per_trial: dict[str, np.ndarray] | None = dataclasses.field(default=None, compare=False, repr=False)
    """Every trial's statistics, for plots: ``sizes`` and ``regime`` labels,
    ``failed``, ``rel_err`` (NaN where skipped), and the claim family's own
    numbers (``lambda_min``, ``lambda_max``, ``margin``… for definiteness).
    Not part of the JSON form."""
    claim: str = ""
    """The claim type's stable id (``"gradient"``, ``"definite"``, ``"convergence_order"``…, see
    :mod:`derivcheck._checks`), for readers that branch on the claim; ``definiteness`` is a
    definiteness claim's ``pd``/``psd``/``nd``/``nsd``. Neither is in the JSON form (``kind`` is)."""
    definiteness: str = ""
    reading: dict[str, Any] | None = None
    """For a derivation read from LaTeX (:func:`derivcheck.latex`): how its statement was read
    (claim, index ranges, implicit sums, the code it became, the statement re-rendered), as in
    :class:`derivcheck.Reading`. In the JSON form only when present."""
    repair: Any = None
    """The repair search's answer for a failure (:class:`derivcheck._repair.Repair`: the suggested
    fixes, confirmed on a fresh seed, or in one line why there is none); ``None`` when no search ran.
    In the JSON form as ``suggestions: [{file, line, before, after, holds_on}]`` when it ran."""
    evidence: Evidence | None = dataclasses.field(default=None, compare=False, repr=False)
    """What the engine gathered for the diagnosis of a failure, until the orchestration
    (:func:`derivcheck.check`) turns it into :attr:`diagnosis` and drops it. Not part of the
    JSON form, of equality, or of a pickled Result."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["evidence"] = None  # arrays and the derivation's functions stay in this process
        return state

    @property
    def ok(self) -> bool:
        """The outcome is what the author expected (never for ``error``)."""
        if self.outcome == "error":
            return False
        return (self.outcome == "holds") == self.expect.holds

    @property
    def failing_regimes(self) -> tuple[str, ...]:
        regimes = [c.regime for c in self.cells if c.failures]
        return tuple(dict.fromkeys(regimes))

    def __str__(self) -> str:
        return f"{self.name}: {self.outcome} (expected {self.expect.word}) — {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see README, "JSON schema"); arrays become nested lists."""
        return (
            {
                "name": self.name,
                "kind": self.kind,
                "outcome": self.outcome,
                "expected": self.expect.word,
                "expected_reason": self.expect.reason,
                "ok": self.ok,
                "message": self.message,
                "trials": self.trials,
                "seconds": round(self.seconds, 4),
                "seed": self.seed,
                "max_abs_err": _num(self.max_abs_err),
                "max_rel_err": _num(self.max_rel_err),
                "rtol": _num(self.rtol),
                "atol": _num(self.atol),
                "source": self.source,
                "notes": list(self.notes),
                "cells": [
                    {
                        "sizes": dict(c.sizes),
                        "regime": c.regime,
                        "trials": c.trials,
                        "failures": c.failures,
                        "max_rel_err": _num(c.max_rel_err),
                        "max_abs_err": _num(c.max_abs_err),
                    }
                    for c in self.cells
                ],
                "worst": _trial_dict(self.worst),
                "spectrum": _spectrum_dict(self.spectrum),
                "diagnosis": _jsonable(self.diagnosis),
                "counterexample": _jsonable(self.counterexample),
                "details": _jsonable(self.details),
                "path": self.path,
            }
            | ({"reading": dict(self.reading)} if self.reading is not None else {})
            | _suggestions(self.repair)
        )

    def _repr_html_(self) -> str:
        """Jupyter: verdict, errors per size set and regime, spectrum, diagnosis, counterexample."""
        from derivcheck._report.html import result_html

        return result_html(self)


def _suggestions(repair: Any) -> dict[str, Any]:
    """The JSON form of a repair search's answer: ``{"suggestions": [...]}``, empty when none ran."""
    return {} if repair is None else {"suggestions": repair.to_dict()}


# ---------------------------------------------------------------- many results


def summary(results: Sequence[Result], seconds: float, *, seed: int, trials: int, problems: int = 0) -> str:
    """One line: how many hold, fail as expected, fail unexpectedly, are inconclusive, error (and load problems).

    An ``inconclusive`` result counts there only, whatever was expected.
    """
    holds = sum(r.ok and r.outcome == "holds" for r in results)
    expected_fail = sum(r.ok and r.outcome == "fails" for r in results)
    unexpected = sum((not r.ok) and r.outcome in ("holds", "fails") for r in results)
    inconclusive = sum(r.outcome == "inconclusive" for r in results)
    errors = sum(r.outcome == "error" for r in results)
    parts = [
        f"{len(results)} derivations",
        f"{holds} hold",
        f"{expected_fail} fail as expected",
        f"{unexpected} unexpected",
        *([f"{inconclusive} inconclusive"] if inconclusive else []),
        f"{errors} errors",
    ]
    if problems:
        parts.append(f"{problems} load problems")
    return ", ".join(parts) + f" — {seconds:.1f}s (seed {seed}, {trials} trials each)"


def _verdict_rank(r: Result) -> int:
    """Unexpected outcomes first, then inconclusive ones, errors, expected failures, and what holds."""
    if r.outcome == "error":
        return 1
    if r.outcome == "inconclusive":
        return 0 if not r.ok else 2
    if not r.ok:
        return 0
    return 2 if r.outcome == "fails" else 3


_SORTERS = {
    "verdict": _verdict_rank,
    "name": lambda r: r.name,
    "claim": lambda r: r.kind,
    "outcome": lambda r: r.outcome,
    "error": lambda r: -r.max_rel_err if r.max_rel_err == r.max_rel_err else np.inf,
    "seconds": lambda r: -r.seconds,
    "source": lambda r: r.source,
}
SORT_KEYS = tuple(_SORTERS)


@dataclasses.dataclass(frozen=True, eq=False)
class Results(Sequence[Result]):
    """The results of checking several derivations, in order; shows as a table in Jupyter.

    Index by position or by derivation name; :meth:`sorted` reorders the table.
    """

    items: tuple[Result, ...]
    seed: int = 0
    trials: int = 0
    seconds: float = 0.0

    @overload
    def __getitem__(self, key: int | str) -> Result: ...
    @overload
    def __getitem__(self, key: slice) -> Results: ...
    def __getitem__(self, key):
        if isinstance(key, str):
            for r in self.items:
                if r.name == key:
                    return r
            raise KeyError(f"no result named {key!r}")
        if isinstance(key, slice):
            return dataclasses.replace(self, items=self.items[key])
        return self.items[key]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Result]:
        return iter(self.items)

    @property
    def ok(self) -> bool:
        """Every outcome is what its author expected."""
        return all(r.ok for r in self.items)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.items]

    def where(self, *, outcome: str | None = None, ok: bool | None = None, expected: str | None = None) -> Results:
        """The results with this outcome / ok-ness / expectation (``"holds"`` or ``"fails"``)."""
        keep = [
            r
            for r in self.items
            if (outcome is None or r.outcome == outcome)
            and (ok is None or r.ok == ok)
            and (expected is None or r.expect.word == expected)
        ]
        return dataclasses.replace(self, items=tuple(keep))

    def sorted(self, by: str = "verdict") -> Results:
        """Reordered by one of :data:`SORT_KEYS` (``error`` and ``seconds``: largest first)."""
        if by not in _SORTERS:
            raise ValueError(f"sort by one of {', '.join(SORT_KEYS)}, got {by!r}")
        return dataclasses.replace(self, items=tuple(sorted(self.items, key=_SORTERS[by])))

    @property
    def summary(self) -> str:
        """One line: how many hold, fail as expected, fail unexpectedly, error."""
        return summary(self.items, self.seconds, seed=self.seed, trials=self.trials)

    def __repr__(self) -> str:
        return f"Results({self.summary})"

    def _repr_html_(self) -> str:
        """Jupyter: a table, one row per result (sort it with :meth:`sorted`)."""
        from derivcheck._report.html import results_html

        return results_html(self)


# ------------------------------------------------------------------ JSON parts


def _num(x: float) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _opt_num(x: Any) -> Any:
    """A number for JSON: a float (``None`` when not finite), or a complex one as ``{"re": …, "im": …}``.

    >>> _opt_num(1.5), _opt_num(1 - 2j), _opt_num(float("nan"))
    (1.5, {'re': 1.0, 'im': -2.0}, None)
    """
    if x is None:
        return None
    if np.iscomplexobj(x):
        return {"re": _num(np.real(x)), "im": _num(np.imag(x))}
    return _num(x)


def _array(x: Any) -> Any:
    """An array's entries for JSON (flat; :func:`_opt_num` for each float or complex entry)."""
    if x is None:
        return None
    arr = np.asarray(x)
    if arr.dtype.kind in "fc":
        return [_opt_num(v) for v in arr.ravel()] if arr.ndim else _opt_num(arr[()])
    return arr.tolist()


def _array_json(x: Any) -> Any:
    if x is None:
        return None
    arr = np.asarray(x)
    flat = _array(arr)
    return {"shape": list(arr.shape), "values": flat if isinstance(flat, list) else [flat]}


def _trial_dict(t: Trial | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {
        "sizes": dict(t.sizes),
        "regime": t.regime,
        "index": t.index,
        "inputs": {k: _array_json(v) for k, v in t.inputs.items()},
        "derived": _array_json(t.derived),
        "reference": _array_json(t.reference),
        "abs_err": _num(t.abs_err),
        "rel_err": _num(t.rel_err),
    }


def _spectrum_dict(s: Spectrum | None) -> dict[str, Any] | None:
    if s is None:
        return None
    out = dataclasses.asdict(s)
    out["null_direction"] = _array_json(s.null_direction)
    for k in ("lambda_min", "lambda_max", "margin"):
        out[k] = _num(out[k])
    return out


def _jsonable(x: Any) -> Any:
    if x is None:
        return None
    if hasattr(x, "to_dict"):
        return x.to_dict()
    if dataclasses.is_dataclass(x) and not isinstance(x, type):  # a record, not a record class
        return {k: _jsonable(v) for k, v in dataclasses.asdict(x).items()}
    if isinstance(x, np.ndarray):
        return _array_json(x)
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, float | complex):
        return _opt_num(x)
    return x
