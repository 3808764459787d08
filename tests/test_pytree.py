"""Pytrees at the claim boundary (``derivcheck._pytree``): pytree arguments drawn as their leaves,
``wrt`` naming a pytree or several arguments, ``of`` with tuple/dict outputs, custom samplers that
draw tuples; correct ones hold on several seeds, a wrong leaf is caught and named."""

import ast
import json
import re
from typing import NamedTuple

import jax
import jax.numpy as jnp
import pytest

import derivcheck as dc
from derivcheck.cli import main

MLP = dc.inputs(params={"W": dc.normal("m", "n"), "b": dc.normal("m")}, x=dc.normal("n"))


def mlp(params, x):
    return jnp.sum(jnp.tanh(params["W"] @ x + params["b"]) ** 2)


def mlp_grad(params, x):
    """``g = 2h(1 − h²)``, ``h = tanh(Wx + b)``: ``∂W = g xᵀ``, ``∂b = g``."""
    h = jnp.tanh(params["W"] @ x + params["b"])
    g = 2 * h * (1 - h**2)
    return {"W": jnp.outer(g, x), "b": g}


def mlp_grad_wrong_b(params, x):
    return {**mlp_grad(params, x), "b": -mlp_grad(params, x)["b"]}


@pytest.mark.parametrize("seed", range(3))
def test_a_gradient_wrt_a_dict_of_parameters_holds(reg, seed):
    d = dc.gradient(of=mlp, wrt="params", inputs=MLP, registry=reg)(mlp_grad)
    assert d.arg_names == ("params['W']", "params['b']", "x") and not d.problem
    r = dc.check(d, trials=60, seed=seed)
    assert r.outcome == "holds", r.message
    assert r.worst.inputs["params['W']"].shape[-1] == r.worst.inputs["x"].shape[-1]


def test_one_wrong_leaf_is_caught_and_named(reg):
    d = dc.gradient(of=mlp, wrt="params", inputs=MLP, registry=reg)(mlp_grad_wrong_b)
    r = dc.check(d, trials=60)
    assert r.outcome == "fails"
    assert "wrong only in params['b']" in r.message
    assert "w.r.t. params['W'], params['b']" in dc.explanation(d, trials=60, shrink=False)


def test_the_derivation_is_still_callable_as_written(reg):
    d = dc.gradient(of=mlp, wrt="params", inputs=MLP, registry=reg)(mlp_grad)
    params = {"W": jnp.ones((2, 3)), "b": jnp.zeros(2)}
    assert set(d(params, jnp.ones(3))) == {"W", "b"}


class Layer(NamedTuple):
    W: jax.Array
    b: jax.Array


def affine_vjp(p, x, ct):
    return Layer(W=jnp.outer(ct, x), b=ct)


def test_a_namedtuple_argument_and_a_vjp_in_its_structure(reg):
    spec = dc.inputs(p=Layer(W=dc.normal("m", "n"), b=dc.normal("m")), x=dc.normal("n"))
    d = dc.vjp(of=lambda p, x: p.W @ x + p.b, wrt="p", inputs=spec, registry=reg, name="affine")(affine_vjp)
    assert d.arg_names == ("p.W", "p.b", "x")
    for seed in range(2):
        assert dc.check(d, trials=40, seed=seed).outcome == "holds"
    swapped = dc.vjp(of=lambda p, x: p.W @ x + p.b, wrt="p", inputs=spec, registry=reg, name="swapped")(
        lambda p, x, ct: Layer(W=jnp.outer(ct, x), b=2 * ct)
    )
    r = dc.check(swapped, trials=40)
    assert r.outcome == "fails" and "wrong only in p.b" in r.message


LN = dc.inputs(x=dc.normal("m", "n"), gamma=dc.normal("n"), beta=dc.normal("n"))


def layer_norm(x, gamma, beta):
    mu = jnp.mean(x, -1, keepdims=True)
    return gamma * (x - mu) / jnp.sqrt(jnp.mean((x - mu) ** 2, -1, keepdims=True) + 1e-5) + beta


