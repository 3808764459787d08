"""Input specs: named arrays with symbolic dimensions, distributions and regimes.

An :class:`Inputs` record says how to draw every argument of a derivation::

    dc.inputs(theta=dc.normal("d"), X=dc.design("m", "d"), y=dc.bernoulli("m"))

Dimensions are symbols (``"m"``, ``"d"``, ``"C"``) or fixed integers. A check
runs over several *sizes* (an assignment of the symbols: the smallest allowed,
usually a batch of 1, then two sets of distinct, non-square values so that a
transpose or a wrong dimension cannot hide) and several *regimes*, families of
inputs that stress a formula where iid N(0, 1) would not:

=========  ==============================================================
regime     what it does to real-valued arrays
=========  ==============================================================
typical    the distribution as declared
large      10x the scale: large magnitudes, saturating sigmoid/softmax
tiny       1e-4x the scale: values near zero
shifted    mean moved by +3 scales: non-zero mean
constant   every entry of the array equal (constant vectors)
=========  ==============================================================

A complex dtype (``normal``, ``uniform``, ``constant``) draws the real and the
imaginary part independently, each as above.

Labels (Bernoulli, one-hot) are the same in every regime; probability vectors
become peaked under ``large``; design matrices keep their rank in every regime.

Inputs are drawn with NumPy, a whole batch at once (``(trials, *shape)``), and
handed to one ``jax.jit(jax.vmap(...))`` call: drawing inside the compiled
function would triple its compile time for no gain. Every argument has its own
stream, seeded by ``(seed, crc32(derivation), crc32(size set | regime),
crc32(argument))``, so trial ``i`` is the same whatever the number of trials,
and adding a derivation or an argument never changes another's inputs.
"""

from __future__ import annotations

import dataclasses
import difflib
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Protocol

import jax
import jax.numpy as jnp
import numpy as np

Dim = str | int

REGIMES: dict[str, str] = {
    "typical": "iid as declared",
    "large": "large magnitude (10x scale; saturates sigmoid/softmax)",
    "tiny": "tiny values (1e-4x scale)",
    "shifted": "non-zero mean (+3 scales)",
    "constant": "constant vectors (all entries equal)",
}
DEFAULT_REGIMES: tuple[str, ...] = tuple(REGIMES)

_DISTINCT_SMALL = (3, 5, 4, 7, 6, 8, 9, 10, 11, 12)
_DISTINCT_MEDIUM = (8, 13, 11, 17, 10, 14, 9, 15, 12, 16)


@dataclasses.dataclass(frozen=True)
class Regime:
    """A regime as numbers: ``scale`` multiplies the spread, ``shift`` moves the
    mean (in units of the spec's scale), ``constant`` makes all entries equal."""

    scale: float = 1.0
    shift: float = 0.0
    constant: bool = False


REGIME_PARAMS: dict[str, Regime] = {
    "typical": Regime(),
    "large": Regime(scale=10.0),
    "tiny": Regime(scale=1e-4),
    "shifted": Regime(shift=3.0),
    "constant": Regime(constant=True),
    "custom": Regime(),
}


def regime_params(regime: str | Regime) -> Regime:
    """The numbers of a named regime (a :class:`Regime` passes through)."""
    return regime if isinstance(regime, Regime) else REGIME_PARAMS[regime]


def _as_dtype(draw: Callable[[], np.ndarray], dtype: str) -> np.ndarray:
    """One draw of a spec as ``dtype``. A complex dtype draws the real and the imaginary part
    independently, each as the real spec draws it (a regime's scale, shift and constancy apply to
    both parts): ``z = a + i b`` with ``a, b`` iid like the real array.

    >>> z = _as_dtype(lambda: np.ones(2), "complex128")
    >>> z.dtype, z[0]
    (dtype('complex128'), np.complex128(1+1j))
    """
    if np.dtype(dtype).kind != "c":
        return draw().astype(dtype, copy=False)
    real = draw()
    return (real + 1j * draw()).astype(dtype)


def _draw(rng: np.random.Generator, n: int, shape: tuple[int, ...], regime: Regime, draw) -> np.ndarray:
    """``n`` draws of ``shape``; in a constant regime one value per trial, broadcast."""
    if regime.constant:
        return np.broadcast_to(draw(rng, (n,) + (1,) * len(shape)), (n, *shape)).copy()
    return draw(rng, (n, *shape))


