"""The plot helpers draw what they claim from real check results (headless: the Agg backend)."""

import dataclasses
import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck as dc

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")
plot = pytest.importorskip("derivcheck.plot")

DATA = dc.inputs(theta=dc.normal("d"), X=dc.full_rank("m", "d"), y=dc.bernoulli("m"), regimes=("typical", "large"))


def nll(theta, X, y):
    z = X @ theta
    return jnp.sum(jnp.logaddexp(0.0, z) - y * z)


def softmax_ce(W, x, y):
    """Softmax regression loss of one example; ``W`` is ``(C, d)``, its Hessian ``(C, d, C, d)``."""
    return -jnp.sum(y * jax.nn.log_softmax(W @ x))


@pytest.fixture(scope="module")
def results():
    """Real results: a gradient off by a factor m, a PSD claim, a PD claim that fails, a block Hessian."""
    reg = dc.Registry()

    @dc.gradient(of=nll, wrt="theta", inputs=DATA, name="grad_times_m", registry=reg)
    def grad_times_m(theta, X, y):
        return X.shape[0] * X.T @ (jax.nn.sigmoid(X @ theta) - y)

    def hess(z, y):
        p = jax.nn.softmax(z)
        return jnp.diag(p) - jnp.outer(p, p)

    logits = dc.inputs(z=dc.normal("K"), y=dc.one_hot(classes="K"), regimes=("typical", "tiny"))
    psd = dc.definite("psd", inputs=logits, name="psd", registry=reg)(hess)
    pd = dc.definite("pd", inputs=logits, name="pd", registry=reg)(hess)

    @dc.hessian(
        of=softmax_ce,
        wrt="W",
        inputs=dc.inputs(
            W=dc.normal("C", "d"),
            x=dc.normal("d"),
            y=dc.one_hot(classes="C"),
            sizes=[{"C": 2, "d": 3}, {"C": 3, "d": 2}],  # blocks of more than one entry, wherever the worst trial is
            regimes=("typical",),
        ),
        name="blocks_sign",
        registry=reg,
    )
    def blocks_sign(W, x, y):
        p = jax.nn.softmax(W @ x)
        s = jnp.diag(p) + jnp.outer(p, p)  # sign error: wrong off-diagonal blocks
        return jnp.einsum("ac,i,j->aicj", s, x, x)

    out = {d.name: dc.check(d, trials=40) for d in (grad_times_m, psd, pd, blocks_sign)}
    assert out["grad_times_m"].outcome == "fails" and out["psd"].outcome == "holds"
    assert out["pd"].outcome == "fails"
    return out


def _png_bytes(fig) -> int:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    return len(buf.getvalue())


def _no_open_figures():
    """Helpers close their figures: a notebook shows each once, as the cell's value."""
    return plt.get_fignums() == []


def test_as_matrix_reshapes_and_finds_blocks():
    m, blocks = plot.as_matrix(np.arange(24.0).reshape(2, 3, 2, 2))
    assert m.shape == (6, 4) and blocks == (3, 2)
    v, blocks = plot.as_matrix(np.ones(5))
    assert v.shape == (1, 5) and blocks == (1, 5)


def test_error_heatmap_draws_both_sides_and_their_difference(results):
    r = results["grad_times_m"]
    fig = plot.error_heatmap(r)
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) == 3
    derived, reference = np.asarray(r.worst.derived), np.asarray(r.worst.reference)
    np.testing.assert_allclose(images[0].ravel(), derived.ravel())
    np.testing.assert_allclose(images[1].ravel(), reference.ravel())
    np.testing.assert_allclose(images[2].ravel(), (derived - reference).ravel())
    assert "grad_times_m" in fig._suptitle.get_text()
    assert _png_bytes(fig) > 1000 and _no_open_figures()


def test_error_heatmap_draws_block_boundaries_of_a_block_hessian(results):
    r = results["blocks_sign"]
    assert r.outcome == "fails" and r.worst.derived.ndim == 4
    C, d = r.worst.derived.shape[:2]
    fig = plot.error_heatmap(r)
    ax = fig.axes[0]
    horizontal = sorted(line.get_ydata()[0] for line in ax.lines if line.get_ydata()[0] == line.get_ydata()[1])
    assert horizontal == [k * d - 0.5 for k in range(1, C)]
    assert ax.images[0].get_array().shape == (C * d, C * d)


def test_error_heatmap_of_a_matrix_claim_without_reference(results):
    fig = plot.error_heatmap(results["psd"])
    assert len([ax for ax in fig.axes if ax.images]) == 1


