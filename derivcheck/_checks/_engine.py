"""The batched engine shared by claims checked trial by trial.

A *family* (differential, definite, …) says how one trial computes both sides
and its statistics. The engine draws every trial of one size set — all
regimes — with NumPy (see :mod:`derivcheck._inputs`), evaluates them in one
``jax.jit(jax.vmap(trial))`` call, decides which trials fail, keeps the worst
trial's inputs and both sides' values, and builds the
:class:`~derivcheck._result.Result`.

Data flows one way: for a failing check the engine also gathers the
:class:`~derivcheck._result.Evidence` a diagnosis reads (the failing rows'
values, every trial's statistics, the analysis the family asks for) and
attaches it to the Result; the orchestration diagnoses it. Shrinking judges
its candidates through :func:`evaluate`, the same judge step as a check.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, cast, overload

import jax
import jax.numpy as jnp
import numpy as np

from derivcheck import _devices
from derivcheck._checks.second_opinion import Opinion, doubt_bound, opinion, sides
from derivcheck._compare import ResolvedTolerance, blind, merge_tolerance, plain_relative_error, real_precision
from derivcheck._derivation import Derivation
from derivcheck._format import one_line
from derivcheck._inputs import Normal, Sizes, regime_params, sizes_label, stable_hash
from derivcheck._result import Cell, Evidence, Leaves, Result, SizeSetEvidence, Trial

VALUE_BUDGET_BYTES = 32 * 2**20
MAX_ROWS = 48  # failing trials per size set whose values a diagnosis reads
FAST_COMPILE_BYTES = 150 * 2**10
"""Batches whose inputs take at most this many bytes (rows × bytes of one trial's inputs, extras
included) are compiled for compile speed (:data:`FAST_COMPILE_OPTIONS`), every pass alike (trial,
values, conditioning): a third to a fifth of the compile time for 1.2–4× the run time, a gain while a
batch runs in milliseconds. Decided by the work, not the row count: one trial of the matrix-free
softmax-regression Hessian at D·C = 10⁶ (≈ 19 MB with its probe) took 110 s at -O0 against 32 s
optimized, and already at D·C = 10⁴ (240 KB) its PSD check took 34 s against 20 s
(``benchmarks/README.md``). The threshold lies between that smallest batch measured to lose and the
largest batch measured to gain: the catalog's at the default 300 trials (at most 141 KB: 128 rows of
at most 1 104 bytes), whose cold run went from 140 to 78 s with these options."""
FAST_COMPILE_OPTIONS = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
"""LLVM at -O0 and XLA:CPU's older loop emitters for fusions, which generate less code to compile.
Measured on the catalog (``benchmarks/README.md``); neither changes what is computed beyond the
last bits of rounding, far inside every tolerance. Used on CPU devices only."""


class CheckError(Exception):
    """The check could not run: the message (one line) says what to fix."""


def judged_precision(derived, reference, reference_name: str) -> str:
    """The dtype a comparison of the derived side with its reference is judged at.

    Both sides are compared at their real precisions (a complex value rounds as its real
    components, :func:`derivcheck._compare.real_precision`). A reference of lower precision than
    the derived side (a float32 ``of``) sets the judged precision, and the engine notes it. A
    derived side of LOWER precision than its reference is a :class:`CheckError`: judging at its
    precision would loosen a float64 check by four decades (float32's ``rtol`` is ``2e-3``
    against ``1e-7``), so one stray cast would let a formula wrong by ``1e-4`` hold, while a
    float64 comparison would catch it.

    >>> judged_precision(jnp.zeros(2, "float32"), jnp.zeros(2, "complex64"), "jax.grad")
    'float32'
    """
    got, ref = real_precision(derived.dtype), real_precision(reference.dtype)
    if got.itemsize < ref.itemsize:
        raise CheckError(
            f"derived function returns {derived.dtype} where {reference_name} returns {reference.dtype}: it drops the "
            f"precision a {ref} check needs; remove the cast or the {derived.dtype} constant (jnp arrays made at "
            f"import are {got}), or draw {got} inputs"
        )
    return str(min((got, ref), key=lambda t: t.itemsize))


@dataclasses.dataclass(frozen=True)
class CheckConfig:
    """How a check runs: total trials (split over size sets x regimes) and the root seed."""

    trials: int = 300
    seed: int = 0


class Family(Protocol):
    """How one claim family computes and judges a trial (all methods but judge/summarize traceable)."""

    def validate(self, d: Derivation, args: tuple, extra: dict) -> str:
        """Check one abstract trial; raise :class:`CheckError` or return the dtype to judge at.

        Optional, ``validate_values(d, args, extra, values) -> str | None``: the same verdict from
        one trial's abstract values (as :meth:`trial` returns them), without tracing again;
        ``None`` when something is wrong, and :meth:`validate` then says what."""
        ...

    def extra_inputs(self, d: Derivation, args: tuple) -> dict[str, jax.ShapeDtypeStruct]:
        """Shapes of inputs the claim adds (a VJP's cotangent), drawn like a normal array."""
        ...

    def trial(self, d: Derivation, args: tuple, extra: dict) -> tuple[dict[str, jax.Array], tuple]:
        """``(stats, (derived, reference))`` of one trial; ``reference`` may be ``None``."""
        ...

    def judge(self, stats: dict[str, np.ndarray], tol: ResolvedTolerance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(failed, badness, rel_err)`` per trial; the worst trial maximises badness."""
        ...

    def summarize(self, d: Derivation, run: Run) -> tuple[str, dict[str, Any]]:
        """The message and extra Result fields (e.g. a spectrum) of a finished run.

        Optional, ``analysis``: how a failure is diagnosed — ``"equality"`` (a derived value
        against a reference), ``"spectrum"`` (definiteness) or, by default, ``"conditions"``
        (see :class:`~derivcheck._result.Evidence`); and ``degenerate(stats, failed) ->
        {reason: mask}``: the trials to skip as degenerate draws (see :func:`_skip_degenerate`); and
        ``leaves(d, inputs) -> ((name, shape), ...)``: the leaves of a pytree result in its raveled
        order, from one trial's inputs by name (``()`` when it is one array), for the evidence."""
        ...


class Opinionated(Family, Protocol):
    """A family that can ask a second opinion on its reference (:mod:`derivcheck._checks.second_opinion`)."""

    def second_opinion(self, d: Derivation, args: tuple, extra: dict) -> dict[str, jax.Array]:
        """Central differences of ``of`` against both sides of one trial (traceable)."""
        ...


class Undecidable(Family, Protocol):
    """A family whose evidence can fail to decide a trial either way (a bound too wide to prove the claim,
    no witness against it): a run without failures and with such a trial is ``inconclusive``, and its
    summary says what would settle it."""

    def undecided(self, stats: dict[str, np.ndarray]) -> np.ndarray:
        """Per trial: neither refuted nor proven."""
        ...


class Conditioned(Family, Protocol):
    """A family that measures the rounding scales of failing trials (see :func:`_measure_conditioning`)."""

    def conditioning(self, d: Derivation, args: tuple, extra: dict) -> dict[str, jax.Array]:
        """The cancelled terms ``T`` (``"terms"``) and the rounding allowance of one trial (traceable)."""
        ...


T = TypeVar("T")


class Labels(Sequence[T]):
    """One label per trial (its size set or regime), stored as a code per trial into the distinct labels.

    A list of 10⁴ references costs milliseconds to build and to tell apart; the codes are one
    NumPy array. Indexing with an int gives the label, as a list would.
    """

    def __init__(self, values: Sequence[T], codes: np.ndarray) -> None:
        self.values = list(values)
        self.codes = np.asarray(codes, dtype=np.int64)

    @classmethod
    def repeat(cls, values: Sequence[T], counts: Sequence[int]) -> Labels[T]:
        """``values[0]`` ``counts[0]`` times, then ``values[1]`` ``counts[1]`` times, …"""
        return cls(values, np.repeat(np.arange(len(values)), counts))

    @classmethod
    def concat(cls, parts: Sequence[Labels[T]]) -> Labels[T]:
        values: list[T] = []
        codes = []
        for p in parts:
            codes.append(p.codes + len(values))
            values.extend(p.values)
        return cls(values, np.concatenate(codes) if codes else np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.codes)

    @overload
    def __getitem__(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i: int | slice) -> T | list[T]:
        if isinstance(i, slice):
            return [self.values[c] for c in self.codes[i]]
        return self.values[self.codes[i]]

    def __iter__(self):
        return (self.values[c] for c in self.codes)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(np.array(self.values)[self.codes], dtype=dtype)

    def __repr__(self) -> str:
        return f"Labels({len(self)} trials of {self.values!r})"


@dataclasses.dataclass
class Run:
    """Everything a batched check gathered, for the family's summary."""

    derivation: Derivation
    tol: ResolvedTolerance
    stats: dict[str, np.ndarray]
    failed: np.ndarray
    badness: np.ndarray
    rel_err: np.ndarray
    sizes: Sequence[Sizes]  # each trial's size set
    regimes: Sequence[str]  # each trial's regime
    cells: list[Cell]
    worst: Trial
    usable: np.ndarray | None = None  # trials judged (not degenerate: see _skip_degenerate); all finite ones if None

    @property
    def valid(self) -> np.ndarray:
        """Which trials were judged: the usable ones (finite reference, not degenerate)."""
        return np.asarray(self.stats["finite_reference"] if self.usable is None else self.usable, bool)

    @property
    def trials(self) -> int:
        return int(self.valid.sum())


def refuse_complex(tree: Any, what: str) -> None:
    """A one-line :class:`CheckError` when ``tree`` (arrays or abstract values) holds complex values
    that ``what`` (a Hessian, a definiteness claim) is not defined for: JAX's ``jax.hessian`` and a
    matrix's definiteness are real notions (see the README's "Complex inputs")."""
    if any(jnp.issubdtype(jnp.result_type(a), jnp.complexfloating) for a in jax.tree.leaves(tree)):
        raise CheckError(
            f"{what} of complex values is not checked (jax.hessian and definiteness are real notions): "
            "write it over the real and imaginary parts as real arrays, or check a dc.gradient / dc.jvp"
        )


_TRACE_HINTS: tuple[tuple[type[BaseException], str], ...] = (
    (jax.errors.TracerBoolConversionError, "Python `if` on an array value? use jnp.where"),
    (jax.errors.TracerArrayConversionError, "a NumPy function on an array? use jax.numpy: jnp.exp, not np.exp"),
    (jax.errors.TracerIntegerConversionError, "range() or an index of an array value? use a shape or lax.fori_loop"),
    (jax.errors.NonConcreteBooleanIndexError, "indexing with a boolean mask? use jnp.where(mask, x, 0)"),
    (jax.errors.UnexpectedTracerError, "a value kept from an earlier call, in a global? return it instead"),
    (jax.errors.ConcretizationTypeError, "Python control flow, int() or float() of an array value? use jnp.where"),
)
"""The errors a function raises only because it is traced, each with the usual cause and its fix (most
specific first: a bool conversion is also a concretization error)."""


def jit_hint(exc: BaseException) -> str:
    """A hint when a function fails only because it is traced (:data:`_TRACE_HINTS`), else ``""``."""
    for kind, hint in _TRACE_HINTS:
        if isinstance(exc, kind):
            return f" — it cannot be traced by jax.jit ({hint})"
    return ""


def where(sizes: Sizes, regime: str) -> str:
    return f"{sizes_label(sizes)} [{regime}]"


def fast_compile_options() -> dict | None:
    """:data:`FAST_COMPILE_OPTIONS` for small jitted helpers, where the default backend is a CPU."""
    return FAST_COMPILE_OPTIONS if jax.default_backend() == "cpu" else None


def _fast_compile(rows: int, row_bytes: int, devices: tuple) -> bool:
    """Whether a batch of ``rows`` trials of ``row_bytes`` input bytes each is compiled for compile
    speed (see :data:`FAST_COMPILE_BYTES`).

    On CPUs only: that is where the options were measured (a GPU compiles and runs differently).
    """
    if any(dev.platform != "cpu" for dev in devices):
        return False
    return rows * row_bytes <= FAST_COMPILE_BYTES


COMPILED_KEPT = int(os.environ.get("DERIVCHECK_COMPILED_KEPT", "256"))
"""How many compiled functions each cache keeps (least recently used go first).

Every kept function holds its XLA executables (one per size set and batch
shape), and each executable holds memory mappings of its machine code: with
1 024 kept, a process that checked a few hundred derivations reached Linux's
default ``vm.max_map_count`` (65 530) — SIGSEGV, "LLVM compilation error:
Cannot allocate memory" —, i.e. about 64 mappings a kept function. 256 keep
about 16 000, a quarter of the limit, while still holding every function a
run over the whole catalog reuses (a derivation keeps two or three: trial,
values, conditioning), so checking it again at another seed compiles nothing.
``DERIVCHECK_COMPILED_KEPT`` changes it (the tests make it small)."""


@functools.lru_cache(maxsize=COMPILED_KEPT)
def _compiled(family: Family, d: Derivation, what: str, devices: tuple = (), fast: bool = False) -> Callable:
    """One jitted, vmapped function per (family, derivation, what, devices, fast); jit caches per shape.

    ``what``: ``"trial"`` (statistics), ``"values"`` (statistics plus both
    sides of every trial, when they fit :data:`VALUE_BUDGET_BYTES`) or
    ``"conditioning"`` (the rounding scales, for failing trials). With several
    ``devices`` the trial axis is sharded over them (:mod:`derivcheck._devices`). ``fast``: compiled
    at :data:`FAST_COMPILE_OPTIONS`.
    """

    def one(args, extra):
        if what == "conditioning":
            # only asked of families that have a conditioning pass (see _judge: hasattr(family, "conditioning"))
            return cast(Conditioned, family).conditioning(d, args, extra)
        if what == "second_opinion":  # only asked of families that have one (see _second_opinion)
            return cast(Opinionated, family).second_opinion(d, args, extra)
        stats, values = family.trial(d, args, extra)
        return (stats, values) if what == "values" else stats

    return _devices.batched(one, devices or _devices.current(), FAST_COMPILE_OPTIONS if fast else None)


@dataclasses.dataclass
class _Batch:
    """The trials of one size set, every regime, drawn and (after :meth:`call`) evaluated."""

    sizes: Sizes
    names: Labels[str]  # each trial's regime
    index: np.ndarray
    args: tuple
    extra: dict
    stats: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    values: Any = None

    @property
    def row_bytes(self) -> int:
        """The bytes of one trial's inputs (arguments and extras)."""
        return sum(a[:1].nbytes for a in jax.tree.leaves((self.args, self.extra)))

    def padded(self, rows: int) -> tuple[tuple, int]:
        """The devices to run ``rows`` trials on, and the padded batch size (see :mod:`derivcheck._devices`)."""
        devices = _devices.current()
        return devices, _devices.padded_rows(rows, self.row_bytes, len(devices))

    def call(self, family: Family, d: Derivation, what: str, rows: slice | np.ndarray | None = None):
        """Evaluate the trials (``rows`` of them), padded and placed on the selected devices; host arrays."""
        return self.dispatch(family, d, what, rows)()

    def dispatch(self, family: Family, d: Derivation, what: str, rows: slice | np.ndarray | None = None):
        """Start :meth:`call` and return a function that waits for its host arrays.

        JAX dispatches asynchronously, so the next size set is drawn (NumPy, on
        this thread) while this one computes.
        """
        args, extra = self.args, self.extra
        if rows is not None:
            args, extra = jax.tree.map(lambda a: a[rows], (args, extra))
        leaves = jax.tree.leaves((args, extra))
        n = len(leaves[0]) if leaves else len(self.names)
        devices, target = self.padded(n)
        with self._errors():
            batch = _devices.place(_devices.pad((args, extra), n, target), devices)
            fn = _compiled(family, d, what, devices, _fast_compile(target, self.row_bytes, devices))
            out = fn(*batch)

        def fetch(host: bool = True):
            """The outputs as host arrays; ``host=False``: as computed (padded, on the devices)."""
            with self._errors():
                return _devices.unpad(out, n) if host else jax.block_until_ready(out)

        return fetch

    @contextlib.contextmanager
    def _errors(self):
        try:
            yield
        except CheckError:
            raise
        except Exception as exc:
            raise CheckError(
                f"failed under jax.jit at {sizes_label(self.sizes)}: {one_line(exc)}{jit_hint(exc)}"
            ) from exc


def _draw_batch(family: Family, d: Derivation, config: CheckConfig, sizes: Sizes, per: int) -> _Batch:
    regimes = list(d.inputs.regimes)
    try:
        parts = [d.inputs.sample(config.seed, d.name, per, sizes, r, d.arg_names) for r in regimes]
    except Exception as exc:
        raise CheckError(f"inputs could not be drawn at {sizes_label(sizes)}: {one_line(exc)}") from exc
    args = tuple(np.concatenate(cols) for cols in zip(*parts, strict=True))
    abstract = tuple(jax.ShapeDtypeStruct(a.shape[1:], a.dtype) for a in args)

    def extra_shapes():  # a trace of `of` (a VJP's cotangent): once per shape, not per check
        try:
            return family.extra_inputs(d, abstract)
        except CheckError:
            raise
        except Exception as exc:
            raise CheckError(f"of= raised on the drawn inputs at {sizes_label(sizes)}: {one_line(exc)}") from exc

    shapes = _remember(_EXTRA_SHAPES, (family, d, _signature(abstract)), extra_shapes)
    extra = {}
    for name, shape in shapes.items():
        spec = Normal(tuple(shape.shape), dtype=str(np.dtype(shape.dtype)))
        extra[name] = np.concatenate(
            [
                spec.sample(
                    np.random.default_rng(
                        [config.seed, stable_hash(d.name), stable_hash(f"{sizes_label(sizes)}|{r}"), stable_hash(name)]
                    ),
                    per,
                    {},
                    # a family may draw its extras iid whatever the regime (random probes must not be constant)
                    regime_params(getattr(family, "extra_regime", None) or r),
                )
                for r in regimes
            ]
        )
    return _Batch(
        sizes=sizes,
        names=Labels.repeat(regimes, [per] * len(regimes)),
        index=np.tile(np.arange(per), len(regimes)),
        args=args,
        extra=extra,
    )


def _validate(family: Family, d: Derivation, b: _Batch) -> tuple[str, int]:
    """Abstract-evaluate one trial: the dtype to judge at, and the bytes of one trial's values."""
    args, extra = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), (b.args, b.extra))
    devices, target = b.padded(len(b.names))
    return _validated(family, d, args, extra, devices, target, b.sizes, b.row_bytes)


