"""Matplotlib figures for exploring results and failures (the ``plot`` extra).

Every helper returns a :class:`matplotlib.figure.Figure` and never shows it:
a notebook displays the returned figure once, as the cell's value; a script
calls ``fig.savefig(...)``. Figures are made with pyplot and closed at once,
so they do not pile up in pyplot's list of open figures (nor display twice
in Jupyter). matplotlib is imported inside the functions, so importing this
module costs nothing and needs no display.

=========================  ==================================================
helper                     shows
=========================  ==================================================
:func:`error_heatmap`      derived, reference and their difference, entry-wise
:func:`spectrum`           eigenvalue extremes across trials, zero line, margin
:func:`error_distribution` relative error of every trial, per regime
:func:`running_estimate`   a Monte Carlo mean converging, with its confidence band
:func:`convergence`        ``log |e_k|`` against ``k``, with the fitted order
:func:`figure_for`         whichever of these fits a result's claim
=========================  ==================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from derivcheck._result import Result

DIVERGING = "RdBu_r"
FAIL_COLOUR = "#cf222e"
SIZE_COLOURS = ("#0969da", "#8250df", "#bf8700", "#1a7f37", "#57606a")
ANNOTATE_MAX = 6  # write the numbers in heat-map cells when both sides are at most this


def _figure(ncols: int = 1, *, width: float = 5.0, height: float = 4.0, **kwargs: Any):
    """A new pyplot figure with ``ncols`` axes, already closed (see the module docstring)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False, **kwargs)
    plt.close(fig)
    return fig, list(axes[0])


# ---------------------------------------------------------------- error heat map


