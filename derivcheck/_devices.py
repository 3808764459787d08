"""Where the trials run: one device, or the trial axis sharded over several.

A batch of trials is embarrassingly parallel, so several devices split its
leading (trial) axis: the batch is padded to a multiple of the device count
(repeating its last trial, so padding never produces NaN), placed with a
:class:`jax.sharding.NamedSharding` over a 1-D mesh ``("trials",)``, and the
vmapped trial function runs under :func:`jax.shard_map` — every device
evaluates its own slice, with no communication. Outputs come back in trial
order and the padding is dropped.

The devices are chosen with :func:`use_devices` (the command line's
``--devices``): ``"all"`` (the default: every local device of the default
backend), a count ``N`` (the first ``N``), or ``1`` (no sharding at all).
On a CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (set
before JAX is imported) makes four host devices to test with.

Several hosts: start every process with :func:`jax.distributed.initialize`
(coordinator address, process count and id), then call :func:`use_devices`
with ``jax.devices()`` — the *global* devices. Each process draws the same
inputs (the draws depend only on the seed), so placing the whole batch with
the global sharding hands each process the shards its devices hold; the
statistics, which are small, are gathered back to every process
(``multihost_utils.process_allgather``). See ``benchmarks/README.md``.

Batch sizes are also *bucketed*: the trial count of a batch is padded up to
a power of two (at least :data:`MIN_BUCKET`; above :data:`POW2_ROWS`, a
multiple of :data:`LARGE_STEP`) when that costs little memory, so runs with
different trial counts reuse one compiled executable.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import numpy as np

AXIS = "trials"
MIN_BUCKET = 64
POW2_ROWS = 4096
LARGE_STEP = 1024
BUCKET_BUDGET_BYTES = 16 * 2**20
ENV = "DERIVCHECK_DEVICES"

_selected: Any = None


def resolve(spec: Any = None) -> tuple[Any, ...]:
    """The devices a spec names: ``"all"`` (every local device), an int ``N`` (the first ``N``), or a
    sequence of devices; ``None`` means the selection (:func:`set_devices`, else ``$DERIVCHECK_DEVICES``,
    else ``"all"``)."""
    if spec is None:
        spec = _selected if _selected is not None else (os.environ.get(ENV) or "all")
    if isinstance(spec, str):
        if spec.strip().lower() != "all":
            try:
                spec = int(spec)
            except ValueError:
                raise ValueError(f"devices: expected 'all' or a count, got {spec!r}") from None
        else:
            return tuple(jax.local_devices())
    if isinstance(spec, bool):  # an int to Python, but no count of devices (tuple(True) would fail less clearly)
        raise TypeError(f"devices: expected 'all', a count or a sequence of devices, got {spec!r}")
    if isinstance(spec, int):
        available = jax.local_devices()
        if not 1 <= spec <= len(available):
            raise ValueError(f"devices: asked for {spec}, but {len(available)} local device(s) are available")
        return tuple(available[:spec])
    devices = tuple(spec)
    if not devices:
        raise ValueError("devices: give at least one device")
    return devices


def set_devices(spec: Any) -> tuple[Any, ...]:
    """Select the devices every later check runs on (see :func:`resolve`; ``None``: the default)."""
    global _selected
    devices = resolve(spec)
    _selected = spec
    return devices


@contextlib.contextmanager
def use_devices(spec: Any) -> Iterator[tuple[Any, ...]]:
    """Run the checks inside the block on the devices ``spec`` names."""
    global _selected
    previous = _selected
    devices = set_devices(spec)
    try:
        yield devices
    finally:
        _selected = previous


def current() -> tuple[Any, ...]:
    """The selected devices (one element: no sharding)."""
    return resolve(None)


def selection() -> Any:
    """What :func:`set_devices` was last given (``None``: the default)."""
    return _selected


@functools.lru_cache(maxsize=64)
def _mesh(devices: tuple[Any, ...]) -> jax.sharding.Mesh:
    return jax.sharding.Mesh(np.array(devices), (AXIS,))


def batched(one: Callable, devices: tuple[Any, ...], compiler_options: dict | None = None) -> Callable:
    """``jax.jit(jax.vmap(one))``, with the trial axis sharded when there are several devices."""
    if len(devices) == 1:
        return jax.jit(jax.vmap(one), compiler_options=compiler_options)
    spec = jax.sharding.PartitionSpec(AXIS)
    mapped = jax.shard_map(jax.vmap(one), mesh=_mesh(devices), in_specs=spec, out_specs=spec, check_vma=False)
    return jax.jit(mapped, compiler_options=compiler_options)


def padded_rows(rows: int, row_bytes: int, n_devices: int) -> int:
    """The batch size to run ``rows`` trials at, always a multiple of ``n_devices``.

    Up to :data:`POW2_ROWS` rows: the next power of two (at least :data:`MIN_BUCKET`), when that
    padding stays under :data:`BUCKET_BUDGET_BYTES`; above, the next multiple of
    :data:`LARGE_STEP` (under 3 % of extra work, where doubling would cost up to 2×).
    """
    if rows <= POW2_ROWS:
        bucket = max(MIN_BUCKET, 1 << max(rows - 1, 0).bit_length())
    else:
        bucket = math.ceil(rows / LARGE_STEP) * LARGE_STEP
    target = bucket if bucket * row_bytes <= BUCKET_BUDGET_BYTES else rows
    return math.ceil(target / n_devices) * n_devices


def pad(tree: Any, rows: int, target: int) -> Any:
    """Every leaf's leading axis grown from ``rows`` to ``target`` by repeating its last row."""
    if target == rows:
        return tree

    def grow(a):
        a = np.asarray(a)
        return np.concatenate([a, np.repeat(a[-1:], target - rows, axis=0)])

    return jax.tree.map(grow, tree)


def place(tree: Any, devices: Sequence[Any]) -> Any:
    """Put a (padded) batch on ``devices``, its leading axis split evenly among them."""
    if len(devices) == 1:
        return tree
    sharding = jax.sharding.NamedSharding(_mesh(tuple(devices)), jax.sharding.PartitionSpec(AXIS))
    return jax.device_put(tree, sharding)


def unpad(tree: Any, rows: int) -> Any:
    """The first ``rows`` trials of every leaf, as host arrays (gathered from every process if need be)."""

    def fetch(a):
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            from jax.experimental import multihost_utils

            a = multihost_utils.process_allgather(a, tiled=True)
        return np.asarray(a)[:rows]

    return jax.tree.map(fetch, tree)


def describe(devices: Sequence[Any]) -> str:
    """``"1 cpu device"``, ``"4 gpu devices"``…"""
    kinds = sorted({d.platform for d in devices})
    return f"{len(devices)} {'/'.join(kinds)} device{'s' if len(devices) != 1 else ''}"