def test_error_heatmap_refuses_a_result_without_values():
    r = dc.Result(name="x", kind="gradient", outcome="error", expect=dc.HOLDS, message="boom")
    with pytest.raises(ValueError, match="no values to draw"):
        plot.error_heatmap(r)


@pytest.mark.parametrize("name", ["psd", "pd"])
def test_spectrum_plots_every_trial_with_zero_line_and_margin(results, name):
    r = results[name]
    fig = plot.spectrum(r)
    ax, ax2 = fig.axes[:2]
    stats = r.per_trial
    points = ax.collections[1].get_offsets()  # [0] is the margin band
    assert len(points) == r.trials
    scale = np.where(stats["lambda_scale"] > 0, stats["lambda_scale"], 1.0)
    np.testing.assert_allclose(np.sort(points[:, 1]), np.sort(stats["lambda_min"] / scale))
    assert any(line.get_ydata()[0] == 0.0 for line in ax.lines)  # the zero line
    crosses = [c for c in ax.collections if c.get_offsets().shape[0] == int(stats["failed"].sum())]
    assert bool(stats["failed"].any()) == bool(crosses)
    # right: every eigenvalue of the closest trial, the one on the null direction inside the margin
    n = r.spectrum.n
    assert sum(len(c.get_offsets()) for c in ax2.collections if c.get_offsets().size) == n
    assert _png_bytes(fig) > 1000 and _no_open_figures()


def test_spectrum_needs_a_definiteness_result(results):
    with pytest.raises(ValueError, match="lambda_min"):
        plot.spectrum(results["grad_times_m"])


def test_error_distribution_shows_every_trial_per_regime(results):
    r = results["grad_times_m"]
    fig = plot.error_distribution(r)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["typical", "large"]
    drawn = sum(len(c.get_offsets()) for c in ax.collections if c.get_facecolors().size)
    assert drawn == r.trials
    assert any(np.allclose(line.get_ydata(), r.rtol) for line in ax.lines)
    assert _png_bytes(fig) > 1000 and _no_open_figures()


def test_running_mean_and_its_standard_error():
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(4000, 2))
    mean, se = plot.running_mean(x)
    np.testing.assert_allclose(mean[-1], x.mean(axis=0))
    np.testing.assert_allclose(se[-1], x.std(axis=0, ddof=1) / np.sqrt(4000))


def test_running_estimate_separates_a_right_and_a_wrong_claim():
    x = np.random.default_rng(1).normal([1.0, -2.0], 0.5, size=(5000, 2))
    right = plot.running_estimate(x, [1.0, -2.0], labels=["a", "b"])
    wrong = plot.running_estimate(x, [1.1, -2.0])
    for fig, inside in ((right, True), (wrong, False)):
        ax2 = fig.axes[1]
        gap = ax2.lines[0].get_ydata()[-1]
        edge = ax2.collections[0].get_paths()[0].vertices
        band = edge[edge[:, 0] == edge[:, 0].max(), 1].max()  # the band's half-width at the last n
        assert (gap < band) == inside
    assert _png_bytes(right) > 1000 and _no_open_figures()


def newton_errors(x0: float, steps: int = 7) -> np.ndarray:
    """Newton's method on f(x) = x³ − 2 (root 2^(1/3)): quadratic convergence."""
    root = 2.0 ** (1 / 3)
    xs = [x0]
    for _ in range(steps):
        x = xs[-1]
        xs.append(x - (x**3 - 2) / (3 * x**2))
    return np.abs(np.array(xs) - root)


def test_fit_order_of_newton_is_two_and_of_bisection_one():
    assert plot.fit_order(newton_errors(2.0)) == pytest.approx(2.0, abs=0.2)
    assert plot.fit_order(0.5 ** np.arange(30)) == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(ValueError, match="two steps"):
        plot.fit_order([1.0, 0.0, 0.0])


def test_convergence_plot_shows_runs_and_the_fitted_order():
    runs = np.stack([newton_errors(x0) for x0 in (1.5, 2.0, 3.0)])
    fig = plot.convergence(runs, claimed=2)
    ax, ax2 = fig.axes
    assert len(ax.lines) == 3
    labels = [line.get_label() for line in ax2.lines]
    assert any(lab.startswith("fitted p = 2.0") or lab.startswith("fitted p = 1.9") for lab in labels)
    assert "claimed p = 2" in labels
    assert _png_bytes(fig) > 1000 and _no_open_figures()