def _validated(
    family: Family, d: Derivation, args, extra, devices, target: int, sizes: Sizes, row_bytes: int
) -> tuple[str, int]:
    """:func:`_validate` for abstract shapes, remembered: a check repeated at the same shapes (more
    trials, another seed) skips the tracing. Failures are not remembered; they raise every time."""
    key = (family, d, _signature((args, extra)), devices, target)
    fast = _fast_compile(target, row_bytes, devices)
    return _remember(_VALIDATED, key, lambda: _validate_abstract(family, d, args, extra, devices, target, sizes, fast))


_VALIDATED: dict[tuple, tuple[str, int]] = {}
_EXTRA_SHAPES: dict[tuple, dict] = {}
REMEMBERED = 4096  # entries per table; the oldest go first


def _remember(table: dict, key, make: Callable[[], Any]) -> Any:
    """``table[key]``, made by ``make()`` the first time (a raise is not remembered)."""
    if key not in table:
        table[key] = make()
        while len(table) > REMEMBERED:
            table.pop(next(iter(table)))
    return table[key]


def _signature(tree) -> tuple:
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((tuple(x.shape), str(x.dtype)) for x in leaves)


def _validate_abstract(family: Family, d: Derivation, args, extra, devices, target: int, sizes: Sizes, fast: bool):
    """Trace the batched function once (its call reuses the trace) and check what it returns.

    A family with ``validate_values`` checks one trial's values from that trace (shapes, dtypes);
    only when they are wrong, or the trace fails, does ``family.validate`` trace each function on
    its own, to say which one is at fault.
    """
    batch = jax.tree.map(lambda a: jax.ShapeDtypeStruct((target, *a.shape), a.dtype), (args, extra))
    fn = _compiled(family, d, "values", devices, fast)
    try:
        _, values = jax.eval_shape(fn, *batch)
    except CheckError:
        raise
    except Exception as exc:
        family.validate(d, args, extra)  # raises the precise reason, when there is one
        raise CheckError(f"failed at {sizes_label(sizes)}: {one_line(exc)}{jit_hint(exc)}") from exc
    trial_values = jax.tree.map(lambda v: jax.ShapeDtypeStruct(v.shape[1:], v.dtype), values)
    quick = getattr(family, "validate_values", None)
    dtype = quick(d, args, extra, trial_values) if quick is not None else None
    if dtype is None:
        dtype = family.validate(d, args, extra)
    leaves = jax.tree.leaves((args, extra)) + jax.tree.leaves(trial_values)
    return dtype, sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in leaves)


