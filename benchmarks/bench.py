"""derivcheck against the alternatives, side by side, on the same claims and the same trials.

    python benchmarks/bench.py                      # the full run (see benchmarks/README.md)
    python benchmarks/bench.py --tiny               # seconds: the smoke test's size
    python benchmarks/bench.py --only throughput    # one section: throughput, run-all, matrix-free

Sections:

* **throughput** — trials/second of (1) ``derivcheck.check``; (2) the floor:
  one bare ``jax.jit(jax.vmap(...))`` per size set computing both sides and the
  error; (3) a per-trial Python loop over jitted ``jax.grad``/``jax.hessian``/
  ``jax.vjp`` compared with NumPy; (4) ``jax.test_util.check_grads`` per trial
  and ``torch.autograd.gradcheck`` per trial (skipped without torch). Every
  method sees the same inputs; compilation is excluded (each method is warmed
  up first) and fast methods are timed as the median of ``--repeats`` runs.
* **run-all** — wall time and peak memory of ``derivcheck run --all`` in a
  fresh process: cold (empty compilation cache), warm (the cache filled by the
  cold run) and with ``--no-cache``; plus where the time goes (import, tracing,
  lowering, XLA compilation) from JAX's own event durations.
* **matrix-free** — equality and PSD of the softmax-regression Hessian with
  ``D·C`` parameters, as Hessian-vector products and Lanczos, in a fresh
  process: wall time and peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import derivcheck as dc  # noqa: E402

# ------------------------------------------------------------------------ throughput


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _floor(claim, batches, redraw=None):
    """One bare ``jit(vmap(both sides, error))`` per size set, on host (NumPy) inputs.

    ``redraw``: a function that draws the batches, called inside the timed run (the floor plus the
    same NumPy draws derivcheck makes; without it the inputs are drawn once, outside the timing).
    """

    def one(*args):
        got, ref = claim.derived(*args), claim.reference(*args)
        return jnp.max(jnp.abs(got - ref)), jnp.maximum(jnp.max(jnp.abs(got)), jnp.max(jnp.abs(ref)))

    fn = jax.jit(jax.vmap(one))

    def run():
        for args in redraw() if redraw is not None else batches:
            err, scale = fn(*args)
            np.asarray(err), np.asarray(scale)

    return run


def _python_loop(claim, batches):
    """What a user writes instead: a loop over trials, jitted JAX derivative, NumPy comparison."""
    ref, der = jax.jit(claim.reference), jax.jit(claim.derived)

    def run():
        bad = 0
        for args in batches:
            for i in range(len(args[0])):
                trial = tuple(a[i] for a in args)
                r, d = np.asarray(ref(*trial)), np.asarray(der(*trial))
                bad += not np.allclose(d, r, rtol=1e-7, atol=1e-12)
        return bad

    return run


def _per_trial(check, batches, limit: int):
    """Call ``check`` on up to ``limit`` trials; ``(done, flagged)``: a check that raises
    ``AssertionError`` or returns ``False`` flags its trial."""

    def run():
        done = flagged = 0
        for args in batches:
            for i in range(len(args[0])):
                if done >= limit:
                    return done, flagged
                try:
                    flagged += check(*(a[i] for a in args)) is False
                except AssertionError:
                    flagged += 1
                done += 1
        return done, flagged

    return run


def throughput(trials: int, slow_trials: int, repeats: int, seed: int) -> list[dict]:
    """Every method on every claim, in float64 like derivcheck (inside ``jax.enable_x64``)."""
    with jax.enable_x64(True):
        return _throughput(trials, slow_trials, repeats, seed)


def _throughput(trials: int, slow_trials: int, repeats: int, seed: int) -> list[dict]:
    from claims import claims, draw

    rows = []
    for claim in claims():
        batches = draw(claim, trials, seed)
        n = sum(len(b[0]) for b in batches)
        measured: list[tuple[str, int, float]] = []

        def check(d=claim.derivation):
            return dc.check(d, trials=trials, seed=seed)

        first = check()  # compiles
        assert first.trials == n and first.ok, first.message
        measured.append(("derivcheck.check", n, _median_seconds(check, repeats), 0))

        floor = _floor(claim, batches)
        floor()
        measured.append(("floor: bare jit(vmap)", n, _median_seconds(floor, repeats), None))
        drawn = _floor(claim, batches, redraw=lambda c=claim: draw(c, trials, seed))
        drawn()
        measured.append(("floor + the same draws", n, _median_seconds(drawn, repeats), None))

        loop = _python_loop(claim, batches)
        _python_loop(claim, [tuple(a[:1] for a in b) for b in batches])()  # compile each size set
        start = time.perf_counter()
        flagged = loop()
        measured.append(("python loop + jax.grad", n, time.perf_counter() - start, flagged))

        fd_n = min(n, slow_trials)
        _per_trial(claim.check_grads, batches, len(batches))()  # warm-up
        start = time.perf_counter()
        done, flagged = _per_trial(claim.check_grads, batches, fd_n)()
        measured.append(("jax check_grads (FD)", done, time.perf_counter() - start, flagged))
        if claim.torch_check is not None:
            start = time.perf_counter()
            done, flagged = _per_trial(claim.torch_check, batches, fd_n)()
            measured.append(("torch gradcheck (FD)", done, time.perf_counter() - start, flagged))
        else:
            measured.append(("torch gradcheck (FD)", 0, float("nan"), None))

        base = n / measured[0][2]
        for method, count, seconds, flagged in measured:
            rate = count / seconds if count else float("nan")
            rows.append(
                {
                    "claim": claim.name,
                    "method": method,
                    "trials": count,
                    "seconds": seconds,
                    "trials_per_s": rate,
                    "derivcheck_speedup": base / rate if count else float("nan"),
                    "flagged": flagged,
                }
            )
    return rows


def print_throughput(rows: list[dict]) -> None:
    print("\n## Throughput (trials/second; speed-up = derivcheck's trials/s ÷ the method's)\n")
    print("flagged: trials the method reported as mismatches (every claim here is correct)\n")
    print(
        f"| {'claim':30} | {'method':24} | {'trials':>7} | {'seconds':>9} | {'trials/s':>11} | {'speed-up':>9} "
        f"| {'flagged':>7} |"
    )
    print(f"|{'-' * 32}|{'-' * 26}|{'-' * 9}|{'-' * 11}|{'-' * 13}|{'-' * 11}|{'-' * 9}|")
    for r in rows:
        sp = "n/a" if r["derivcheck_speedup"] != r["derivcheck_speedup"] else f"{r['derivcheck_speedup']:.3g}×"
        rate = "skipped" if r["trials"] == 0 else f"{r['trials_per_s']:.4g}"
        secs = "-" if r["trials"] == 0 else f"{r['seconds']:.4f}"
        flagged = "-" if r["flagged"] is None else str(r["flagged"])
        print(
            f"| {r['claim']:30} | {r['method']:24} | {r['trials']:>7} | {secs:>9} | {rate:>11} | {sp:>9} "
            f"| {flagged:>7} |"
        )
    print("\nderivcheck's overhead (time ratio; target ≤ 1.5× over the bare floor):")
    for claim in dict.fromkeys(r["claim"] for r in rows):
        by = {r["method"]: r for r in rows if r["claim"] == claim}
        ours = by["derivcheck.check"]["seconds"]
        bare, drawn = by["floor: bare jit(vmap)"]["seconds"], by["floor + the same draws"]["seconds"]
        print(f"  {claim}: {ours / bare:.2f}× the bare floor, {ours / drawn:.2f}× the floor with its draws")


# ------------------------------------------------------------------------- run --all

PROFILE = textwrap.dedent(
    """
    import json, sys, time
    t0 = time.perf_counter()
    import jax
    from jax import monitoring
    import derivcheck
    from derivcheck.cli import main
    t_import = time.perf_counter() - t0
    totals = {}
    def listen(event, duration, **kw):
        totals[event] = totals.get(event, 0.0) + duration
    monitoring.register_event_duration_secs_listener(listen)
    t1 = time.perf_counter()
    code = main(sys.argv[1:])
    t_run = time.perf_counter() - t1
    print("PROFILE" + json.dumps({"import": t_import, "run": t_run, "code": code, "events": totals}))
    """
)


def _child(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """Run ``cmd``; its wall seconds, peak resident memory (MiB) and stdout."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0)
        text = out.read()
    return seconds, usage.ru_maxrss / 1024, text


