"""A layer-norm and a single-head attention whose backward passes are ``jax.custom_vjp`` rules
over a parameter dict, each declared for derivcheck with ``@dc.rule`` (the inputs to draw).

The functions are used as they are (``jax.grad`` through them calls the rules); derivcheck
checks each rule against JAX autodiff of the primal definition: ``pytest`` in this
directory (the test module imports them) or ``derivcheck run --rules jax_rules.layers``.
"""

import jax
import jax.numpy as jnp

import derivcheck as dc

EPS = 1e-5

LAYER_NORM_INPUTS = dc.inputs(x=dc.normal("t", "d"), params={"gamma": dc.normal("d"), "beta": dc.normal("d")})


@dc.rule(inputs=LAYER_NORM_INPUTS, source="layer normalisation over the last axis")
@jax.custom_vjp
def layer_norm(x, params):
    """``γ ⊙ (x − μ)/σ + β`` per row, ``σ = √(var + ε)``."""
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return params["gamma"] * (x - mu) / jnp.sqrt(var + EPS) + params["beta"]


def _layer_norm_fwd(x, params):
    mu = jnp.mean(x, axis=-1, keepdims=True)
    sigma = jnp.sqrt(jnp.mean((x - mu) ** 2, axis=-1, keepdims=True) + EPS)
    xhat = (x - mu) / sigma
    return params["gamma"] * xhat + params["beta"], (xhat, sigma, params["gamma"])


def _layer_norm_bwd(res, ct):
    """``g = ct ⊙ γ``: ``dx = (g − mean g − x̂ ⊙ mean(g ⊙ x̂)) / σ``, ``dγ = Σ_t ct ⊙ x̂``, ``dβ = Σ_t ct``."""
    xhat, sigma, gamma = res
    g = ct * gamma
    dx = (g - jnp.mean(g, -1, keepdims=True) - xhat * jnp.mean(g * xhat, -1, keepdims=True)) / sigma
    return dx, {"gamma": jnp.sum(ct * xhat, axis=0), "beta": jnp.sum(ct, axis=0)}


layer_norm.defvjp(_layer_norm_fwd, _layer_norm_bwd)


ATTENTION_INPUTS = dc.inputs(
    x=dc.normal("t", "d"),
    params={"Wq": dc.normal("d", "k"), "Wk": dc.normal("d", "k"), "Wv": dc.normal("d", "k")},
)


@dc.rule(inputs=ATTENTION_INPUTS, source="single-head scaled dot-product attention")
@jax.custom_vjp
def attention(x, params):
    """``softmax(Q Kᵀ/√k) V`` with ``Q, K, V = x Wq, x Wk, x Wv``."""
    q, k, v = x @ params["Wq"], x @ params["Wk"], x @ params["Wv"]
    return jax.nn.softmax(q @ k.T / jnp.sqrt(q.shape[-1]), axis=-1) @ v


def _attention_fwd(x, params):
    q, k, v = x @ params["Wq"], x @ params["Wk"], x @ params["Wv"]
    p = jax.nn.softmax(q @ k.T / jnp.sqrt(q.shape[-1]), axis=-1)
    return p @ v, (x, params, q, k, v, p)


def _attention_bwd(res, ct):
    """``dV = Pᵀ dO``, ``dS = P ⊙ (dO Vᵀ − rowsum(P ⊙ dO Vᵀ))``, ``dQ = dS K/√k``, ``dK = dSᵀ Q/√k``;
    ``dW• = xᵀ d•`` and ``dx = dQ Wqᵀ + dK Wkᵀ + dV Wvᵀ``."""
    x, params, q, k, v, p = res
    scale = 1 / jnp.sqrt(q.shape[-1])
    dv = p.T @ ct
    dp = ct @ v.T
    ds = p * (dp - jnp.sum(dp * p, axis=-1, keepdims=True))
    dq, dk = ds @ k * scale, ds.T @ q * scale
    dx = dq @ params["Wq"].T + dk @ params["Wk"].T + dv @ params["Wv"].T
    return dx, {"Wq": x.T @ dq, "Wk": x.T @ dk, "Wv": x.T @ dv}


attention.defvjp(_attention_fwd, _attention_bwd)


@jax.custom_vjp
def clip_gradient(x):
    """The identity, whose backward pass clips the cotangent to [-1, 1] (not checked: no inputs declared)."""
    return x


clip_gradient.defvjp(lambda x: (x, None), lambda _, ct: (jnp.clip(ct, -1.0, 1.0),))


def block(x, params):
    """A pre-norm attention block: ``x + attention(layer_norm(x))``."""
    return x + attention(layer_norm(x, params["norm"]), params["attention"])
