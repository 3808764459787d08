"""Expectation claims, checked by a batched Monte Carlo estimate and a z-test.

==================  ==================================================================
claim               the Monte Carlo sample ``s(ξ)`` and what its mean must equal
==================  ==================================================================
expectation         ``of(*args, ξ)``; ``derived(*args)`` (and ``exact(*args)``)
expected gradient   ``∇_wrt of(*args, ξ)`` — autodiff inside the expectation —
                    against ``derived(*args)``; with ``exact``: ``of(*args, ξ)``
                    against ``exact(*args)``, and ``derived == ∇_wrt exact`` exactly
equivalent          ``(of, ∇_wrt of)(*args, ξ)`` against ``(B, ∇_wrt B)(*args)``,
objective           ``B = derived`` (only the gradients ``up_to_constant``)
==================  ==================================================================

with ``ξ = noise(key, *args)``. Each trial draws the arguments, then ``N``
noise samples (vmapped, in chunks of 256 inside a ``lax.while_loop``), and
forms the sample mean ``m`` and standard error ``se`` of every component. A claimed value
``t`` is tested component by component with

.. math::

    z_k = \\frac{t_k - m_k}{\\sqrt{se_k^2 + (\\tau / z^*)^2}}, \\qquad
    z^* = \\Phi^{-1}\\Big(1 - \\frac{\\alpha}{2 T K}\\Big),

where ``T`` is the number of trials, ``K`` the number of components tested per
trial and ``τ = atol + rtol · scale`` the dtype's tolerance (so that a
component the noise does not touch, ``se = 0``, is compared exactly). By the
union bound a correct claim fails a check with probability at most ``α``
(``false_alarm``, default ``1e-3``), to the accuracy of the normal
approximation of a mean of ``N ≥ 1024`` samples (the tests measure the
false-alarm rate at a larger ``α``).

Power. A pilot of ``min_samples`` samples estimates each component's
standard deviation ``σ_k`` and the scale ``s = max(‖t‖∞, ‖m‖∞)``. The trial
then takes

.. math::

    N = 1.2 \\Big(\\frac{(z^* + z_{1-\\beta}) \\max_k σ_k}{\\varepsilon s}\\Big)^2

samples (clipped to ``[min_samples, max_samples]``), so that a deviation
``|t_k − E s_k| ≥ ε s`` in any one component (``ε = effect``, default 10 %)
is caught in that trial with probability at least ``1 − β`` (``power``,
default 0.9). Where the cap binds, the result reports the deviation that is
still resolved (``resolution``) instead of claiming the stated power.

Cost. The sampler — ``of`` and ``noise`` (with ``∇_wrt of``) — does not
depend on the claimed values, so it is compiled once per ``(of, noise, wrt)``
and shapes and shared by every claim about the same expectation; the trials
run one after another (``lax.map``), each with its own sample count. A check
uses at most ``draws`` draws of the arguments (default 30, spread over the
size sets and regimes); each is a full Monte Carlo test.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from statistics import NormalDist
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from derivcheck._checks._engine import (
    COMPILED_KEPT,
    CheckConfig,
    CheckError,
    Run,
    _cells,
    fast_compile_options,
    jit_hint,
    one_line,
    where,
)
from derivcheck._checks._kind import Kind
from derivcheck._checks.identity import eval_shape_or_raise, failing_regimes_text, fname, require_float_array
from derivcheck._compare import ResolvedTolerance, bound, merge_tolerance, rounding_allowance
from derivcheck._derivation import Derivation, EquivalentObjective, Expectation, ExpectedGradient
from derivcheck._inputs import Sizes, sizes_label, stable_hash
from derivcheck._result import Result, Trial

NOISE_KEY = "noise_key"
CHUNK = 256
SAFETY = 1.2


def _flat(x) -> jax.Array:
    return jnp.ravel(jnp.asarray(x)).astype(jnp.float64)


def _partial(fn, args, i):
    return lambda x, *rest: fn(*args[:i], x, *args[i + 1 :], *rest)


def _gradient_index(d: Derivation) -> int | None:
    """The differentiated argument, or ``None`` for a plain expectation."""
    return None if d.claim.estimates == "value" else d.wrt_index


# ------------------------------------------------------------- the claim's sides


def sample(of, noise, wrt: int | None, args: tuple, key) -> jax.Array:
    """One Monte Carlo sample, flattened: ``of(*args, ξ)``, or ``(of, ∇_wrt of)(*args, ξ)``."""
    xi = noise(key, *args)
    if wrt is None:
        return _flat(of(*args, xi))
    value, grad = jax.value_and_grad(_partial(of, args, wrt))(args[wrt], xi)
    return jnp.concatenate([_flat(value), _flat(grad)])


def targets(d: Derivation, args: tuple) -> tuple[jax.Array, np.ndarray, int]:
    """``(t, index, n_derived)``: the claimed values, the sample component each is tested
    against, and how many of them are ``derived``'s (the rest: the closed form's)."""
    claim = d.claim
    got = _flat(d.derived(*args))
    n = got.size
    if claim.estimates == "value":
        if claim.exact is None:
            return got, np.arange(n), n
        return jnp.concatenate([got, _flat(claim.exact(*args))]), np.tile(np.arange(n), 2), n
    if claim.estimates == "gradient":
        if claim.exact is None:
            return got, 1 + np.arange(n), n
        return jnp.concatenate([got, _flat(claim.exact(*args))]), np.append(1 + np.arange(n), 0), n
    i = d.wrt_index
    value, grad = jax.value_and_grad(_partial(d.derived, args, i))(args[i])
    if claim.up_to_constant:
        return _flat(grad), 1 + np.arange(grad.size), grad.size
    t = jnp.concatenate([_flat(value), _flat(grad)])
    return t, np.arange(t.size), t.size


def exact_reference(d: Derivation, args: tuple):
    """The closed form's side of ``derived``: ``exact`` or ``∇_wrt exact``."""
    claim = d.claim
    if claim.estimates == "value":
        return claim.exact(*args)
    i = d.wrt_index
    return jax.grad(_partial(claim.exact, args, i))(args[i])


