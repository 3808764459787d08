"""Input specs: declaration errors name what to fix; structured specs keep their structure in every regime."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck as dc
from derivcheck._inputs import REGIMES


def test_a_dims_key_that_is_no_dimension_is_an_error():
    with pytest.raises(dc.InputSpecError, match=r"\['N'\] is no dimension of the inputs \(they use \['n'\]\)"):
        dc.inputs(x=dc.normal("n"), dims={"N": 3})
    with pytest.raises(dc.InputSpecError, match="did you mean 'classes'"):
        dc.inputs(y=dc.one_hot("m", classes="classes"), dims={"clases": 3})
    assert dc.inputs(x=dc.normal("n", "C"), dims={"C": 2}).names == ("x",)


def test_a_size_set_that_misses_a_dimension_names_the_input_that_needs_it():
    with pytest.raises(dc.InputSpecError, match=r"misses \['C'\] \(a dimension of y\); give it in every size set"):
        dc.inputs(W=dc.normal("d", "c"), y=dc.one_hot("m"), sizes=[{"m": 4, "d": 3, "c": 2}])
    with pytest.raises(dc.InputSpecError, match=r"misses \['n'\] \(a dimension of x\); did you mean 'n' for 'N'\?"):
        dc.inputs(x=dc.normal("n"), sizes=[{"N": 4}])


SIZES = {"n": 5, "m": 7, "C": 3}


def _draws(spec, regime, n=16):
    return spec.sample(np.random.default_rng(0), n, SIZES, regime)


@pytest.mark.parametrize("regime", list(REGIMES))
def test_structured_specs_keep_their_structure_in_every_regime(regime):
    sym = _draws(dc.symmetric("n"), regime)
    assert sym.shape == (16, 5, 5) and np.array_equal(sym, np.swapaxes(sym, -1, -2))
    pd = _draws(dc.spd("n", condition=50.0), regime)
    assert np.array_equal(pd, np.swapaxes(pd, -1, -2)) and np.linalg.eigvalsh(pd).min() > 0
    q = _draws(dc.orthogonal("n"), regime)
    assert np.allclose(np.swapaxes(q, -1, -2) @ q, np.eye(5), atol=1e-12)
    low, up = _draws(dc.lower_triangular("n"), regime), _draws(dc.upper_triangular("n"), regime)
    assert np.array_equal(low, np.tril(low)) and np.array_equal(up, np.triu(up))
    assert np.abs(np.diagonal(low, axis1=-2, axis2=-1)).min() > 0
    lab = _draws(dc.labels("m", classes="C"), regime)
    assert lab.dtype == np.int32 and lab.shape == (16, 7) and set(np.unique(lab)) <= {0, 1, 2}
    assert set(np.unique(_draws(dc.signs("m"), regime))) <= {-1.0, 1.0}


def test_spd_has_the_condition_number_asked_for():
    x = _draws(dc.spd("n", condition=1e4), "typical")
    assert np.allclose(np.linalg.cond(x), 1e4, rtol=1e-8)


def test_spd_constant_is_c_times_the_identity_and_a_1x1_spd_varies():
    """``constant`` gave exactly ``I`` in every trial (the pinned smallest eigenvalue), although documented as
    ``c·I``: a Σ ↔ Σ⁻¹ slip held there; a 1 × 1 ``spd`` was the same number in every trial of a regime."""
    x = _draws(dc.spd("n", condition=1e4), "constant")
    c = x[:, 0, 0]
    assert np.allclose(x, c[:, None, None] * np.eye(x.shape[-1]), rtol=1e-12)
    assert c.min() >= 1 and c.max() <= 1e4 and np.ptp(np.log(c)) > 1  # not always I (nor always κ I)
    one = dc.spd(1, condition=1e4).sample(np.random.default_rng(0), 16, {}, "typical")
    assert one.shape == (16, 1, 1) and np.ptp(one) > 0


def test_the_class_count_of_integer_labels_is_a_size():
    spec = dc.inputs(W=dc.normal("d", "C"), X=dc.normal("m", "d"), y=dc.labels("m", classes="C"))
    assert all(dict(s)["C"] >= 2 for s in spec.sizes)


def test_structured_specs_refuse_what_they_cannot_draw():
    with pytest.raises(dc.InputSpecError, match="condition must be a number >= 1"):
        dc.spd("n", condition=0.5)
    with pytest.raises(dc.InputSpecError, match="must be a name like 'm'"):
        dc.symmetric(("n", "m"))
    with pytest.raises(dc.InputSpecError, match="integer type"):
        dc.labels("m", dtype="float64")


# --- derivations over structured inputs, both ways


def _logdet(S):
    return jnp.linalg.slogdet(S)[1]


def _ce(W, X, y):
    logits = X @ W
    return -jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


def test_structured_inputs_in_checks_both_ways(reg):
    spd_in = dc.inputs(S=dc.spd("n", condition=20.0))
    lab_in = dc.inputs(W=dc.normal("d", "C"), X=dc.normal("m", "d"), y=dc.labels("m", classes="C"))

    @dc.gradient(of=_logdet, inputs=spd_in, registry=reg, name="logdet")
    def logdet_grad(S):  # ∇ log det Σ = Σ⁻ᵀ = Σ⁻¹ for symmetric Σ
        return jnp.linalg.inv(S)

    @dc.gradient(of=_logdet, inputs=spd_in, registry=reg, name="logdet_wrong")
    def logdet_grad_wrong(S):  # a factor 2, as if differentiating log det (Σ Σ)
        return 2 * jnp.linalg.inv(S)

    @dc.gradient(of=_ce, wrt="W", inputs=lab_in, registry=reg, name="ce")
    def ce_grad(W, X, y):
        p = jax.nn.softmax(X @ W)
        return X.T @ (p - jax.nn.one_hot(y, W.shape[1]))

    @dc.gradient(of=_ce, wrt="W", inputs=lab_in, registry=reg, name="ce_wrong")
    def ce_grad_wrong(W, X, y):  # the label term dropped
        return X.T @ jax.nn.softmax(X @ W)

    for seed in (0, 1, 2):
        assert dc.check(logdet_grad, trials=60, seed=seed).outcome == "holds"
        assert dc.check(ce_grad, trials=60, seed=seed).outcome == "holds"
    assert dc.check(logdet_grad_wrong, trials=60).outcome == "fails"
    assert dc.check(ce_grad_wrong, trials=60).outcome == "fails"


def test_a_constant_prng_key_keeps_its_integer_dtype(reg):
    """``dc.constant(jax.random.PRNGKey(0))`` was drawn as float64: "invalid PRNG key data" in every trial."""
    spec = dc.inputs(x=dc.normal("n"), key=dc.constant(jax.random.PRNGKey(0)))

    def masked(x, key):
        return jnp.sum(jnp.where(jax.random.bernoulli(key, 0.5, x.shape), x**2, 0.0))

    @dc.gradient(of=masked, wrt="x", inputs=spec, registry=reg, name="masked")
    def masked_grad(x, key):
        return jnp.where(jax.random.bernoulli(key, 0.5, x.shape), 2 * x, 0.0)

    assert spec.specs[1][1].dtype == "uint32"
    assert dc.check(masked_grad, trials=10).outcome == "holds"


def _masked(x, key):
    return jnp.sum(jnp.where(jax.random.bernoulli(key, 0.5, x.shape), x**2, 0.0))


def _draw_typed_key(key):
    return jax.random.normal(key, (5,)), jax.random.key(7)


@pytest.mark.parametrize(
    "inputs",
    [_draw_typed_key, dc.inputs(x=dc.normal("n"), key=dc.constant(jax.random.key(3)))],
    ids=["sampler", "constant"],
)
def test_a_typed_prng_key_is_drawn_as_its_key_data(reg, inputs):
    """A typed key (``jax.random.key``, JAX's recommended form) from a custom sampler erred on every trial
    ("PRNGKey dtype cannot be converted to a NumPy array"), and ``dc.constant`` of one at declaration."""

    @dc.gradient(of=_masked, wrt="x", inputs=inputs, registry=reg, name="right")
    def right(x, key):
        return jnp.where(jax.random.bernoulli(key, 0.5, x.shape), 2 * x, 0.0)

    @dc.gradient(of=_masked, wrt="x", inputs=inputs, registry=reg, name="wrong")
    def wrong(x, key):  # the mask forgotten in the backward pass
        return 2 * x

    assert dc.check(right, trials=20).outcome == "holds"
    assert dc.check(wrong, trials=20).outcome == "fails"
