"""No derived function in the catalog calls JAX autodiff: the derivation is the suspect, JAX the reference.

Two checks, each tested both ways on planted code:

* at run time, every catalog derived function is called on sample inputs with
  ``jax.grad`` & co. replaced by functions that raise;
* in the source, no catalog module imports an autodiff transform under another
  name (``from jax import grad``) or builds one at module level
  (``g = jax.grad(f)``), which a derived function could call without looking
  ``jax.grad`` up at run time.

``of=`` functions (the trusted side) may use autodiff inside their bodies.
"""

import ast
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import derivcheck as dc
import derivcheck.catalog
from derivcheck.catalog._table import catalog_derivations

AUTODIFF = (
    "grad",
    "value_and_grad",
    "jacfwd",
    "jacrev",
    "hessian",
    "vjp",
    "jvp",
    "linearize",
    "linear_transpose",
)
CATALOG = catalog_derivations()
CATALOG_DIR = Path(derivcheck.catalog.__file__).parent


class AutodiffCalled(AssertionError):
    pass


def _forbid_autodiff(monkeypatch):
    def forbidden(name):
        def raiser(*args, **kwargs):
            raise AutodiffCalled(f"jax.{name} called")

        return raiser

    for name in AUTODIFF:
        monkeypatch.setattr(jax, name, forbidden(name))


def _sample_args(d: dc.Derivation) -> tuple:
    """One trial's arguments (largest size set, first regime), plus a cotangent for a VJP."""
    spec = d.inputs
    arrays = spec.sample(0, d.name, 1, spec.sizes[-1], spec.regimes[0], d.arg_names)
    args = tuple(jnp.asarray(a[0]) for a in arrays)
    if d.kind == "vjp":
        out = jax.eval_shape(d.claim.of, *args)
        args = (*args, jnp.ones(out.shape, out.dtype))
    return args


def _call_without_autodiff(d, monkeypatch):
    with jax.enable_x64(True):
        args = _sample_args(d)
        with monkeypatch.context() as m:
            _forbid_autodiff(m)
            return d.derived(*args)


def test_the_catalog_is_not_empty():
    assert len(CATALOG) >= 50


# An identity claim compares two expressions, either of which may be built from JAX transforms
# ("the Hessian is the Jacobian of the gradient", issue #4): it has no hand-derived side to keep pure.
PURE = [d for d in CATALOG if d.kind != "identity"]


@pytest.mark.parametrize("derivation", PURE, ids=[d.name for d in PURE])
def test_derived_function_runs_without_autodiff(derivation, monkeypatch):
    out = _call_without_autodiff(derivation, monkeypatch)
    assert jnp.all(jnp.isfinite(jnp.asarray(out)))


def test_a_derived_function_calling_jax_grad_is_caught(reg, monkeypatch):
    def f(x):
        return jnp.sum(jnp.sin(x))

    @dc.gradient(of=f, inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="cheat")
    def cheat(x):
        return jax.grad(f)(x)

    @dc.vjp(of=jnp.sin, inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="cheat_vjp")
    def cheat_vjp(x, ct):
        return jax.vjp(jnp.sin, x)[1](ct)[0]

    for d in (cheat, cheat_vjp):
        with pytest.raises(AutodiffCalled):
            _call_without_autodiff(d, monkeypatch)
    assert dc.check(cheat, trials=20).outcome == "holds"  # the engine itself cannot tell: hence this test


# ----------------------------------------------------------------------- source scan


class _ModuleLevelAutodiff(ast.NodeVisitor):
    """Autodiff imported under another name, or used outside any function body."""

    def __init__(self) -> None:
        self.depth = 0
        self.found: list[str] = []

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if (node.module or "").split(".")[0] == "jax":
            for alias in node.names:
                if alias.name in AUTODIFF:
                    self.found.append(f"line {node.lineno}: from {node.module} import {alias.name}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if self.depth == 0 and node.attr in AUTODIFF and isinstance(node.value, ast.Name) and node.value.id == "jax":
            self.found.append(f"line {node.lineno}: jax.{node.attr} at module level")
        self.generic_visit(node)

    def _function(self, node) -> None:
        for deco in getattr(node, "decorator_list", []):
            self.visit(deco)
        self.visit(node.args)
        self.depth += 1
        for stmt in node.body if isinstance(node.body, list) else [node.body]:
            self.visit(stmt)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function


def module_level_autodiff(source: str) -> list[str]:
    visitor = _ModuleLevelAutodiff()
    visitor.visit(ast.parse(source))
    return visitor.found


CATALOG_FILES = sorted(CATALOG_DIR.glob("*.py"))


@pytest.mark.parametrize("path", CATALOG_FILES, ids=[p.name for p in CATALOG_FILES])
def test_catalog_module_has_no_hidden_autodiff(path):
    assert module_level_autodiff(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "from jax import grad\n",
        "from jax import jacfwd as J\n",
        "from jax._src.api import vjp\n",
        "import jax\ng = jax.grad(lambda x: x)\n",
        "import jax\nH = jax.hessian\n",
        "import jax\ndef f(x, g=jax.jacrev(abs)):\n    return g(x)\n",
    ],
)
def test_the_scan_flags_hidden_autodiff(source):
    assert module_level_autodiff(source)


@pytest.mark.parametrize(
    "source",
    [
        "import jax\ndef of(x):\n    return jax.grad(f)(x)\n",
        "import jax\nof = lambda x: jax.hessian(f)(x)\n",
        "from jax import lax, numpy as jnp\n",
        "import jax\ny = jax.nn.sigmoid\n",
    ],
)
def test_the_scan_allows_autodiff_inside_functions_and_other_jax_names(source):
    assert module_level_autodiff(source) == []