class InputSpecError(ValueError):
    """An input spec that cannot be drawn (names what to fix)."""


def stable_hash(text: str) -> int:
    """A 31-bit CRC of ``text``: the same on every run and machine (unlike ``hash``)."""
    return zlib.crc32(text.encode()) & 0x7FFFFFFF


# ------------------------------------------------------------------ array specs


class ArraySpec(Protocol):
    """How to draw one argument: its dims, limits on them, and a traceable sampler."""

    dims: tuple[Dim, ...]

    def shape(self, sizes: Mapping[str, int]) -> tuple[int, ...]: ...

    def min_sizes(self) -> dict[str, int]: ...

    def constraints(self) -> tuple[tuple[str, str, int], ...]: ...

    def sample(self, rng: np.random.Generator, n: int, sizes: Mapping[str, int], regime: Regime) -> np.ndarray:
        """``n`` draws, shape ``(n, *self.shape(sizes))``."""
        ...


class Unconstrained:
    """A spec that limits no size: no minimum, no order between dimensions (the default of most specs)."""

    def min_sizes(self) -> dict[str, int]:
        return {}

    def constraints(self) -> tuple[tuple[str, str, int], ...]:
        return ()


def _shape(dims: tuple[Dim, ...], sizes: Mapping[str, int]) -> tuple[int, ...]:
    try:
        return tuple(d if isinstance(d, int) else int(sizes[d]) for d in dims)
    except KeyError as missing:
        raise InputSpecError(f"dimension {missing} has no size; give it in sizes=") from None