def test_running_estimate_from_a_real_expectation_result(reg):
    """Samples of ∇ of a dropout-like loss at the worst trial's inputs: the right claim stays in the band."""

    def loss(w, delta):
        return 0.5 * jnp.sum((delta * w) ** 2)

    def noise(key, w):
        return 1.0 + 0.5 * jax.random.normal(key, w.shape)

    options = dict(of=loss, noise=noise, wrt="w", inputs=dc.inputs(w=dc.normal("n")), registry=reg)
    options.update(draws=4, max_samples=4096)
    right = dc.expected_gradient(name="right", **options)(lambda w: 1.25 * w)
    wrong = dc.expected_gradient(name="wrong", **options)(lambda w: w)
    for d, inside in ((right, True), (wrong, False)):
        r = dc.check(d, trials=4)
        assert r.outcome == ("holds" if inside else "fails"), r.message
        w = r.worst.inputs["w"]
        keys = jax.random.split(jax.random.key(0), 4000)
        with jax.enable_x64(True):
            samples = jax.vmap(lambda k, w=w: jax.grad(loss)(w, noise(k, w)))(keys)
            fig = plot.running_estimate(np.asarray(samples), np.asarray(d(w)), title=r.name)
        gap = fig.axes[1].lines[0].get_ydata()[-1]
        edge = fig.axes[1].collections[0].get_paths()[0].vertices
        assert (gap < edge[edge[:, 0] == edge[:, 0].max(), 1].max()) == inside
    assert _no_open_figures()


def test_convergence_plot_of_a_real_convergence_result(reg):
    """Newton's method for √a: the result's worst start, its fitted order 2 against a claimed 1."""
    spec = dc.inputs(x=dc.uniform(low=1.0, high=3.0), a=dc.uniform(low=1.0, high=4.0), regimes=("typical",))

    @dc.convergence_order(1.0, root=lambda x, a: jnp.sqrt(a) + 0 * x, inputs=spec, name="sqrt_newton", registry=reg)
    def newton_sqrt(x, a):
        return x - (x**2 - a) / (2 * x)

    r = dc.check(newton_sqrt, trials=16)
    assert r.outcome == "fails" and len(r.details["worst_errors"]) >= 3, r.message
    fig = plot.convergence(r)
    title = fig._suptitle.get_text()
    assert title.startswith("sqrt_newton: fitted order p ≈ 2") or title.startswith("sqrt_newton: fitted order p ≈ 1.9")
    assert "(claimed 1)" in title
    assert "claimed p = 1" in [line.get_label() for line in fig.axes[1].lines]
    assert _png_bytes(fig) > 1000 and _no_open_figures()


def test_convergence_plot_of_a_divergent_run_draws_without_an_order():
    fig = plot.convergence([13.0, 3.9e5, np.nan, np.nan])
    assert fig._suptitle.get_text() == "order not measurable"
    assert _png_bytes(fig) > 1000


def test_figure_for_picks_the_figure_of_the_claim(results):
    assert plot.figure_for(results["psd"])._suptitle.get_text().startswith("psd: claims psd")
    assert len([ax for ax in plot.figure_for(results["grad_times_m"]).axes if ax.images]) == 3


def test_error_heatmap_of_a_counterexample(results, reg):
    from derivcheck._api import with_counterexample

    r = results["grad_times_m"]
    d = dc.gradient(of=nll, wrt="theta", inputs=DATA, name="grad_times_m", registry=reg)(
        lambda theta, X, y: X.shape[0] * X.T @ (jax.nn.sigmoid(X @ theta) - y)
    )
    cx = with_counterexample(r, d, seconds=5).counterexample
    fig = plot.figure_for(dataclasses.replace(r, counterexample=cx))
    assert "counterexample" in fig._suptitle.get_text()
    np.testing.assert_allclose(fig.axes[0].images[0].get_array().ravel(), np.ravel(cx.derived))


def test_error_heatmap_of_arrays_of_your_own():
    h = np.arange(16.0).reshape(2, 2, 2, 2)
    fig = plot.error_heatmap(h, h.transpose(2, 3, 0, 1), title="mine")
    assert fig._suptitle.get_text() == "mine"
    diff = [ax for ax in fig.axes if ax.images][2].images[0].get_array()
    np.testing.assert_allclose(diff, (h - h.transpose(2, 3, 0, 1)).reshape(4, 4))
    with pytest.raises(ValueError, match="shape"):
        plot.error_heatmap(np.ones(3), np.ones(4))