def run_batched(d: Derivation, config: CheckConfig, family: Family) -> Result:
    """Run every trial of ``d`` in one jitted call per size set and judge them."""
    inputs = d.inputs
    per = max(1, math.ceil(config.trials / (len(inputs.sizes) * len(inputs.regimes))))
    dtypes: list[str] = []
    batches: list[_Batch] = []
    pending = []
    for sizes in inputs.sizes:  # each size set computes while the next one is drawn
        b = _draw_batch(family, d, config, sizes, per)
        dtype, trial_bytes = _validate(family, d, b)
        dtypes.append(dtype)
        # one large trial keeps its values: recomputing them for the report would double its cost
        keep = trial_bytes * len(b.names) <= VALUE_BUDGET_BYTES or len(b.names) == 1
        pending.append((b, keep, b.dispatch(family, d, "values" if keep else "trial")))
    for b, keep, fetch in pending:
        if keep:  # both sides stay where they were computed: only the rows a report needs are copied
            stats, b.values = fetch(host=False)
            stats = _devices.unpad(stats, len(b.names))
        else:
            stats, b.values = fetch(), None
        b.stats = {k: np.asarray(v) for k, v in stats.items()}
        batches.append(b)
    judge_dtype = min(dtypes, key=lambda t: np.dtype(t).itemsize)
    tol = merge_tolerance(judge_dtype, d.tolerance)
    notes: list[str] = []
    if judge_dtype != "float64":
        notes.append(
            f"checked at {judge_dtype} precision (rtol={tol.rtol:g}, atol={tol.atol:g}): "
            "formula errors smaller than that are invisible"
        )
    stats, failed, badness, rel = _judge(family, d, batches, tol)
    trial_sizes = Labels.repeat([b.sizes for b in batches], [len(b.names) for b in batches])
    trial_regimes = Labels.concat([b.names for b in batches])
    valid = _skip_degenerate(family, stats, failed, trial_sizes, trial_regimes, notes)
    failed = failed & valid
    badness = np.where(valid, badness, -np.inf)
    rel = np.where(valid, rel, np.nan)
    cells = _cells(stats, failed, rel, trial_sizes, trial_regimes)
    if failed.any():  # the worst trial, and every summary's, is a failing one
        badness = np.where(failed, badness, -np.inf)
    worst_i = int(np.argmax(badness))
    abs_all = stats.get("abs_err", np.full(len(trial_sizes), np.nan))
    worst = _worst_trial(family, d, batches, worst_i, float(abs_all[worst_i]), float(rel[worst_i]))
    second = _second_opinion(family, d, batches, failed, rel, judge_dtype, notes)
    if second is not None:
        stats = _concat(batches)
    run = Run(d, tol, stats, failed, badness, rel, trial_sizes, trial_regimes, cells, worst, valid)
    message, extra = family.summarize(d, run)
    inconclusive = not failed.any() and bool((_undecided(family, stats) & valid).any())
    unseen = "" if failed.any() or inconclusive else _blind(stats, tol, valid)
    if unseen:
        message, inconclusive = unseen, True
    if second is not None:
        name = getattr(family, "reference_name", "the reference")
        inconclusive = second.inconclusive
        if inconclusive:  # the reference is in doubt: no diagnosis of the derivation
            worst_rel = float(np.nanmax(np.asarray(rel, float)[failed]))
            message = second.message(name, int(failed.sum()), run.trials, tol.rtol, worst_rel)
        else:
            notes.append(second.note(name))
    evidence = _evidence(d, family, run, batches) if failed.any() and not inconclusive else None
    if failed.any():
        notes.extend(low_precision_constants(d, judge_dtype))
    abs_valid, rel_valid = abs_all[valid], rel[valid]
    return Result(
        name=d.name,
        kind=d.kind,
        claim=d.claim_id,
        definiteness=d.definiteness,
        outcome="inconclusive" if inconclusive else "fails" if failed.any() else "holds",
        expect=d.expect,
        message=message,
        trials=run.trials,
        seed=config.seed,
        max_abs_err=_nanmax(abs_valid),
        max_rel_err=_nanmax(rel_valid),
        rtol=tol.rtol,
        atol=tol.atol,
        source=d.source,
        worst=worst,
        cells=tuple(cells),
        notes=tuple(notes),
        evidence=evidence,
        per_trial=_per_trial(stats, failed, rel, trial_sizes, trial_regimes),
        **extra,
    )