def layer_norm_vjp(x, gamma, beta, ct):
    """``(dx, dγ, dβ)`` of the layer-norm: one derivation for the three arguments."""
    mu = jnp.mean(x, -1, keepdims=True)
    sigma = jnp.sqrt(jnp.mean((x - mu) ** 2, -1, keepdims=True) + 1e-5)
    xhat = (x - mu) / sigma
    g = ct * gamma
    dx = (g - jnp.mean(g, -1, keepdims=True) - xhat * jnp.mean(g * xhat, -1, keepdims=True)) / sigma
    return dx, jnp.sum(ct * xhat, 0), jnp.sum(ct, 0)


@pytest.mark.parametrize("seed", range(3))
def test_a_layer_norm_backward_is_one_derivation(reg, seed):
    d = dc.vjp(of=layer_norm, wrt=("x", "gamma", "beta"), inputs=LN, registry=reg)(layer_norm_vjp)
    assert dc.check(d, trials=60, seed=seed).outcome == "holds"


def test_a_layer_norm_backward_with_swapped_parameters_names_them(reg):
    def swapped(x, gamma, beta, ct):
        dx, dgamma, dbeta = layer_norm_vjp(x, gamma, beta, ct)
        return dx, dbeta, dgamma

    r = dc.check(dc.vjp(of=layer_norm, wrt=["x", "gamma", "beta"], inputs=LN, registry=reg)(swapped), trials=60)
    assert r.outcome == "fails" and "wrong only in gamma, beta" in r.message
    # the diagnosis said "no simple relation fits": the exchange of two leaves is a relation of its own
    assert r.diagnosis.kind == "swap" and r.diagnosis.summary.startswith("a swap: leaves gamma and beta exchanged")


def _attention_out(Q, K, V):
    return jnp.tanh(Q @ K.T) @ V


def _attention_vjp(Q, K, V, ct):
    H = jnp.tanh(Q @ K.T)
    dS = (ct @ V.T) * (1 - H**2)
    return dS @ K, dS.T @ Q, H.T @ ct


def test_three_leaves_returned_in_a_rotated_order_are_named(reg):
    """``(dV, dQ, dK)`` for ``wrt=("Q", "K", "V")``, all of one shape: only exchanges of two were tried, and the
    diagnosis said "no simple relation fits"."""
    spec = dc.inputs(Q=dc.normal("T", "d"), K=dc.normal("T", "d"), V=dc.normal("T", "d"))

    def rotated(Q, K, V, ct):
        dQ, dK, dV = _attention_vjp(Q, K, V, ct)
        return dV, dQ, dK

    right = dc.vjp(of=_attention_out, wrt=("Q", "K", "V"), inputs=spec, registry=reg, name="right")(_attention_vjp)
    assert dc.check(right, trials=40).outcome == "holds"
    r = dc.check(dc.vjp(of=_attention_out, wrt=("Q", "K", "V"), inputs=spec, registry=reg)(rotated), trials=40)
    assert r.outcome == "fails" and r.diagnosis.kind == "swap"
    assert r.diagnosis.summary == (
        "leaves returned in another order: derived Q = reference V, derived K = reference Q, derived V = reference K"
    )


def test_a_leaf_wrong_by_a_sign_is_not_called_a_swap(reg):
    def beta_sign(x, gamma, beta, ct):
        dx, dgamma, dbeta = layer_norm_vjp(x, gamma, beta, ct)
        return dx, dgamma, -dbeta

    r = dc.check(dc.vjp(of=layer_norm, wrt=["x", "gamma", "beta"], inputs=LN, registry=reg)(beta_sign), trials=60)
    assert r.outcome == "fails" and r.diagnosis.summary.startswith("in beta: sign error"), r.diagnosis.summary


