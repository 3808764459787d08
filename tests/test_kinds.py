"""The ``Kind`` table is tied to the claim records, the decorators, the exports and the README
(in the manner of hypothesis' ``_check_exports``), and it is the only place that dispatches on claims."""

import dataclasses
import inspect
import re
from pathlib import Path

import jax.numpy as jnp
import pytest

import derivcheck as dc
from derivcheck import _derivation
from derivcheck._checks import KINDS, plan_of
from derivcheck._checks.matrix_free import materialized

ROOT = Path(__file__).resolve().parent.parent
CLAIMS = [
    cls
    for _, cls in inspect.getmembers(_derivation, inspect.isclass)
    if dataclasses.is_dataclass(cls) and isinstance(getattr(cls, "id", None), str)
]


def _readme_claim_rows() -> str:
    """The rows of README's claims tables (``| `dc.gradient(of=, …)` | … |``)."""
    text = (ROOT / "README.md").read_text()
    return "\n".join(line for line in text.splitlines() if line.startswith("| `dc."))


def test_every_claim_record_is_found():
    assert {cls.__name__ for cls in CLAIMS} >= {"Gradient", "VJP", "JVP", "Definite", "Limit", "Descent"}
    assert len({cls.id for cls in CLAIMS}) == len(CLAIMS)  # ids are unique


@pytest.mark.parametrize("cls", CLAIMS, ids=lambda c: c.id)
def test_each_claim_has_a_row_a_decorator_an_export_and_a_readme_row(cls):
    row = KINDS.get(cls)
    assert row is not None and row.claim is cls, f"{cls.__name__}: no Kind row"
    assert callable(row.check) and row.reference
    assert cls.id in dc.__all__ and callable(getattr(dc, cls.id)), f"dc.{cls.id}: no exported decorator"
    assert cls.__name__ in dc.__all__, f"dc.{cls.__name__}: the claim record is not exported"
    assert f"`dc.{cls.id}(" in _readme_claim_rows(), f"README: no row for dc.{cls.id} in the claims tables"


def test_every_row_is_a_claim_record():
    assert set(KINDS) == set(CLAIMS)


def test_the_trailing_argument_is_stated_by_the_claim():
    assert (dc.VJP.extra_arg, dc.JVP.extra_arg, dc.Gradient.extra_arg) == ("cotangent", "tangent", None)
    assert dc.Hessian(of=jnp.sum, hvp=True).extra_arg == "v" and dc.Hessian(of=jnp.sum).extra_arg is None
    assert dc.Definite("psd", hvp=True).extra_arg == "v" and dc.Definite("psd").kind == "definite (psd)"


def test_a_shrink_judges_with_what_the_check_runs(reg):
    """An ``hvp=True`` Hessian is checked densely through its products with the unit vectors."""

    @dc.hessian(of=lambda x: jnp.sum(x**3), inputs=dc.inputs(x=dc.normal("n")), hvp=True, registry=reg)
    def hvp(x, v):
        return 6 * x * v

    plan = plan_of(hvp)
    assert plan.derivation is materialized(hvp) and plan.path == "dense"
    assert dc.check(hvp, trials=20).path == "dense"
    assert plan_of(dc.limit(of=jnp.sum, along="n", inputs=dc.inputs(x=dc.normal("n")), registry=reg)(jnp.sum)) is None


def test_claim_types_are_dispatched_only_in_the_checks_package():
    """No ``isinstance(<claim>, …)`` outside ``derivcheck/_checks/`` (the Kind table and its families)."""
    pattern = re.compile(r"isinstance\(\s*[\w.]*claim\b")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in (ROOT / "derivcheck").rglob("*.py")
        if "_checks" not in path.parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_results_carry_the_claim_id_outside_the_json(reg):
    d = dc.definite("psd", inputs=dc.inputs(x=dc.normal("n")), registry=reg)(lambda x: jnp.outer(x, x))
    r = dc.check(d, trials=20)
    assert (r.claim, r.definiteness, r.kind) == ("definite", "psd", "definite (psd)")
    assert "claim" not in r.to_dict() and "definiteness" not in r.to_dict()
