"""Structured input specs: matrices and labels that keep their structure in every regime.

Symmetric, symmetric positive-definite (with an exact condition number),
orthogonal (Haar), lower/upper triangular (invertible) matrices, integer class
labels and ``±1`` signs — what a ``∇ log det Σ``, a triangular solve, a
cross-entropy with integer labels or an SVM loss needs — as specs that take
part in the size sets and regimes like :func:`derivcheck.normal`. Each
docstring says what the regimes do to it; a regime never breaks the structure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from derivcheck._inputs import (
    Dim,
    InputSpecError,
    Normal,
    Unconstrained,
    _check_dims,
    _draw,
    _number,
    _shape,
    regime_params,
)


def _square(dims: tuple[Dim, ...], sizes: Mapping[str, int]) -> tuple[int, ...]:
    """The shape of a square matrix spec, ``(n, n)`` from its one dimension."""
    (n,) = _shape(dims, sizes)
    return (n, n)


def _haar_orthogonal(rng: np.random.Generator, n_trials: int, n: int) -> np.ndarray:
    """``n_trials`` orthogonal ``n x n`` matrices, Haar-distributed: ``Q`` of ``QR(G)`` with ``diag(R) > 0``."""
    q, r = np.linalg.qr(rng.standard_normal((n_trials, n, n)))
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


@dataclasses.dataclass(frozen=True)
class Symmetric(Unconstrained):
    """A symmetric matrix ``(A + Aᵀ)/2``, ``A`` Gaussian; regimes act on ``A`` as for :class:`Normal`."""

    dims: tuple[Dim, ...]
    scale: float = 1.0
    dtype: str = "float64"

    def shape(self, sizes):
        return _square(self.dims, sizes)

    def sample(self, rng, n, sizes, regime):
        a = Normal((*self.dims, *self.dims), scale=self.scale, dtype=self.dtype).sample(rng, n, {**sizes}, regime)
        return ((a + np.swapaxes(a, -1, -2)) / 2).astype(self.dtype)


@dataclasses.dataclass(frozen=True)
class SPD(Unconstrained):
    """A symmetric positive-definite matrix ``Q diag(λ) Qᵀ`` with condition number ``condition``.

    ``Q`` is Haar-orthogonal and ``λ`` is log-uniform on ``[1, condition]``
    with both ends always present (so ``κ(Σ) = condition`` exactly, for
    ``n ≥ 2``). Regimes: ``large``/``tiny`` scale ``λ`` (10x, 1e-4x),
    ``shifted`` adds ``3·I``, ``constant`` gives ``c·I`` (all eigenvalues equal).
    """

    dims: tuple[Dim, ...]
    condition: float = 10.0
    dtype: str = "float64"

    def shape(self, sizes):
        return _square(self.dims, sizes)

    def sample(self, rng, n, sizes, regime):
        regime = regime_params(regime)
        size = self.shape(sizes)[0]
        q = _haar_orthogonal(rng, n, size)
        logs = rng.uniform(0.0, np.log(self.condition), (n, size))
        if size >= 2:  # both ends present: κ = condition exactly (a 1 × 1 matrix keeps its drawn value)
            logs[:, :2] = (0.0, np.log(self.condition))
        if regime.constant:  # c·I, c drawn as an eigenvalue is (not the pinned ends: always I or always κ·I)
            logs = np.broadcast_to(rng.uniform(0.0, np.log(self.condition), (n, 1)), logs.shape)
        lam = np.exp(logs)
        x = (q * (regime.scale * lam)[..., None, :]) @ np.swapaxes(q, -1, -2)
        x = (x + np.swapaxes(x, -1, -2)) / 2 + regime.shift * np.eye(size)
        return x.astype(self.dtype)


@dataclasses.dataclass(frozen=True)
class Orthogonal(Unconstrained):
    """A Haar-distributed orthogonal matrix; the same in every regime (``constant``: the identity)."""

    dims: tuple[Dim, ...]
    dtype: str = "float64"

    def shape(self, sizes):
        return _square(self.dims, sizes)

    def sample(self, rng, n, sizes, regime):
        size = self.shape(sizes)[0]
        if regime_params(regime).constant:
            return np.broadcast_to(np.eye(size, dtype=self.dtype), (n, size, size)).copy()
        return _haar_orthogonal(rng, n, size).astype(self.dtype)


@dataclasses.dataclass(frozen=True)
class Triangular(Unconstrained):
    """A lower (or upper) triangular matrix with Gaussian off-diagonal entries and a diagonal
    ``exp(N(0, 1/4))`` kept away from zero (so it is invertible and well conditioned);
    regimes scale and shift it as for :class:`Normal`, ``constant`` makes every entry
    of the triangle equal."""

    dims: tuple[Dim, ...]
    lower: bool = True
    dtype: str = "float64"

    def shape(self, sizes):
        return _square(self.dims, sizes)

    def sample(self, rng, n, sizes, regime):
        regime = regime_params(regime)
        size = self.shape(sizes)[0]
        x = _draw(rng, n, (size, size), regime, lambda r, s: r.standard_normal(s))
        diag = np.exp(0.5 * _draw(rng, n, (size,), regime, lambda r, s: r.standard_normal(s)))
        x[..., np.arange(size), np.arange(size)] = diag
        x = regime.scale * (x + regime.shift)
        keep = np.tril(np.ones((size, size), bool)) if self.lower else np.triu(np.ones((size, size), bool))
        return np.where(keep, x, 0.0).astype(self.dtype)


@dataclasses.dataclass(frozen=True)
class Labels:
    """Integer class labels in ``[0, classes)``, shape ``dims``; the same in every regime."""

    dims: tuple[Dim, ...]
    classes: Dim = "C"
    dtype: str = "int32"

    def shape(self, sizes):
        return _shape(self.dims, sizes)

    def min_sizes(self):
        return {self.classes: 2} if isinstance(self.classes, str) else {}

    def constraints(self):
        return ()

    def sample(self, rng, n, sizes, regime):
        (n_classes,) = _shape((self.classes,), sizes)
        return rng.integers(0, n_classes, (n, *self.shape(sizes))).astype(self.dtype)


@dataclasses.dataclass(frozen=True)
class Signs(Unconstrained):
    """``±1`` labels (as floats) with ``P(+1) = p``; the same in every regime."""

    dims: tuple[Dim, ...]
    p: float = 0.5
    dtype: str = "float64"

    def shape(self, sizes):
        return _shape(self.dims, sizes)

    def sample(self, rng, n, sizes, regime):
        return np.where(rng.random((n, *self.shape(sizes))) < self.p, 1.0, -1.0).astype(self.dtype)


def _one_dim(dims: tuple[Any, ...], what: str) -> tuple[Dim, ...]:
    if len(dims) != 1:
        raise InputSpecError(f"{what}: give the one dimension of the square matrix, e.g. {what}('n'), got {dims!r}")
    return _check_dims(dims, what)


def symmetric(n: Dim, *, scale: float = 1.0, dtype: str = "float64") -> Symmetric:
    """A symmetric ``n x n`` matrix ``(A + Aᵀ)/2``, ``A`` with Gaussian entries of spread ``scale``.

    >>> symmetric("n").shape({"n": 3})
    (3, 3)
    """
    if not _number(scale, "symmetric: scale") > 0:
        raise InputSpecError(f"symmetric: scale must be > 0, got {scale!r}")
    return Symmetric(_one_dim((n,), "symmetric"), float(scale), dtype)


def spd(n: Dim, *, condition: float = 10.0, dtype: str = "float64") -> SPD:
    """A symmetric positive-definite ``n x n`` matrix of condition number ``condition`` (>= 1).

    >>> import numpy as np
    >>> x = spd("n", condition=100.0).sample(np.random.default_rng(0), 1, {"n": 4}, "typical")[0]
    >>> float(np.round(np.linalg.cond(x), 6))
    100.0
    """
    if not _number(condition, "spd: condition") >= 1:
        raise InputSpecError(f"spd: condition must be a number >= 1, got {condition!r}")
    return SPD(_one_dim((n,), "spd"), float(condition), dtype)


def orthogonal(n: Dim, *, dtype: str = "float64") -> Orthogonal:
    """A Haar-random orthogonal ``n x n`` matrix (``Qᵀ Q = I``)."""
    return Orthogonal(_one_dim((n,), "orthogonal"), dtype)


def lower_triangular(n: Dim, *, dtype: str = "float64") -> Triangular:
    """A lower triangular ``n x n`` matrix with a diagonal away from zero (invertible)."""
    return Triangular(_one_dim((n,), "lower_triangular"), True, dtype)


def upper_triangular(n: Dim, *, dtype: str = "float64") -> Triangular:
    """An upper triangular ``n x n`` matrix with a diagonal away from zero (invertible)."""
    return Triangular(_one_dim((n,), "upper_triangular"), False, dtype)


def labels(*dims: Dim, classes: Dim = "C", dtype: str = "int32") -> Labels:
    """Integer class labels in ``[0, classes)`` of shape ``dims`` (an index, never differentiated).

    >>> labels("m", classes="C").shape({"m": 5, "C": 3})
    (5,)
    """
    if not np.issubdtype(np.dtype(dtype), np.integer):
        raise InputSpecError(f"labels: dtype must be an integer type such as 'int32', got {dtype!r}")
    return Labels(_check_dims(dims, "labels"), _check_dims((classes,), "labels")[0], dtype)


def signs(*dims: Dim, p: float = 0.5, dtype: str = "float64") -> Signs:
    """``±1`` labels with ``P(+1) = p``, as floats (an SVM's or a perceptron's ``y``)."""
    if not 0 <= _number(p, "signs: p") <= 1:
        raise InputSpecError(f"signs: p must be in [0, 1], got {p!r}")
    return Signs(_check_dims(dims, "signs"), float(p), dtype)
