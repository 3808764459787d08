"""The Hessian as the Jacobian of the gradient: deep-learning-assignment-2, Question 4.

The notes take a scalar ``y = ψ(u, v, z)`` of three scalars, write its
gradient as ``∇y = [∂y/∂z, ∂y/∂v, ∂y/∂u]`` (in the order z, v, u), the
Jacobian of the gradient ``J(∇y)`` with rows and columns in the order
(u, v, z) and first entry ``∂²y/∂y²``, and the Hessian ``H`` of ψ in the order
(u, v, z), and conclude ``H = J(∇y)``.

The notes leave ψ abstract. The checks use one concrete smooth ψ whose six
second derivatives are all different and non-zero at generic points,

    ψ(u, v, z) = u³v + v² sin z + z² cos u,

so that a swapped entry, a reversed order or a wrong entry cannot hide; the
hand-derived partials below are of this ψ. The variable vector is
``p = (u, v, z)``, the order of ψ's arguments and of ``J(∇y)`` and ``H``.
"""

import jax
import jax.numpy as jnp

import derivcheck as dc

NOTES = "deep-learning-assignment-2"


def psi(p):
    """``ψ(u, v, z) = u³v + v² sin z + z² cos u`` at ``p = (u, v, z)``."""
    u, v, z = p
    return u**3 * v + v**2 * jnp.sin(z) + z**2 * jnp.cos(u)


def gradient_of_psi(p):
    """``∇ψ`` in the order (u, v, z), by JAX: the function whose Jacobian is taken."""
    return jax.grad(psi)(p)


def gradient_of_psi_notes_order(p):
    """The notes' ``∇y = [∂y/∂z, ∂y/∂v, ∂y/∂u]``, by JAX, as a function of ``(u, v, z)``."""
    return jax.grad(psi)(p)[::-1]


def _first(p):
    """``(ψ_u, ψ_v, ψ_z)`` by hand."""
    u, v, z = p
    return (
        3 * u**2 * v - z**2 * jnp.sin(u),
        u**3 + 2 * v * jnp.sin(z),
        v**2 * jnp.cos(z) + 2 * z * jnp.cos(u),
    )


def _second(p):
    """The six second partials of ψ by hand: ``uu, uv, uz, vv, vz, zz``."""
    u, v, z = p
    return {
        "uu": 6 * u * v - z**2 * jnp.cos(u),
        "uv": 3 * u**2,
        "uz": -2 * z * jnp.sin(u),
        "vv": 2 * jnp.sin(z),
        "vz": 2 * v * jnp.cos(z),
        "zz": -(v**2) * jnp.sin(z) + 2 * jnp.cos(u),
    }


def _matrix(s, top_left):
    """The notes' 3 × 3 layout in the order (u, v, z), with a chosen (1, 1) entry."""
    return jnp.array(
        [
            [top_left, s["uv"], s["uz"]],
            [s["uv"], s["vv"], s["vz"]],
            [s["uz"], s["vz"], s["zz"]],
        ]
    )


POINT = dc.inputs(p=dc.normal(3))


@dc.gradient(
    of=psi,
    wrt="p",
    inputs=POINT,
    name="hessian_jacobian.gradient_as_written",
    source=f"{NOTES}, Q4, gradient of y",
    statement=r"\nabla y = \begin{bmatrix} \frac{\partial y}{\partial z} \\ \frac{\partial y}{\partial v} \\ \frac{\partial y}{\partial u} \end{bmatrix}",
    expect=dc.fails(
        "lists ∂y/∂z, ∂y/∂v, ∂y/∂u: the reverse of the order (u, v, z) of ψ's arguments, of J(∇y) and of H"
    ),
)
def gradient_as_written(p):
    """``[ψ_z, ψ_v, ψ_u]`` claimed as the gradient w.r.t. ``(u, v, z)``."""
    du, dv, dz = _first(p)
    return jnp.stack([dz, dv, du])


@dc.gradient(
    of=psi,
    wrt="p",
    inputs=POINT,
    name="hessian_jacobian.gradient",
    source=f"{NOTES}, Q4, gradient of y in the order (u, v, z)",
    statement=r"\nabla y = \begin{bmatrix} \frac{\partial y}{\partial u} \\ \frac{\partial y}{\partial v} \\ \frac{\partial y}{\partial z} \end{bmatrix}",
)
def gradient(p):
    """``[ψ_u, ψ_v, ψ_z]``."""
    return jnp.stack(_first(p))


