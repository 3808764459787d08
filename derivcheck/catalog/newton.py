"""Newton's method: deep-learning-assignment-2, Question 6.

The notes prove that Newton's method ``x_{k+1} = x_k − f(x_k)/f'(x_k)`` on
``f = g'`` converges to the root ``x*`` of ``f`` (the stationary point of
``g``) when ``f'(x*) ≠ 0``. Their error recursion ends with

.. math::

    |x_{k-1} - x^*| \\le \\frac{(x_k - x^*)^2}{2 |f'(x_k)|} |f''(s_k)| ,

indexing ``x_{k−1}`` where ``x_{k+1}`` is meant: as written it says
``e_{k−1} ≤ C e_k²``, i.e. ``e_k ≳ (e_{k−1}/C)^{1/2}`` — order 1/2, an iteration
that could not converge. Read as intended it is quadratic convergence,
``e_{k+1} ≈ C e_k²`` with ``C = |f''(x*) / (2 f'(x*))|``.

The checks run Newton on ``g(x) = softplus(x + c) − σ(c) x`` — a one-weight
logistic loss, ``f = g' = σ(x + c) − σ(c)``, root ``x* = 0``, minimum of ``g``,
``f'(0) = σ'(c) ≠ 0``, ``C = |1 − 2σ(c)|/2`` — with ``c ∈ [0.5, 3]`` (``C`` from
0.12 to 0.45; at ``c = 0``, ``f''(0) = 0`` and the order would be 3). The
proof's conclusion "converges" is local: from far starts Newton on a
sigmoid-shaped ``f`` overshoots and diverges. At a double root
(``f'(x*) = 0``, excluded by the notes' assumption) the order drops to 1 with
``C = 1/2``. And Newton on ``g'`` finds stationary points, not minima: started
near a maximum of ``g`` it converges to the maximum.
"""

import jax
import jax.numpy as jnp

import derivcheck as dc

NOTES = "deep-learning-assignment-2"

# x: the start (near the root x* = 0); c: the offset of the logistic loss.
NEAR = dc.inputs(x=dc.uniform(low=-1.0, high=1.0), c=dc.uniform(low=0.5, high=3.0), regimes=("typical",))
FAR = dc.inputs(x=dc.normal(scale=8.0), c=dc.uniform(low=0.5, high=3.0), regimes=("typical",))


def newton_step(x, c):
    """``x − f(x)/f'(x)`` for ``f(x) = σ(x + c) − σ(c)``, ``f'(x) = σ(x + c)(1 − σ(x + c))``."""
    s = jax.nn.sigmoid(x + c)
    return x - (s - jax.nn.sigmoid(c)) / (s * (1 - s))


def root(x, c):
    """``x* = 0`` for every start and offset."""
    return jnp.zeros_like(x)


def quadratic_constant(x_star, c):
    """``C = |f''(x*) / (2 f'(x*))| = |1 − 2σ(c)| / 2``."""
    return jnp.abs(1 - 2 * jax.nn.sigmoid(c)) / 2


@dc.convergence_order(
    2.0,
    constant=quadratic_constant,
    root=root,
    inputs=NEAR,
    name="newton.quadratic_near_simple_root",
    source=f"{NOTES}, Q6 (the recursion read with x_{{k+1}}: e_{{k+1}} ≤ e_k² |f''| / (2|f'|))",
    statement=r"|x_{k+1} - x^*| \approx \frac{|f''(x^*)|}{2 |f'(x^*)|} (x_k - x^*)^2 \quad (f'(x^*) \neq 0)",
)
def quadratic(x, c):
    """Newton's step on ``f = g'``: converges quadratically near the simple root."""
    return newton_step(x, c)