def _number(value: Any, what: str) -> float:
    """``value`` as a float, or an :class:`InputSpecError` naming the parameter (``what``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InputSpecError(f"{what} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        number = float("inf")
    if not np.isfinite(number):
        raise InputSpecError(f"{what} must be finite, got {value!r}")
    return number


def _check_dims(dims: Iterable[Any], what: str) -> tuple[Dim, ...]:
    dims = tuple(dims)
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, str | int) or (isinstance(d, int) and d < 0):
            raise InputSpecError(f"{what}: dimension {d!r} must be a name like 'm' or an int >= 0")
    return dims


@dataclasses.dataclass(frozen=True)
class Normal(Unconstrained):
    """Gaussian entries ``mean + scale * N(0, 1)``, reshaped by the regime."""

    dims: tuple[Dim, ...]
    mean: float = 0.0
    scale: float = 1.0
    dtype: str = "float64"

    def shape(self, sizes):
        return _shape(self.dims, sizes)

    complex_ok: ClassVar[bool] = True  # a complex dtype draws real and imaginary parts alike (_as_dtype)

    def sample(self, rng, n, sizes, regime):
        regime = regime_params(regime)

        def real() -> np.ndarray:
            z = _draw(rng, n, self.shape(sizes), regime, lambda r, s: r.standard_normal(s))
            z *= self.scale * regime.scale  # in place: the same numbers as mean + scale·z, one array fewer
            z += self.mean + regime.shift * self.scale
            return z

        return _as_dtype(real, self.dtype)


@dataclasses.dataclass(frozen=True)
class Uniform(Unconstrained):
    """Entries uniform on ``[low, high)``; ``constant`` makes them all equal."""

    dims: tuple[Dim, ...]
    low: float = 0.0
    high: float = 1.0
    dtype: str = "float64"

    def shape(self, sizes):
        return _shape(self.dims, sizes)

    complex_ok: ClassVar[bool] = True  # a complex dtype draws real and imaginary parts alike (_as_dtype)

    def sample(self, rng, n, sizes, regime):
        draw = lambda r, s: r.uniform(self.low, self.high, s)
        return _as_dtype(lambda: _draw(rng, n, self.shape(sizes), regime_params(regime), draw), self.dtype)


@dataclasses.dataclass(frozen=True)
class Positive(Unconstrained):
    """Positive entries, log-uniform on ``[low, high]`` (regimes ``large``/``tiny`` rescale)."""

    dims: tuple[Dim, ...]
    low: float = 0.1
    high: float = 3.0
    dtype: str = "float64"

    def shape(self, sizes):
        return _shape(self.dims, sizes)

    def sample(self, rng, n, sizes, regime):
        regime = regime_params(regime)
        draw = lambda r, s: np.exp(r.uniform(np.log(self.low), np.log(self.high), s))
        return (regime.scale * _draw(rng, n, self.shape(sizes), regime, draw)).astype(self.dtype)


@dataclasses.dataclass(frozen=True)
class Bernoulli(Unconstrained):
    """0/1 labels (as floats) with ``P(1) = p``; the same in every regime."""

    dims: tuple[Dim, ...]
    p: float = 0.5
    dtype: str = "float64"

    def shape(self, sizes):
        return _shape(self.dims, sizes)

    def sample(self, rng, n, sizes, regime):
        return (rng.random((n, *self.shape(sizes))) < self.p).astype(self.dtype)


@dataclasses.dataclass(frozen=True)
class OneHot:
    """One-hot rows: shape ``dims + (classes,)``, exactly one 1 per row."""

    dims: tuple[Dim, ...]
    classes: Dim = "C"
    dtype: str = "float64"

    def shape(self, sizes):
        return _shape((*self.dims, self.classes), sizes)

    def min_sizes(self):
        return {self.classes: 2} if isinstance(self.classes, str) else {}

    def constraints(self):
        return ()

    def sample(self, rng, n, sizes, regime):
        *lead, n_classes = self.shape(sizes)
        labels = rng.integers(0, n_classes, (n, *lead))
        return np.eye(n_classes, dtype=self.dtype)[labels]


@dataclasses.dataclass(frozen=True)
class Simplex:
    """Probability vectors along the last dim (``softmax`` of Gaussian logits).

    ``large`` gives peaked (nearly one-hot) vectors, ``constant`` the uniform one.
    """

    dims: tuple[Dim, ...]
    dtype: str = "float64"

    def shape(self, sizes):
        return _shape(self.dims, sizes)

    def min_sizes(self):
        last = self.dims[-1] if self.dims else None
        return {last: 2} if isinstance(last, str) else {}

    def constraints(self):
        return ()

    def sample(self, rng, n, sizes, regime):
        regime = regime_params(regime)
        logits = rng.standard_normal((n, *self.shape(sizes))) * regime.scale
        if regime.constant:
            logits = np.zeros_like(logits)
        logits -= logits.max(axis=-1, keepdims=True)
        p = np.exp(logits)
        return (p / p.sum(axis=-1, keepdims=True)).astype(self.dtype)


@dataclasses.dataclass(frozen=True)
class Design:
    """A design matrix ``(rows, cols)``: full column rank, or rank ``min(rows, cols) - deficiency``.

    Full rank: Gaussian entries with ``rows >= cols`` (full column rank with
    probability 1). Rank-deficient: a product ``A (rows x r) @ B (r x cols)``.
    Every regime keeps the rank: ``constant`` is not applied, ``large`` and
    ``tiny`` rescale, ``shifted`` adds 3 to the entries (to the left factor
    when rank-deficient).
    """

    rows: Dim
    cols: Dim
    deficiency: int = 0
    dtype: str = "float64"

    @property
    def dims(self) -> tuple[Dim, ...]:
        return (self.rows, self.cols)

    def shape(self, sizes):
        return _shape(self.dims, sizes)

    def rank(self, sizes) -> int:
        rows, cols = self.shape(sizes)
        return min(rows, cols) - self.deficiency

    def min_sizes(self):
        need = self.deficiency + 1
        return {d: need for d in self.dims if isinstance(d, str)}

    def constraints(self):
        if self.deficiency == 0 and isinstance(self.rows, str) and isinstance(self.cols, str):
            return ((self.rows, self.cols, 0),)
        return ()

    def sample(self, rng, n, sizes, regime):
        rows, cols = self.shape(sizes)
        regime = regime_params(regime)
        if self.deficiency == 0:
            x = rng.standard_normal((n, rows, cols)) + regime.shift
        else:
            r = self.rank(sizes)
            a = rng.standard_normal((n, rows, r)) + regime.shift  # shift the left factor: rank stays r
            b = rng.standard_normal((n, r, cols))
            x = a @ b / np.sqrt(max(r, 1))
        return (regime.scale * x).astype(self.dtype)


@dataclasses.dataclass(frozen=True)
class Constant(Unconstrained):
    """A fixed value (e.g. a hyper-parameter like ``alpha = 0.01``)."""

    value: Any
    dtype: str = "float64"
    dims: tuple[Dim, ...] = ()
    complex_ok: ClassVar[bool] = True  # a complex value is kept as it is

    def shape(self, sizes):
        return tuple(jnp.shape(self.value))

    def sample(self, rng, n, sizes, regime):
        value = np.asarray(self.value, self.dtype)
        return np.broadcast_to(value, (n, *value.shape)).copy()


# --------------------------------------------------------------------- factories


def normal(*dims: Dim, mean: float = 0.0, scale: float = 1.0, dtype: str = "float64") -> Normal:
    """Gaussian array ``mean + scale * N(0, 1)`` of shape ``dims``.

    >>> normal("m", "d", scale=2.0).dims
    ('m', 'd')
    """
    _number(mean, "normal: mean")
    if not _number(scale, "normal: scale") > 0:
        raise InputSpecError(f"normal: scale must be > 0, got {scale!r}")
    return Normal(_check_dims(dims, "normal"), float(mean), float(scale), dtype)


def uniform(*dims: Dim, low: float = 0.0, high: float = 1.0, dtype: str = "float64") -> Uniform:
    """Uniform entries on ``[low, high)``."""
    if not _number(high, "uniform: high") > _number(low, "uniform: low"):
        raise InputSpecError(f"uniform: need low < high, got low={low!r}, high={high!r}")
    return Uniform(_check_dims(dims, "uniform"), float(low), float(high), dtype)


def positive(*dims: Dim, low: float = 0.1, high: float = 3.0, dtype: str = "float64") -> Positive:
    """Positive values, log-uniform on ``[low, high]`` (a scalar when no dims)."""
    if not 0 < _number(low, "positive: low") < _number(high, "positive: high"):
        raise InputSpecError(f"positive: need 0 < low < high, got low={low!r}, high={high!r}")
    return Positive(_check_dims(dims, "positive"), float(low), float(high), dtype)


def bernoulli(*dims: Dim, p: float = 0.5, dtype: str = "float64") -> Bernoulli:
    """0/1 labels with ``P(1) = p``, as floats."""
    if not 0 <= _number(p, "bernoulli: p") <= 1:
        raise InputSpecError(f"bernoulli: p must be in [0, 1], got {p!r}")
    return Bernoulli(_check_dims(dims, "bernoulli"), float(p), dtype)


def one_hot(*dims: Dim, classes: Dim = "C", dtype: str = "float64") -> OneHot:
    """One-hot label rows of shape ``dims + (classes,)``.

    >>> one_hot("m", classes="C").shape({"m": 4, "C": 3})
    (4, 3)
    """
    return OneHot(_check_dims(dims, "one_hot"), _check_dims((classes,), "one_hot")[0], dtype)


def simplex(*dims: Dim, dtype: str = "float64") -> Simplex:
    """Probability vectors along the last dimension."""
    if not dims:
        raise InputSpecError("simplex: give at least one dimension (the number of outcomes)")
    return Simplex(_check_dims(dims, "simplex"), dtype)


def design(rows: Dim, cols: Dim, *, deficiency: int = 0, dtype: str = "float64") -> Design:
    """A design matrix: full column rank by default, or rank ``min(rows, cols) - deficiency``."""
    rows, cols = _check_dims((rows, cols), "design")
    if not isinstance(deficiency, int) or deficiency < 0:
        raise InputSpecError(f"design: deficiency must be an int >= 0, got {deficiency!r}")
    return Design(rows, cols, deficiency, dtype)


def full_rank(rows: Dim, cols: Dim, *, dtype: str = "float64") -> Design:
    """A ``rows x cols`` design matrix of full column rank (``rows >= cols`` is enforced)."""
    return design(rows, cols, dtype=dtype)


def rank_deficient(rows: Dim, cols: Dim, *, deficiency: int = 1, dtype: str = "float64") -> Design:
    """A ``rows x cols`` matrix of rank ``min(rows, cols) - deficiency`` (>= 1)."""
    if isinstance(deficiency, bool) or not isinstance(deficiency, int) or deficiency < 1:
        raise InputSpecError(f"rank_deficient: deficiency must be an int >= 1, got {deficiency!r}")
    return design(rows, cols, deficiency=deficiency, dtype=dtype)


def constant(value: Any, *, dtype: str | None = None) -> Constant:
    """A fixed argument, the same in every trial: float64 unless ``dtype`` says otherwise, except an
    integer array, which keeps its dtype (a raw PRNG key ``jax.random.PRNGKey(0)`` is ``uint32``, labels
    are ints; a typed key ``jax.random.key(0)`` is kept as its raw key data, :func:`raw_key`).

    >>> constant(0.5).dtype, constant(np.array([0, 7], np.uint32)).dtype
    ('float64', 'uint32')
    """
    value = raw_key(value)
    kept = getattr(value, "dtype", None)
    if dtype is None:
        dtype = str(np.dtype(kept)) if kept is not None and np.dtype(kept).kind in "iu" else "float64"
    if np.iscomplexobj(value) and np.dtype(dtype).kind != "c":
        raise InputSpecError(f"constant: value {value!r} is complex; give dtype='complex128' to keep it complex")
    return Constant(value, dtype)


# ------------------------------------------------------------------------ inputs

Sizes = tuple[tuple[str, int], ...]


@dataclasses.dataclass(frozen=True)
class Inputs:
    """Named array specs, the sizes to run them at, and the regimes to draw them in."""

    specs: tuple[tuple[str, Any], ...]
    sizes: tuple[Sizes, ...]
    regimes: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.specs)

    def shapes(self, sizes: Sizes) -> dict[str, tuple[int, ...]]:
        dims = dict(sizes)
        return {name: spec.shape(dims) for name, spec in self.specs}

    def sample(self, seed: int, label: str, n: int, sizes: Sizes, regime: str, order: tuple[str, ...]) -> tuple:
        """``n`` trials of every argument, in the order of ``order``: arrays ``(n, *shape)``.

        ``label`` names the derivation; each argument draws from its own stream.
        """
        dims = dict(sizes)
        table = dict(self.specs)
        cell = stable_hash(f"{sizes_label(sizes)}|{regime}")
        return tuple(
            table[name].sample(
                np.random.default_rng([seed, stable_hash(label), cell, stable_hash(name)]),
                n,
                dims,
                regime_params(regime),
            )
            for name in order
        )


@dataclasses.dataclass(frozen=True)
class CustomInputs:
    """Arguments drawn by a user's callable ``key -> tuple of args`` (one size, one regime)."""

    draw: Callable[[jax.Array], Any]  # a tuple of args, or one array for a single argument
    sizes: tuple[Sizes, ...] = ((),)
    regimes: tuple[str, ...] = ("custom",)

    def sample(self, seed, label, n, sizes, regime, order):
        """``n`` trials from the user's ``draw(key)``, vmapped over keys ``fold_in(key(seed, label), i)``."""
        root = jax.random.fold_in(jax.random.PRNGKey(seed), stable_hash(label))
        keys = jax.vmap(lambda i: jax.random.fold_in(root, i))(jnp.arange(n))
        args = jax.vmap(self.draw)(keys)
        args = tuple(args) if isinstance(args, list | tuple) else (args,)
        return tuple(np.asarray(raw_key(a)) for a in args)


