"""The ``Kind`` record: everything particular to one claim type, in one row.

A row (the optax ``GradientTransformation`` shape: a record of plain
functions) says how a claim type is checked, what a shrink evaluates its
candidates with, and the reference's name for messages:

==========  =========================================================================
field       meaning
==========  =========================================================================
claim       the claim record's class (its ``id`` names the decorator and ``Result.claim``)
check       ``check(d, config) -> Result``; raises :class:`~derivcheck._checks._engine.CheckError`
plan        ``plan(d) -> Plan`` for claims checked by the batched engine: the family and the
            derivation it runs on (an ``hvp=True`` claim's dense products, when dense), the very
            objects ``check`` runs, so a shrink judges candidates as the check did;
            ``None`` for claims judged by their own statistics (not shrunk)
reference   what the derived side is compared with, for messages (``"jax.grad"``…)
==========  =========================================================================

Rows live at the bottom of the family module that checks them and are
gathered by :mod:`derivcheck._checks` into ``KINDS``. Which diagnosis applies
(value relations, a spectrum, or the family's own finding) is the family's
``analysis`` attribute (``"equality"``, ``"spectrum"``, absent), read from the
family the engine ran.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

from derivcheck._checks._engine import CheckConfig, Family, run_batched
from derivcheck._derivation import Derivation
from derivcheck._result import Result


class Plan(NamedTuple):
    """How the engine runs one derivation: with ``family``, on ``derivation``; ``path`` labels the Result."""

    family: Family
    derivation: Derivation
    path: str = ""


class Kind(NamedTuple):
    """One claim type's row (see the module docstring)."""

    claim: type
    check: Callable[[Derivation, CheckConfig], Result]
    plan: Callable[[Derivation], Plan] | None = None
    reference: str = ""


def run_plan(plan: Plan, config: CheckConfig) -> Result:
    """Run ``plan`` through the batched engine; the Result carries the plan's path."""
    result = run_batched(plan.derivation, config, plan.family)
    return dataclasses.replace(result, path=plan.path) if plan.path else result


def batched(claim: type, plan: Callable[[Derivation], Plan], reference: str) -> Kind:
    """The row of a claim checked by the batched engine along ``plan`` (and shrunk along it too)."""

    def check(d: Derivation, config: CheckConfig) -> Result:
        return run_plan(plan(d), config)

    return Kind(claim=claim, check=check, plan=plan, reference=reference)


def fixed(family: Any, path: str = "") -> Callable[[Derivation], Plan]:
    """A plan that runs every derivation of the claim with the same ``family``, as declared."""
    return lambda d: Plan(family, d, path)