def as_matrix(x: Any) -> tuple[np.ndarray, tuple[int, int]]:
    """``x`` as a 2-D matrix, and the row/column block sizes its shape implies.

    A vector is one row; an array of shape ``rows + cols`` (a Jacobian or a
    Hessian with respect to a matrix, ``(C, d, C, d)``) is reshaped to
    ``(prod rows, prod cols)`` with ``len(rows) = ndim // 2``, and blocks of
    ``prod(rows[1:]) × prod(cols[1:])`` entries.

    >>> m, blocks = as_matrix(np.zeros((2, 3, 2, 3)))
    >>> m.shape, blocks
    ((6, 6), (3, 3))
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim <= 1:
        return a.reshape(1, -1), (1, max(a.size, 1))
    k = a.ndim // 2
    rows, cols = a.shape[:k], a.shape[k:]
    return a.reshape(math.prod(rows), math.prod(cols)), (math.prod(rows[1:]), math.prod(cols[1:]))


def _symmetric_limit(*arrays: np.ndarray) -> float:
    finite = [np.abs(a[np.isfinite(a)]) for a in arrays if a is not None and np.isfinite(a).any()]
    top = max((float(f.max()) for f in finite), default=0.0)
    return top if top > 0 else 1.0


def _draw_matrix(fig, ax, m: np.ndarray, blocks: tuple[int, int], limit: float, title: str) -> None:
    image = ax.imshow(m, cmap=DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest", aspect="auto")
    fig.colorbar(image, ax=ax, shrink=0.85, format="%.2g")
    ax.set_title(title, fontsize=10)
    rb, cb = blocks
    for r in range(rb, m.shape[0], rb) if 1 < rb < m.shape[0] else ():
        ax.axhline(r - 0.5, color="black", lw=1.2)
    for c in range(cb, m.shape[1], cb) if 1 < cb < m.shape[1] else ():
        ax.axvline(c - 0.5, color="black", lw=1.2)
    ax.set_xlabel("column")
    ax.set_ylabel("row" if m.shape[0] > 1 else "")
    for axis, count in ((ax.xaxis, m.shape[1]), (ax.yaxis, m.shape[0])):
        if count <= 12:
            axis.set_ticks(range(count))
        else:
            axis.get_major_locator().set_params(integer=True)
    if m.shape[0] == 1:
        ax.set_yticks([])
    if max(m.shape) <= ANNOTATE_MAX:
        for (i, j), v in np.ndenumerate(m):
            colour = "white" if abs(v) > 0.6 * limit else "black"
            ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=7, color=colour)


def _where(values: Any) -> str:
    """``d=3 m=5 [typical], trial 7`` (or ``counterexample``) for a trial-like record."""
    sizes = " ".join(f"{k}={v}" for k, v in values.sizes)
    index = getattr(values, "index", None)
    return f"{sizes} [{values.regime}]" + (f", trial {index}" if index is not None else ", counterexample")


def error_heatmap(
    result: Any, reference: Any = None, *, blocks: tuple[int, int] | None = None, title: str | None = None
):
    """Entry-wise derived (actual), reference (expected) and derived − reference of one input.

    ``result`` is a :class:`Result` (its worst trial is drawn), a
    :class:`Trial`, a counterexample (:class:`derivcheck._shrink.Counterexample`:
    anything with ``derived``, ``reference``, ``sizes`` and ``regime``), or a
    derived array, with the ``reference`` array next to it (values of your
    own, at inputs of your choosing). Block boundaries are drawn where the
    array's shape implies blocks (see :func:`as_matrix`) or at
    ``blocks=(rows, cols)``. Derived and reference share one colour scale; the
    difference has its own, so a rounding-level difference is as visible as an
    O(1) one (read its colour bar).
    """
    if hasattr(result, "shape"):  # arrays: the caller's own values
        return _heatmap(np.asarray(result), None if reference is None else np.asarray(reference), blocks, title or "")
    values = result.worst if isinstance(result, Result) else result
    if values is None or getattr(values, "derived", None) is None:
        raise ValueError("no values to draw (the check did not run: see result.message)")
    name = getattr(result, "name", "trial")
    if values.reference is None:
        return _heatmap(values.derived, None, blocks, title or f"{name}\n{_where(values)}")
    return _heatmap(
        values.derived,
        values.reference,
        blocks,
        title or f"{name}: rel. error {values.rel_err:.2g} at {_where(values)}",
    )


def _heatmap(derived: Any, reference: Any, blocks: tuple[int, int] | None, title: str):
    """The heat-map figure: the matrix alone when there is no reference, else three panels."""
    derived, implied = as_matrix(derived)
    blocks = blocks or implied
    if reference is None:  # a definiteness claim without `of`: only the matrix
        fig, (ax,) = _figure(1)
        _draw_matrix(fig, ax, derived, blocks, _symmetric_limit(derived), "derived")
        fig.suptitle(title, fontsize=11)
        fig.tight_layout()
        return fig
    reference, _ = as_matrix(reference)
    if reference.shape != derived.shape:
        raise ValueError(f"derived has shape {derived.shape} as a matrix, reference {reference.shape}")
    diff = derived - reference
    fig, axes = _figure(3, width=4.2, height=2.6 if derived.shape[0] == 1 else 3.8)
    both = _symmetric_limit(derived, reference)
    _draw_matrix(fig, axes[0], derived, blocks, both, "derived (actual)")
    _draw_matrix(fig, axes[1], reference, blocks, both, "reference (expected)")
    _draw_matrix(fig, axes[2], diff, blocks, _symmetric_limit(diff), "derived − reference")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------- spectrum


def _per_trial(result: Result, *keys: str) -> dict[str, np.ndarray]:
    stats = result.per_trial or {}
    missing = [k for k in keys if k not in stats]
    if missing:
        raise ValueError(f"{result.name}: the result has no per-trial {', '.join(missing)} (outcome {result.outcome})")
    valid = np.asarray(stats.get("finite_reference", np.ones(len(stats[keys[0]]), bool)), bool)
    return {k: np.asarray(v)[valid] for k, v in stats.items()}


def _regime_sections(ax, regimes: np.ndarray) -> None:
    """Vertical separators and labels for runs of trials in the same regime."""
    names = list(dict.fromkeys(regimes.tolist()))
    for name in names:
        idx = np.flatnonzero(regimes == name)
        ax.axvline(idx.min() - 0.5, color="#d0d7de", lw=0.8)
        ax.text((idx.min() + idx.max()) / 2, 1.01, name, transform=ax.get_xaxis_transform(), ha="center", fontsize=8)


def _order_by_regime(stats: dict[str, np.ndarray]) -> np.ndarray:
    """Trial order grouped by regime (first appearance), then by size set, stable."""
    regimes = list(dict.fromkeys(stats["regime"].tolist()))
    sizes = list(dict.fromkeys(stats["sizes"].tolist()))
    key = [(regimes.index(g), sizes.index(s)) for g, s in zip(stats["regime"], stats["sizes"], strict=True)]
    return np.array(sorted(range(len(key)), key=lambda i: key[i]), dtype=int)


def _size_legend(ax, sizes: list[str], extra: Sequence[Any] = ()) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=SIZE_COLOURS[i % len(SIZE_COLOURS)], lw=2, label=s) for i, s in enumerate(sizes)]
    ax.legend(handles=[*handles, *extra], fontsize=7, loc="best", framealpha=0.85)


def _claimed_kind(result: Result) -> str:
    """``pd``/``psd``/``nd``/``nsd``: a definiteness claim's (``Result.definiteness``).

    Other claims with a spectrum (convexity: the eigenvalues of ``∇²f``, or of
    ``∇²(−f)`` for concavity) are decided by the smallest eigenvalue, like ``psd``.
    """
    return result.definiteness or "psd"


def _symlog(ax, linthresh: float, top: float = 1.0) -> None:
    """A symmetric-log y axis, linear within ``±linthresh``, with at most ~4 labelled decades a side."""
    ax.set_yscale("symlog", linthresh=linthresh, linscale=1.5)
    low, high = math.ceil(math.log10(linthresh)) + 1, math.ceil(math.log10(max(top, linthresh * 10)))
    step = max(1, math.ceil((high - low + 1) / 4))
    decades = [10.0**k for k in range(high, low - 1, -step)]
    ax.set_yticks([*(-d for d in decades), 0.0, *decades[::-1]])
    ax.set_ylim(-1.5 * top, 1.5 * top)


def spectrum(result: Result):
    """Eigenvalues of a definiteness claim across trials, and the closest trial's whole spectrum.

    Left: for every trial (grouped by regime, coloured by size set) the
    eigenvalue that decides the claim — ``λ_min`` for ``pd``/``psd``,
    ``λ_max`` for ``nd``/``nsd`` — divided by ``‖H‖₂``, on a symmetric-log
    axis, with the zero line and the band ``±margin/‖H‖₂`` inside which an
    eigenvalue counts as zero (see :mod:`derivcheck._checks.definite`); failing
    trials are crossed. Right: every eigenvalue of the trial closest to
    violating the claim, with its margin.
    """
    s = _per_trial(result, "lambda_min", "lambda_max", "margin")
    s = {k: v[_order_by_regime(s)] for k, v in s.items()}
    kind = _claimed_kind(result)
    fig, (ax, ax2) = _figure(2, width=5.6, height=4.2, gridspec_kw={"width_ratios": [2.2, 1]})
    _deciding_eigenvalues(ax, s, "lambda_min" if kind in ("pd", "psd") else "lambda_max")
    _closest_spectrum(ax2, result)
    claim = f"claims {kind}" if result.definiteness else result.kind
    fig.suptitle(f"{result.name}: {claim}, {result.outcome} ({result.trials} trials)", fontsize=11)
    fig.tight_layout()
    return fig


def _deciding_eigenvalues(ax, s: dict[str, np.ndarray], which: str) -> None:
    """Each trial's ``which`` eigenvalue over ``‖H‖₂``, the ± margin band, the zero line, failures crossed."""
    from matplotlib.lines import Line2D

    norm = s["lambda_scale"] if "lambda_scale" in s else np.maximum(np.abs(s["lambda_min"]), np.abs(s["lambda_max"]))
    scale = np.where(norm > 0, norm, 1.0)
    lam, band = s[which] / scale, s["margin"] / scale
    x = np.arange(lam.size)
    _symlog(ax, float(np.median(band[band > 0])) if (band > 0).any() else 1e-15)
    ax.fill_between(x, -band, band, step="mid", color="#ffd8b5", alpha=0.9, lw=0)
    ax.axhline(0.0, color="black", lw=0.8)
    sizes = list(dict.fromkeys(s["sizes"].tolist()))
    ax.scatter(x, lam, s=12, c=[SIZE_COLOURS[sizes.index(v) % len(SIZE_COLOURS)] for v in s["sizes"]], zorder=3)
    extra = [Line2D([], [], color="#ffd8b5", lw=6, label="± margin: counts as 0")]
    failed = s["failed"]
    if failed.any():
        ax.scatter(x[failed], lam[failed], s=40, marker="x", color=FAIL_COLOUR, zorder=4, lw=1)
        extra.append(Line2D([], [], color=FAIL_COLOUR, marker="x", ls="", label=f"fails ({int(failed.sum())})"))
    _regime_sections(ax, s["regime"])
    _size_legend(ax, sizes, extra)
    ax.set_xlabel("trial (grouped by regime)")
    ax.set_ylabel(f"{'λ_min' if which == 'lambda_min' else 'λ_max'} / ‖H‖₂")
    ax.set_xlim(-1, x.size)