def raw_key(x: Any) -> Any:
    """A typed PRNG key (``jax.random.key``) as its raw key data (``jax.random.key_data``), else ``x``.

    Drawn arguments live on the host as NumPy arrays, which have no key dtype; every ``jax.random``
    function accepts the raw form (a ``uint32`` array, the form of ``jax.random.PRNGKey``) as well.
    """
    if jnp.issubdtype(getattr(x, "dtype", None) or np.float64, jax.dtypes.prng_key):
        return jax.random.key_data(x)
    return x


def is_spec(x: Any) -> bool:
    """Whether ``x`` is one array spec (not a dict, tuple or list of them)."""
    return hasattr(x, "sample") and hasattr(x, "shape")


def spec_leaves(spec: Any) -> list[Any]:
    """The array specs in ``spec``: itself, or the leaves of a pytree (dict, tuple, list) of specs."""
    return jax.tree_util.tree_leaves(spec, is_leaf=is_spec)


def _all_dims(specs: Iterable[Any]) -> list[str]:
    seen: list[str] = []
    for spec in specs:
        dims = list(spec.dims)
        classes = getattr(spec, "classes", None)  # one-hot rows and integer labels: the class count is a size
        if isinstance(classes, str | int):
            dims.append(classes)
        for d in dims:
            if isinstance(d, str) and d not in seen:
                seen.append(d)
    return seen


