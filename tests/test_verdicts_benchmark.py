"""``benchmarks/verdicts.py --tiny`` runs in-process: its table has every column, no verdict is unexpected.

The planted set's full numbers (and its timings, never asserted here) belong in ``benchmarks/README.md``.
"""

import contextlib
import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "verdicts.py"
COLUMNS = ["group", "derivation", "claim", "expected", "outcome(s)", "trials used", "seconds (cold)"]


def _load():
    spec = importlib.util.spec_from_file_location("derivcheck_bench_verdicts", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _load()


@pytest.fixture(scope="module")
def tiny(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("verdicts") / "verdicts.json"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        rc = bench.main(["--tiny", "--json", str(out)])
    return rc, stdout.getvalue(), json.loads(out.read_text())


def test_the_table_has_every_column_and_a_row_per_derivation(tiny):
    _, text, doc = tiny
    header = text.splitlines()[0]
    assert [c.strip() for c in header.strip("|").split("|")] == COLUMNS
    for row in doc["rows"]:
        assert f"| {row['group']} | {row['derivation']} | {row['claim']} | {row['expected']} |" in text
        assert row["first_seconds"] > 0 and row["trials_used"] == [20]
    assert "wrong caught" in text and "right held" in text and "failing/passing time ratio" in text


def test_no_verdict_is_unexpected_and_every_verdict_is_planted(tiny):
    rc, text, doc = tiny
    s = doc["summary"]
    assert rc == 0 and s["unexpected"] == [] and "unexpected: 0" in text, s["unexpected"]
    assert {r["expected"] for r in doc["rows"]} == {"holds", "fails", "inconclusive"}
    assert {r["claim"] for r in doc["rows"]} >= {"gradient", "jacobian"}
    for key in ("wrong_caught", "right_held", "inconclusive"):
        k, n = s[key]
        assert n > 0 and k == n, key
    assert s["ratio"]["median"] > 0


def test_an_unexpected_verdict_is_listed_and_counted_against(bench):
    """The summary is not vacuous: a right formula that failed shows up, named, and is not counted held."""
    row = {
        "group": "g",
        "derivation": "g.right",
        "claim": "gradient",
        "expected": "holds",
        "outcomes": ["holds", "fails"],
        "unexpected": [1],
        "first_seconds": 1.0,
        "messages": ["matches", "differs from jax.grad"],
    }
    s = bench.summary([row])
    assert s["right_held"] == (1, 2)
    assert s["unexpected"] == ["g.right seed 1: fails (expected holds): differs from jax.grad"]


def test_the_full_set_covers_every_group_kind_and_verdict(bench):
    """Declaring the set is cheap (nothing is compiled): every group has right and wrong derivations."""
    items = bench.planted()
    groups = {i.group for i in items}
    assert groups == set(bench.GROUPS)
    for g in groups:
        expected = [i.expected for i in items if i.group == g]
        assert len(expected) - expected.count("fails") >= 2 and expected.count("fails") >= 2, g  # two pairs
    assert {i.derivation.claim.__class__.__name__ for i in items} >= {
        "Gradient",
        "Jacobian",
        "Hessian",
        "VJP",
        "JVP",
        "Definite",
    }
    assert sum(i.expected == "inconclusive" for i in items) >= 2
