"""The benchmark's claims, written four ways: as derivations, and as what each alternative needs.

* softmax cross-entropy gradient ``∇_z L = softmax(z) − y``;
* logistic-regression Hessian ``H = Xᵀ S X``, ``S = diag(μ(1 − μ))``;
* the mean-only batch-norm backward pass: ``y = x − mean_batch(x)``, ``dx = dy − mean_batch(dy)``.

Each :class:`Claim` holds the derivation (registered in a private registry,
so the benchmark never touches the catalog), plain-JAX functions for the floor
and the per-trial loop, wrappers that hand the derived formula to
``jax.test_util.check_grads`` (as a custom VJP/JVP compared with finite
differences), and the same for ``torch.autograd.gradcheck`` when torch is
installed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import derivcheck as dc

REGISTRY = dc.Registry()


def cross_entropy(z, y):
    return -jnp.sum(y * jax.nn.log_softmax(z))


def softmax_ce_grad(z, y):
    return jax.nn.softmax(z) - y


def logistic_cost(theta, X, y):
    z = X @ theta
    return jnp.sum(jnp.logaddexp(0.0, z) - y * z)


def logistic_hessian(theta, X, y):
    mu = jax.nn.sigmoid(X @ theta)
    return X.T @ ((mu * (1 - mu))[:, None] * X)


def center(x):
    """Mean-only batch norm over the batch axis: ``x − mean(x, axis=0)``."""
    return x - jnp.mean(x, axis=0)


def center_backward(x, ct):
    return ct - jnp.mean(ct, axis=0)


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim, with everything each method needs."""

    name: str
    derivation: dc.Derivation
    derived: Callable  # the hand formula, on one trial's arguments (a VJP also takes the cotangent)
    reference: Callable  # JAX's side, same signature
    check_grads: Callable  # (args) -> None, raises AssertionError on a mismatch
    torch_check: Callable | None  # (args as numpy) -> bool, or None without torch
    needs_cotangent: bool = False


def _custom_vjp_loss(of, derived_grad, wrt: int):
    """``of`` whose reverse-mode derivative w.r.t. ``args[wrt]`` is the hand formula."""

    @jax.custom_vjp
    def f(*args):
        return of(*args)

    def fwd(*args):
        return of(*args), args

    def bwd(args, g):
        grads = [jnp.zeros_like(a) for a in args]
        grads[wrt] = g * derived_grad(*args)
        return tuple(grads)

    f.defvjp(fwd, bwd)
    return f


def _gradient_with_hessian_jvp(of, hessian):
    """``x ↦ ∇of(x, *rest)`` whose forward-mode derivative is the hand Hessian (dense) times the tangent."""

    @jax.custom_jvp
    def grad(theta, X, y):
        return jax.grad(of)(theta, X, y)

    @grad.defjvp
    def grad_jvp(primals, tangents):
        theta, X, y = primals
        return grad(theta, X, y), hessian(theta, X, y) @ tangents[0]

    return grad


def _custom_vjp_map(of, backward):
    @jax.custom_vjp
    def f(x):
        return of(x)

    f.defvjp(lambda x: (of(x), x), lambda x, ct: (backward(x, ct),))
    return f


def _jax_checks():
    from jax.test_util import check_grads

    ce = _custom_vjp_loss(cross_entropy, softmax_ce_grad, 0)
    hess = _gradient_with_hessian_jvp(logistic_cost, logistic_hessian)
    bn = _custom_vjp_map(center, center_backward)
    return {
        "softmax_ce.gradient": lambda z, y: check_grads(lambda z: ce(z, y), (z,), order=1, modes=["rev"]),
        "logistic.hessian": lambda t, X, y: check_grads(lambda t: hess(t, X, y), (t,), order=1, modes=["fwd"]),
        "batch_norm.mean_only_backward": lambda x, ct: check_grads(bn, (x,), order=1, modes=["rev"]),
    }