def reference_name(d: Derivation) -> str:
    claim = d.claim
    of = fname(claim.of)
    if claim.estimates == "value":
        return f"E[{of}]"
    if claim.estimates == "gradient":
        return f"E[∇{of}]"
    return f"E[∇{of}]" if claim.up_to_constant else f"(E[{of}], E[∇{of}])"


# ------------------------------------------------------------------- validation


def validate(d: Derivation, args: tuple) -> None:
    """Abstract-evaluate every function of the claim on one trial's shapes; one-line errors."""
    claim = d.claim
    key = jax.ShapeDtypeStruct((2,), jnp.uint32)
    eval_shape_or_raise(f"noise= {fname(claim.noise)}", claim.noise, key, *args)
    got = eval_shape_or_raise("derived function", d.derived, *args)
    require_float_array("derived function", got)
    of_out = eval_shape_or_raise(f"of= {fname(claim.of)}", lambda k, *a: claim.of(*a, claim.noise(k, *a)), key, *args)
    require_float_array(f"of= {fname(claim.of)}", of_out)
    wrt = _gradient_index(d)
    if wrt is not None:
        if of_out.shape != ():
            raise CheckError(f"of= {fname(claim.of)} returns shape {of_out.shape}; it must be a scalar loss")
        if not jnp.issubdtype(args[wrt].dtype, jnp.floating):
            raise CheckError(f"argument {d.arg_names[wrt]} must be floats to differentiate")
    objective = claim.estimates == "objective"
    if wrt is None:  # a plain expectation (estimates == "value"): derived is like of's output
        want = of_out.shape
    else:
        want = () if objective else args[wrt].shape
    if got.shape != want:
        what = "the derived objective" if objective else "derived function"
        raise CheckError(f"{what} returns shape {got.shape}, expected {want} ({reference_name(d)})")
    exact = getattr(claim, "exact", None)
    if exact is not None:
        ex = eval_shape_or_raise(f"exact= {fname(exact)}", exact, *args)
        require_float_array(f"exact= {fname(exact)}", ex)
        if ex.shape != of_out.shape:
            raise CheckError(f"exact= {fname(exact)} returns shape {ex.shape}, expected {of_out.shape}")
    eval_shape_or_raise("the claimed values", lambda a: targets(d, a)[0], args)