def _per_trial(stats, failed, rel, trial_sizes, trial_regimes) -> dict[str, np.ndarray]:
    """Every trial's labels, verdict and statistics, for plots (:attr:`Result.per_trial`)."""
    codes, keys = _cell_codes(trial_sizes, trial_regimes)  # one label per cell, not per trial
    size_names = np.array([sizes_label(k[0]) for k in keys] or [""])
    regime_names = np.array([k[1] for k in keys] or [""])
    labels = {"sizes": size_names[codes], "regime": regime_names[codes]}
    return {**stats, **labels, "failed": np.asarray(failed), "rel_err": np.asarray(rel)}


def _judge(family: Family, d: Derivation, batches: list[_Batch], tol: ResolvedTolerance):
    """The judge step: ``(stats, failed, badness, rel_err)`` of evaluated batches.

    Trials that fail the plain test get the family's rounding scales measured
    (``conditioning``: the cancelled terms ``T`` and the rounding allowance) and
    are judged again with them; the others keep zeros there.
    """
    stats = _concat(batches)
    failed, badness, rel = family.judge(stats, tol)
    if failed.any() and hasattr(family, "conditioning"):
        _measure_conditioning(family, d, batches, failed)
        stats = _concat(batches)
        failed, badness, rel = family.judge(stats, tol)
    return stats, failed, badness, rel


