"""dc.latex: the dialect's readings, its refusals (one line naming what to declare), and the echo."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck as dc
from derivcheck._latex._api import read


@pytest.fixture(autouse=True, scope="module")
def _x64():
    """float64 for this module's direct calls, scoped: never a global flag left on for later tests."""
    with jax.enable_x64(True):
        yield


def cost(theta, X, y):
    z = X @ theta
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z)


DATA = dc.inputs(theta=dc.normal("d"), X=dc.normal("m", "d"), y=dc.bernoulli("m"))
SYMBOLS = {"J": cost, r"\theta": "theta", "x": "X", "y": "y", r"h_\theta(x)": r"\sigma(\theta^\top x)"}
GRADIENT = dc.Gradient(of=cost, wrt="theta")
STATEMENT = r"\frac{\partial J}{\partial \theta_j} = \frac{1}{m} \sum_{i=1}^m (h_\theta(x^{(i)}) - y^{(i)}) x_j^{(i)}"


def _args(seed=0, m=5, d=3):
    rng = np.random.default_rng(seed)
    return (
        jnp.asarray(rng.normal(size=d)),
        jnp.asarray(rng.normal(size=(m, d))),
        jnp.asarray(rng.integers(0, 2, m) * 1.0),
    )


def test_reads_the_notes_gradient_into_one_einsum():
    reading, derived = read(STATEMENT, SYMBOLS, GRADIENT, DATA)
    assert reading.expression == (
        "(1 / m) * jnp.einsum('i,ij->j', (jax.nn.sigmoid(jnp.einsum('C,iC->i', theta, X)) - y), X)"
    )
    args = _args()
    np.testing.assert_allclose(derived(*args), jax.grad(cost)(*args), rtol=1e-12)
    assert "m = X.shape[0]" in reading.source
    assert ("i", "m") in reading.ranges and ("j", "d") in reading.ranges


def test_the_echo_re_renders_the_statement_with_every_index_explicit():
    reading, _ = read(STATEMENT, SYMBOLS, GRADIENT, DATA)
    text = reading.text()
    assert "gradient of cost w.r.t. theta, entry [j]" in text
    assert r"\mathtt{X}_{i,j}" in reading.latex and r"\operatorname{sigmoid}" in reading.latex
    assert reading.as_dict()["expression"] == reading.expression


def test_registered_derivation_carries_statement_reading_and_verdict():
    with dc.scoped_registry():
        d = dc.latex(STATEMENT, symbols=SYMBOLS, claim=GRADIENT, inputs=DATA, name="mine.grad")
        assert d.statement == STATEMENT and not d.problem
        assert dc.reading_of(d).expression.startswith("(1 / m)")
        assert "read from LaTeX as" in d.doc
        assert dc.check(d, trials=10).outcome == "holds"


def test_implicit_summation_of_an_index_absent_from_the_left():
    reading, derived = read(
        r"\frac{\partial J}{\partial \theta_j} = \frac{1}{m} (h_\theta(x^{(i)}) - y^{(i)}) x_j^{(i)}",
        SYMBOLS,
        GRADIENT,
        DATA,
    )
    assert reading.summed == ("i",)
    args = _args(1)
    np.testing.assert_allclose(derived(*args), jax.grad(cost)(*args), rtol=1e-12)