# ------------------------------------------------------------------ the estimate


def _moments(s1, s2, n):
    """Mean and unbiased variance from the sums of ``s`` and ``s²`` over ``n`` samples."""
    mean = s1 / n
    var = jnp.maximum(s2 - n * mean * mean, 0.0) / (n - 1)
    return mean, var


@functools.lru_cache(maxsize=64)
def _sampler(of, noise, wrt: int | None):
    """``jit(lax.map(trial ↦ (mean, variance, n)))`` for one ``(of, noise, wrt)``: shared by claims.

    Per trial: the pilot's ``pilot`` chunks, then as many chunks as the stated
    power needs (at most ``cap``). ``t`` (one row per trial), ``index`` and
    ``mask`` are the claimed values padded to a fixed width, so that claims of
    different widths share the compiled function; the scalars come in as arrays.
    """

    def one(args, key, t, index, mask, z_sum, effect, pilot, cap):
        def draw(c):
            keys = jax.random.split(jax.random.fold_in(key, c), CHUNK)
            return jax.vmap(lambda k: sample(of, noise, wrt, args, k))(keys)

        def chunks_for_power(s1, s2, c):
            mean, var = _moments(s1, s2, c * CHUNK)
            scale = jnp.maximum(
                jnp.max(jnp.where(mask, jnp.abs(t), 0.0)), jnp.max(jnp.where(mask, jnp.abs(mean[index]), 0.0))
            )
            sd = jnp.sqrt(jnp.max(jnp.where(mask, var[index], 0.0)))
            wanted = SAFETY * (z_sum * sd / (effect * jnp.where(scale > 0, scale, 1.0))) ** 2
            return jnp.clip(jnp.ceil(jnp.where(scale > 0, wanted, 0.0) / CHUNK), pilot, cap).astype(jnp.int32)

        def body(carry):
            c, stop, s1, s2 = carry
            xs = draw(c)
            s1, s2, c = s1 + xs.sum(0), s2 + (xs * xs).sum(0), c + 1
            return c, jnp.where(c == pilot, chunks_for_power(s1, s2, c), stop), s1, s2

        width = jax.eval_shape(lambda k: sample(of, noise, wrt, args, k), key).shape
        zeros = jnp.zeros(width, jnp.float64)
        c, _, s1, s2 = jax.lax.while_loop(lambda cr: cr[0] < cr[1], body, (jnp.int32(0), pilot, zeros, zeros))
        n = (c * CHUNK).astype(jnp.float64)
        mean, var = _moments(s1, s2, n)
        return mean, var, n

    return jax.jit(lambda args, keys, t, *rest: jax.lax.map(lambda akt: one(*akt, *rest), (args, keys, t)))


@functools.lru_cache(maxsize=COMPILED_KEPT)
def _claimed(d: Derivation):
    """``jit(vmap(trial ↦ (t, derived finite, exact error, exact scale)))``: the cheap, claim-specific part."""

    def one(args):
        t, _, _ = targets(d, args)
        out = {"t": t}
        if getattr(d.claim, "exact", None) is not None:
            ref, got = jnp.asarray(exact_reference(d, args)), jnp.asarray(d.derived(*args))
            out["exact_err"] = jnp.max(jnp.abs(got - ref), initial=0.0).astype(jnp.float64)
            out["exact_scale"] = jnp.maximum(jnp.max(jnp.abs(got), initial=0.0), jnp.max(jnp.abs(ref), initial=0.0))
        return out

    return jax.jit(jax.vmap(one), compiler_options=fast_compile_options())  # a few cheap trials


@functools.lru_cache(maxsize=COMPILED_KEPT)
def _exact_rounding(d: Derivation):
    """The measured rounding of the closed-form comparison (:func:`derivcheck._compare.rounding_allowance`)."""

    def one(args):
        return rounding_allowance(d.derived, lambda *a: exact_reference(d, a), *args)

    return jax.jit(jax.vmap(one), compiler_options=fast_compile_options())  # a few cheap trials


