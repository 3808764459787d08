"""The benchmark runs, at its tiny size, and prints every method's row and every ratio (so it cannot rot).

Timings are never asserted: they belong in ``benchmarks/README.md``.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"
METHODS = [
    "derivcheck.check",
    "floor: bare jit(vmap)",
    "floor + the same draws",
    "python loop + jax.grad",
    "jax check_grads (FD)",
    "torch gradcheck (FD)",
]
CLAIMS = ["softmax_ce.gradient", "logistic.hessian", "batch_norm.mean_only_backward"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    env = {**os.environ, "DERIVCHECK_NO_CACHE": "1"}  # the run-all section uses its own temporary cache folder
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--tiny", "--json", str(out)], capture_output=True, text=True, env=env, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout, json.loads(out.read_text())


def test_throughput_table_has_every_method_and_ratio(tiny):
    text, doc = tiny
    rows = doc["throughput"]
    assert {(r["claim"], r["method"]) for r in rows} == {(c, m) for c in CLAIMS for m in METHODS}
    for r in rows:
        if r["method"] == "torch gradcheck (FD)" and r["trials"] == 0:
            continue  # torch not installed: the row says so
        assert r["trials"] > 0 and r["seconds"] > 0 and r["trials_per_s"] > 0
        assert r["derivcheck_speedup"] > 0
        assert r["flagged"] in (None, 0) or r["method"] == "python loop + jax.grad"
        assert r["claim"] in text
    assert "the bare floor" in text and "the floor with its draws" in text and text.count("×") >= len(rows)


def test_run_all_cold_warm_and_no_cache(tiny):
    _, doc = tiny
    modes = {r["mode"]: r for r in doc["run_all"]}
    assert set(modes) == {"cold", "warm", "no cache", "cold, --jobs 1", "warm, --jobs 1"}
    for r in modes.values():
        assert r["exit"] == 0 and r["wall"] > 0 and r["peak_mib"] > 0 and r["derivations"] >= 1
    one, again = modes["cold, --jobs 1"], modes["warm, --jobs 1"]  # in one process, where JAX's events are seen
    assert one["compile"] > 0  # the cold run compiles; the warm one loads from the cache
    assert again["compile"] < one["compile"]


def test_matrix_free_section_takes_the_matrix_free_path(tiny):
    _, doc = tiny
    (row,) = doc["matrix_free"]
    assert row["params"] > 512
    # the Hessian is singular (softmax is shift-invariant): Lanczos finds no negative direction, and its bound
    # cannot prove PSD in fewer steps than parameters, so the PSD half is inconclusive (matrix_free.py)
    assert row["equality"]["outcome"] == "holds" and row["psd"]["outcome"] == "inconclusive"
    assert row["equality"]["path"] == row["psd"]["path"] == "matrix-free"


def test_failing_cost_pairs_each_expected_failure_with_a_correct_twin(tmp_path):
    """``benchmarks/failing_cost.py --tiny``: a table of pairs and their median ratio (times not asserted)."""
    out = tmp_path / "cost.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "failing_cost.py"
    env = {**os.environ, "DERIVCHECK_NO_CACHE": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), "--tiny", "--limit", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert len(rows) == 1 and rows[0]["outcomes"] == ["fails", "holds"] and rows[0]["ratio"] > 0
    assert "median ratio" in proc.stdout