@dc.jacobian(
    of=gradient_of_psi,
    wrt="p",
    inputs=POINT,
    name="hessian_jacobian.jacobian_of_gradient_as_written",
    source=f"{NOTES}, Q4, J(∇y) with first entry ∂²y/∂y²",
    statement=r"J(\nabla y) = \begin{bmatrix} \frac{\partial^2 y}{\partial y^2} & \frac{\partial^2 y}{\partial u \partial v} & \frac{\partial^2 y}{\partial u \partial z} \\ \frac{\partial^2 y}{\partial v \partial u} & \frac{\partial^2 y}{\partial v^2} & \frac{\partial^2 y}{\partial v \partial z} \\ \frac{\partial^2 y}{\partial z \partial u} & \frac{\partial^2 y}{\partial z \partial v} & \frac{\partial^2 y}{\partial z^2} \end{bmatrix}",
    expect=dc.fails("entry (1, 1) is ∂²y/∂y², which is 0 (y differentiated by itself); ∂²y/∂u² is meant"),
)
def jacobian_of_gradient_as_written(p):
    """The notes' ``J(∇y)``, with ``∂²y/∂y²`` read literally as 0."""
    return _matrix(_second(p), 0.0)


@dc.jacobian(
    of=gradient_of_psi,
    wrt="p",
    inputs=POINT,
    name="hessian_jacobian.jacobian_of_gradient",
    source=f"{NOTES}, Q4, J(∇y) with ∂²y/∂u² in entry (1, 1), gradient in the order (u, v, z)",
    statement=r"J(\nabla y) = \begin{bmatrix} \frac{\partial^2 y}{\partial u^2} & \frac{\partial^2 y}{\partial u \partial v} & \frac{\partial^2 y}{\partial u \partial z} \\ \frac{\partial^2 y}{\partial v \partial u} & \frac{\partial^2 y}{\partial v^2} & \frac{\partial^2 y}{\partial v \partial z} \\ \frac{\partial^2 y}{\partial z \partial u} & \frac{\partial^2 y}{\partial z \partial v} & \frac{\partial^2 y}{\partial z^2} \end{bmatrix}",
)
def jacobian_of_gradient(p):
    """``J(∇y)`` with the typo fixed, for ``∇y`` listed in the order (u, v, z)."""
    s = _second(p)
    return _matrix(s, s["uu"])


@dc.jacobian(
    of=gradient_of_psi_notes_order,
    wrt="p",
    inputs=POINT,
    name="hessian_jacobian.jacobian_of_gradient_notes_order",
    source=f"{NOTES}, Q4, J(∇y) for ∇y as listed (z, v, u), typo fixed",
    statement=r"J\left(\begin{bmatrix} \partial y/\partial z \\ \partial y/\partial v \\ \partial y/\partial u \end{bmatrix}\right) = \begin{bmatrix} \frac{\partial^2 y}{\partial u^2} & \frac{\partial^2 y}{\partial u \partial v} & \frac{\partial^2 y}{\partial u \partial z} \\ \vdots & & \vdots \end{bmatrix}",
    expect=dc.fails(
        "the Jacobian of ∇y listed as (∂y/∂z, ∂y/∂v, ∂y/∂u) has the rows of H in reverse order: the gradient must be listed in the order of the variables"
    ),
)
def jacobian_of_gradient_notes_order(p):
    """The (typo-fixed) matrix of the notes, against the Jacobian of the gradient as they list it."""
    s = _second(p)
    return _matrix(s, s["uu"])


@dc.hessian(
    of=psi,
    wrt="p",
    inputs=POINT,
    name="hessian_jacobian.hessian",
    source=f"{NOTES}, Q4, Hessian of ψ",
    statement=r"H = \begin{bmatrix} \frac{\partial^2 \psi}{\partial u^2} & \frac{\partial^2 \psi}{\partial u \partial v} & \frac{\partial^2 \psi}{\partial u \partial z} \\ \frac{\partial^2 \psi}{\partial v \partial u} & \frac{\partial^2 \psi}{\partial v^2} & \frac{\partial^2 \psi}{\partial v \partial z} \\ \frac{\partial^2 \psi}{\partial z \partial u} & \frac{\partial^2 \psi}{\partial z \partial v} & \frac{\partial^2 \psi}{\partial z^2} \end{bmatrix}",
)
def hessian(p):
    """``H`` of the concrete ψ, in the order (u, v, z): the same matrix as ``jacobian_of_gradient``."""
    s = _second(p)
    return _matrix(s, s["uu"])