def _apply_limits(sizes: dict[str, int], specs: Iterable[Any]) -> dict[str, int]:
    specs = list(specs)
    for spec in specs:
        for d, lo in spec.min_sizes().items():
            sizes[d] = max(sizes.get(d, lo), lo)
    for _ in range(len(specs) + 1):
        changed = False
        for spec in specs:
            for big, small, offset in spec.constraints():
                if sizes[big] < sizes[small] + offset:
                    sizes[big], sizes[small] = sizes[small], sizes[big]  # keep values distinct
                    sizes[big] = max(sizes[big], sizes[small] + offset)
                    changed = True
        if not changed:
            break
    return sizes


def default_sizes(specs: Iterable[Any], fixed: Mapping[str, int] | None = None) -> tuple[Sizes, ...]:
    """Three size sets: the smallest allowed (batch of 1), then two sets of distinct values."""
    specs = list(specs)
    fixed = dict(fixed or {})
    free = [d for d in _all_dims(specs) if d not in fixed]
    plans = [
        {d: 1 for d in free},
        dict(zip(free, _DISTINCT_SMALL, strict=False)),
        dict(zip(free, _DISTINCT_MEDIUM, strict=False)),
    ]
    out: list[Sizes] = []
    for plan in plans:
        sizes = _apply_limits({**plan, **fixed}, specs)
        key = tuple(sorted(sizes.items()))
        if key not in out:
            out.append(key)
    return tuple(out)


