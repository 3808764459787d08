"""What a check found: :class:`Result` and its parts, with a stable JSON form.

``outcome`` is what happened (``holds``, ``fails``, or ``error`` when the check
itself could not run); ``ok`` says whether that matches what the author
expected. An ``error`` is never ok.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np

from derivcheck._derivation import Expect
from derivcheck._inputs import Sizes, sizes_label

Outcome = Literal["holds", "fails", "error"]
OUTCOMES: tuple[str, ...] = ("holds", "fails", "error")
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
    diagnosis: Any = None
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
        return {
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

    def _repr_html_(self) -> str:
        """Jupyter: verdict, errors per size set and regime, spectrum, diagnosis, counterexample."""
        from derivcheck._display import result_html

        return result_html(self)


def _num(x: float) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _array(x: Any) -> Any:
    if x is None:
        return None
    arr = np.asarray(x)
    if arr.dtype.kind in "fc":
        arr = np.where(np.isfinite(arr), arr, np.nan)
        return [None if np.isnan(v) else float(v) for v in arr.ravel()] if arr.ndim else _num(arr)
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
    if dataclasses.is_dataclass(x):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(x).items()}
    if isinstance(x, np.ndarray):
        return _array_json(x)
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, float):
        return _num(x)
    return x
