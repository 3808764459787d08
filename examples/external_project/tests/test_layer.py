"""Ordinary tests of the project, with derivcheck's assertions inline, and one derivation declared here."""

import jax.numpy as jnp
import numpy as np
from logistic import layer, nll

import derivcheck as dc
from derivcheck.testing import assert_gradient, assert_jacobian

SPEC = dc.inputs(W=dc.normal("k", "k"), x=dc.normal("k"))


def test_layer_output_is_bounded():
    W, x = np.eye(3), np.array([10.0, -10.0, 0.0])
    assert np.all(np.abs(layer(W, x)) <= 1)


def test_layer_jacobian_inline():
    assert_jacobian(lambda W, x: (1 - jnp.tanh(W @ x) ** 2)[:, None] * W, layer, SPEC, wrt="x", trials=60)


def test_gradient_at_a_chosen_point():
    theta, X, y = np.array([0.5, -1.0]), np.array([[1.0, 2.0], [3.0, -1.0], [0.0, 1.0]]), np.array([1.0, 0.0, 1.0])
    assert_gradient(lambda theta, X, y: X.T @ (1 / (1 + jnp.exp(-X @ theta)) - y), nll, (theta, X, y))


# Wrong on purpose, to show what a failing derivation looks like: the transpose of the right Jacobian.
@dc.jacobian(of=layer, wrt="x", inputs=SPEC, name="layer.jacobian_transposed")
def layer_jacobian_transposed(W, x):
    return ((1 - jnp.tanh(W @ x) ** 2)[:, None] * W).T