def _closest_spectrum(ax, result: Result) -> None:
    """Every eigenvalue of the worst trial's (symmetrized) matrix, sorted, with its margin."""
    w, sp = result.worst, result.spectrum
    if w is None or w.derived is None or sp is None:
        ax.set_axis_off()
        return
    h = np.asarray(w.derived, dtype=np.float64)
    lam = np.linalg.eigvalsh((h + h.T) / 2)
    scale = max(float(np.abs(lam).max()), np.finfo(float).tiny)
    k = np.arange(1, lam.size + 1)
    band = sp.margin / scale
    _symlog(ax, max(band, 1e-300))
    ax.axhspan(-band, band, color="#ffd8b5", alpha=0.9, lw=0)
    ax.axhline(0.0, color="black", lw=0.8)
    inside = np.abs(lam) <= sp.margin
    ax.scatter(k[~inside], lam[~inside] / scale, color="#0969da", s=18, label="λ_i")
    if inside.any():
        ax.scatter(k[inside], lam[inside] / scale, color=FAIL_COLOUR, s=22, marker="D", label="λ_i ≈ 0")
    ax.set_xlabel("i")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("λ_i / ‖H‖₂")
    where = " ".join(f"{a}={b}" for a, b in w.sizes)
    ax.set_title(f"closest trial: {where} [{w.regime}]\nrank {sp.rank} of {sp.n}", fontsize=9)
    ax.legend(fontsize=7, loc="best")


