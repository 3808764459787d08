"""Importing derivcheck keeps XLA:CPU from deadlocking on concurrent batched LAPACK calls (``derivcheck/__init__.py``).

jaxlib 0.10 splits a large batch of a LAPACK call (``solve``'s LU and triangular solves) over XLA:CPU's
intra-op thread pool and blocks until its chunks are done; when the program runs as many such calls at once as
the pool has threads, every thread blocks and the program never returns. On a 2-core machine four independent
batched solves of 4096 5×5 systems did so within a few calls, every time.
"""

import os
import subprocess
import sys

PROGRAM = """
import derivcheck
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)

def four_solves(a, b, c, d):  # independent: the thunk executor runs them at once
    return (jnp.linalg.solve(a, b) + jnp.linalg.solve(c, d) + jnp.linalg.solve(a.T, d) + jnp.linalg.solve(c.T, b)).sum()

f = jax.jit(jax.vmap(four_solves))
eye = 5 * jnp.eye(5)
for i in range(20):
    k = jax.random.split(jax.random.PRNGKey(i), 4)
    a, c = jax.random.normal(k[0], (4096, 5, 5)) + eye, jax.random.normal(k[1], (4096, 5, 5)) + eye
    b, d = jax.random.normal(k[2], (4096, 5)), jax.random.normal(k[3], (4096, 5))
    f(a, b, c, d).block_until_ready()
print("done")
"""


def test_concurrent_batched_lapack_calls_finish():
    env = {k: v for k, v in os.environ.items() if k not in ("NPROC", "XLA_FLAGS")}
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0 and out.stdout.strip() == "done", out.stderr[-2000:]


def test_a_users_nproc_is_kept():
    env = {**os.environ, "NPROC": "3"}
    code = "import derivcheck, os; print(os.environ['NPROC'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "3", out.stderr[-2000:]
