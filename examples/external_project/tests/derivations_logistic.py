"""The hand derivations of the project's notes, one derivation each (collected by the derivcheck plugin)."""

import jax
import pytest
from logistic import nll

import derivcheck as dc

DATA = dc.inputs(theta=dc.normal("d"), X=dc.full_rank("m", "d"), y=dc.bernoulli("m"))


@dc.gradient(
    of=nll,
    wrt="theta",
    inputs=DATA,
    name="logistic.gradient",
    statement=r"\nabla_\theta J = X^\top(\sigma(X\theta) - y)",
)
def nll_gradient(theta, X, y):
    return X.T @ (jax.nn.sigmoid(X @ theta) - y)


@pytest.mark.slow
@dc.hessian(of=nll, wrt="theta", inputs=DATA, name="logistic.hessian")
def nll_hessian(theta, X, y):
    mu = jax.nn.sigmoid(X @ theta)
    return X.T @ ((mu * (1 - mu))[:, None] * X)


@dc.definite("psd", inputs=DATA, name="logistic.hessian_is_psd")
def nll_hessian_psd(theta, X, y):
    mu = jax.nn.sigmoid(X @ theta)
    return X.T @ ((mu * (1 - mu))[:, None] * X)


@dc.gradient(
    of=nll,
    wrt="theta",
    inputs=DATA,
    name="logistic.gradient_as_in_notes",
    expect=dc.fails("the notes write y - mu: a sign typo, kept as written"),
)
def nll_gradient_typo(theta, X, y):
    return X.T @ (y - jax.nn.sigmoid(X @ theta))