def test_a_result_of_the_wrong_structure_is_a_one_line_error(reg):
    d = dc.vjp(of=layer_norm, wrt=("x", "gamma", "beta"), inputs=LN, registry=reg)(
        lambda x, gamma, beta, ct: layer_norm_vjp(x, gamma, beta, ct)[:2]
    )
    r = dc.check(d, trials=20)
    assert r.outcome == "error" and "a tuple of 2, expected a tuple of 3" in r.message and "\n" not in r.message
    missing = dc.gradient(of=mlp, wrt="params", inputs=MLP, registry=reg, name="missing")(
        lambda params, x: {"W": mlp_grad(params, x)["W"]}
    )
    r = dc.check(missing, trials=20)
    assert r.outcome == "error" and "dict with keys ['W']" in r.message
    # a leaf of the wrong shape is named as the user calls it (it was "at [1]", a position in the leaves)
    unsummed = dc.gradient(of=mlp, wrt="params", inputs=MLP, registry=reg, name="unsummed")(
        lambda params, x: {**mlp_grad(params, x), "b": mlp_grad(params, x)["b"][:, None]}
    )
    r = dc.check(unsummed, trials=20)
    assert r.outcome == "error" and "for params['b'], expected" in r.message, r.message
    several = dc.vjp(of=layer_norm, wrt=("x", "gamma", "beta"), inputs=LN, registry=reg, name="several")(
        lambda x, gamma, beta, ct: (*layer_norm_vjp(x, gamma, beta, ct)[:2], jnp.zeros(()))
    )
    r = dc.check(several, trials=20)
    assert r.outcome == "error" and "for beta, expected" in r.message, r.message


def two(x):
    return jnp.sin(x), {"c": jnp.sum(x**2)}


def two_jvp(x, t):
    return jnp.cos(x) * t, {"c": 2 * jnp.sum(x * t)}


def two_vjp(x, ct):
    sin_ct, rest = ct
    return jnp.cos(x) * sin_ct + 2 * x * rest["c"]


@pytest.mark.parametrize("seed", range(2))
def test_tuple_and_dict_outputs_of_of(reg, seed):
    spec = dc.inputs(x=dc.normal("n"))
    assert dc.check(dc.jvp(of=two, inputs=spec, registry=reg)(two_jvp), trials=40, seed=seed).outcome == "holds"
    assert dc.check(dc.vjp(of=two, inputs=spec, registry=reg)(two_vjp), trials=40, seed=seed).outcome == "holds"


def test_a_wrong_output_leaf_of_a_jvp_is_named(reg):
    wrong = dc.jvp(of=two, inputs=dc.inputs(x=dc.normal("n")), registry=reg)(
        lambda x, t: (jnp.cos(x) * t, {"c": jnp.sum(x * t)})
    )
    r = dc.check(wrong, trials=40)
    assert r.outcome == "fails" and "wrong only in output[1]['c']" in r.message


def test_a_gradient_of_a_tuple_output_says_what_to_use(reg):
    d = dc.gradient(of=two, inputs=dc.inputs(x=dc.normal("n")), registry=reg)(lambda x: jnp.cos(x))
    r = dc.check(d, trials=20)
    assert r.outcome == "error" and "a tuple of 2" in r.message and "dc.vjp" in r.message


def draw_affine(key):
    """A custom sampler whose first argument is a tuple ``(W, b)``."""
    k1, k2, k3 = jax.random.split(key, 3)
    return (jax.random.normal(k1, (3, 2)), jax.random.normal(k2, (3,))), jax.random.normal(k3, (2,))


def affine_loss(Wb, x):
    W, b = Wb
    return jnp.sum(jnp.sin(W @ x + b))


@pytest.mark.parametrize("seed", range(3))
def test_a_tuple_drawn_by_a_custom_sampler_is_neither_mixed_nor_blamed_on_jit(reg, seed):
    def grad(Wb, x):
        c = jnp.cos(Wb[0] @ x + Wb[1])
        return jnp.outer(c, x), c

    d = dc.gradient(of=affine_loss, wrt="Wb", inputs=draw_affine, registry=reg)(grad)
    assert d.arg_names == ("Wb[0]", "Wb[1]", "x")
    r = dc.check(d, trials=40, seed=seed)
    assert r.outcome == "holds", r.message
    assert r.worst.inputs["Wb[0]"].shape == (3, 2) and r.worst.inputs["Wb[1]"].shape == (3,)
    wrong = dc.gradient(of=affine_loss, wrt="Wb", inputs=draw_affine, registry=reg, name="wrong")(
        lambda Wb, x: (jnp.outer(jnp.cos(Wb[0] @ x + Wb[1]), x), -jnp.cos(Wb[0] @ x + Wb[1]))
    )
    r = dc.check(wrong, trials=40, seed=seed)
    assert r.outcome == "fails" and "wrong only in Wb[1]" in r.message


