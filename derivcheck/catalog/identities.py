"""Identities between JAX transforms: deep-learning-assignment-2, Question 4.

"The Hessian of ψ(u, v, z) can be written as the Jacobian of its gradient":
``H = J(∇ψ)``, both sides built from JAX transforms — ``jax.hessian(ψ)``
against ``jax.jacfwd(jax.grad(ψ))`` — for random smooth ψ (a family with random
coefficients, so that no identity holds by accident of one function). The
notes list the gradient as ``[∂y/∂z, ∂y/∂v, ∂y/∂u]`` while ``H`` and ``J`` are
indexed ``(u, v, z)``: the Jacobian of the gradient *as listed* is ``H`` with
its rows reversed, so the identity needs the gradient in the order of the
variables. (The entries, including the ``∂²y/∂y²`` typo, are checked in
``hessian_jacobian``.) The symmetry of ``J(∇ψ)`` that the notes' matrices
show (``∂²y/∂u∂v`` and ``∂²y/∂v∂u`` in mirrored places) holds for smooth ψ.
"""

import jax
import jax.numpy as jnp

import derivcheck as dc

NOTES = "deep-learning-assignment-2"


def psi(p, c):
    """A random smooth ψ(u, v, z): ``c₀u²v + c₁ sin(uz) + c₂ v z³ + c₃ exp(c₄ u) v + c₅ cos(v + c₆ z)``."""
    u, v, z = p
    return (
        c[0] * u**2 * v
        + c[1] * jnp.sin(u * z)
        + c[2] * v * z**3
        + c[3] * jnp.exp(c[4] * u) * v
        + c[5] * jnp.cos(v + c[6] * z)
    )


POINT = dc.inputs(p=dc.normal(3), c=dc.normal(7), regimes=("typical", "tiny", "shifted", "constant"))


def jacobian_of_gradient(p, c):
    """``J(∇ψ)`` with ``∇ψ = (ψ_u, ψ_v, ψ_z)``: forward-mode Jacobian of the reverse-mode gradient."""
    return jax.jacfwd(jax.grad(psi), argnums=0)(p, c)


@dc.identity(
    of=jacobian_of_gradient,
    inputs=POINT,
    name="identities.hessian_is_jacobian_of_gradient",
    source=f"{NOTES}, Q4",
    statement=r"H = J(\nabla \psi), \quad \nabla \psi = \begin{bmatrix} \psi_u & \psi_v & \psi_z \end{bmatrix}^\top",
)
def hessian_of_psi(p, c):
    """``jax.hessian(ψ)`` in the order (u, v, z)."""
    return jax.hessian(psi, argnums=0)(p, c)


def jacobian_of_gradient_as_listed(p, c):
    """``J`` of the notes' ``∇y = [∂y/∂z, ∂y/∂v, ∂y/∂u]``, as a function of ``(u, v, z)``."""
    return jax.jacfwd(lambda q: jax.grad(psi)(q, c)[::-1])(p)


@dc.identity(
    of=jacobian_of_gradient_as_listed,
    inputs=POINT,
    name="identities.hessian_is_jacobian_of_gradient_as_listed",
    source=f"{NOTES}, Q4 (∇y listed as ∂y/∂z, ∂y/∂v, ∂y/∂u)",
    statement=r"H = J\left(\begin{bmatrix} \partial y/\partial z & \partial y/\partial v & \partial y/\partial u \end{bmatrix}^\top\right)",
    expect=dc.fails(
        "the gradient is listed in the order (z, v, u): its Jacobian is H with the rows reversed; H = J(∇ψ) needs ∇ψ in the order of the variables (u, v, z)"
    ),
)
def hessian_of_psi_against_listed_order(p, c):
    """``jax.hessian(ψ)``, against the Jacobian of the gradient in the order the notes list it."""
    return jax.hessian(psi, argnums=0)(p, c)


def transposed_jacobian_of_gradient(p, c):
    """``J(∇ψ)ᵀ``."""
    return jacobian_of_gradient(p, c).T


@dc.identity(
    of=transposed_jacobian_of_gradient,
    inputs=POINT,
    name="identities.jacobian_of_gradient_is_symmetric",
    source=f"{NOTES}, Q4 (∂²y/∂u∂v and ∂²y/∂v∂u in mirrored places)",
    statement=r"J(\nabla \psi) = J(\nabla \psi)^\top \quad (\psi \in C^2)",
)
def jacobian_of_gradient_symmetric(p, c):
    """Schwarz: the mixed partials agree, so ``J(∇ψ)`` equals its transpose."""
    return jacobian_of_gradient(p, c)