def _allowance(scale, tol: ResolvedTolerance):
    """``atol + rtol · scale`` of the check's tolerance: below it, a difference is rounding, not a wrong claim."""
    return bound(tol, scale)


# ------------------------------------------------------------------ the runner


@dataclasses.dataclass
class _SizeSet:
    """One size set's draws (every regime) and what was computed on them."""

    sizes: Sizes
    regimes: list[str]
    index: np.ndarray
    args: tuple
    keys: np.ndarray
    stats: dict[str, np.ndarray]
    derived_shape: tuple


def _draw(d: Derivation, config: CheckConfig, sizes: Sizes, per: int):
    """Every regime's ``per`` draws of the arguments and one noise key per trial (both replayable)."""
    regimes = list(d.inputs.regimes)
    try:
        parts = [d.inputs.sample(config.seed, d.name, per, sizes, r, d.arg_names) for r in regimes]
    except Exception as exc:
        raise CheckError(f"inputs could not be drawn at {sizes_label(sizes)}: {one_line(exc)}") from exc
    args = tuple(np.concatenate(cols) for cols in zip(*parts, strict=True))
    keys = np.concatenate(
        [
            np.random.default_rng(
                [config.seed, stable_hash(d.name), stable_hash(f"{sizes_label(sizes)}|{r}"), stable_hash(NOISE_KEY)]
            ).integers(0, 2**32, (per, 2), dtype=np.uint32)
            for r in regimes
        ]
    )
    return args, keys, [r for r in regimes for _ in range(per)], np.tile(np.arange(per), len(regimes))


def _run_size_set(d: Derivation, config: CheckConfig, sizes: Sizes, per: int, tests: int) -> _SizeSet:
    args, keys, regimes, index = _draw(d, config, sizes, per)
    abstract = tuple(jax.ShapeDtypeStruct(a.shape[1:], a.dtype) for a in args)
    validate(d, abstract)
    if sizes == d.inputs.sizes[0]:  # once per check: the first size set's first trial
        _refuse_keyless_noise(d, tuple(a[0] for a in args))
    t_shape, idx, n_derived = jax.eval_shape(lambda *a: targets(d, a)[0], *abstract), *targets_layout(d, abstract)
    mc, k = d.claim.mc, t_shape.size
    z_crit = NormalDist().inv_cdf(1 - mc.false_alarm / (2 * tests * k))
    z_pow = NormalDist().inv_cdf(mc.power)
    try:
        claimed = {name: np.asarray(v) for name, v in _claimed(d)(args).items()}
        key = jax.ShapeDtypeStruct((2,), jnp.uint32)
        width = (
            2
            * jax.eval_shape(
                lambda a, k: sample(d.claim.of, d.claim.noise, _gradient_index(d), a, k), abstract, key
            ).size
        )
        t_pad = np.zeros((len(regimes), width))
        t_pad[:, :k] = claimed["t"]
        idx_pad, mask = np.zeros(width, np.int32), np.zeros(width, bool)
        idx_pad[:k], mask[:k] = idx, True
        pilot = max(1, math.ceil(mc.min_samples / CHUNK))
        cap = max(pilot, mc.max_samples // CHUNK)
        mean, var, n = (
            np.asarray(x)
            for x in _sampler(d.claim.of, d.claim.noise, _gradient_index(d))(
                args, keys, t_pad, idx_pad, mask, z_crit + z_pow, mc.effect, np.int32(pilot), np.int32(cap)
            )
        )
    except CheckError:
        raise
    except Exception as exc:
        raise CheckError(f"failed under jax.jit at {sizes_label(sizes)}: {one_line(exc)}{jit_hint(exc)}") from exc
    tol = merge_tolerance("float64", d.tolerance)  # the check's tolerance, as for the closed form
    stats = _trial_stats(claimed, mean, var, n, idx, n_derived, z_crit, z_pow, tol)
    got = jax.eval_shape(d.derived, *abstract)
    return _SizeSet(sizes, regimes, index, args, keys, stats, tuple(got.shape))


def _refuse_keyless_noise(d: Derivation, args: tuple) -> None:
    """A one-line error when ``noise=`` gives one non-zero draw for two keys (on one trial's arguments).

    NumPy's or Python's random numbers in ``noise`` run once, while JAX traces it, and every sample then
    sees the same constant: the estimate has no spread (``± 0``) and a right formula failed.
    """
    draw = jax.jit(lambda k: d.claim.noise(k, *args))
    try:
        one, two = (jax.tree.leaves(draw(jnp.asarray(k, jnp.uint32))) for k in ([0, 1], [0, 2]))
    except Exception:  # validate() names what is wrong with noise=
        return
    same = all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(one, two, strict=True))
    if same and any(np.any(np.asarray(x) != 0) for x in one):
        raise CheckError(
            f"noise= {fname(d.claim.noise)} gives the same draw for two different keys: draw it from its key with "
            "jax.random (NumPy's or Python's random run once, when JAX traces it, and make every sample alike)"
        )