def test_a_hessian_wrt_a_pytree_argument_is_a_declaration_problem(reg):
    d = dc.hessian(of=mlp, wrt="params", inputs=MLP, registry=reg)(lambda params, x: jnp.eye(2))
    assert "pytree argument" in d.problem and "params['W']" in d.problem


AFFINE = dc.inputs(p={"W": dc.normal("o", "i"), "b": dc.normal("o")}, x=dc.normal("i"))


def affine(p, x):
    return jnp.tanh(p["W"] @ x + p["b"])


def _jacobians(p, x):
    """``J_b = diag(1 − h²)``, ``J_W[a, b, c] = (1 − h²)_a δ_ab x_c`` for ``h = tanh(Wx + b)``."""
    g = 1 - affine(p, x) ** 2
    return {"p['b']": jnp.diag(g), "p['W']": jnp.einsum("ab,c->abc", jnp.diag(g), x)}


def test_the_leaves_a_pytree_wrt_error_advises_work_when_pasted(reg):
    d = dc.jacobian(of=affine, wrt="p", inputs=AFFINE, registry=reg, name="whole")(lambda p, x: _jacobians(p, x))
    r = dc.check(d)
    assert r.outcome == "error" and "name one of its leaves" in r.message
    advised = [ast.literal_eval(w) for w in re.findall(r"wrt=(\"[^\"]*\")", r.message)]
    assert advised == ["p['W']", "p['b']"], r.message
    for seed, wrt in enumerate(advised):  # pasted as given: the right Jacobian of a leaf holds, a 1e-3 slip fails
        right = dc.jacobian(of=affine, wrt=wrt, inputs=AFFINE, registry=reg, name=f"right {wrt}")(
            lambda p, x, wrt=wrt: _jacobians(p, x)[wrt]
        )
        wrong = dc.jacobian(of=affine, wrt=wrt, inputs=AFFINE, registry=reg, name=f"wrong {wrt}")(
            lambda p, x, wrt=wrt: 1.001 * _jacobians(p, x)[wrt]
        )
        assert not right.problem and right.claim.wrt == wrt
        assert dc.check(right, trials=20, seed=seed).outcome == "holds"
        assert dc.check(wrong, trials=20, seed=seed).outcome == "fails"


def test_a_gradient_wrt_one_leaf_and_an_argument(reg):
    def grad(p, x):
        g = (1 - affine(p, x) ** 2) * 2 * affine(p, x)
        return g, p["W"].T @ g

    of = lambda p, x: jnp.sum(affine(p, x) ** 2)
    d = dc.gradient(of=of, wrt=("p['b']", "x"), inputs=AFFINE, registry=reg, name="bx")(grad)
    assert dc.check(d, trials=20).outcome == "holds"
    twice = dc.gradient(of=of, wrt=("p", "p['b']"), inputs=AFFINE, registry=reg, name="twice")(grad)
    assert "names a leaf twice" in twice.problem
    unknown = dc.jacobian(of=affine, wrt="p['c']", inputs=AFFINE, registry=reg, name="unknown")(grad)
    assert "names no argument" in unknown.problem


def test_a_malformed_nested_spec_names_the_argument():
    with pytest.raises(dc.InputSpecError, match=r"inputs\(params=\.\.\.\)"):
        dc.inputs(params={"W": dc.normal("n"), "b": 3.0})


def test_a_pytree_derivation_through_the_command_line_and_json(fresh_default_registry, tmp_path):
    dc.gradient(of=mlp, wrt="params", inputs=MLP, name="mlp.good")(mlp_grad)
    dc.gradient(of=mlp, wrt="params", inputs=MLP, name="mlp.bad")(mlp_grad_wrong_b)
    out = tmp_path / "r.json"
    assert main(["run", "mlp.*", "--trials", "40", "--json", str(out)]) == 1
    results = {r["name"]: r for r in json.loads(out.read_text())["results"]}
    assert results["mlp.good"]["outcome"] == "holds"
    assert results["mlp.bad"]["outcome"] == "fails" and "params['b']" in results["mlp.bad"]["message"]
    assert main(["explain", "mlp.bad", "--trials", "40", "--no-shrink"]) == 1


