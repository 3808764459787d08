"""The repair search: single edits (then pairs) of a failing derivation, screened cheaply, confirmed by a check.

1. **Screening trials.** A few trials per regime in up to :data:`SIZE_SETS`
   size sets are drawn as the engine draws them, and the reference (JAX's
   side of the claim) is computed once on them, eagerly (no compilation).
2. **Screen.** Each candidate — the derived function compiled from an edited
   syntax tree (:mod:`derivcheck._repair._edits`) — is evaluated eagerly,
   first on one trial the derivation fails, alone and unbatched (most
   candidates are dropped there, in a few milliseconds once the operations'
   programs are cached), then on every screening trial. A trial
   *agrees* when ``‖D − R‖∞ ≤ atol + rtol · max(‖D‖∞, ‖R‖∞)`` at the check's
   own tolerance (:func:`~derivcheck._compare.fits`), without the rounding
   allowance a check measures for trials that fail the plain test: so a
   correct candidate may disagree on a trial whose terms cancel. A candidate
   goes on when at least :data:`AGREEMENT` of the screening trials agree;
   the screen only orders the work, it decides nothing.
   The first candidate that agrees on every trial ends the screen, but for
   the edits of the same kind on its line, outside the expression it
   rewrites, that say something else (the same error read another way:
   ``W.T`` → ``W`` or ``e @ W.T`` → ``W.T @ e``), which confirmation ranks.
3. **Pairs.** When no single edit passes the screen, the singles that bring
   the error of the failing trial down at least :data:`CLOSER` times (but
   not to agreement) get a second edit, elsewhere in the function.
4. **Confirmation.** Candidates that passed, ranked by agreement, then
   single edits before pairs, then in the order they were screened (the
   catalogue's prior, :func:`~derivcheck._repair._edits.edits`), are checked for
   real (:func:`~derivcheck._checks.check_claim`: every size set and regime,
   rounding allowances, kinks) on a seed the failing check did not use. Only
   a candidate whose check holds becomes a :class:`Suggestion`: a suggestion
   that would not hold on a fresh seed is never shown.

The time budget (``budget`` seconds, :data:`SUGGEST_SECONDS` by default)
bounds the screen (it stops at :data:`SCREEN_SHARE` of it) and the start of
each confirmation; a confirmation that has started runs to its end.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from derivcheck._checks import check_claim, plan_of
from derivcheck._checks._engine import CheckConfig, _draw_batch, fast_compile_options
from derivcheck._checks.differential import HESSIAN, Differential
from derivcheck._checks.matrix_free import materialized
from derivcheck._compare import ResolvedTolerance, fits, merge_tolerance
from derivcheck._derivation import HOLDS, Derivation
from derivcheck._repair._edits import Dim, Edit, apply, edits, slots
from derivcheck._repair._record import Change, Repair, Suggestion, unified_diff
from derivcheck._repair._source import NoSource, Program, read

SUGGEST_SECONDS = float(os.environ.get("DERIVCHECK_SUGGEST_SECONDS", "10"))
"""Default time budget of one search (``DERIVCHECK_SUGGEST_SECONDS``)."""
SIZE_SETS = 3
PER_REGIME = 2
AGREEMENT = 0.9
"""The share of screening trials a candidate must agree on to be confirmed. Below 1 because the
screen has no rounding allowance (see the module docstring); the confirming check decides."""
CLOSER = 10.0
"""How many times closer to the reference a single edit must bring the failing trial to be paired."""
PAIR_SEEDS = 4
SCREEN_SHARE = 0.6
MAX_CONFIRM = 4
CONFIRM_TRIALS = 200
NO_EDIT = "no single edit found: nothing in the catalogue of hand-derivation errors makes it hold"


def enabled() -> bool:
    """Whether suggestions are computed where they are on by default (``DERIVCHECK_SUGGEST=0`` turns them off)."""
    return os.environ.get("DERIVCHECK_SUGGEST", "1").strip().lower() not in ("0", "false", "no", "off")


def fresh_seed(seed: int) -> int:
    """The confirmation's seed: the next one, so its draws are not the failing check's (nor the screen's)."""
    return (seed + 1) % 2**63


# ------------------------------------------------------------------ the screening trials


@dataclasses.dataclass
class _Set:
    """The screening trials of one size set: inputs, the extra argument, the reference."""

    args: tuple
    extra: dict
    reference: np.ndarray


@dataclasses.dataclass
class Screen:
    """How candidates are judged cheaply (see the module docstring)."""

    d: Derivation
    family: Any  # the differential family whose ``reference``/``derived`` one trial computes
    dense: Callable[[Derivation], Derivation]
    tol: ResolvedTolerance
    sets: list[_Set]
    probe: tuple[int, int]  # a trial the derivation fails: its size set and row
    failing: np.ndarray | None = None  # the derivation's own value on the probe trial

    def values(self, fn: Callable[..., Any], s: _Set) -> np.ndarray:
        dd = self.dense(dataclasses.replace(self.d, derived=fn))
        return np.asarray(jax.vmap(lambda a, e: self.family.derived(dd, a, e))(s.args, s.extra))

    def value(self, fn: Callable[..., Any]) -> np.ndarray:
        """``fn``'s value on the probe trial alone, unbatched: most candidates are judged by it only,
        and an eager call outside ``vmap`` runs each operation's cached program (no batching trace)."""
        p, row = self.probe
        s = self.sets[p]
        dd = self.dense(dataclasses.replace(self.d, derived=fn))
        args, extra = tuple(a[row] for a in s.args), {k: v[row] for k, v in s.extra.items()}
        return np.asarray(self.family.derived(dd, args, extra))

    def judge(self, fn: Callable[..., Any]) -> tuple[float, float]:
        """``(agreement, rel)``: the share of screening trials on which ``fn`` agrees with the reference
        (0 unless it agrees on the probe trial, judged first), and its relative error on the probe trial."""
        p, row = self.probe
        ref = self.sets[p].reference[row]
        got = self.value(fn)
        if got.shape != ref.shape:
            return 0.0, math.inf
        rel = _rel(got, ref)
        if not _agree(got[None], ref[None], self.tol)[0] or (
            self.failing is not None and np.array_equal(got, self.failing)
        ):
            return 0.0, rel  # wrong on the probe, or no change there at all (a no-op edit)
        total = _count(self.sets)
        agree, judged = 0, 0
        for i in [p, *(i for i in range(len(self.sets)) if i != p)]:
            s = self.sets[i]
            got = self.values(fn, s)
            if got.shape != s.reference.shape:
                return 0.0, rel
            ok = _agree(got, s.reference, self.tol)
            agree, judged = agree + int(ok.sum()), judged + ok.size
            if judged - agree > (1 - AGREEMENT) * total:
                break  # too many disagree already
        return agree / total, rel


def _count(sets: Sequence[_Set]) -> int:
    return sum(len(s.reference) for s in sets)


def _norms(x: np.ndarray) -> np.ndarray:
    return np.abs(x.reshape(len(x), -1)).max(axis=1, initial=0.0)


def _agree(got: np.ndarray, ref: np.ndarray, tol: ResolvedTolerance) -> np.ndarray:
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    with np.errstate(all="ignore"):
        err = _norms(got - ref)
        ok = fits(err, tol, np.maximum(_norms(got), _norms(ref)))
    return np.asarray(ok & np.isfinite(err), bool)


def _rel(got: np.ndarray, ref: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        scale = max(float(np.abs(ref).max(initial=0.0)), float(np.abs(got).max(initial=0.0)))
        err = float(np.abs(np.asarray(got, np.float64) - ref).max(initial=0.0))
    return err / scale if scale > 0 else (0.0 if err == 0 else math.inf)


def screen_for(d: Derivation, seed: int) -> Screen | str:
    """The :class:`Screen` of a failing derivation, or why it cannot be searched (one line)."""
    family, dense, checked = _family(d)
    if family is None:
        article = "an" if d.kind[:1] in "aeiou" else "a"
        why = "the search repairs derivatives against their reference"
        return f"no fix is searched for {article} {d.kind} claim: {why}"
    size_sets = sorted(d.inputs.sizes, key=lambda s: sum(dict(s).values()))[:SIZE_SETS]
    pd = dense(d)
    sets: list[_Set] = []
    for sizes in size_sets:
        args, extra, ref, failing = _drawn(d, pd, family, checked, sizes, seed)
        keep = np.isfinite(ref.reshape(len(ref), -1)).all(axis=1)
        pick = np.flatnonzero(keep & _screening_rows(len(ref), len(d.inputs.regimes), failing))
        sets.append(_Set(tuple(a[pick] for a in args), {k: v[pick] for k, v in extra.items()}, ref[pick]))
    sets = [s for s in sets if len(s.reference)]
    if not sets:
        return "no fix searched: the reference is not finite on the screening trials"
    tol = merge_tolerance(str(sets[0].reference.dtype), d.tolerance)
    screen = Screen(d, family, dense, tol, sets, (0, 0))
    for p, s in enumerate(sets):
        got = screen.values(d.derived, s)
        bad = np.flatnonzero(~_agree(got, s.reference, tol)) if got.shape == s.reference.shape else [0]
        if len(bad):
            screen.probe = (p, int(bad[0]))
            failing = screen.value(d.derived)
            screen.failing = failing if failing.shape == s.reference.shape[1:] else None
            return screen
    return (
        "no edit suggested: the derived values match the reference on the screening trials "
        "(what fails is not a formula an edit changes)"
    )


def _drawn(d: Derivation, pd: Derivation, family: Any, checked: Any, sizes: Any, seed: int):
    """One size set's trials as the check draws them: ``(args, extra, reference, failing)``.

    Where the check ran ``checked`` (its own family) they are the check's very trials, computed
    by the program it compiled (the same shapes: nothing compiles again); otherwise a few per
    regime, the reference compiled once."""
    if checked is not None:
        config = CheckConfig(seed=seed)
        per = math.ceil(config.trials / (len(d.inputs.sizes) * len(d.inputs.regimes)))
        b = _draw_batch(checked, pd, config, sizes, per)
        got, ref = (np.asarray(v) for v in b.call(checked, pd, "values")[1])
        tol = merge_tolerance(str(ref.dtype), d.tolerance)
        return b.args, b.extra, ref, ~_agree(got, ref, tol)
    config = CheckConfig(trials=PER_REGIME * len(d.inputs.regimes), seed=seed)
    b = _draw_batch(family, pd, config, sizes, PER_REGIME)
    reference = jax.jit(jax.vmap(lambda a, e: family.reference(pd, a, e)), compiler_options=fast_compile_options())
    ref = np.asarray(reference(b.args, b.extra))
    return b.args, b.extra, ref, np.ones(len(ref), bool)


def _screening_rows(n: int, regimes: int, failing: np.ndarray) -> np.ndarray:
    """The first :data:`PER_REGIME` trials of each regime (trials come grouped by regime) and the
    first two failing ones: a handful to evaluate candidates on, eagerly."""
    per = max(n // max(regimes, 1), 1)
    rows = np.zeros(n, bool)
    rows[(np.arange(n) % per) < PER_REGIME] = True
    rows[np.flatnonzero(failing)[:2]] = True
    return rows


def _family(d: Derivation) -> tuple[Any, Callable[[Derivation], Derivation], Any]:
    """The differential family the screen computes one trial with, how a derivation is made dense,
    and the family the check ran when it is that one (guarded), else ``None``."""
    plan = plan_of(d)
    family = None if plan is None else getattr(plan.family, "inner", plan.family)
    if isinstance(family, Differential) and plan is not None:
        return family, (materialized if plan.derivation is not d else _same), plan.family
    if getattr(d.claim, "of", None) is not None and d.claim_id in ("hessian", "definite"):
        return Differential(HESSIAN), materialized, None  # the matrix against jax.hessian, as the check's dense path
    return None, _same, None


def _same(d: Derivation) -> Derivation:
    return d


# ------------------------------------------------------------------------- the search


@dataclasses.dataclass
class _Candidate:
    edits: tuple[Edit, ...]
    trees: list[ast.stmt]
    fn: Callable[..., Any]
    agreement: float = 0.0
    rel: float = math.inf


def search(
    d: Derivation, *, seed: int = 0, budget: float | None = None, confirm_trials: int = CONFIRM_TRIALS
) -> Repair:
    """Search single edits (then pairs) of ``d``'s derived function that make it hold (see the module docstring).

    Never raises for a problem of the derivation: a :class:`Repair` without
    suggestions says in one line why there are none.
    """
    start = time.perf_counter()
    budget = SUGGEST_SECONDS if budget is None else float(budget)
    try:
        program = read(d.derived)
    except NoSource as exc:
        return Repair(message=f"no fix searched: {exc}")
    with jax.enable_x64(True), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a candidate's warnings are its own; it is judged by its values
        try:
            screen = screen_for(d, seed)
        except Exception as exc:
            return Repair(message=f"no fix searched: the screening trials could not be drawn ({type(exc).__name__})")
        if isinstance(screen, str):
            return Repair(message=screen, seconds=time.perf_counter() - start)
        run = _Search(program, screen, start, budget)
        passed = run.screen_all()
    suggestions = run.confirm(passed, seed, confirm_trials)
    complete = run.complete and len(passed) <= MAX_CONFIRM
    message = "" if suggestions else NO_EDIT + ("" if run.complete else " (within the time budget)")
    return Repair(tuple(suggestions), message, run.judged, time.perf_counter() - start, complete)


class _Search:
    def __init__(self, program: Program, screen: Screen, start: float, budget: float) -> None:
        self.program, self.screen = program, screen
        self.start, self.budget = start, budget
        self.judged = 0
        self.complete = True
        self.seen: set[str] = set()
        self.dims = _dims(program, screen)

    def left(self, share: float = 1.0) -> float:
        return self.start + share * self.budget - time.perf_counter()

    def screen_all(self) -> list[_Candidate]:
        """Candidates that pass the screen: single edits, else pairs grown from the closest singles."""
        singles = edits(self.program.trees, self.program.text, self.program.namespace, self.dims)
        passed, close = self._screen(list(self.program.trees), (), singles)
        if passed or not self.complete:
            return passed
        for seed in sorted(close, key=lambda c: c.rel)[:PAIR_SEEDS]:
            seconds = _seconds_of(seed.trees, self.program)
            found, _ = self._screen(seed.trees, seed.edits, [e for e in seconds if _apart(e, seed.edits[0])])
            passed += found
            if not self.complete:
                break
        return passed

    def _screen(
        self, trees: list[ast.stmt], done: tuple[Edit, ...], candidates: list[Edit]
    ) -> tuple[list[_Candidate], list[_Candidate]]:
        passed: list[_Candidate] = []
        close: list[_Candidate] = []
        base = self.screen.judge(self.program.compile(tuple(_copies(trees))) if done else self.screen.d.derived)[1]
        found: Edit | None = None  # the last edit of the first candidate that fits every trial
        for edit in candidates:
            if found is not None and not _another_way(edit, found):
                continue
            if self.left(SCREEN_SHARE) <= 0:
                self.complete = False
                break
            c = self._build(trees, done, edit)
            if c is None:
                continue
            self.judged += 1
            try:
                c.agreement, c.rel = self.screen.judge(c.fn)
            except Exception:  # a candidate that does not run (shapes, names) is no fix
                continue
            if c.agreement >= AGREEMENT:
                passed.append(c)
                if c.agreement == 1.0 and found is None:
                    # the edits come in the order of the ranking's prior: the first that fits all wins, and
                    # only the same error read another way stays in the running (:func:`_another_way`)
                    found = edit
            elif not done and c.rel * CLOSER <= base:
                close.append(c)
        return passed, close

    def _build(self, trees: list[ast.stmt], done: tuple[Edit, ...], edit: Edit) -> _Candidate | None:
        try:
            edited = apply(trees, edit, self.program.namespace)
            key = "\n".join(ast.unparse(t) for t in edited)
            if key in self.seen:
                return None
            self.seen.add(key)
            fn = self.program.compile(tuple(edited))  # fresh copies already: compiling may fill in their positions
        except Exception:
            return None
        return _Candidate((*done, edit), edited, fn)

    def confirm(self, passed: list[_Candidate], seed: int, trials: int) -> list[Suggestion]:
        """The passed candidates that hold in a real check on a fresh seed, best first (within the budget)."""
        order = sorted(passed, key=lambda c: (-c.agreement, len(c.edits)))  # stable: then the screen's order
        found: list[Suggestion] = []
        confirm_seed = fresh_seed(seed)
        for c in order[:MAX_CONFIRM]:
            if self.left() <= 0 or (found and self.left() < self.budget * 0.2):
                self.complete = self.complete and bool(found)
                break
            candidate = dataclasses.replace(self.screen.d, derived=c.fn, expect=HOLDS)
            try:
                result = check_claim(candidate, CheckConfig(trials=trials, seed=confirm_seed))
            except Exception:
                continue
            if result.outcome == "holds":
                found.append(self._suggestion(c, result.trials, confirm_seed))
        return found

    def _suggestion(self, c: _Candidate, holds_on: int, seed: int) -> Suggestion:
        changes = tuple(Change(e.line, e.before, e.after, e.kind, e.why) for e in c.edits)
        spans = []
        trees = list(self.program.trees)
        for e in c.edits:
            node = slots(trees[e.tree], self.program.namespace)[e.site].node
            if hasattr(node, "end_col_offset"):
                span = (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
                spans.append((span, e.after))
            trees = apply(trees, e, self.program.namespace)
        diff = unified_diff(self.program.file, self.program.text, spans)
        code = "\n".join(ast.unparse(t) for t in c.trees)
        return Suggestion(self.program.file, changes, holds_on, seed, diff, code, c.fn)


def _another_way(edit: Edit, found: Edit) -> bool:
    """Whether ``edit`` reads the error ``found`` fixes another way: its kind, on its line, other words, and
    not inside the expression ``found`` rewrites (``W`` → ``W.T`` after ``W.T`` → ``W`` says nothing new)."""
    same_place = (edit.tree, edit.line, edit.kind) == (found.tree, found.line, found.kind)
    return same_place and edit.why != found.why and edit.before not in found.before


def _copies(trees: Sequence[ast.stmt]) -> list[ast.stmt]:
    return [copy.deepcopy(t) for t in trees]


def _seconds_of(trees: list[ast.stmt], program: Program) -> list[Edit]:
    return edits(trees, program.text, program.namespace, ())


def _apart(second: Edit, first: Edit) -> bool:
    """Whether ``second`` edits a node of the original source away from ``first`` (so both show as text)."""
    return second.before != first.after and first.after not in second.before and second.line > 0


def _dims(program: Program, screen: Screen) -> list[Dim]:
    """The dimensions a factor can be: ``x.shape[i]`` of each argument (one per distinct size), or its local."""
    values: dict[tuple[int, ...], str] = {}
    for k, name in enumerate(program.args):
        for i in range(np.ndim(screen.sets[0].args[k]) - 1 if k < len(screen.sets[0].args) else 0):
            sizes = tuple(int(np.shape(s.args[k])[i + 1]) for s in screen.sets)
            if any(v > 1 for v in sizes):
                values.setdefault(sizes, f"{name}.shape[{i}]")
    aliases = _aliases(program.trees[0])
    dims: list[Dim] = []
    for text in values.values():
        local = aliases.get(text)
        if local is None:
            dims.append(Dim(text))
        else:
            dims += [Dim(local[0], after_line=local[1]), Dim(text, before_line=local[1])]
    return dims


def _aliases(tree: ast.stmt) -> dict[str, tuple[str, int]]:
    """``{"X.shape[0]": ("m", 12)}`` for each ``m = X.shape[0]`` (or ``m = len(X)``, ``m, n = X.shape``)."""
    found: dict[str, tuple[str, int]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target, value = node.targets[0], node.value
        if isinstance(target, ast.Name):
            text = ast.unparse(value)
            if isinstance(value, ast.Call) and ast.unparse(value.func) == "len" and len(value.args) == 1:
                text = f"{ast.unparse(value.args[0])}.shape[0]"
            found.setdefault(text, (target.id, node.lineno))
        elif isinstance(target, ast.Tuple) and isinstance(value, ast.Attribute) and value.attr == "shape":
            for i, elt in enumerate(target.elts):
                if isinstance(elt, ast.Name):
                    found.setdefault(f"{ast.unparse(value)}[{i}]", (elt.id, node.lineno))
    return found
