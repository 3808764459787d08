"""The one orchestration: check derivations and attach what explains a failure.

Everything a user calls to *do* something goes through this module:
:func:`check` (one derivation), :func:`run` (many, as :class:`Results`),
:func:`check_and_shrink` (a check, then a minimal counterexample for a
failure: ``run --shrink``, its worker processes and ``explain``),
:func:`with_counterexample`, :func:`suggest_fix` and :func:`with_suggestions`
(the repair search, :mod:`derivcheck._repair`) and :func:`explanation`. It renders nothing itself;
the presentation layer (:mod:`derivcheck._report`) renders its records, and
the command line, the worker processes, the pytest plugin and
``derivcheck.testing`` call it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from derivcheck import _cache
from derivcheck._checks import check_claim
from derivcheck._checks._engine import CheckConfig, CheckError
from derivcheck._derivation import Derivation
from derivcheck._diagnose import attach
from derivcheck._format import one_line
from derivcheck._registry import Registry, name_matches, registry
from derivcheck._repair import Repair, diagnosis_from
from derivcheck._repair import enabled as suggestions_enabled
from derivcheck._repair import search as repair_search
from derivcheck._report.explain import render
from derivcheck._result import Result, Results
from derivcheck._shrink import SHRINK_SECONDS, minimal_counterexample

DEFAULT_TRIALS = 300
MAX_SEED = 2**63 - 1
"""Seeds are signed 64-bit integers: JAX's PRNG keys (a custom sampler's) take no more."""

log = logging.getLogger("derivcheck")


def check(derivation: Derivation | str, *, trials: int = DEFAULT_TRIALS, seed: int = 0) -> Result:
    """Check one derivation on ``trials`` random inputs and return its :class:`Result`.

    ``derivation`` is a registered :class:`Derivation` (what the decorators
    return) or its name in the default registry. Never raises for a problem in
    the derivation itself: that is an ``error`` outcome with a one-line reason.

    >>> import jax.numpy as jnp, derivcheck as dc
    >>> reg = dc.Registry()
    >>> @dc.gradient(of=lambda x: jnp.sum(x**3), inputs=dc.inputs(x=dc.normal("n")), registry=reg)
    ... def cube_grad(x):
    ...     return 3 * x**2
    >>> dc.check(cube_grad, trials=64).outcome
    'holds'
    """
    if isinstance(derivation, str):
        derivation = registry()[derivation]
    derivation = _under_marks(derivation)
    if not isinstance(derivation, Derivation):
        raise TypeError(
            f"check() takes a derivation (what a derivcheck decorator such as @dc.gradient returns) or its name,"
            f" got {type(derivation).__name__} {getattr(derivation, '__name__', '')!s}; decorate the function first"
        )
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise ValueError(f"trials must be a positive int, got {trials!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an int from 0 to 2**63 - 1, got {seed!r}")
    config = CheckConfig(trials=trials, seed=seed)
    _cache.enable_from_env()  # $DERIVCHECK_CACHE_DIR: the persistent compilation cache (see derivcheck/_cache.py)
    start = time.perf_counter()
    try:
        result = check_claim(derivation, config)
    except CheckError as exc:
        log.debug("%s: %s", derivation.name, exc, exc_info=exc.__cause__ is not None)
        result = _error(derivation, config, str(exc))
    except Exception as exc:
        log.debug("%s: the check raised", derivation.name, exc_info=True)
        result = _error(derivation, config, one_line(exc))
    except SystemExit as exc:  # a derived function or `of` calling sys.exit() is that derivation's error
        result = _error(derivation, config, f"the check called sys.exit({exc.code!r}); a derivation must return")
    result = attach(result)  # the engine's evidence becomes the diagnosis: every failure carries one
    reading = getattr(derivation.derived, "reading", None)  # a derivation read from LaTeX echoes its reading
    if reading is not None:
        result = dataclasses.replace(result, reading=reading.as_dict())
    return _with_seconds(result, time.perf_counter() - start)


def _error(d: Derivation, config: CheckConfig, message: str) -> Result:
    return Result(
        name=d.name,
        kind=d.kind,
        claim=d.claim_id,
        outcome="error",
        expect=d.expect,
        message=message,
        seed=config.seed,
        source=d.source,
    )


def _with_seconds(result: Result, seconds: float) -> Result:
    return dataclasses.replace(result, seconds=seconds)


def run(
    *patterns: str | Derivation, trials: int | None = None, seed: int = 0, registry: Registry | None = None
) -> Results:
    """Check every derivation matching the name globs (all when none) and return :class:`Results`.

    ``patterns`` may also be :class:`Derivation` objects. ``registry`` defaults
    to the global one (with installed catalogs loaded). A pattern that matches
    nothing raises ``KeyError``.

    >>> import jax.numpy as jnp, derivcheck as dc
    >>> reg = dc.Registry()
    >>> @dc.gradient(of=lambda x: jnp.sum(x**2), inputs=dc.inputs(x=dc.normal("n")), name="sq", registry=reg)
    ... def square_grad(x):
    ...     return 2 * x
    >>> dc.run("sq", registry=reg, trials=32).ok
    True
    """
    chosen = _select(_registry_or_default(registry), patterns)
    trials = DEFAULT_TRIALS if trials is None else trials
    start = time.perf_counter()
    items = tuple(check(d, trials=trials, seed=seed) for d in chosen)
    return Results(items, seed=seed, trials=trials, seconds=time.perf_counter() - start)


def _under_marks(obj: Any) -> Any:
    """The derivation inside pytest marks placed above its decorator: ``@pytest.mark.slow`` over
    ``@dc.gradient(...)`` leaves a mark decorator holding it as its last argument (nested for
    several marks; the README allows marks there, and the pytest plugin reads them)."""
    while (
        not isinstance(obj, Derivation)
        and hasattr(obj, "mark")
        and isinstance(args := getattr(obj, "args", None), tuple)
        and args
    ):
        obj = args[-1]
    return obj


def _registry_or_default(reg: Registry | None) -> Registry:
    return registry() if reg is None else reg


def _select(reg: Registry, patterns: Sequence[str | Derivation]) -> list[Derivation]:
    names = [p for p in patterns if isinstance(p, str)]
    unmatched = [p for p in names if not any(name_matches(n, p) for n in reg.names())]
    if unmatched:
        raise KeyError(f"no derivation matches {', '.join(map(repr, unmatched))}")
    chosen = reg.select(*names) if names or not patterns else []
    chosen += [p for p in patterns if isinstance(p, Derivation) and p not in chosen]
    return chosen


def with_counterexample(result: Result, derivation: Derivation, **options: Any) -> Result:
    """``result`` with its ``counterexample`` filled by :func:`minimal_counterexample` (unchanged unless it fails).

    ``options`` are :func:`~derivcheck.minimal_counterexample`'s (``seconds``, ``loads``).
    """
    if result.outcome != "fails":
        return result
    return dataclasses.replace(
        result, counterexample=minimal_counterexample(derivation, result, seed=result.seed, **options)
    )


def suggest_fix(
    derivation: Derivation | str, *, budget: float | None = None, trials: int = DEFAULT_TRIALS, seed: int = 0
) -> Repair:
    """Where in the formula a failing derivation is wrong: the edits of its source that make it hold.

    Checks ``derivation`` (``trials``, ``seed``) and, when it fails, searches
    single edits of its derived function's source (and pairs where one gets
    close) from a catalogue of hand-derivation errors — a sign, a factor
    ``2`` or ``1/m``, a transpose, a dropped term, an axis, a swapped
    variable or function — within ``budget`` seconds (default 10,
    ``$DERIVCHECK_SUGGEST_SECONDS``). Returns a :class:`~derivcheck._repair.Repair`:
    a sequence of suggestions (``file``, ``line``, ``before``, ``after``,
    ``holds_on``), each confirmed by a check on a fresh seed, and
    ``message``, one line saying why there is none (it holds, no source,
    nothing in the catalogue fixes it).

    >>> import jax.numpy as jnp, derivcheck as dc
    >>> reg = dc.Registry()
    >>> @dc.gradient(of=lambda x: jnp.sum(x**2), inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="sq")
    ... def twice(x):
    ...     return x
    >>> r = dc.suggest_fix(twice, budget=30)  # typed at a prompt: no file to edit, one line says so
    >>> len(r), r.message.split(":")[0]
    (0, 'no fix searched')

    Defined in a file, the same derivation gets ``line …: `x` should be `x * 2```
    (``tests/test_repair.py`` plants such errors).
    """
    d = registry()[derivation] if isinstance(derivation, str) else derivation
    result = check(d, trials=trials, seed=seed)
    if result.outcome != "fails":
        state = {"holds": "holds", "inconclusive": "is inconclusive"}.get(result.outcome, "errs")
        return Repair(message=f"no fix to suggest: the check {state}")
    if _complex_values(result):
        return Repair(message=NO_COMPLEX_REPAIR)
    return repair_search(d, seed=seed, budget=budget)


NO_COMPLEX_REPAIR = "no fix searched: the repair search does not handle complex values (the diagnosis still applies)"


def _complex_values(result: Result) -> bool:
    """Whether the worst trial of ``result`` has complex inputs or values."""
    w = result.worst
    if w is None:
        return False
    return any(np.iscomplexobj(v) for v in (*w.inputs.values(), w.derived, w.reference) if v is not None)


def with_suggestions(result: Result, derivation: Derivation, *, budget: float | None = None) -> Result:
    """``result`` with its repair search's answer (:attr:`Result.repair`; unchanged unless it fails).

    A confirmed suggestion also becomes the diagnosis: its kind and words name
    the line and the edit; the output-level finding stays as its evidence.
    """
    if result.outcome != "fails":
        return result
    if _complex_values(result):  # its screening compares real values: it would call a conjugation slip right
        return dataclasses.replace(result, repair=Repair(message=NO_COMPLEX_REPAIR))
    try:
        repair = repair_search(derivation, seed=result.seed, budget=budget)
    except Exception as exc:  # the verdict stands whatever the search meets
        log.debug("%s: the repair search raised", derivation.name, exc_info=True)
        repair = Repair(message=f"no fix searched: the search raised {type(exc).__name__}")
    diagnosis = diagnosis_from(result.diagnosis, repair[0]) if repair else result.diagnosis
    return dataclasses.replace(result, repair=repair, diagnosis=diagnosis)


def check_and_shrink(
    d: Derivation,
    *,
    trials: int,
    seed: int,
    shrink: bool,
    loads: Sequence[str] = (),
    seconds: float | None = None,
) -> Result:
    """:func:`check`, and with ``shrink`` a minimal counterexample added to a failure.

    What ``run --shrink`` (in this process or a worker), ``explain`` and
    :func:`explanation` do. ``seconds`` bounds the shrink (default
    :data:`~derivcheck._shrink.SHRINK_SECONDS`); ``loads`` only enter the
    counterexample's replay command.
    """
    result = check(d, trials=trials, seed=seed)
    if shrink and result.outcome == "fails":
        budget = SHRINK_SECONDS if seconds is None else seconds
        result = with_counterexample(result, d, seconds=budget, loads=tuple(loads))
    return result


def explanation(
    derivation: Derivation | str,
    *,
    trials: int | None = None,
    seed: int = 0,
    shrink: bool = True,
    seconds: float | None = None,
    suggest: bool | None = None,
) -> str:
    """Check ``derivation``, shrink a failure, and return the explanation as text (``derivcheck explain``).

    ``suggest``: search for the edit that fixes a failure (:func:`suggest_fix`); by default unless
    ``$DERIVCHECK_SUGGEST`` is ``0``.

    >>> import jax.numpy as jnp, derivcheck as dc
    >>> reg = dc.Registry()
    >>> @dc.gradient(of=lambda x: jnp.sum(x**2), inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="sq")
    ... def twice(x):
    ...     return x
    >>> print(dc.explanation(twice, trials=30, shrink=False, suggest=False).splitlines()[3])
    diagnosis: off by a factor of 1/2: derived = 1/2 · reference
    """
    d = registry()[derivation] if isinstance(derivation, str) else derivation
    trials = trials or DEFAULT_TRIALS
    result = check_and_shrink(d, trials=trials, seed=seed, shrink=shrink, seconds=seconds)
    if suggestions_enabled() if suggest is None else suggest:
        result = with_suggestions(result, d)
    return "\n".join(render(d, result, trials=trials))