def targets_layout(d: Derivation, abstract: tuple) -> tuple[np.ndarray, int]:
    """``(index, n_derived)`` of :func:`targets` (static: they depend on shapes only)."""
    box = {}

    def capture(*a):
        t, index, n = targets(d, a)
        box.update(index=index, n=n)
        return t

    jax.eval_shape(capture, *abstract)
    return box["index"], box["n"]


def _trial_stats(claimed, mean, var, n, idx, n_derived, z_crit, z_pow, tol: ResolvedTolerance) -> dict[str, np.ndarray]:
    """Per trial: z-scores, sample count, resolution, the deviation of the derived part, flags."""
    t = claimed["t"]
    estimate, se = mean[:, idx], np.sqrt(var[:, idx] / n[:, None])
    scale = np.maximum(np.abs(t).max(axis=1, initial=0.0), np.abs(estimate).max(axis=1, initial=0.0))
    z = (t - estimate) / np.sqrt(se**2 + (_allowance(scale, tol)[:, None] / z_crit) ** 2)
    safe = np.where(scale > 0, scale, 1.0)
    stats = {
        "z_max": np.abs(z).max(axis=1, initial=0.0),
        "z_crit": np.full(len(t), z_crit),
        "samples": n,
        "resolution": np.where(scale > 0, (z_crit + z_pow) * se.max(axis=1, initial=0.0) / safe, 0.0),
        "abs_err": np.abs(t[:, :n_derived] - estimate[:, :n_derived]).max(axis=1, initial=0.0),
        "scale": scale,
        "n_derived": np.full(len(t), n_derived),
        "claimed": t,
        "estimate": estimate,
        "standard_error": se,
        "z": z,
        "finite_derived": np.isfinite(t).all(axis=1),
        "finite_reference": np.isfinite(estimate).all(axis=1) & np.isfinite(se).all(axis=1),
    }
    for key in ("exact_err", "exact_scale"):
        if key in claimed:
            stats[key] = claimed[key]
    return stats


def _pad_columns(sets: list[_SizeSet]) -> None:
    """Pad the per-component statistics to the widest size set (NaN), so they concatenate."""
    width = max(s.stats["z"].shape[1] for s in sets)
    for s in sets:
        for key in ("claimed", "estimate", "standard_error", "z"):
            a = s.stats[key]
            s.stats[key] = np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=np.nan)