@dataclasses.dataclass(frozen=True)
class Verdicts:
    """What :func:`evaluate` found for each candidate trial."""

    stats: dict[str, np.ndarray]
    failed: np.ndarray  # judged failing, with both sides finite
    badness: np.ndarray
    rel_err: np.ndarray
    values: Any  # both sides of every candidate, as the family's trial returns them


def evaluate(
    d: Derivation, family: Family, args: tuple, extra: dict, tol: ResolvedTolerance, sizes: Sizes = ()
) -> Verdicts:
    """Judge given trials (a leading trial axis on ``args`` and ``extra``) exactly as a check does.

    The single judge step :func:`run_batched` uses (:func:`_judge`), on trials
    that were not drawn: shrinking (:mod:`derivcheck._shrink`) evaluates its
    candidates through it. ``sizes`` names the size set in error messages.
    """
    n = len(jax.tree.leaves((args, extra))[0])
    b = _Batch(sizes, Labels.repeat(["evaluate"], [n]), np.arange(n), args, extra)
    stats, values = b.call(family, d, "values")
    b.stats = {k: np.asarray(v) for k, v in stats.items()}
    stats, failed, badness, rel = _judge(family, d, [b], tol)
    finite = np.asarray(stats["finite_reference"], bool) & np.asarray(stats["finite_derived"], bool)
    return Verdicts(stats, np.asarray(failed, bool) & finite, np.asarray(badness), np.asarray(rel, float), values)