def layer(params, x):
    return jnp.tanh(params["W"] @ x + params["b"])


@pytest.mark.parametrize("seed", range(2))
def test_a_jvp_wrt_a_dict_gets_its_tangent_in_that_structure(reg, seed):
    def layer_jvp(params, x, t):
        return (1 - layer(params, x) ** 2) * (t["W"] @ x + t["b"])

    def layer_jvp_no_b(params, x, t):
        return (1 - layer(params, x) ** 2) * (t["W"] @ x)

    assert dc.check(dc.jvp(of=layer, wrt="params", inputs=MLP, registry=reg)(layer_jvp), seed=seed).outcome == "holds"
    wrong = dc.jvp(of=layer, wrt="params", inputs=MLP, registry=reg)(layer_jvp_no_b)
    assert dc.check(wrong, seed=seed).outcome == "fails"


def _stats(x):
    return {"mean": jnp.mean(x), "centred": x - jnp.mean(x)}


def test_an_identity_between_pytrees_is_compared_leaf_by_leaf(reg):
    spec = dc.inputs(x=dc.normal("n"))
    ok = dc.identity(of=_stats, inputs=spec, registry=reg, name="ok")(
        lambda x: {"centred": x - jnp.sum(x) / x.shape[0], "mean": jnp.sum(x) / x.shape[0]}
    )
    assert dc.check(ok, trials=30).outcome == "holds"
    wrong = dc.identity(of=_stats, inputs=spec, registry=reg, name="wrong")(
        lambda x: {"centred": x - jnp.mean(x), "mean": jnp.sum(x) / (x.shape[0] + 1)}
    )
    assert dc.check(wrong, trials=30).outcome == "fails"
    other = dc.identity(of=_stats, inputs=spec, registry=reg, name="other")(lambda x: (jnp.mean(x), x - jnp.mean(x)))
    r = dc.check(other, trials=30)
    assert r.outcome == "error" and "expected a dict with keys ['centred', 'mean']" in r.message, r.message


def test_a_custom_vjp_rule_whose_output_is_a_dict_is_checked(reg):
    """The rule's [rule output] check compares the custom function with its primal: a dict output erred."""

    @jax.custom_vjp
    def model(w, x):
        return {"y": jnp.tanh(w * x), "reg": jnp.sum(w**2)}

    def fwd(w, x):
        return model(w, x), (w, x)

    def bwd(res, ct):
        w, x = res
        t = 1 - jnp.tanh(w * x) ** 2
        return ct["y"] * t * x + 2 * w * ct["reg"], ct["y"] * t * w

    model.defvjp(fwd, bwd)
    dc.rule(inputs=dc.inputs(w=dc.normal("n"), x=dc.normal("n")), registry=reg)(model)
    results = {d.name: dc.check(d, trials=30) for d in reg}
    assert results and all(r.outcome == "holds" for r in results.values()), {n: r.message for n, r in results.items()}
    assert any(n.endswith("[rule output]") for n in results)


NESTED = dc.inputs(params={"dense": {"W": dc.normal("m", "n"), "b": dc.normal("m")}}, x=dc.normal("n"))


def _nested_loss(params, x):
    return jnp.sum(jnp.tanh(params["dense"]["W"] @ x + params["dense"]["b"]))


def test_a_leaf_named_with_double_quotes_is_that_leaf_and_a_wrong_one_lists_the_leaves(reg):
    """``wrt='params["dense"]["b"]'``, as Python also writes a key, was "names no argument" (or a KeyError)."""
    right = lambda params, x: 1 - jnp.tanh(params["dense"]["W"] @ x + params["dense"]["b"]) ** 2
    quoted = dc.gradient(of=_nested_loss, wrt='params["dense"]["b"]', inputs=NESTED, registry=reg, name="q")(right)
    assert dc.check(quoted, trials=10).outcome == "holds"
    typo = dc.gradient(of=_nested_loss, wrt="params['dense']['c']", inputs=NESTED, registry=reg, name="t")(right)
    assert typo.problem.endswith("""the leaves of params are ["params['dense']['W']", "params['dense']['b']"]""")