@dc.convergence_order(
    0.5,
    root=root,
    inputs=NEAR,
    name="newton.error_recursion_as_written",
    source=f"{NOTES}, Q6 (|x_{{k−1}} − x*| ≤ (x_k − x*)² |f''(s_k)| / (2|f'(x_k)|))",
    statement=r"|x_{k-1} - x^*| \le \frac{(x_k - x^*)^2}{2 |f'(x_k)|} |f''(s_k)|",
    expect=dc.fails(
        "indexes x_{k−1} where x_{k+1} is meant: as written e_{k−1} ≤ C e_k², i.e. e_k ≥ (e_{k−1}/C)^{1/2} (order 1/2); Newton's errors satisfy e_{k+1} ≈ C e_k² (order 2)"
    ),
)
def recursion_as_written(x, c):
    """The same Newton step, against the order the recursion states as written."""
    return newton_step(x, c)


@dc.convergence_order(
    None,
    root=root,
    inputs=FAR,
    name="newton.converges_from_any_start",
    source=f"{NOTES}, Q6 ('for k → ∞ we have x_k → x*', no condition on x_0)",
    statement=r"x_k \to x^* \quad \text{for every } x_0",
    expect=dc.fails(
        "the proof is local (the Taylor remainder needs x_k near x*): from far starts Newton on σ(x + c) − σ(c) overshoots, f' underflows and the iterates diverge"
    ),
)
def from_any_start(x, c):
    """Newton's step from starts drawn far from the root (scale 8)."""
    return newton_step(x, c)


def double_root_step(x, c):
    """Newton on ``f(x) = x (σ(x + c) − σ(c))``, a double root at 0: ``f' = σ(x + c) − σ(c) + x σ'(x + c)``."""
    s = jax.nn.sigmoid(x + c)
    d = s - jax.nn.sigmoid(c)
    return x - x * d / (d + x * s * (1 - s))


@dc.convergence_order(
    2.0,
    root=root,
    inputs=NEAR,
    name="newton.quadratic_at_double_root",
    source=f"{NOTES}, Q6 (the assumption f'(x*) ≠ 0 dropped)",
    statement=r"|x_{k+1} - x^*| \approx C (x_k - x^*)^2 \quad (f'(x^*) = 0)",
    expect=dc.fails("needs f'(x*) ≠ 0: at a double root Newton converges only linearly, e_{k+1} ≈ e_k / 2"),
)
def quadratic_at_double_root(x, c):
    """Newton's step where the notes' assumption fails."""
    return double_root_step(x, c)


@dc.convergence_order(
    1.0,
    constant=0.5,
    root=root,
    inputs=NEAR,
    name="newton.linear_at_double_root",
    source=f"{NOTES}, Q6 (what holds when f'(x*) = 0)",
    statement=r"|x_{k+1} - x^*| \approx \tfrac12 |x_k - x^*| \quad (\text{double root})",
)
def linear_at_double_root(x, c):
    """At a root of multiplicity 2 the Newton error halves each step: order 1, ``C = 1/2``."""
    return double_root_step(x, c)


def quartic_newton_step(x, b):
    """Newton on ``f = g' = x³ − b x`` for ``g(x) = x⁴/4 − b x²/2`` (minima ±√b, maximum 0)."""
    return x - (x**3 - b * x) / (3 * x**2 - b)


@dc.convergence_order(
    None,
    root=lambda x, b: jnp.sign(x) * jnp.sqrt(b),
    inputs=dc.inputs(x=dc.normal(scale=0.2), b=dc.uniform(low=0.5, high=2.0), regimes=("typical",)),
    name="newton.finds_minimum_of_g",
    source=f"{NOTES}, Q6 ('the second order Newton method … also converges for the optimal point of g')",
    statement=r"x_{k+1} = x_k - \frac{g'(x_k)}{g''(x_k)} \to \arg\min g",
    expect=dc.fails(
        "Newton on f = g' finds any stationary point of g: started near the maximum x = 0 of g(x) = x⁴/4 − b x²/2 it converges to that maximum (g''(0) = −b < 0), not to a minimiser ±√b"
    ),
)
def finds_minimum_of_g(x, b):
    """Newton's step for minimising ``g``, started near its local maximum."""
    return quartic_newton_step(x, b)