def _judge(d: Derivation, sets: list[_SizeSet], stats: dict, tol) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(failed, badness, rel_err)``: ``|z| > z*``, or the closed form differs beyond tolerance and rounding."""
    ratio = stats["z_max"] / stats["z_crit"]
    failed = ratio > 1
    rel = stats["abs_err"] / np.where(stats["scale"] > 0, stats["scale"], 1.0)
    if "exact_err" in stats:
        plain = stats["exact_err"] > bound(tol, stats["exact_scale"])
        rounding = np.zeros(len(failed))
        if plain.any():  # measure the rounding allowance only where it matters
            rounding = np.concatenate([np.asarray(_exact_rounding(d)(s.args)) for s in sets])
        stats["exact_rounding"] = rounding
        limit = bound(tol, stats["exact_scale"], rounding)
        failed = failed | (stats["exact_err"] > limit)
        ratio = np.maximum(ratio, stats["exact_err"] / limit)
    return failed, ratio, rel


def _worst_trial(d: Derivation, sets: list[_SizeSet], flat_i: int, rel: float) -> Trial:
    for s in sets:
        if flat_i < len(s.regimes):
            break
        flat_i -= len(s.regimes)
    k = int(s.stats["n_derived"][flat_i])
    claimed, estimate = s.stats["claimed"][flat_i][:k], s.stats["estimate"][flat_i][:k]
    shape = s.derived_shape if math.prod(s.derived_shape) == k else (k,)
    inputs = {n: np.asarray(a[flat_i]) for n, a in zip(d.arg_names, s.args, strict=False)}
    inputs[NOISE_KEY] = s.keys[flat_i]
    return Trial(
        sizes=s.sizes,
        regime=s.regimes[flat_i],
        index=int(s.index[flat_i]),
        inputs=inputs,
        derived=claimed.reshape(shape),
        reference=estimate.reshape(shape),
        abs_err=float(s.stats["abs_err"][flat_i]),
        rel_err=rel,
    )


def check_expectation(d: Derivation, config: CheckConfig) -> Result:
    """Monte Carlo (and, with ``exact``, closed-form) check of an expectation-type claim."""
    mc = d.claim.mc
    cells = len(d.inputs.sizes) * len(d.inputs.regimes)
    draws = min(config.trials, max(mc.draws, cells))
    per = math.ceil(draws / cells)
    sets = [_run_size_set(d, config, sizes, per, per * cells) for sizes in d.inputs.sizes]
    _pad_columns(sets)
    stats = {k: np.concatenate([s.stats[k] for s in sets]) for k in sets[0].stats}
    tol = merge_tolerance("float64", d.tolerance)
    trial_sizes = [s.sizes for s in sets for _ in s.regimes]
    trial_regimes = [r for s in sets for r in s.regimes]
    valid = stats["finite_reference"]
    if not valid.any():
        raise CheckError("the Monte Carlo estimate is NaN or inf on every draw: check of= and noise=")
    bad = valid & ~stats["finite_derived"]
    if bad.any():
        i = int(np.argmax(bad))
        raise CheckError(f"derived returns NaN or inf at {where(trial_sizes[i], trial_regimes[i])}")
    failed, badness, rel = _judge(d, sets, stats, tol)
    failed, badness = failed & valid, np.where(valid, badness, -np.inf)
    cells_ = _cells({**stats, "abs_err": stats["abs_err"]}, failed, rel, trial_sizes, trial_regimes)
    worst_i = int(np.argmax(badness))
    worst = _worst_trial(d, sets, worst_i, float(rel[worst_i]))
    run = Run(d, tol, stats, failed, badness, rel, trial_sizes, trial_regimes, cells_, worst)
    message, details = summarize(d, run)
    notes = ()
    if draws < config.trials:
        notes = (f"Monte Carlo: {run.trials} draws of the arguments (of {config.trials} requested), each a full test",)
    return Result(
        name=d.name,
        kind=d.kind,
        claim=d.claim_id,
        outcome="fails" if failed.any() else "holds",
        expect=d.expect,
        message=message,
        trials=run.trials,
        seed=config.seed,
        max_abs_err=float(stats["abs_err"][valid].max()),
        max_rel_err=float(rel[valid].max()),
        rtol=tol.rtol,
        atol=tol.atol,
        source=d.source,
        worst=worst,
        cells=tuple(cells_),
        notes=notes,
        details=details,
        per_trial={
            **stats,
            "sizes": np.array([sizes_label(z) for z in trial_sizes]),
            "regime": np.array(trial_regimes),
            "failed": failed,
            "rel_err": rel,
        },
    )


# ------------------------------------------------------------------- reporting


def summarize(d: Derivation, run: Run) -> tuple[str, dict]:
    """The message and the details (estimate, standard error, z-scores of the worst draw)."""
    s, mc = run.stats, d.claim.mc
    valid = s["finite_reference"]
    crit = float(s["z_crit"][valid].max())
    n_lo, n_hi = int(s["samples"][valid].min()), int(s["samples"][valid].max())
    res = s["resolution"][valid]
    details = {
        "false_alarm": mc.false_alarm,
        "power": mc.power,
        "effect": mc.effect,
        "z_max": float(s["z_max"][valid].max()),
        "z_crit": crit,
        "samples": [n_lo, n_hi],
        "resolution": float(res.max()),
        "worst": _worst_detail(s, int(np.argmax(run.badness))),
    }
    if "exact_err" in s:
        rel = s["exact_err"][valid] / np.maximum(s["exact_scale"][valid], np.finfo(np.float64).tiny)
        details["exact_max_rel_err"] = float(rel.max())
    if run.failed.any():
        return _failure_message(d, run, details), details
    unresolved = int((res > mc.effect).sum())
    capped = int((s["samples"][valid] >= mc.max_samples).sum())
    power = f"a deviation of {mc.effect:.0%} of the scale is caught with power ≥ {mc.power:g}"
    if unresolved:
        cap = f"; {capped} at the {mc.max_samples}-sample cap" if capped else ""
        power += f" in {run.trials - unresolved} of {run.trials} draws (the others: {res.max():.0%}{cap})"
    exact = ""
    if "exact_max_rel_err" in details:
        exact = f"; equals the closed form exactly (max rel. error {details['exact_max_rel_err']:.1e})"
    samples = f"{n_lo}" if n_lo == n_hi else f"{n_lo}–{n_hi}"
    return (
        f"agrees with the Monte Carlo {reference_name(d)} on {run.trials} draws: max |z| "
        f"{details['z_max']:.2f} ≤ {crit:.2f} (false-alarm rate ≤ {mc.false_alarm:g}); "
        f"{samples} noise samples per draw: {power}{exact}"
    ), details


def _worst_detail(stats: dict, i: int) -> dict:
    """The worst trial's tested components: claimed value, estimate, standard error, z-score."""
    k = int(np.sum(np.isfinite(stats["claimed"][i])))
    detail: dict[str, Any] = {
        key: [float(v) for v in stats[key][i][:k]] for key in ("claimed", "estimate", "standard_error", "z")
    }
    detail.update(samples=int(stats["samples"][i]), n_derived=int(stats["n_derived"][i]))
    if "exact_err" in stats:
        scale = max(float(stats["exact_scale"][i]), float(np.finfo(np.float64).tiny))
        detail["exact_rel_err"] = float(stats["exact_err"][i]) / scale
    return detail