def run_all(trials: int, repeats: int, patterns: list[str]) -> list[dict]:
    rows = []
    env = {k: v for k, v in os.environ.items() if k not in ("DERIVCHECK_NO_CACHE", "DERIVCHECK_CACHE_DIR")}
    what = patterns or ["--all"]
    for rep in range(repeats):
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as cache1:
            # the command's default --jobs (one worker process per core); the JAX event durations are
            # only seen in one process, so the same pair again with --jobs 1 says where the time goes
            base = [sys.executable, "-c", PROFILE, "run", *what, "--trials", str(trials)]
            for label, extra in (
                ("cold", ["--cache-dir", cache]),
                ("warm", ["--cache-dir", cache]),
                ("no cache", ["--no-cache"]),
                ("cold, --jobs 1", ["--cache-dir", cache1, "--jobs", "1"]),
                ("warm, --jobs 1", ["--cache-dir", cache1, "--jobs", "1"]),
            ):
                seconds, mib, text = _child([*base, *extra], env)
                line = next((x for x in text.splitlines() if x.startswith("PROFILE")), None)
                prof = json.loads(line.removeprefix("PROFILE")) if line else {}
                ev = prof.get("events", {})
                rows.append(
                    {
                        "repeat": rep,
                        "mode": label,
                        "wall": seconds,
                        "peak_mib": mib,
                        "exit": prof.get("code"),
                        "import": prof.get("import", float("nan")),
                        "trace": ev.get("/jax/core/compile/jaxpr_trace_duration", 0.0),
                        "lower": ev.get("/jax/core/compile/jaxpr_to_mlir_module_duration", 0.0),
                        "compile": ev.get("/jax/core/compile/backend_compile_duration", 0.0),
                        "derivations": _count(text),
                    }
                )
    return rows