def _torch_checks() -> dict[str, Callable] | None:
    try:
        import torch
    except ImportError:
        return None

    class CrossEntropy(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z, y):
            ctx.save_for_backward(z, y)
            return -(y * torch.log_softmax(z, dim=-1)).sum()

        @staticmethod
        def backward(ctx, g):
            z, y = ctx.saved_tensors
            return g * (torch.softmax(z, dim=-1) - y), None

    class LogisticGradient(torch.autograd.Function):
        """``θ ↦ Xᵀ(σ(Xθ) − y)`` whose backward is the hand Hessian ``XᵀSX`` (symmetric) times ``g``."""

        @staticmethod
        def forward(ctx, theta, X, y):
            ctx.save_for_backward(theta, X)
            return X.T @ (torch.sigmoid(X @ theta) - y)

        @staticmethod
        def backward(ctx, g):
            theta, X = ctx.saved_tensors
            mu = torch.sigmoid(X @ theta)
            return X.T @ ((mu * (1 - mu))[:, None] * X) @ g, None, None

    class Center(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x - x.mean(dim=0)

        @staticmethod
        def backward(ctx, ct):
            return ct - ct.mean(dim=0)

    def grad_check(fn, *args):
        tensors = [torch.from_numpy(np.array(a, dtype=np.float64)) for a in args]
        tensors[0].requires_grad_(True)
        return torch.autograd.gradcheck(lambda x: fn(x, *tensors[1:]), (tensors[0],), raise_exception=False)

    return {
        "softmax_ce.gradient": lambda z, y: grad_check(CrossEntropy.apply, z, y),
        "logistic.hessian": lambda t, X, y: grad_check(LogisticGradient.apply, t, X, y),
        "batch_norm.mean_only_backward": lambda x, ct: grad_check(Center.apply, x),
    }


def claims() -> list[Claim]:
    """The three claims (the derivations are registered once)."""
    if "softmax_ce.gradient" not in REGISTRY:
        dc.gradient(
            of=cross_entropy,
            wrt="z",
            inputs=dc.inputs(z=dc.normal("K"), y=dc.one_hot(classes="K")),
            name="softmax_ce.gradient",
            registry=REGISTRY,
        )(softmax_ce_grad)
        dc.hessian(
            of=logistic_cost,
            wrt="theta",
            inputs=dc.inputs(theta=dc.normal("d"), X=dc.full_rank("m", "d"), y=dc.bernoulli("m")),
            name="logistic.hessian",
            registry=REGISTRY,
        )(logistic_hessian)
        dc.vjp(
            of=center,
            wrt="x",
            inputs=dc.inputs(x=dc.normal("m", "n")),
            name="batch_norm.mean_only_backward",
            registry=REGISTRY,
        )(center_backward)
    jax_checks = _jax_checks()
    torch_checks = _torch_checks()
    refs: dict[str, Callable] = {
        "softmax_ce.gradient": jax.grad(cross_entropy),
        "logistic.hessian": jax.hessian(logistic_cost),
        "batch_norm.mean_only_backward": lambda x, ct: jax.vjp(center, x)[1](ct)[0],
    }
    derived = {
        "softmax_ce.gradient": softmax_ce_grad,
        "logistic.hessian": logistic_hessian,
        "batch_norm.mean_only_backward": center_backward,
    }
    return [
        Claim(
            name=name,
            derivation=REGISTRY[name],
            derived=derived[name],
            reference=refs[name],
            check_grads=jax_checks[name],
            torch_check=None if torch_checks is None else torch_checks[name],
            needs_cotangent=name == "batch_norm.mean_only_backward",
        )
        for name in REGISTRY.names()
    ]


def draw(claim: Claim, trials: int, seed: int = 0) -> list[tuple[Any, ...]]:
    """The inputs derivcheck draws for ``trials`` trials, one tuple of stacked arrays per size set.

    The same per-size-set, per-regime split as :func:`derivcheck.check`, so
    every method sees the same trials (a VJP's cotangent is appended).
    """
    d = claim.derivation
    spec = d.inputs
    per = max(1, math.ceil(trials / (len(spec.sizes) * len(spec.regimes))))
    batches = []
    for sizes in spec.sizes:
        parts = [spec.sample(seed, d.name, per, sizes, r, d.arg_names) for r in spec.regimes]
        args = [np.concatenate(cols) for cols in zip(*parts, strict=True)]
        if claim.needs_cotangent:
            rng = np.random.default_rng([seed, len(batches)])
            args.append(rng.standard_normal(args[0].shape))
        batches.append(tuple(args))
    return batches