def _failure_message(d: Derivation, run: Run, details: dict) -> str:
    w, detail, crit = run.worst, details["worst"], details["z_crit"]
    at = where(w.sizes, w.regime)
    head = f"in {int(run.failed.sum())} of {run.trials} draws ({failing_regimes_text(run)})"
    z = np.asarray(detail["z"])
    if np.max(np.abs(z)) <= crit and "exact_rel_err" in detail:
        return (
            f"differs from the closed form {head}: rel. error {detail['exact_rel_err']:.2g} at {at} "
            "(the Monte Carlo test passes there: the difference is below its resolution)"
        )
    j = int(np.argmax(np.abs(z)))
    what = "claimed" if j < detail["n_derived"] else "closed form"
    return (
        f"differs from the Monte Carlo {reference_name(d)} {head}: z = {z[j]:.1f} (|z| > {crit:.2f}) at {at}, "
        f"component {j}: {what} {detail['claimed'][j]:.6g}, estimate {detail['estimate'][j]:.6g} "
        f"± {detail['standard_error'][j]:.2g} ({detail['samples']} samples)"
    )


# ----------------------------------------------------------------------- Kind rows

KINDS = (  # judged by Monte Carlo statistics: not shrunk
    Kind(Expectation, check_expectation, reference="a Monte Carlo estimate"),
    Kind(ExpectedGradient, check_expectation, reference="a Monte Carlo estimate"),
    Kind(EquivalentObjective, check_expectation, reference="a Monte Carlo estimate"),
)