# --------------------------------------------------------- error distribution


def error_distribution(result: Result, *, floor: float = 1e-18):
    """The relative error of every trial, one column per regime, coloured by size set.

    Errors below ``floor`` (an exact match) are drawn at ``floor``. The
    dashed line is ``rtol``; failing trials are marked with a red ring.
    """
    s = _per_trial(result, "rel_err", "abs_err")
    regimes = list(dict.fromkeys(s["regime"].tolist()))
    sizes = list(dict.fromkeys(s["sizes"].tolist()))
    rng = np.random.default_rng(0)
    fig, (ax,) = _figure(1, width=max(4.5, 1.3 * len(regimes) + 2.5), height=4.0)
    rel = np.maximum(np.nan_to_num(s["rel_err"], nan=floor), floor)
    for j, regime in enumerate(regimes):
        for i, size in enumerate(sizes):
            pick = (s["regime"] == regime) & (s["sizes"] == size)
            offset = (i - (len(sizes) - 1) / 2) * 0.22
            xs = j + offset + rng.uniform(-0.07, 0.07, pick.sum())
            ax.scatter(xs, rel[pick], s=10, color=SIZE_COLOURS[i % len(SIZE_COLOURS)], alpha=0.75)
            bad = pick & s["failed"]
            ax.scatter(xs[bad[pick]], rel[bad], s=40, facecolors="none", edgecolors=FAIL_COLOUR, lw=1.0)
    ax.set_yscale("log")
    if (rel <= floor).any():
        ax.axhline(floor, color="#8c959f", ls=":", lw=0.8)
        ax.text(-0.55, floor, "exact (0)", va="bottom", fontsize=7, color="#57606a")
    ax.axhline(result.rtol, color="black", ls="--", lw=1.0)
    ax.text(len(regimes) - 0.5, result.rtol, f" rtol {result.rtol:g}", va="bottom", ha="right", fontsize=8)
    ax.set_xticks(range(len(regimes)), regimes)
    ax.set_xlim(-0.6, len(regimes) - 0.4)
    ax.set_ylabel("relative error ‖D − R‖∞ / max(‖D‖∞, ‖R‖∞)")
    ax.set_xlabel("regime")
    from matplotlib.lines import Line2D

    ring = Line2D([], [], marker="o", ls="", mfc="none", mec=FAIL_COLOUR, label=f"fails ({int(s['failed'].sum())})")
    _size_legend(ax, sizes, [ring] if s["failed"].any() else [])
    ax.set_title(f"{result.name}: {result.outcome} ({result.trials} trials)", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------- Monte Carlo estimate


def running_mean(samples: Any) -> tuple[np.ndarray, np.ndarray]:
    """Running mean and running standard error of ``samples`` (first axis = draws).

    >>> mean, se = running_mean(np.array([1.0, 3.0, 2.0]))
    >>> mean.tolist()
    [1.0, 2.0, 2.0]
    """
    x = np.asarray(samples, dtype=np.float64)
    n = np.arange(1, x.shape[0] + 1).reshape((-1,) + (1,) * (x.ndim - 1))
    mean = np.cumsum(x, axis=0) / n
    second = np.cumsum(x**2, axis=0) / n
    var = np.maximum(second - mean**2, 0.0) * n / np.maximum(n - 1, 1)
    return mean, np.sqrt(var / n)


def running_estimate(
    samples: Any,
    claimed: Any = None,
    *,
    z: float = 3.0,
    components: Sequence[int] | None = None,
    labels: Sequence[str] | None = None,
    title: str = "",
):
    """A Monte Carlo estimate converging: running mean ± ``z`` standard errors, and the claimed value.

    ``samples`` has one draw per row (``(n,)`` or ``(n, k)``); ``claimed`` is
    the hand-derived expectation (scalar or ``(k,)``). Left: the running mean
    of a few components (``components``, default the first three) with their
    bands and claimed values (dashed). Right (when ``claimed`` is given): the
    largest distance ``|mean_n − claimed|`` over components against ``n``,
    with the band half-width — a correct claim stays inside the band, which
    shrinks as ``1/√n``; a wrong one levels off and leaves it.
    """
    x = np.asarray(samples, dtype=np.float64)
    x = x.reshape(x.shape[0], -1)
    mean, se = running_mean(x)
    target = None if claimed is None else np.broadcast_to(np.asarray(claimed, np.float64).ravel(), (x.shape[1],))
    comps = list(components) if components is not None else list(range(min(3, x.shape[1])))
    names = list(labels) if labels is not None else [f"component {c}" for c in comps]
    fig, axes = _figure(2 if target is not None else 1, width=5.0, height=3.8)
    start = min(10, x.shape[0] - 1)  # the first few standard errors are meaningless
    n = np.arange(1, x.shape[0] + 1)[start:]
    mean, se = mean[start:], se[start:]
    ax = axes[0]
    for i, (c, label) in enumerate(zip(comps, names, strict=True)):
        colour = SIZE_COLOURS[i % len(SIZE_COLOURS)]
        ax.plot(n, mean[:, c], color=colour, lw=1.2, label=label)
        ax.fill_between(n, mean[:, c] - z * se[:, c], mean[:, c] + z * se[:, c], color=colour, alpha=0.18, lw=0)
        if target is not None:
            ax.axhline(target[c], color=colour, ls="--", lw=1.0)
    ax.set_xscale("log")
    ax.set_xlabel("samples n")
    ax.set_ylabel(f"running mean (band: ± {z:g} s.e.)")
    ax.legend(fontsize=7, title="dashed: claimed" if target is not None else None, title_fontsize=7)
    if target is not None:
        _gap_panel(axes[1], n, np.abs(mean - target).max(axis=1), z * se.max(axis=1), z)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def _gap_panel(ax, n: np.ndarray, gap: np.ndarray, width: np.ndarray, z: float) -> None:
    """``max |mean_n − claimed|`` against ``n``, log-log, over the shaded band half-width."""
    shown = np.concatenate([gap, width])
    bottom = float(shown[shown > 0].min()) / 3 if (shown > 0).any() else 1e-300
    ax.fill_between(n, bottom, width, color="#ffd8b5", alpha=0.8, lw=0, label=f"{z:g} s.e. band")
    ax.loglog(n, np.where(gap > 0, gap, np.nan), color="black", lw=1.2, label="max |mean − claimed|")
    ax.set_ylim(bottom=bottom)
    ax.set_xlabel("samples n")
    ax.set_ylabel("distance to the claimed value")
    ax.legend(fontsize=7)


# --------------------------------------------------------- convergence order


def _error_runs(errors: Any) -> np.ndarray:
    """``|e|`` as ``(runs, K)``, with every non-finite or zero error as NaN (it has no logarithm)."""
    e = np.abs(np.asarray(errors, dtype=np.float64))
    e = e.reshape(1, -1) if e.ndim == 1 else e
    return np.where(np.isfinite(e) & (e > 0), e, np.nan)


def _steps(errors: Any, floor: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Pairs ``(|e_k|, |e_{k+1}|)`` of every run with both above ``floor``, and the floor used."""
    e = _error_runs(errors)
    top = float(np.nanmax(e)) if np.isfinite(e).any() else 0.0
    floor = 1e3 * np.finfo(np.float64).eps * top if floor is None else floor
    prev, nxt = e[:, :-1].ravel(), e[:, 1:].ravel()
    keep = (prev > floor) & (nxt > floor)  # NaN compares False: dropped
    return prev[keep], nxt[keep], floor


def fit_order(errors: Any, *, floor: float | None = None) -> float:
    """The order ``p`` in ``|e_{k+1}| ≈ C |e_k|^p``: least-squares slope of ``log|e_{k+1}|`` on ``log|e_k|``.

    ``errors`` is one run ``(K,)`` or several ``(runs, K)`` (their steps are
    pooled). Only steps where both errors are finite and exceed ``floor`` are
    used (default: 1e3 ε times the largest error; below it rounding flattens
    the slope).

    >>> round(fit_order([1e-1, 1e-2, 1e-4, 1e-8]), 6)
    2.0
    """
    prev, nxt, _ = _steps(errors, floor)
    if prev.size < 2:
        raise ValueError("need at least two steps with errors above the rounding floor to fit an order")
    return float(np.polyfit(np.log(prev), np.log(nxt), 1)[0])


def _claimed_order(result: Result) -> float | None:
    """The order in a convergence result's claim phrase ``convergence (p=2)``, if any."""
    _, _, tail = result.kind.partition("p=")
    try:
        return float(tail.rstrip(")")) if tail else None
    except ValueError:
        return None


def convergence(errors: Any, *, order: float | None = None, claimed: float | None = None, title: str = ""):
    """``|e_k|`` against the iteration ``k`` (log scale), and the fitted order of convergence.

    ``errors`` is one run ``(K,)``, several ``(runs, K)``, or a convergence
    :class:`Result` (its worst start's errors, ``details["worst_errors"]``,
    and its claimed order). ``order`` is the order to show (default:
    :func:`fit_order` over all runs, when there are enough steps). Left:
    ``|e_k|`` against ``k``; errors that are not finite (a divergence) are not
    drawn. Right: ``|e_{k+1}|`` against ``|e_k|``, whose log-log slope is the
    order, with the fitted line and the ``claimed`` order through the same
    centre; the dotted line is the rounding floor below which steps are not fitted.
    """
    name = ""
    if isinstance(errors, Result):
        name = f"{errors.name}: "
        claimed = _claimed_order(errors) if claimed is None else claimed
        errors = (errors.details or {}).get("worst_errors", [])
    e = _error_runs(errors)
    if order is None:
        try:
            order = fit_order(e)
        except ValueError:
            order = None
    fig, (ax, ax2) = _figure(2, width=4.8, height=3.8)
    for i, run in enumerate(e):
        colour = SIZE_COLOURS[i % len(SIZE_COLOURS)]
        ax.semilogy(np.arange(run.size), run, marker="o", ms=3, color=colour, lw=1)
        ax2.loglog(run[:-1], run[1:], "o", ms=3, color=colour)
    ax.set_xlabel("iteration k")
    ax.set_ylabel("|e_k| = |x_k − x*|")
    _order_lines(ax2, e, order, claimed)
    ax2.set_xlabel("|e_k|")
    ax2.set_ylabel("|e_{k+1}|")
    if ax2.get_legend_handles_labels()[0]:
        ax2.legend(fontsize=8)
    fitted = f"fitted order p ≈ {order:.2f}" if order is not None else "order not measurable"
    fig.suptitle(title or f"{name}{fitted}" + (f" (claimed {claimed:g})" if claimed is not None else ""), fontsize=11)
    fig.tight_layout()
    return fig


def _order_lines(ax, e: np.ndarray, order: float | None, claimed: float | None) -> None:
    """The fitted line ``log e_{k+1} = p log e_k + c`` (and the claimed order) through the points' centre."""
    prev, nxt, floor = _steps(e)
    if floor > 0:
        ax.axhline(floor, color="#8c959f", ls=":", lw=0.8, label="rounding floor (not fitted)")
    if prev.size == 0:
        return
    lx, ly = np.log(prev), np.log(nxt)
    grid = np.linspace(lx.min(), lx.max(), 50)
    cx, cy = lx.mean(), ly.mean()
    for p, style, colour, word in ((order, "-", "black", "fitted"), (claimed, "--", FAIL_COLOUR, "claimed")):
        if p is not None:
            ax.plot(np.exp(grid), np.exp(cy + p * (grid - cx)), style, color=colour, lw=1, label=f"{word} p = {p:.3g}")


# ------------------------------------------------------------------ dispatch


def figure_for(result: Result):
    """The figure that fits ``result``'s claim: :func:`spectrum` for definiteness and
    convexity, :func:`convergence` for a convergence order, otherwise :func:`error_heatmap`
    of the counterexample when the result carries one, else of the worst trial."""
    if result.spectrum is not None and result.per_trial is not None and "lambda_min" in result.per_trial:
        return spectrum(result)
    if result.claim == "convergence_order":
        return convergence(result)
    cx = result.counterexample
    if getattr(cx, "derived", None) is not None and getattr(cx, "reference", None) is not None:
        return error_heatmap(cx)
    return error_heatmap(result)


__all__ = [
    "as_matrix",
    "convergence",
    "error_distribution",
    "error_heatmap",
    "figure_for",
    "fit_order",
    "running_estimate",
    "running_mean",
    "spectrum",
]
