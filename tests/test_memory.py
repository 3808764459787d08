"""One process checking many distinct derivations keeps a bounded number of compiled programs.

Each compiled executable holds memory mappings of its machine code; keeping every one (as a
``lru_cache(maxsize=1024)`` did) ran Linux's ``vm.max_map_count`` out after a few hundred
derivations (SIGSEGV). With the caches bounded (:data:`derivcheck._checks._engine.COMPILED_KEPT`,
made 8 here so that the bound is reached quickly) the mappings stop growing once they are full.
"""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import jax.numpy as jnp
    import derivcheck as dc

    def maps():
        with open("/proc/self/maps") as f:
            return sum(1 for _ in f)

    def declare(i):  # a distinct function each time: nothing compiled can be reused
        c = 1.0 + i
        spec = dc.inputs(x=dc.normal("n"), sizes=[{"n": 3}], regimes=("typical",))

        @dc.gradient(of=lambda x: jnp.sum(c * x**2), inputs=spec, name=f"g{i}")
        def g(x):
            return 2 * c * x

        return g

    counts = []
    with dc.scoped_registry():
        for i in range(N):
            r = dc.check(declare(i), trials=4)
            assert r.outcome == "holds", r.message
            counts.append(maps())
    print(counts[KEPT], counts[-1])
    """
)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux's /proc")
def test_memory_mappings_stop_growing_once_the_compiled_caches_are_full():
    kept, n = 8, 96
    env = {**os.environ, "DERIVCHECK_COMPILED_KEPT": str(kept)}
    code = SCRIPT.replace("N)", f"{n})").replace("KEPT]", f"{4 * kept}]")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    at_full, at_end = map(int, proc.stdout.split())
    # 64 more derivations after the caches filled: a leak of one executable each would add hundreds
    assert at_end - at_full < 64, (at_full, at_end)