def _count(text: str) -> int:
    for line in text.splitlines():
        if " derivations, " in line:
            return int(line.split(" derivations,")[0].split()[-1])
    return 0


def print_run_all(rows: list[dict]) -> None:
    n = max((r["derivations"] for r in rows), default=0)
    print(f"\n## `derivcheck run --all` ({n} derivations; medians over {1 + max(r['repeat'] for r in rows)} runs)\n")
    print("peak MiB: the largest process (each worker holds its own executables); the JAX event durations")
    print("(trace, lower, XLA compile) are only measured with --jobs 1, where the checks run in one process\n")
    print("| mode | wall s | peak MiB | import s | trace s | lower s | XLA compile s | exit |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for mode in dict.fromkeys(r["mode"] for r in rows):
        sel = [r for r in rows if r["mode"] == mode]
        med = {
            k: statistics.median(r[k] for r in sel) for k in ("wall", "peak_mib", "import", "trace", "lower", "compile")
        }
        codes = sorted({r["exit"] for r in sel}, key=str)
        timed = "--jobs 1" in mode
        events = [f"{med[k]:.1f}" if timed else "—" for k in ("trace", "lower", "compile")]
        print(
            f"| {mode} | {med['wall']:.1f} | {med['peak_mib']:.0f} | {med['import']:.2f} | "
            f"{' | '.join(events)} | {','.join(map(str, codes))} |"
        )


# ----------------------------------------------------------------------- matrix-free

MATRIX_FREE = textwrap.dedent(
    """
    import json, sys, time
    import jax, jax.numpy as jnp, numpy as np
    import derivcheck as dc
    D, C, m = (int(a) for a in sys.argv[1:4])
    reg = dc.Registry()

    def loglik(W, X, Y):
        return jnp.sum(Y * jax.nn.log_softmax(X @ W, axis=-1))

    def nll(W, X, Y):
        return -loglik(W, X, Y)

    def hvp(W, X, Y, V):
        # the notes' Hessian of l, -sum_i (diag(mu_i) - mu_i mu_i^T) (x) x_i x_i^T, applied to V
        mu = jax.nn.softmax(X @ W, axis=-1)
        a = X @ V
        return -(X.T @ (mu * a - mu * jnp.sum(mu * a, axis=-1, keepdims=True)))

    spec = dc.inputs(
        W=dc.normal("D", "C", scale=1.0 / np.sqrt(D)), X=dc.normal("m", "D"), Y=dc.one_hot("m", classes="C"),
        sizes=[{"D": D, "C": C, "m": m}], regimes=("typical",),
    )
    eq = dc.hessian(of=loglik, wrt="W", inputs=spec, hvp=True, registry=reg, name="softmax_regression.hessian")(hvp)
    psd = dc.definite("psd", of=nll, wrt="W", inputs=spec, hvp=True, registry=reg,
                      name="softmax_regression.nll_hessian_psd")(lambda W, X, Y, V: -hvp(W, X, Y, V))
    out = {"D": D, "C": C, "m": m, "params": D * C, "device": str(jax.devices()[0].platform)}
    for label, d in (("equality", eq), ("psd", psd)):
        t = time.perf_counter()
        r = dc.check(d, trials=1)
        out[label] = {"seconds": time.perf_counter() - t, "outcome": r.outcome, "path": r.path, "message": r.message}
    stats = jax.devices()[0].memory_stats() or {}
    out["device_peak_mib"] = stats.get("peak_bytes_in_use", 0) / 2**20 if out["device"] != "cpu" else None
    print("MATRIXFREE" + json.dumps(out))
    """
)


def matrix_free(sizes: list[tuple[int, int, int]]) -> list[dict]:
    rows = []
    env = {**os.environ, "DERIVCHECK_NO_CACHE": "1"}
    for D, C, m in sizes:
        seconds, mib, text = _child([sys.executable, "-c", MATRIX_FREE, str(D), str(C), str(m)], env)
        line = next((x for x in text.splitlines() if x.startswith("MATRIXFREE")), None)
        row = {"D": D, "C": C, "m": m, "wall": seconds, "peak_mib": mib}
        if line is None:
            row["error"] = text.strip().splitlines()[-1] if text.strip() else "no output"
        else:
            row.update(json.loads(line.removeprefix("MATRIXFREE")))
        rows.append(row)
    return rows


def print_matrix_free(rows: list[dict]) -> None:
    print("\n## Matrix-free softmax-regression Hessian (equality + PSD, one trial each, fresh process)\n")
    print(
        "| D | C | m | D·C | equality s | psd s | process wall s | peak host MiB | peak device MiB | outcomes | path |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        if "error" in r:
            print(
                f"| {r['D']} | {r['C']} | {r['m']} | {r['D'] * r['C']} | - | - | {r['wall']:.1f} | "
                f"{r['peak_mib']:.0f} | - | {r['error'][:60]} | - |"
            )
            continue
        eq, psd = r["equality"], r["psd"]
        dev = "-" if r.get("device_peak_mib") is None else f"{r['device_peak_mib']:.0f}"
        print(
            f"| {r['D']} | {r['C']} | {r['m']} | {r['params']} | {eq['seconds']:.1f} | {psd['seconds']:.1f} | "
            f"{r['wall']:.1f} | {r['peak_mib']:.0f} | {dev} | {eq['outcome']}, {psd['outcome']} | {eq['path']} |"
        )
    for r in rows:
        if "error" not in r:
            print(f"  D={r['D']} C={r['C']}: {r['psd']['message']}")


# ------------------------------------------------------------------------------ main


def _sizes(text: str) -> list[tuple[int, int, int]]:
    return [tuple(int(v) for v in part.split("x")) for part in text.split(",") if part]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="seconds, not minutes: the smoke test's sizes")
    p.add_argument("--only", choices=("throughput", "run-all", "matrix-free"), action="append")
    p.add_argument("--trials", type=int, default=10_000, help="trials per claim (default 10000)")
    p.add_argument("--slow-trials", type=int, default=None, help="cap for the finite-difference checkers")
    p.add_argument("--repeats", type=int, default=5, help="timed runs of the fast methods (median)")
    p.add_argument("--run-all-repeats", type=int, default=3)
    p.add_argument("--run-all-trials", type=int, default=300)
    p.add_argument("--patterns", nargs="*", default=[], help="derivations for run-all (default: --all)")
    p.add_argument("--matrix-free", default="1000x1000x200", help="DxCxm,... sizes (default 1000x1000x200)")
    p.add_argument("--json", help="also write every figure to this file")
    args = p.parse_args(argv)
    if args.tiny:
        args.trials, args.slow_trials, args.repeats = 60, 15, 1
        args.run_all_repeats, args.run_all_trials = 1, 8
        args.patterns = args.patterns or ["softmax_ce.gradient"]
        args.matrix_free = "30x20x8"  # 600 parameters: above matrix_free.THRESHOLD, so the path is matrix-free
    sections = args.only or ["throughput", "run-all", "matrix-free"]
    slow = args.trials if args.slow_trials is None else args.slow_trials
    print(
        f"derivcheck benchmark — JAX {jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()}), "
        f"{os.cpu_count()} CPUs"
    )
    report = {}
    if "throughput" in sections:
        report["throughput"] = throughput(args.trials, slow, args.repeats, seed=0)
        print_throughput(report["throughput"])
    if "run-all" in sections:
        report["run_all"] = run_all(args.run_all_trials, args.run_all_repeats, args.patterns)
        print_run_all(report["run_all"])
    if "matrix-free" in sections:
        report["matrix_free"] = matrix_free(_sizes(args.matrix_free))
        print_matrix_free(report["matrix_free"])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
