"""Compare two ``derivcheck run --json`` documents, ignoring every ``seconds`` field.

The restructuring of the package must not change any verdict, number or word:
two runs with the same seed and trials give the same document, timings aside.

    python benchmarks/same_json.py BEFORE.json AFTER.json [--subset]

``--subset`` compares only the results whose names are in both documents (to
check a slice of the catalog against a full baseline). Exit status 0 when they
match, 1 with the first differences printed otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

IGNORED = {"seconds"}


def strip(o: Any) -> Any:
    """The document without its timing fields."""
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if k not in IGNORED}
    if isinstance(o, list):
        return [strip(v) for v in o]
    return o


def differences(a: Any, b: Any, path: str = "$") -> list[str]:
    """Paths where ``a`` and ``b`` differ, with both values (first differences first)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in {'before' if k in a else 'after'}" for k in sorted(set(a) ^ set(b))]
        for k in a.keys() & b.keys():
            out += differences(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items before, {len(b)} after"]
        return [line for i, (x, y) in enumerate(zip(a, b, strict=True)) for line in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} before, {b!r} after"]


def by_name(doc: dict, names: set[str]) -> list[Any]:
    return [r for r in doc["results"] if r["name"] in names]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--subset", action="store_true", help="compare only the results named in both")
    args = p.parse_args(argv)
    with open(args.before) as f:
        before = strip(json.load(f))
    with open(args.after) as f:
        after = strip(json.load(f))
    if args.subset:
        names = {r["name"] for r in before["results"]} & {r["name"] for r in after["results"]}
        before, after = by_name(before, names), by_name(after, names)
        print(f"comparing {len(names)} results")
    diff = differences(before, after)
    for line in diff[:40]:
        print(line)
    print("same" if not diff else f"{len(diff)} differences")
    return 0 if not diff else 1


if __name__ == "__main__":
    sys.exit(main())
