"""Fuzz: random statements are read right or refused with a LatexError — never misread, never a crash.

Well-formed statements are generated with their meaning: each is built
together with an independent NumPy evaluation, and the function read from
the LaTeX must agree with it. Malformed statements (the well-formed ones
mutated) must either be read or refused with :class:`derivcheck.LatexError`.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import derivcheck as dc
from derivcheck._latex._api import read


@pytest.fixture(autouse=True, scope="module")
def _x64():
    """float64 for this module's direct calls, scoped: never a global flag left on for later tests."""
    with jax.enable_x64(True):
        yield


N = 4
RNG = np.random.default_rng(0)
VALUES = {"a": RNG.normal(size=N), "b": RNG.normal(size=N), "A": RNG.normal(size=(N, N)), "s": 0.7}
INPUTS = dc.inputs(a=dc.normal("n"), b=dc.normal("n"), A=dc.normal("n", "n"), s=dc.normal(), sizes=[{"n": N}])
SYMBOLS = {"F": lambda a, b, A, s: 0.0, "a": "a", "b": "b", "A": "A", "s": "s", "g": r"\nabla_a F"}
CLAIM = dc.Gradient(of=SYMBOLS["F"], wrt="a")


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# (LaTeX with free index i, its value as a vector over i)
LEAVES = [
    ("a_i", VALUES["a"]),
    ("b_i", VALUES["b"]),
    ("s", np.full(N, VALUES["s"])),
    ("2", np.full(N, 2.0)),
    ("\\sum_j A_{ij} b_j", VALUES["A"] @ VALUES["b"]),
    ("\\sum_{j=1}^n A_{ji} a_j", VALUES["A"].T @ VALUES["a"]),
    ("(A b)_i", VALUES["A"] @ VALUES["b"]),
    ("(A^\\top a)_i", VALUES["A"].T @ VALUES["a"]),
    ("\\sum_{k=1}^n A_{ik}", VALUES["A"].sum(axis=1)),
    ("\\delta_{ii}", np.ones(N)),
]


def _combine(children):
    unary = st.tuples(st.sampled_from(["exp", "sigma", "paren", "neg"]), children).map(_unary)
    binary = st.tuples(st.sampled_from(["+", "-", "*"]), children, children).map(_binary)
    frac = st.tuples(children, children).map(
        lambda p: (f"\\frac{{{p[0][0]}}}{{1 + ({p[1][0]})^2}}", p[0][1] / (1 + p[1][1] ** 2))
    )
    return unary | binary | frac


def _unary(p):
    op, (tex, value) = p
    if op == "exp":
        return f"\\exp({tex})", np.exp(value)
    if op == "sigma":
        return f"\\sigma({tex})", _sigmoid(value)
    if op == "neg":
        return f"-({tex})", -value
    return f"({tex})", value


def _binary(p):
    op, (ta, va), (tb, vb) = p
    if op == "*":
        return f"({ta})({tb})", va * vb
    return f"{ta} {op} ({tb})", va + vb if op == "+" else va - vb


EXPRESSIONS = st.recursive(st.sampled_from(LEAVES), _combine, max_leaves=5)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(EXPRESSIONS)
def test_well_formed_statements_are_read_as_meant(expression):
    tex, want = expression
    statement = f"\\frac{{\\partial F}}{{\\partial a_i}} = {tex}"
    with np.errstate(all="ignore"):
        if not np.all(np.isfinite(want)):
            return
    _, derived = read(statement, SYMBOLS, CLAIM, INPUTS)
    got = derived(*(jnp.asarray(VALUES[k]) for k in ("a", "b", "A", "s")))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-12)


TOKENS = [
    "_",
    "^",
    "{",
    "}",
    "(",
    ")",
    "i",
    "j",
    "k",
    "x",
    "\\sum",
    "\\frac",
    "\\top",
    "'",
    ",",
    "=",
    "+",
    "\\odot",
    "\\delta",
    "\\begin{cases}",
    "&",
    "\\\\",
    "\\partial",
    "A",
    "2",
    "-1",
    "\\hat",
    "\\nabla",
    "\\mathbf{",
]


@SETTINGS
@given(EXPRESSIONS, st.lists(st.tuples(st.integers(0, 200), st.sampled_from(TOKENS), st.booleans()), max_size=3))
def test_malformed_statements_are_refused_or_read_never_crash(expression, edits):
    statement = f"\\frac{{\\partial F}}{{\\partial a_i}} = {expression[0]}"
    for position, token, delete in edits:
        position %= len(statement) + 1
        statement = statement[:position] + ("" if delete else token) + statement[position + (1 if delete else 0) :]
    try:
        read(statement, SYMBOLS, CLAIM, INPUTS)
    except dc.LatexError as exc:
        assert str(exc) and "\n" not in str(exc)


@SETTINGS
@given(EXPRESSIONS)
def test_an_implicit_sum_over_part_of_a_statement_is_refused(expression):
    statement = f"\\frac{{\\partial F}}{{\\partial a_i}} = {expression[0]} + A_{{ij}} b_j"
    try:
        read(statement, SYMBOLS, CLAIM, INPUTS)
    except dc.LatexError as exc:
        assert "does not carry it" in str(exc) or "only inside" in str(exc)
    else:
        raise AssertionError(f"read {statement!r} although j is summed in one term only")


@SETTINGS
@given(st.sampled_from(["g = A a", "g = A^\\top b", "g = (A + A^\\top) a", "g = a b^\\top a", "g = s a - b"]))
def test_matrix_notation_is_read_as_meant(statement):
    a, b, A, s = (VALUES[k] for k in ("a", "b", "A", "s"))
    want = {
        "g = A a": A @ a,
        "g = A^\\top b": A.T @ b,
        "g = (A + A^\\top) a": (A + A.T) @ a,
        "g = a b^\\top a": a * (b @ a),
        "g = s a - b": s * a - b,
    }[statement]
    _, derived = read(statement, SYMBOLS, CLAIM, INPUTS)
    np.testing.assert_allclose(
        np.asarray(derived(*(jnp.asarray(VALUES[k]) for k in ("a", "b", "A", "s")))), want, rtol=1e-12
    )
