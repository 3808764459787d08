"""Isolating one case of a piecewise derivative, exactly, for the reference side.

The notes often derive a Jacobian or Hessian case by case ("for i = k …",
"for i ≠ k …", "the block c = c' …"). A case is a claim in its own right,
but a claim compares a *whole* derivative with JAX's. These helpers build,
from the notes' function ``f``, a function whose derivative is exactly one
case of ``f``'s and zero elsewhere, by holding the other entries constant
with ``lax.stop_gradient``: the value is ``f``'s, only the derivative is
masked. They are used in ``of=`` (the trusted side), never in a derived
function, and involve no finite differences.

* :func:`vary_only` — ``x`` with the derivative flowing only where ``mask``.
* :func:`own_entry` / :func:`other_entries` — for a vector map ``f``, the
  Jacobians of these are the diagonal ``∂f_i/∂x_i`` (the case ``i = k``) and
  the off-diagonal part (``i ≠ k``) of ``∂f/∂x``.
* :func:`blocks_only` / :func:`off_blocks_only` — for a scalar ``f`` and a
  partition of ``x`` into blocks, the Hessians of these are the block-diagonal
  part of ``∇²f`` and the rest.
"""

import jax
import jax.numpy as jnp


def vary_only(x, mask):
    """``x`` unchanged in value; its derivative is kept where ``mask`` holds and cut elsewhere.

    >>> import jax
    >>> f = lambda x: jnp.sum(vary_only(x, jnp.array([True, False])) ** 2)
    >>> jax.grad(f)(jnp.array([1.0, 2.0])).tolist()
    [2.0, 0.0]
    """
    return jnp.where(mask, x, jax.lax.stop_gradient(x))


def own_entry(f):
    """``g(x, *rest)_i = f(x, *rest)_i`` with only ``x_i`` variable: ``∂g/∂x = diag(∂f_i/∂x_i)``."""

    def g(x, *rest):
        masks = jnp.eye(x.shape[-1], dtype=bool)
        rows = jax.vmap(lambda m: f(vary_only(x, m), *rest))(masks)
        return jnp.diagonal(rows)

    return g


def other_entries(f):
    """``g(x, *rest)_i = f(x, *rest)_i`` with ``x_i`` held: ``∂g/∂x`` is ``∂f/∂x`` with a zero diagonal."""

    def g(x, *rest):
        masks = ~jnp.eye(x.shape[-1], dtype=bool)
        rows = jax.vmap(lambda m: f(vary_only(x, m), *rest))(masks)
        return jnp.diagonal(rows)

    return g


def blocks_only(f, masks):
    """``g(x, *rest) = Σ_b f(x varying only in block b, *rest)``: ``∇²g`` is the block-diagonal part of ``∇²f``.

    ``masks`` has one boolean array shaped like ``x`` per block (a partition of ``x``).
    """

    def g(x, *rest):
        return jnp.sum(jax.vmap(lambda m: f(vary_only(x, m), *rest))(masks))

    return g


def off_blocks_only(f, masks):
    """``g = f − blocks_only(f, masks)``: ``∇²g`` is ``∇²f`` with its diagonal blocks zeroed."""
    diagonal = blocks_only(f, masks)

    def g(x, *rest):
        return f(x, *rest) - diagonal(x, *rest)

    return g


def column_masks(rows: int, cols: int):
    """One mask per column of a ``rows × cols`` matrix (the blocks ``w_c`` of ``w = [w_1 … w_C]``)."""
    return jnp.eye(cols, dtype=bool)[:, None, :].repeat(rows, axis=1)