def _blind(stats: dict[str, np.ndarray], tol: ResolvedTolerance, valid: np.ndarray) -> str:
    """Why nothing was compared, when every usable trial is blind (:func:`derivcheck._compare.blind`); else ``""``."""
    if "abs_err" not in stats or "scale" not in stats or not valid.any():
        return ""
    abs_err, scale = np.asarray(stats["abs_err"])[valid], np.asarray(stats["scale"])[valid]
    if not blind(abs_err, scale, tol, {k: np.asarray(v)[valid] for k, v in stats.items()}).all():
        return ""
    differ = f"they differ by a rel. error up to {np.nanmax(plain_relative_error(abs_err, scale)):.2g}"
    if blind(abs_err, scale, tol).all():
        return (
            f"not decided: on every trial both sides are within atol={tol.atol:g} of 0 (largest entry "
            f"{scale.max():.2g}), where a derived side of 0 would pass too; {differ}: draw larger inputs, or set "
            f"atol= well below {scale.max():.2g}"
        )
    return (
        "not decided: on every trial rounding moves a side as far as its own size (its value is decided by "
        "rounding, not by the inputs: a repeated eigenvalue, terms that cancel), where a derived side of 0 would "
        f"pass too; {differ}: draw inputs away from such points"
    )


def _undecided(family: Family, stats: dict[str, np.ndarray]) -> np.ndarray:
    """The trials the family's evidence leaves undecided (:class:`Undecidable`); none for other families."""
    undecided = getattr(family, "undecided", None)
    if undecided is None:
        return np.zeros(np.shape(stats["finite_reference"]), bool)
    return np.asarray(cast(Undecidable, family).undecided(stats), bool)


def _concat(batches: list[_Batch]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([b.stats[k] for b in batches]) for k in batches[0].stats}


def _second_opinion(family, d, batches: list[_Batch], failed: np.ndarray, rel: np.ndarray, dtype: str, notes: list):
    """The second opinion on the reference (:mod:`derivcheck._checks.second_opinion`), or ``None``.

    Asked only of a family that has one, when every failing trial fails by little
    (:data:`~derivcheck._checks.second_opinion.DOUBT_BOUND`); its statistics join the batches'.
    Complex values get none, with a note (the opinion's real central differences and inner
    products are not JAX's complex conventions): the failure stands, as without a doubt.
    """
    if not failed.any() or not hasattr(family, "second_opinion"):
        return None
    if not np.all(np.asarray(rel)[failed] <= doubt_bound(dtype)):
        return None
    if any(np.iscomplexobj(a) for b in batches for a in jax.tree.leaves((b.args, b.extra, b.values))):
        notes.append("no second opinion on the reference: it is not made for complex values (the failure stands)")
        return None
    _measure_conditioning(family, d, batches, failed, what="second_opinion")
    for b in batches:  # per trial, for the diagnosis: independent differences agree with the reference
        b.stats["opinion_with_reference"] = sides(b.stats)[1]
    return cast(Opinion, opinion(_concat(batches), failed))


def _measure_conditioning(family, d, batches: list[_Batch], failed: np.ndarray, what: str = "conditioning") -> None:
    """Add the family's rounding scales (or another per-trial pass, ``what``) to every batch.

    Computed only for the trials that fail: 0 elsewhere.
    """
    start = 0
    measured: dict[int, dict[str, np.ndarray]] = {}
    for i, b in enumerate(batches):
        n = len(b.names)
        rows = np.flatnonzero(failed[start : start + n])
        if rows.size:  # only the failing rows, padded to a bucket (few distinct shapes, little work)
            got = b.call(family, d, what, rows=rows)
            measured[i] = {}
            for k, v in got.items():
                v = np.asarray(v)
                full = np.zeros((n, *v.shape[1:]), v.dtype)
                full[rows] = v
                measured[i][k] = full
        start += n
    fields = next(iter(measured.values())).keys()
    for i, b in enumerate(batches):
        for k in fields:
            b.stats[k] = measured[i][k] if i in measured else np.zeros(len(b.names))


def _skip_degenerate(family, stats, failed, trial_sizes, trial_regimes, notes) -> np.ndarray:
    """The usable trials: degenerate draws are skipped with a note, and no usable trial is an error.

    A trial is degenerate when its reference is not finite (inputs outside
    its domain, a singular matrix) or when the family says so (optional
    ``degenerate(stats, failed) -> {reason: mask}``: a kink of ``of``, a removable
    singularity of the derived formula). A derived side that is not finite
    where the trial is usable is an error that names where, or, when finite
    trials fail anyway, a note (the check fails on those).
    """
    reasons = {"non-finite reference": ~np.asarray(stats["finite_reference"], bool)}
    more = getattr(family, "degenerate", None)
    if more is not None:
        reasons.update({k: np.asarray(v, bool) for k, v in more(stats, failed).items()})
    skip = np.logical_or.reduce(list(reasons.values()))
    n = skip.size
    counts = "; ".join(_skipped(mask, why, trial_regimes) for why, mask in reasons.items() if mask.any())
    if reasons["non-finite reference"].all():
        raise CheckError("the reference is NaN or inf on every trial: check the inputs' domain")
    if skip.all():
        raise CheckError(f"no usable trial: all {n} are degenerate ({counts}); draw inputs away from such points")
    if skip.any():
        notes.append(f"{int(skip.sum())} of {n} degenerate trials skipped: {counts}")
    der_ok = np.asarray(stats["finite_derived"], bool)
    bad = ~skip & ~der_ok
    if bad.any():
        i = int(np.argmax(bad))
        what = (
            f"derived returns NaN or inf in {int(bad.sum())} of {n} trials where the reference is "
            f"finite (first at {where(trial_sizes[i], trial_regimes[i])})"
        )
        if not (np.asarray(failed, bool) & ~skip & der_ok).any():
            raise CheckError(f"{what}; make it numerically stable there or restrict its inputs")
        notes.append(f"{what}: not judged, the finite trials already fail")  # the verdict stands without them
    return ~skip & der_ok