def _error(statement, symbols=SYMBOLS, claim=GRADIENT, inputs=DATA):
    with pytest.raises(dc.LatexError) as info:
        read(statement, symbols, claim, inputs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unknown_symbol_is_named_with_what_to_declare():
    message = _error(r"\frac{\partial J}{\partial \theta_j} = \sum_{i=1}^m q_i x_j^{(i)}")
    assert "unknown symbol q" in message and "symbols=" in message


def test_ambiguous_juxtaposition_after_a_bare_function_is_refused():
    message = _error(r"\frac{\partial J}{\partial \theta_j} = \sum_{i=1}^m \log y^{(i)} x_j^{(i)}")
    assert "followed by more factors" in message


def test_ambiguous_odot_next_to_a_product_is_refused():
    message = _error(r"g = X^\top y \odot y", {**SYMBOLS, "X": "X", "g": r"\nabla_\theta J"})
    assert "ambiguous" in message


def test_range_clash_and_bounds_are_checked():
    assert "ranges over" in _error(r"\frac{\partial J}{\partial \theta_j} = \sum_{i=1}^d y^{(i)} x_j^{(i)}")
    assert "start at 1" in _error(r"\frac{\partial J}{\partial \theta_j} = \sum_{i=0}^m y^{(i)} x_j^{(i)}")
    assert "not a dimension" in _error(r"\frac{\partial J}{\partial \theta_j} = \sum_{i=1}^N y^{(i)} x_j^{(i)}")


def test_range_that_cannot_be_inferred_says_what_to_declare():
    reading_symbols = {"J": cost, r"\theta": "theta", "x": "X"}
    message = _error(r"\frac{\partial J}{\partial \theta_j} = \delta_{ab} \theta_j", reading_symbols)
    assert "range of index a cannot be inferred" in message or "superscript" in message or "indices" in message


def test_shape_mismatch_is_refused_never_broadcast():
    message = _error(r"g = X y", {**SYMBOLS, "X": "X", "g": r"\nabla_\theta J"})
    assert "shape mismatch" in message and "(d ≠ m)" in message
    message = _error(r"g = y y", {**SYMBOLS, "g": r"\nabla_\theta J"})
    assert "a column vector (m) times a column vector (m)" in message


def test_result_shape_must_match_the_left_hand_side():
    message = _error(r"g = X^\top X", {**SYMBOLS, "X": "X", "g": r"\nabla_\theta J"})
    assert "shape mismatch" in message


def test_left_hand_side_must_match_the_claim():
    assert "is a hessian" in _error(r"\frac{\partial^2 J}{\partial \theta_j \partial \theta_k} = x_j^{(1)}")
    message = _error(r"\frac{\partial J}{\partial y_j} = y_j", claim=dc.Gradient(of=cost, wrt="theta"))
    assert "the claim differentiates 'theta'" in message


def test_implicit_sum_inside_a_function_is_ambiguous():
    message = _error(r"\frac{\partial J}{\partial \theta_j} = \exp(y^{(i)}) \theta_j")
    assert "inside a function" in message or "superscript" in message


def test_implicit_index_missing_from_a_term_is_refused():
    message = _error(r"\frac{\partial J}{\partial \theta_j} = x_j^{(i)} y^{(i)} + \theta_j")
    assert "does not carry it" in message


def test_a_declaration_problem_is_carried_not_raised():
    with dc.scoped_registry():
        d = dc.latex(
            r"g = q",
            symbols={"g": r"\nabla_\theta J", "J": cost, r"\theta": "theta"},
            claim=GRADIENT,
            inputs=DATA,
            name="bad",
        )
        assert "unknown symbol q" in d.problem
        assert dc.check(d).outcome == "error"


def test_kronecker_delta_with_primes_and_block_hessian_layout():
    def ll(w, X, Y):
        return jnp.sum(Y * jax.nn.log_softmax(X @ w, axis=-1))

    symbols = {
        r"\ell": ll,
        "w": dc.tensor("w", axes=(1, 0)),
        "x": "X",
        r"\mu": dc.tensor(lambda w, X: jax.nn.softmax(X @ w, axis=-1), "m", "C"),
        "H_{c,c'}": r"\frac{\partial^2 \ell}{\partial w_c \partial w_{c'}^\top}",
    }
    inputs = dc.inputs(w=dc.normal("D", "C"), X=dc.normal("m", "D"), Y=dc.one_hot("m", classes="C"))
    _, derived = read(
        r"H_{c,c'} = - \sum_{i=1}^m \mu_{ic} (\delta_{c,c'} - \mu_{ic'}) x_i x_i^\top",
        symbols,
        dc.Hessian(of=ll, wrt="w"),
        inputs,
    )
    rng = np.random.default_rng(3)
    w, X = jnp.asarray(rng.normal(size=(3, 4))), jnp.asarray(rng.normal(size=(5, 3)))
    Y = jax.nn.one_hot(jnp.arange(5) % 4, 4)
    np.testing.assert_allclose(derived(w, X, Y), jax.hessian(ll)(w, X, Y), atol=1e-12)


def test_a_number_plus_a_matrix_is_ambiguous():
    message = _error(
        r"H = X^\top X + 1", {**SYMBOLS, "X": "X", "H": r"\nabla^2_\theta J"}, dc.Hessian(of=cost, wrt="theta")
    )
    assert "ambiguous" in message and "identity" in message


MEAN_FORM = r"\frac{1}{m} \sum_{i=1}^m (h_\theta(x^{(i)}) - y^{(i)}) x_j^{(i)}"


@pytest.mark.parametrize(
    "middle, step_outcome",
    [
        (r"\frac{1}{m} \sum_{i=1}^m x_j^{(i)} (h_\theta(x^{(i)}) - y^{(i)})", "holds"),  # a right intermediate step
        (r"\frac{1}{m} \sum_{i=1}^m (y^{(i)} - h_\theta(x^{(i)})) x_j^{(i)}", "fails"),  # a sign slip in the middle
    ],
)
def test_every_step_of_a_chain_is_checked(middle, step_outcome):
    """``J' = f₁ = f₂``: f₂ is the derivation, f₁ its own step; a wrong middle step is caught, not skipped."""
    chain = rf"\frac{{\partial J}}{{\partial \theta_j}} = {middle} = {MEAN_FORM}"
    with dc.scoped_registry() as reg:
        d = dc.latex(chain, symbols=SYMBOLS, claim=GRADIENT, inputs=DATA, name="mine.chain")
        assert reg.names() == ["mine.chain.step1", "mine.chain"]
        assert dc.check(d, trials=20).outcome == "holds"
        assert reg["mine.chain.step1"].statement == chain
        step = dc.check("mine.chain.step1", trials=20)
        assert step.outcome == step_outcome, step.message


def test_a_step_expected_to_fail_is_declared_with_steps():
    summed = r"\sum_{i=1}^m (h_\theta(x^{(i)}) - y^{(i)}) x_j^{(i)}"  # the 1/m dropped
    chain = rf"\frac{{\partial J}}{{\partial \theta_j}} = {summed} = {MEAN_FORM}"
    with dc.scoped_registry():
        dc.latex(chain, symbols=SYMBOLS, claim=GRADIENT, inputs=DATA, name="m.c", steps={1: dc.fails("drops the 1/m")})
        r = dc.check("m.c.step1", trials=20)
        assert r.outcome == "fails" and r.ok
        stray = dc.latex(STATEMENT, symbols=SYMBOLS, claim=GRADIENT, inputs=DATA, name="m.s", steps={1: dc.fails("x")})
        assert "steps= names step 1, but the chain has no earlier steps" in str(stray.problem)


def test_a_step_the_dialect_cannot_read_is_named_as_not_checked():
    chain = rf"\frac{{\partial J}}{{\partial \theta_j}} = \frac{{\partial}}{{\partial \theta_j}} J = {MEAN_FORM}"
    with dc.scoped_registry() as reg:
        d = dc.latex(chain, symbols=SYMBOLS, claim=GRADIENT, inputs=DATA, name="mine.op")
        assert reg.names() == ["mine.op"] and not d.problem
        reading = dc.reading_of(d)
        assert len(reading.unchecked) == 1 and reading.unchecked[0].startswith("step 1 of the chain (")
        assert "not checked: step 1" in reading.text() and reading.as_dict()["unchecked"] == reading.unchecked


@pytest.mark.parametrize("fn", [r"\exp", r"\log", r"\sigma", r"\sqrt", r"\tanh"])
@pytest.mark.parametrize("power", ["^2", "^{-1}", "^{3}"])
def test_a_power_after_a_functions_parentheses_is_ambiguous(fn, power):
    """``\\exp(z_i)^2`` was read as ``e^{z_i²}`` (a wrong gradient held; the right ``(e^{z_i})²`` failed):
    the value's power or the argument's — refused, with both spellings to choose from."""
    f = lambda z: jnp.sum(jnp.exp(z))
    spec = dc.inputs(z=dc.positive("n"))
    statement = rf"\frac{{\partial f}}{{\partial z_i}} = {fn}(z_i){power}"
    with pytest.raises(
        dc.LatexError, match=r"the power of .* value or of its argument\? write (\\\w+\^\{\d\}\(…\) or )?\("
    ):
        read(statement, {"f": f, "z": "z"}, dc.Gradient(of=f, wrt="z"), spec)


def outcomes(statements, symbols, claim, inputs) -> list[str]:
    """Each statement registered with ``dc.latex`` (in a scoped registry) and checked: its outcome."""
    with dc.scoped_registry():
        ds = [dc.latex(s, symbols=symbols, claim=claim, inputs=inputs) for s in statements]
        return [dc.check(d, trials=20).outcome for d in ds]


def test_the_two_spellings_of_a_powered_function_read_as_written():
    f = lambda z: 0.5 * jnp.sum(jnp.exp(2 * z))  # gradient (e^{z_i})², not e^{z_i²}
    lhs = r"\frac{\partial f}{\partial z_i} = "
    spellings = [lhs + r"(\exp(z_i))^2", lhs + r"\exp(z_i^2)"]
    got = outcomes(spellings, {"f": f, "z": "z"}, dc.Gradient(of=f, wrt="z"), dc.inputs(z=dc.normal("n")))
    assert got == ["holds", "fails"]


def test_a_middle_step_the_dialect_refuses_is_an_error_of_its_own():
    """A shape mismatch in a middle step (``X`` for ``X^\\top``) may be the step's own mistake: its
    derivation errs, visibly, instead of being left unchecked."""
    middle = r"\frac{1}{m} \sum_{i=1}^m x_j (h_\theta(x^{(i)}) - y^{(i)})"  # x_j: X has two axes
    chain = rf"\frac{{\partial J}}{{\partial \theta_j}} = {middle} = {MEAN_FORM}"
    with dc.scoped_registry() as reg:
        d = dc.latex(chain, symbols=SYMBOLS, claim=GRADIENT, inputs=DATA, name="mine.bad")
        assert reg.names() == ["mine.bad.step1", "mine.bad"] and not d.problem
        assert reg["mine.bad.step1"].problem and not dc.reading_of(d).unchecked
        assert dc.check("mine.bad.step1").outcome == "error"


@pytest.mark.parametrize(
    "written, meant",
    [
        (r"\sqrt{z_i}", r"\sqrt(z_i)"),  # braces, as LaTeX writes a root
        (r"\frac{z_i}{\sqrt{z_i}}", r"\frac{z_i}{\sqrt(z_i)}"),
    ],
)
def test_a_root_is_read_with_braces_as_with_parentheses(written, meant):
    f = lambda z: jnp.sum(z**1.5) * 2 / 3
    spec, claim = dc.inputs(z=dc.positive("n")), dc.Gradient(of=f, wrt="z")
    lhs = r"\frac{\partial f}{\partial z_i} = "
    a, _ = read(lhs + written, {"f": f, "z": "z"}, claim, spec)
    b, _ = read(lhs + meant, {"f": f, "z": "z"}, claim, spec)
    assert a.expression == b.expression


@pytest.mark.parametrize("transpose", [r"\top", "T", r"\intercal"])
def test_an_indexed_row_transposed_inside_one_superscript(transpose):
    """``x^{(i)\\top}`` as the notes write it: the ``i``-th row, transposed (``x^{(i)}^\\top``)."""
    inner = rf"x^{{(i){transpose}}} \theta"
    statement = STATEMENT.replace(r"h_\theta(x^{(i)})", rf"\sigma({inner})")
    _, derived = read(statement, SYMBOLS, GRADIENT, DATA)
    args = _args()
    np.testing.assert_allclose(derived(*args), jax.grad(cost)(*args), rtol=1e-12)


def test_a_size_with_a_power_is_a_number():
    """``m^{-1}`` as the notes write ``1/m`` (it was an unknown symbol); ``m^2`` in its place is caught."""

    def mse(w, X, y):
        return 0.5 * jnp.mean((X @ w - y) ** 2)

    spec = dc.inputs(w=dc.normal("d"), X=dc.normal("m", "d"), y=dc.normal("m"))
    statements = [r"\nabla_w J = m^{-1} X^\top (X w - y)", r"\nabla_w J = m^{2} X^\top (X w - y)"]
    got = outcomes(statements, {"J": mse, "w": "w", "X": "X", "y": "y"}, dc.Gradient(of=mse, wrt="w"), spec)
    assert got == ["holds", "fails"]


def test_a_hessians_echo_names_its_function():
    reading, _ = read(r"\nabla^2_\theta J = X^\top X", {**SYMBOLS, "X": "X"}, dc.Hessian(of=cost, wrt="theta"), DATA)
    assert reading.latex.startswith(r"\left[\partial^{2}_{\mathtt{theta}} J\right]")


POWERED_FUNCTIONS = [  # (of, spec, right statement, wrong statement): the wrong one as people slip
    (lambda z: jnp.sum(jnp.tanh(z)), "normal", r"1 - \tanh^2(z_i)", r"1 + \tanh^2(z_i)"),
    (lambda z: jnp.sum(jnp.tanh(z)), "normal", r"1 - \tanh^{2}(z_i)", r"1 - \tanh(z_i)"),
    (lambda z: jnp.sum(jnp.sin(z) * jnp.cos(z)), "normal", r"\cos^2(z_i) - \sin^2(z_i)", r"\cos^2 z_i + \sin^2 z_i"),
    (lambda z: jnp.sum(jnp.log(z) ** 3) / 3, "positive", r"\frac{\log^2 z_i}{z_i}", r"\frac{\log^2 z_i}{z_i^2}"),
    (lambda z: jnp.sum(1 / (1 + z**2)), "normal", r"-2 z_i (1 + z_i^2)^{-2}", r"-2 z_i (1 + z_i^2)^{-1}"),
]


@pytest.mark.parametrize("of, spec, right, wrong", POWERED_FUNCTIONS)
def test_trig_hyperbolic_and_log_functions_with_powered_names_both_ways(of, spec, right, wrong):
    """``1 - \\tanh^2(z)`` is ``1 - (\\tanh z)^2``, as written in every derivation of tanh (the functions
    were unknown symbols); a negative power of a number, ``(1 + z_i^2)^{-2}``, is its reciprocal's."""
    inputs = dc.inputs(z=getattr(dc, spec)("n"))
    lhs = r"\frac{\partial f}{\partial z_i} = "
    got = outcomes([lhs + right, lhs + wrong], {"f": of, "z": "z"}, dc.Gradient(of=of, wrt="z"), inputs)
    assert got == ["holds", "fails"]


def test_a_powered_function_of_a_vector_is_entrywise():
    f = lambda z: jnp.sum(jnp.tanh(z))
    statements = [r"\nabla_z f = 1 - \tanh^2(z)", r"\nabla_z f = 1 - \tanh^3(z)"]
    got = outcomes(statements, {"f": f, "z": "z"}, dc.Gradient(of=f, wrt="z"), dc.inputs(z=dc.normal("n")))
    assert got == ["holds", "fails"]


@pytest.mark.parametrize(
    "rhs, match",
    [
        (r"\tanh^{-1}(z_i)", r"the inverse function or the reciprocal\? write \\frac\{1\}\{\\tanh\(…\)\}"),
        (r"\exp^2(z_i)", r"scripts on \\exp are not in the dialect"),
        (r"\tanh(z_i)^2", r"write \\tanh\^\{2\}\(…\) or \(\\tanh\(…\)\)\^\{2\} for the first"),
    ],
)
def test_a_power_on_a_function_name_is_read_only_where_it_is_conventional(rhs, match):
    f = lambda z: jnp.sum(jnp.tanh(z))
    with pytest.raises(dc.LatexError, match=match):
        read(
            rf"\frac{{\partial f}}{{\partial z_i}} = {rhs}",
            {"f": f, "z": "z"},
            dc.Gradient(of=f, wrt="z"),
            dc.inputs(z=dc.normal("n")),
        )


def test_a_negative_power_of_a_vector_is_refused_as_a_positive_one_is():
    f = lambda z: jnp.sum(jnp.tanh(z))
    with pytest.raises(dc.LatexError, match=r"\^\{-2\} of a column vector .* is ambiguous"):
        read(r"\nabla_z f = (1 + z)^{-2}", {"f": f, "z": "z"}, dc.Gradient(of=f, wrt="z"), dc.inputs(z=dc.normal("n")))


def _ridge(w, X, y, lam):
    r = X @ w - y
    return 0.5 * jnp.sum(r**2) + 0.5 * lam * jnp.sum(w**2)


RIDGE = {"J": _ridge, "w": "w", "X": "X", "y": "y", r"\lambda": "lam"}
RIDGE_INPUTS = dc.inputs(w=dc.normal("d"), X=dc.normal("m", "d"), y=dc.normal("m"), lam=dc.positive())


def test_the_identity_is_written_with_its_size():
    """``X^\\top X + \\lambda I_d``, the ridge Hessian as every text writes it (``I`` was an unknown symbol);
    the λI forgotten, or the identity of the wrong size, is caught."""
    statements = [
        r"\nabla^2_w J = X^\top X + \lambda I_d",
        r"\frac{\partial^2 J}{\partial w_i \partial w_j} = \sum_{k=1}^m X_{ki} X_{kj} + \lambda (\mathbf{I}_d)_{ij}",
        r"\nabla^2_w J = X^\top X + I_d",
    ]
    got = outcomes(statements, RIDGE, dc.Hessian(of=_ridge, wrt="w"), RIDGE_INPUTS)
    assert got == ["holds", "holds", "fails"]
    message = _error(r"\nabla^2_w J = X^\top X + \lambda I_m", RIDGE, dc.Hessian(of=_ridge, wrt="w"), RIDGE_INPUTS)
    assert message == "shape mismatch in +: a matrix (d × d) and a matrix (m × m)"


@pytest.mark.parametrize("identity", ["I", "I_k", r"\mathbf{I}"])
def test_an_identity_without_a_known_size_says_how_to_write_it(identity):
    message = _error(
        rf"\nabla^2_w J = X^\top X + \lambda {identity}", RIDGE, dc.Hessian(of=_ridge, wrt="w"), RIDGE_INPUTS
    )
    assert "the identity matrix? write it with its size, I_d for d one of the dimensions of inputs= (d, m)" in message
