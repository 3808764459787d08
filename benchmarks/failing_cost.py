"""What a failing check costs against its correct twin: every catalog expected failure, side by side.

A failing derivation pays for more than its verdict: the rounding analysis of
its failing trials (the conditioning pass), the evidence (the failing rows'
values) and the diagnosis. Issue #17 asks that this cost at most about twice
the check of the *correct twin*: a derivation of the catalog that is expected
to hold, with the same claim kind and the same ``of`` (the same function
object, or the same code), preferring one from the same module.

Each pair is checked cold (nothing compiled yet in this process for either
derivation, no persistent compilation cache), the twin first, with the same
trials and seed; the table gives both times and their ratio, and the median
ratio over the pairs. A twin shared by several failures is timed once (its
first, cold check). Both checks include compilation: that is what a user
waits for, and most of what a failure adds (the conditioning program).

Usage::

    python benchmarks/failing_cost.py                   # every pair, 300 trials (minutes)
    python benchmarks/failing_cost.py --tiny            # three pairs, 30 trials (the smoke test)
    python benchmarks/failing_cost.py --pattern 'softmax_regression.*' --json out.json
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import statistics
import sys
import time

os.environ.setdefault("DERIVCHECK_NO_CACHE", "1")  # cold compiles, as a new user's first run

import derivcheck as dc
import derivcheck.catalog


def _code(fn):
    return getattr(fn, "__code__", None) or fn


def _same_of(a, b) -> bool:
    fa, fb = getattr(a.claim, "of", None), getattr(b.claim, "of", None)
    return fa is not None and fb is not None and (fa is fb or _code(fa) is _code(fb))


def pairs(pattern: str = "*") -> list[tuple[object, object]]:
    """``(failing, twin)`` for every expected failure matching ``pattern`` that has a correct twin."""
    everything = dc.registry().select()
    out = []
    for d in everything:
        if d.expect.word == "holds" or not fnmatch.fnmatchcase(d.name, pattern):
            continue
        twins = [
            e
            for e in everything
            if e.expect.word == "holds" and type(e.claim) is type(d.claim) and e.kind == d.kind and _same_of(d, e)
        ]
        if not twins:
            continue
        module = d.name.split(".")[0]
        twins.sort(key=lambda e: (e.name.split(".")[0] != module, e.name))
        out.append((d, twins[0]))
    return out


def _timed(d, trials: int, seed: int) -> tuple[float, str]:
    t = time.perf_counter()
    r = dc.check(d, trials=trials, seed=seed)
    return time.perf_counter() - t, r.outcome


def measure(pattern: str, trials: int, seed: int, limit: int | None) -> list[dict]:
    rows = []
    twin_seconds: dict[str, tuple[float, str]] = {}
    for failing, twin in pairs(pattern)[:limit]:
        if twin.name not in twin_seconds:
            twin_seconds[twin.name] = _timed(twin, trials, seed)
        t_twin, twin_outcome = twin_seconds[twin.name]
        t_fail, fail_outcome = _timed(failing, trials, seed)
        rows.append(
            {
                "failing": failing.name,
                "twin": twin.name,
                "failing_s": t_fail,
                "twin_s": t_twin,
                "ratio": t_fail / t_twin,
                "outcomes": [fail_outcome, twin_outcome],
            }
        )
        print(f"  {failing.name} vs {twin.name}: {t_fail:.2f} s / {t_twin:.2f} s", file=sys.stderr, flush=True)
    return rows


def report(rows: list[dict]) -> str:
    lines = ["| expected failure | correct twin | failing s | twin s | ratio |", "|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['failing']} | {r['twin']} | {r['failing_s']:.2f} | {r['twin_s']:.2f} | {r['ratio']:.2f}× |")
    if rows:
        ratios = [r["ratio"] for r in rows]
        lines.append("")
        lines.append(
            f"{len(rows)} pairs: median ratio {statistics.median(ratios):.2f}×, "
            f"max {max(ratios):.2f}×, total {sum(r['failing_s'] for r in rows):.1f} s failing"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pattern", default="*", help="glob over the expected failures' names")
    p.add_argument("--trials", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="at most this many pairs")
    p.add_argument("--tiny", action="store_true", help="three pairs at 30 trials (the smoke test)")
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args(argv)
    if args.tiny:
        args.trials, args.limit = 30, args.limit or 3
        args.pattern = args.pattern if args.pattern != "*" else "logistic.*"
    rows = measure(args.pattern, args.trials, args.seed, args.limit)
    print(report(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