def _skipped(mask: np.ndarray, why: str, trial_regimes) -> str:
    """``"3 with a kink of of= in regime constant"``."""
    regimes = sorted({trial_regimes[int(j)] for j in np.flatnonzero(mask)})
    return f"{int(mask.sum())} with {why} in regime{'s' if len(regimes) > 1 else ''} {', '.join(regimes)}"


def _cells(stats, failed, rel, trial_sizes, trial_regimes) -> list[Cell]:
    codes, keys = _cell_codes(trial_sizes, trial_regimes)
    abs_err = stats.get("abs_err")
    cells: list[Cell] = []
    for i, key in enumerate(keys):
        mask = codes == i
        cells.append(
            Cell(
                sizes=key[0],
                regime=key[1],
                trials=int(mask.sum()),
                failures=int(failed[mask].sum()),
                max_rel_err=_nanmax(rel[mask]),
                max_abs_err=_nanmax(abs_err[mask]) if abs_err is not None else float("nan"),
            )
        )
    return cells


def _cell_codes(trial_sizes, trial_regimes) -> tuple[np.ndarray, list[tuple[Sizes, str]]]:
    """Each trial's cell index, and the cells' ``(sizes, regime)`` in order of first appearance.

    Vectorized: trials are told apart by their :class:`Labels` codes (or, for plain lists, by the
    identity of their size set and regime objects; equal labels are merged afterwards), never by
    hashing per trial.
    """
    size_code, _ = _codes(trial_sizes)
    regime_code, n_regimes = _codes(trial_regimes)
    raw = size_code * n_regimes + regime_code
    uniq, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # cells in order of first appearance
    labels = [(trial_sizes[first[j]], trial_regimes[first[j]]) for j in order]
    cell_of = {label: i for i, label in enumerate(dict.fromkeys(labels))}  # equal labels share one cell
    rank = np.empty(len(uniq), np.int64)
    rank[order] = [cell_of[label] for label in labels]
    return rank[inverse.ravel()], list(cell_of)


def _codes(labels: Sequence[Any]) -> tuple[np.ndarray, int]:
    """A code per trial, and how many codes there can be."""
    if isinstance(labels, Labels):
        return labels.codes, max(len(labels.values), 1)
    ids, code = np.unique(np.fromiter(map(id, labels), np.int64, len(labels)), return_inverse=True)
    return code.astype(np.int64).ravel(), max(len(ids), 1)


def _nanmax(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.nanmax(x)) if x.size and not np.isnan(x).all() else float("nan")


def _worst_trial(family, d, batches: list[_Batch], flat_i: int, abs_err: float, rel_err: float) -> Trial:
    """The worst trial with its inputs and both sides (kept from the batch, or recomputed)."""
    for b in batches:
        if flat_i < len(b.names):
            break
        flat_i -= len(b.names)
    if b.values is None:  # too large to keep for every trial: recompute this one
        values = b.call(family, d, "values", rows=slice(flat_i, flat_i + 1))[1]
        pick = 0
    else:
        values, pick = b.values, flat_i
    derived, reference = (None if v is None else np.asarray(v)[pick] for v in values)
    names = d.arg_names or tuple(f"arg{i}" for i in range(len(b.args)))
    inputs = {n: np.asarray(a[flat_i]) for n, a in zip(names, b.args, strict=False)}
    inputs.update({k: np.asarray(v[flat_i]) for k, v in b.extra.items()})
    return Trial(
        sizes=b.sizes,
        regime=b.names[flat_i],
        index=int(b.index[flat_i]),
        inputs=inputs,
        derived=derived,
        reference=reference,
        abs_err=abs_err,
        rel_err=rel_err,
    )


# ------------------------------------------------------------------ evidence for the diagnosis


def _evidence(d: Derivation, family: Family, run: Run, batches: list[_Batch]) -> Evidence:
    """What a diagnosis of this failing run reads (:class:`~derivcheck._result.Evidence`).

    Never raises: evidence that cannot be gathered says why in ``problem``.
    """
    about = {
        "derivation": d,
        "analysis": getattr(family, "analysis", "conditions"),
        "tol": run.tol,
        "compile_options": fast_compile_options(),  # a few failing trials: compile time dominates
    }
    try:
        names = d.arg_names or tuple(f"arg{i}" for i in range(len(batches[0].args)))
        w = run.worst
        return Evidence(
            **about,
            size_sets=tuple(_size_set_evidence(d, family, run, b, sl, names) for b, sl in _slices(batches)),
            arg_names=names,
            worst_derived=None if w is None else _as_array(w.derived),
            worst_reference=None if w is None else _as_array(w.reference),
            worst_leaves=() if w is None else _leaves(family, d, w.inputs),
        )
    except Exception as exc:  # the verdict stands even when the evidence cannot be gathered
        return Evidence(**about, problem=f"{type(exc).__name__}: {exc}")