def inputs(
    *,
    sizes: Iterable[Mapping[str, int]] | None = None,
    dims: Mapping[str, int] | None = None,
    regimes: Iterable[str] | None = None,
    **specs: Any,
) -> Inputs:
    """Declare how each named argument is drawn.

    Args:
      sizes: explicit size sets, e.g. ``[{"m": 1, "d": 3}, {"m": 20, "d": 4}]``;
        default: the smallest allowed sizes and two sets of distinct values.
      dims: sizes fixed in every set, e.g. ``{"C": 2}``.
      regimes: which of :data:`REGIMES` to draw (default: all).
      **specs: one array spec per argument name, e.g. ``X=design("m", "d")``; a pytree
        argument takes a dict, tuple or list of specs, e.g. ``params={"W": normal("m", "n"), "b": normal("m")}``.

    >>> spec = inputs(theta=normal("d"), X=design("m", "d"))
    >>> spec.sizes[0]
    (('d', 1), ('m', 1))
    """
    if not specs:
        raise InputSpecError("inputs(): name at least one argument, e.g. inputs(x=normal('n'))")
    for name, spec in specs.items():
        leaves = spec_leaves(spec)
        if not leaves or not all(is_spec(leaf) for leaf in leaves):
            raise InputSpecError(
                f"inputs({name}=...): expected an array spec such as normal('n'), or a dict, tuple or list "
                f"of them for a pytree argument, got {spec!r}"
            )
        for leaf in leaves:
            _check_dtype(getattr(leaf, "dtype", "float64"), f"inputs({name}=...)", leaf)
    arrays = [leaf for spec in specs.values() for leaf in spec_leaves(spec)]
    for option, value in (("sizes", sizes), ("regimes", regimes)):
        if value is not None and (isinstance(value, str | Mapping) or not isinstance(value, Iterable)):
            raise InputSpecError(f"inputs({option}=...): give a list, e.g. {_EXAMPLES[option]}, got {value!r}")
    if dims is not None and not isinstance(dims, Mapping):
        raise InputSpecError(f"inputs(dims=...): give a dict of sizes, e.g. {{'C': 2}}, got {dims!r}")
    sizes = None if sizes is None else list(sizes)
    if sizes is not None and not all(isinstance(s, Mapping) for s in sizes):
        raise InputSpecError(f"inputs(sizes=...): each size set is a dict, e.g. {_EXAMPLES['sizes']}, got {sizes!r}")
    chosen = tuple(regimes) if regimes is not None else DEFAULT_REGIMES
    unknown = [r for r in chosen if not isinstance(r, str) or r not in REGIMES]
    if unknown or not chosen:
        raise InputSpecError(f"inputs(regimes=...): unknown {unknown}; choose from {list(REGIMES)}")
    unused = sorted(set(dims or {}) - set(_all_dims(arrays)))
    if unused:
        used = sorted(set(_all_dims(arrays)))
        close = difflib.get_close_matches(unused[0], used, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InputSpecError(f"inputs(dims=...): {unused} is no dimension of the inputs (they use {used}){hint}")
    if sizes is None:
        size_sets = default_sizes(arrays, dims)
    else:
        needed = set(_all_dims(arrays))
        size_sets = []
        for s in sizes:
            merged = {**(dims or {}), **dict(s)}
            missing = needed - set(merged)
            bad = {k: v for k, v in merged.items() if not isinstance(v, int) or v < 0}
            if missing or bad:
                raise InputSpecError(
                    f"inputs(sizes=...): size set {dict(s)} "
                    + (_misses(missing, specs, set(merged) - needed) if missing else f"has invalid sizes {bad}")
                )
            size_sets.append(tuple(sorted(merged.items())))
        size_sets = tuple(size_sets)
        if not size_sets:
            raise InputSpecError("inputs(sizes=...): give at least one size set")
    return Inputs(tuple(specs.items()), size_sets, chosen)


def _misses(missing: set[str], specs: Mapping[str, Any], unused: set[str]) -> str:
    """``misses ['C'] (a dimension of y); did you mean 'C' for 'c'?`` — the inputs that need the missing
    dimensions, and a size the set gives that no input uses, when its name is close to a missing one."""
    users = [name for name, spec in specs.items() if missing & set(_all_dims(spec_leaves(spec)))]
    of = f" (a dimension of {', '.join(users)})" if users else ""
    for m in sorted(missing):
        close = [u for u in sorted(unused) if u.lower() == m.lower()] or difflib.get_close_matches(m, sorted(unused), 1)
        if close:
            return f"misses {sorted(missing)}{of}; did you mean {m!r} for {close[0]!r}?"
    return f"misses {sorted(missing)}{of}; give it in every size set or in dims="


_EXAMPLES = {"sizes": "[{'m': 1, 'd': 3}]", "regimes": "('typical', 'large')"}


def _check_dtype(dtype: Any, what: str, spec: Any = None) -> None:
    """A NumPy dtype; a complex one only on a spec that draws complex values (``complex_ok``): the
    others (positive, labels, simplex, design…) describe real sets, which a complex dtype would only
    ever meet on the real axis."""
    try:
        kind = np.dtype(dtype).kind
    except (TypeError, ValueError):
        raise InputSpecError(f"{what}: dtype {dtype!r} is not a NumPy dtype such as 'float64' or 'float32'") from None
    if kind == "c" and not getattr(spec, "complex_ok", False):
        raise InputSpecError(
            f"{what}: {type(spec).__name__.lower()}(...) draws real values, so dtype {dtype!r} does not apply; "
            "complex values are drawn by normal(...), uniform(...) or constant(...) with dtype='complex128'"
        )


def as_inputs(spec: Any) -> Inputs | CustomInputs:
    """Accept an :class:`Inputs` or any callable ``key -> tuple of args``."""
    if isinstance(spec, Inputs | CustomInputs):
        return spec
    if callable(spec):
        return CustomInputs(spec)
    raise InputSpecError(f"inputs=: expected dc.inputs(...) or a callable key -> tuple of args, got {spec!r}")


def sizes_label(sizes: Sizes) -> str:
    """``m=5 d=3`` (or ``fixed shapes`` for inputs without symbolic dimensions)."""
    return " ".join(f"{k}={v}" for k, v in sizes) or "fixed shapes"