def _slices(batches: list[_Batch]):
    start = 0
    for b in batches:
        yield b, slice(start, start + len(b.names))
        start += len(b.names)


def _size_set_evidence(d, family, run: Run, b: _Batch, sl: slice, names: tuple[str, ...]) -> SizeSetEvidence:
    """One size set: every trial's verdict, inputs and statistics; some failing rows' values."""
    failed = np.asarray(run.failed[sl], bool)
    rows = _pick_rows(np.flatnonzero(failed))
    derived, reference = _values(b, family, d, rows)
    inputs = {nm: np.asarray(a) for nm, a in zip(names, b.args, strict=False)}
    inputs.update({k: np.asarray(v) for k, v in b.extra.items()})
    return SizeSetEvidence(
        sizes=b.sizes,
        regimes=np.asarray(b.names),
        failed=failed,
        valid=run.valid[sl],
        rel_err=np.asarray(run.rel_err[sl], float),
        inputs=inputs,
        stats={k: np.asarray(v)[sl] for k, v in run.stats.items()},
        rows=rows,
        derived=derived,
        reference=reference,
        leaves=_leaves(family, d, {k: v[0] for k, v in inputs.items()}) if rows.size else (),
    )


def _leaves(family: Family, d: Derivation, inputs: dict[str, Any]) -> Leaves:
    """The leaves of the family's pytree result on one trial's ``inputs`` (``()`` for one array, or no family rule).

    An aid to the diagnosis: leaves that cannot be told cost that aid (the value is read whole), not the evidence.
    """
    leaves = getattr(family, "leaves", None)
    try:
        return () if leaves is None else tuple(leaves(d, inputs))
    except Exception:
        return ()


def _pick_rows(failing: np.ndarray) -> np.ndarray:
    """At most :data:`MAX_ROWS` failing rows, spread evenly (rows are grouped by regime: each is read)."""
    if failing.size <= MAX_ROWS:
        return failing
    return failing[np.unique(np.linspace(0, failing.size - 1, MAX_ROWS).round().astype(int))]


def _values(b: _Batch, family: Family, d: Derivation, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Both sides of the picked rows: from the batch, or recomputed when it did not keep them.

    A family whose values are not two arrays (or an array and ``None``) gives
    no values: only the conditions of its failures can be diagnosed.
    """
    if not rows.size:
        return np.zeros((0, 0)), None
    try:
        if b.values is not None:
            got, ref = b.values
        else:
            got, ref = b.call(family, d, "values", rows=rows)[1]
            rows = np.arange(rows.size)
        got = numeric(got)[rows]
        ref = None if ref is None else numeric(ref)[rows]
    except (TypeError, ValueError, IndexError):
        return np.zeros((rows.size, 0)), None
    return got, ref


def numeric(x: Any) -> np.ndarray:
    """``x`` as a NumPy array of float64, or of complex128 when it holds complex values (kept, not cast)."""
    return np.asarray(x, dtype=np.complex128 if np.iscomplexobj(x) else np.float64)


def _as_array(x: Any) -> np.ndarray | None:
    try:
        return None if x is None else numeric(x)
    except (TypeError, ValueError):
        return None


def low_precision_constants(d: Derivation, dtype: str) -> list[str]:
    """Notes on float constants of lower precision than ``dtype`` that the derivation's functions use.

    A check runs with 64-bit types enabled, but a module is imported without them: ``K = jnp.sqrt(2 / jnp.pi)``
    at import is a float32 array, and a float64 formula using it is off by ~1e-7 relative — a failure
    that names no formula error. The derived function and ``of`` are read, with the functions of their
    module they call by name (three levels deep): globals and closure variables that are arrays of a
    lower real precision are named, with the fix. Nothing is called; a function without Python code
    (a builtin, a ``jax.jit`` object's wrapped function is unwrapped) contributes nothing.
    """
    limit = real_precision(dtype).itemsize
    notes = []
    for who, fn in (("the derived function", d.derived), ("of=", getattr(d.claim, "of", None))):
        found = _low_precision_names(fn, limit, depth=3, seen=set())
        if found:
            listed = ", ".join(f"{name} ({dt})" for name, dt in found)
            notes.append(
                f"{who} uses {listed}, made outside 64-bit mode (at import): it rounds at that precision in a "
                f"{dtype} check; make it with NumPy or a Python float, or inside the function"
            )
    return notes


def _low_precision_names(fn: Any, limit: int, depth: int, seen: set) -> list[tuple[str, str]]:
    """``(name, dtype)`` of the lower-precision float arrays ``fn`` reads by name (:func:`low_precision_constants`)."""
    fn = getattr(fn, "func", fn)  # functools.partial
    fn = getattr(fn, "__wrapped__", fn)  # jax.jit, functools.wraps
    code = getattr(fn, "__code__", None)
    if code is None or id(code) in seen or depth <= 0:
        return []
    seen.add(id(code))
    names = {n: (getattr(fn, "__globals__", {}) or {}).get(n) for n in code.co_names}
    cells = getattr(fn, "__closure__", None) or ()
    for n, cell in zip(code.co_freevars, cells, strict=False):
        try:
            names[n] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    found = []
    module = getattr(fn, "__module__", None)
    for n, value in names.items():
        if isinstance(value, jax.Array | np.ndarray | np.generic) and jnp.issubdtype(value.dtype, jnp.inexact):
            if real_precision(value.dtype).itemsize < limit:
                found.append((n, str(value.dtype)))
        elif callable(value) and getattr(value, "__module__", None) == module:
            found += _low_precision_names(value, limit, depth - 1, seen)
    return list(dict.fromkeys(found))
