"""The repair search: planted wrong derivations get the edit that restores them, confirmed on a fresh seed.

The planted derivations are this file's own (not the catalog's): the search reads their source here.
"""

import dataclasses
import json
import time

import jax
import jax.numpy as jnp
import pytest

import derivcheck as dc
from derivcheck._api import with_suggestions
from derivcheck._repair import search
from derivcheck._repair._edits import KIND_ORDER, edits
from derivcheck._repair._source import NoSource, read

BUDGET = 30.0  # generous: these tests judge what is found, not how fast (test_budget_* judges that)
LOGISTIC = dc.inputs(theta=dc.normal("d"), X=dc.full_rank("m", "d"), y=dc.bernoulli("m"))


def cost_mean(theta, X, y):
    z = X @ theta
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z)


def _declare(reg):
    """Planted derivations: each wrong by one edit (and one right one), in this file."""

    @dc.gradient(of=cost_mean, wrt="theta", inputs=LOGISTIC, registry=reg, name="missing_1_over_m")
    def missing_1_over_m(theta, X, y):
        mu = jax.nn.sigmoid(X @ theta)
        return X.T @ (mu - y)

    @dc.gradient(of=cost_mean, wrt="theta", inputs=LOGISTIC, registry=reg, name="mean_gradient")
    def mean_gradient(theta, X, y):
        m = X.shape[0]
        mu = jax.nn.sigmoid(X @ theta)
        return X.T @ (mu - y) / m

    @dc.gradient(of=cost_mean, wrt="theta", inputs=LOGISTIC, registry=reg, name="sign")
    def sign(theta, X, y):
        m = X.shape[0]
        mu = jax.nn.sigmoid(X @ theta)
        return X.T @ (y - mu) / m

    @dc.gradient(
        of=lambda z: jnp.sum(jax.nn.sigmoid(z)), inputs=dc.inputs(z=dc.normal("n")), registry=reg, name="sigma"
    )
    def sigma(z):
        mu = jax.nn.sigmoid(z)
        return 1 - mu

    @dc.jacobian(of=lambda A, x: A @ x, wrt="x", inputs=dc.inputs(A=dc.normal("n", "n"), x=dc.normal("n")),
                 registry=reg, name="transpose")  # fmt: skip
    def transpose(A, x):
        return A.T

    @dc.gradient(of=lambda Z: jnp.sum(jax.nn.logsumexp(Z, axis=1)), inputs=dc.inputs(Z=dc.normal("m", "c")),
                 registry=reg, name="axis")  # fmt: skip
    def axis(Z):
        return jax.nn.softmax(Z, axis=0)

    @dc.gradient(of=lambda x: jnp.sum(jnp.sin(x) * x**2), inputs=dc.inputs(x=dc.normal("n")), registry=reg,
                 name="far_off")  # fmt: skip
    def far_off(x):
        return jnp.tanh(x) * jnp.exp(x)

    @dc.jacobian(of=jax.nn.softmax, inputs=dc.inputs(z=dc.normal("n")), registry=reg, name="delta")
    def delta(z):
        n = z.shape[0]
        s = jax.nn.softmax(z)
        return s[:, None] * (jnp.ones((n, n)) - s[None, :])

    @dc.jacobian(of=jax.nn.softmax, inputs=dc.inputs(z=dc.normal("n")), registry=reg, name="delta_passed")
    def delta_passed(z):
        return _softmax_jacobian(z, _all_ones)

    @dc.vjp(of=lambda W, a: W @ a, wrt="a", inputs=dc.inputs(W=dc.normal("n", "n"), a=dc.normal("n")),
            registry=reg, name="order")  # fmt: skip
    def order(W, a, ct):
        return ct @ W.T

    return reg


def _all_ones(n):
    return jnp.ones((n, n))


def _softmax_jacobian(z, delta_of):
    """``s_k (δ_kj − s_j)`` with the delta a function passed in: an editable helper though never called by name."""
    s = jax.nn.softmax(z)
    return s[:, None] * (delta_of(z.shape[0]) - s[None, :])


@pytest.fixture(scope="module")
def planted():
    return _declare(dc.Registry())


def _fixes(r):
    return [(s.before, s.after) for s in r]


@pytest.mark.parametrize(
    ("name", "fixes"),
    [
        ("missing_1_over_m", {("X.T @ (mu - y)", "X.T @ (mu - y) / X.shape[0]"), ("mu - y", "(mu - y) / X.shape[0]")}),
        ("sign", {("y - mu", "mu - y"), ("X.T @ (y - mu) / m", "-(X.T @ (y - mu) / m)")}),
        ("sigma", {("1 - mu", "mu * (1 - mu)")}),
        ("transpose", {("A.T", "A")}),
        (
            "axis",
            {
                ("jax.nn.softmax(Z, axis=0)", "jax.nn.softmax(Z, axis=1)"),
                ("jax.nn.softmax(Z, axis=0)", "jax.nn.softmax(Z, axis=-1)"),
                ("jax.nn.softmax(Z, axis=0)", "jax.nn.softmax(Z)"),  # its default axis is -1
            },
        ),
        ("delta", {("jnp.ones((n, n))", "jnp.eye(n)")}),  # δ_kk (= 1) written for δ_kj
        ("delta_passed", {("jnp.ones((n, n))", "jnp.eye(n)")}),  # in a helper passed by name
        ("order", {("W.T", "W"), ("ct @ W.T", "W.T @ ct")}),  # the operands of a product in the wrong order
    ],
)
def test_a_planted_single_edit_gets_the_fix_that_restores_it(planted, name, fixes):
    d = planted[name]
    assert dc.check(d, trials=60).outcome == "fails"
    r = search(d, budget=BUDGET)
    assert r, r.message
    best = r[0]
    assert (best.before, best.after) in fixes, _fixes(r)
    assert best.file == __file__ and best.line > 0 and best.holds_on > 0
    assert best.seed != 0  # confirmed on a seed the failing check did not use
    assert f"-{best.before}" not in best.diff or best.before in best.diff  # the diff shows the edited line
    assert best.after in best.diff


def test_the_same_error_read_another_way_on_its_line_is_shown_too(planted):
    """``ct @ W.T``: the transpose dropped (``ct @ W``, tried first: it removes something) and the operands
    swapped (the notes' kind of correction) both hold; the screen goes on past its first fit for the same
    kind on the same line, so both are shown."""
    r = search(planted["order"], budget=BUDGET)
    assert _fixes(r)[:2] == [("W.T", "W"), ("ct @ W.T", "W.T @ ct")]


def test_a_fix_in_the_derivation_ranks_before_one_in_a_helper_it_shares():
    """Among the edits that remove something, and among the others, the derived function's come first."""
    from derivcheck._repair._edits import _removes

    src = read(_uses_helper)
    found = edits(src.trees, src.text, src.namespace, ())
    assert {e.tree for e in found} == {0, 1} and {_removes(e) for e in found} == {True, False}
    keys = [(not _removes(e), e.tree != 0) for e in found]
    assert keys == sorted(keys)


def _uses_helper(z):
    return _all_ones(z.shape[0]) * 2


def test_a_confirmed_fix_holds_on_other_seeds_too(planted):
    """The suggestion, applied by hand, holds wherever it is checked (not only on the confirming seed)."""
    r = search(planted["missing_1_over_m"], budget=BUDGET)
    assert r and r[0].after.endswith("/ X.shape[0]")
    fixed = planted["mean_gradient"]  # the same edit, written out
    for seed in (3, 4, 5):
        assert dc.check(fixed, trials=60, seed=seed).outcome == "holds"


def test_a_correct_derivation_gets_no_suggestion(planted):
    r = dc.suggest_fix(planted["mean_gradient"], trials=60)
    assert not r and len(r) == 0
    assert "holds" in r.message


def test_nothing_in_the_catalogue_says_so_in_one_line(planted):
    r = search(planted["far_off"], budget=BUDGET)
    assert not r
    assert r.message.startswith("no single edit found") and "\n" not in r.message


def test_the_budget_stops_the_search(planted):
    start = time.perf_counter()
    r = search(planted["far_off"], budget=0.0)
    assert not r and not r.complete and r.candidates == 0
    assert "time budget" in r.message
    assert time.perf_counter() - start < 30  # drawing the screening trials only; no candidate, no confirmation


def test_source_unavailable_degrades_to_one_line(reg):
    namespace = {"jnp": jnp}
    exec("f = lambda x: 3 * x", namespace)  # as typed at a REPL: no file to read
    d = dc.gradient(of=lambda x: jnp.sum(x**2), inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="repl")(
        namespace["f"]
    )
    r = search(d, budget=BUDGET)
    assert not r and r.message.startswith("no fix searched") and "not in a file" in r.message
    lib = dc.gradient(of=lambda x: jnp.sum(jnp.sin(x)), inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="lib")(
        jnp.sin
    )
    assert "library function" in search(lib, budget=BUDGET).message
    with pytest.raises(NoSource, match="not a Python function"):
        read(len)
    tex = dc.registry()["logistic.gradient_vector_as_written_latex"]  # the catalog's, read by dc.latex
    assert search(tex, budget=BUDGET).message.endswith("read from LaTeX (dc.latex): there is no Python source to edit")


def test_a_claim_the_search_does_not_cover_says_so(reg):
    @dc.identity(of=lambda x: x + 1, inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="id")
    def ident(x):
        return x + 2

    assert "no fix is searched" in search(ident, budget=BUDGET).message


def test_the_diagnosis_names_the_line_and_the_json_carries_the_suggestion(planted):
    d = planted["sigma"]
    r = with_suggestions(dc.check(d, trials=60), d, budget=BUDGET)
    assert r.diagnosis is not None and r.diagnosis.kind == "factor"
    assert r.diagnosis.summary.startswith(f"line {r.repair[0].line}: `1 - mu` should be `mu * (1 - mu)`")
    assert any(e.startswith("at the output:") for e in r.diagnosis.evidence)
    doc = json.loads(json.dumps(r.to_dict()))
    assert (
        doc["suggestions"]
        == [{"file": __file__, "line": r.repair[0].line, "before": "1 - mu", "after": "mu * (1 - mu)", "holds_on": 200}]
        or doc["suggestions"][0]["after"] == "mu * (1 - mu)"
    )
    assert "suggestions" not in dc.check(planted["mean_gradient"], trials=30).to_dict()  # not computed: absent


def test_explanation_shows_the_diff_with_the_trials_it_holds_on(planted):
    text = dc.explanation(planted["sigma"], trials=60, shrink=False, suggest=True)
    assert "suggested fix: line" in text and "with this change it holds on" in text
    assert "-        return 1 - mu" in text and "+        return mu * (1 - mu)" in text


def test_run_searches_unexpected_failures_only(tmp_path, capsys, monkeypatch, fresh_default_registry):
    from derivcheck.cli import main

    monkeypatch.setenv("DERIVCHECK_SUGGEST", "1")
    user = tmp_path / "user_derivations.py"
    user.write_text(
        "import jax, jax.numpy as jnp, derivcheck as dc\n"
        "@dc.gradient(of=lambda z: jnp.sum(jax.nn.sigmoid(z)), inputs=dc.inputs(z=dc.normal('n')), name='u.wrong')\n"
        "def wrong(z):\n"
        "    s = jax.nn.sigmoid(z)\n"
        "    return 1 - s\n"
        "@dc.gradient(of=lambda z: jnp.sum(jax.nn.sigmoid(z)), inputs=dc.inputs(z=dc.normal('n')), name='u.known',\n"
        "             expect=dc.fails('the factor s is missing'))\n"
        "def known(z):\n"
        "    s = jax.nn.sigmoid(z)\n"
        "    return 1 - s\n"
    )
    out_json = tmp_path / "out.json"
    assert main(["run", "--load", str(user), "u.*", "--trials", "60", "--json", str(out_json)]) == 1
    text = capsys.readouterr().out
    assert "suggested fix: line 5: `1 - s` should be `s * (1 - s)`" in text
    results = {r["name"]: r for r in json.loads(out_json.read_text())["results"]}
    assert results["u.wrong"]["suggestions"][0]["after"] == "s * (1 - s)"
    assert "suggestions" not in results["u.known"]  # an expected failure is never searched in a plain run


def test_the_catalogue_offers_every_kind_of_edit():
    src = read(_sample)
    found = edits(src.trees, src.text, src.namespace, ())
    assert {e.kind for e in found} == set(KIND_ORDER)
    pairs = {(e.before, e.after) for e in found}
    assert ("a + b", "a - b") in pairs  # a sign
    assert ("a", "a.T") in pairs  # a transpose
    assert ("jnp.sum(a, axis=0)", "jnp.sum(a, axis=1)") in pairs  # an axis
    assert ("jnp.exp(b)", "jnp.log(b)") in pairs  # a function's usual confusion
    assert ("a", "b") in pairs  # a variable swapped
    assert ("a + b", "b") in pairs  # a term dropped


def _sample(a, b):
    c = jnp.sum(a, axis=0) + jnp.exp(b)
    return (a + b) @ a * c


def test_no_suggestion_is_shown_for_a_fix_that_fails_a_fresh_seed(planted, monkeypatch):
    """A candidate that passes the screen but not the confirming check is never a suggestion."""
    from derivcheck._repair import _search

    monkeypatch.setattr(_search, "AGREEMENT", 0.0)  # every candidate passes the screen: confirmation decides
    monkeypatch.setattr(_search, "MAX_CONFIRM", 3)
    r = search(planted["far_off"], budget=BUDGET)
    assert not r


def test_the_mutation_benchmark_runs_tiny(tmp_path):
    """``benchmarks/mutations.py --tiny``: its table and rows, and no suggestion that fails a third seed."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "mutations.py"
    out = tmp_path / "rows.json"
    env = {**os.environ, "DERIVCHECK_SUGGEST": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), "--tiny", "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| kind | mutants | caught |" in proc.stdout and "| all |" in proc.stdout
    rows = json.loads(out.read_text())
    assert rows and all(r["caught"] for r in rows)  # a planted factor or sign is always caught
    assert not any(r["recheck_fails"] for r in rows)
    assert all(r["names_place"] == r["fix_holds"] for r in rows)


def _repaired_result():
    from derivcheck._repair import Change, Repair, Suggestion

    s = Suggestion("f.py", (Change(12, "1 - mu", "mu * (1 - mu)", "factor", "a factor missing"),), 210, 1, "-a\n+b")
    r = dc.Result(name="x", kind="gradient", outcome="fails", expect=dc.HOLDS, message="differs")
    return dataclasses.replace(r, repair=Repair((s,))), Repair(message="no single edit found: …")


def test_every_report_shows_the_suggestion_or_says_none_was_found():
    from derivcheck._report.html import result_html
    from derivcheck._report.text import details, failure_lines

    found, none = _repaired_result()
    line = "suggested fix: line 12: `1 - mu` should be `mu * (1 - mu)` (with this change it holds on 210 trials)"
    assert line in failure_lines(found)  # the pytest plugin's and dc.testing's account
    assert f"    {line}" in details([found])  # derivcheck run's
    assert "suggested fix" in result_html(found) and "holds on 210 trials" in result_html(found)
    empty = dataclasses.replace(found, repair=none)
    assert "no single edit found: …" in failure_lines(empty) and "no single edit found" in result_html(empty)
    assert found.to_dict()["suggestions"] == [
        {"file": "f.py", "line": 12, "before": "1 - mu", "after": "mu * (1 - mu)", "holds_on": 210}
    ]
    assert empty.to_dict()["suggestions"] == []


# ----------------------------------------------------------------------- custom rules (@dc.rule)


def _sin_bwd(x, ct):
    return (-jnp.cos(x) * ct,)  # the planted sign slip: d sin = cos


def _square_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return x**2, x * t  # the planted slip: 2 x t


@pytest.fixture(scope="module")
def rules():
    reg = dc.Registry()
    one = dc.inputs(x=dc.normal("n"))

    @dc.rule(inputs=one, registry=reg, name="sin")
    @jax.custom_vjp
    def sin(x):
        return jnp.sin(x)

    sin.defvjp(lambda x: (jnp.sin(x), x), _sin_bwd)

    @dc.rule(inputs=one, registry=reg, name="square")
    @jax.custom_jvp
    def square(x):
        return x**2

    square.defjvp(_square_jvp)

    @dc.rule(inputs=one, registry=reg, name="cube")
    @jax.custom_jvp
    def cube(x):
        return x**3

    cube.defjvps(lambda t, ans, x: 2 * x**2 * t)  # a rule JAX builds from per-argument functions
    return reg


@pytest.mark.parametrize(("name", "fix"), [("sin", ("-jnp.cos(x)", "jnp.cos(x)")), ("square", ("x * t", "x * t * 2"))])
def test_a_rule_gets_the_fix_of_its_backward_or_jvp_function(rules, name, fix):
    d = rules[f"{name}[rule wrt x]"]
    assert dc.check(d, trials=20).outcome == "fails"
    r = search(d, budget=BUDGET, confirm_trials=40)
    assert r, r.message
    assert (r[0].before, r[0].after) == fix and r[0].file == __file__
    assert r[0].line == (_sin_bwd if name == "sin" else _square_jvp).__code__.co_firstlineno + (
        1 if name == "sin" else 2
    )
    fixed = r[0].fixed  # the rule rebuilt with the edited function: it holds where the planted one fails
    assert dc.check(dataclasses.replace(d, derived=fixed), trials=20, seed=5).outcome == "holds"
    assert dc.check(rules[f"{name}[rule output]"], trials=20).outcome == "holds"  # the user's rule is untouched


def test_a_rule_function_jax_wrote_says_so_not_that_it_is_no_python_function(rules):
    d = rules["cube[rule wrt x]"]
    message = search(d, budget=BUDGET).message
    assert message.startswith("no fix searched") and "library function" in message, message
    assert "not a Python function" not in message


def _returns_a_pair(x):
    return -x, jnp.zeros((2, 3)) + x


def test_the_entries_of_a_returned_tuple_are_edited_but_not_a_shape_in_a_call():
    src = read(_returns_a_pair)
    found = {(e.kind, e.before, e.after) for e in edits(src.trees, src.text, src.namespace, ())}
    assert ("sign", "-x", "x") in found  # an entry of the returned tuple (a custom rule's bwd returns one)
    assert not any(e[1] in ("2", "3", "(2, 3)") for e in found), found  # the shape (2, 3) is no number to edit


# ----------------------------------------------------------------------- pytree arguments


def _dict_loss(params, x):
    return jnp.sum(jnp.tanh(params["W"] @ x + params["b"]) ** 2)


def _dict_grad(params, x):
    h = jnp.tanh(params["W"] @ x + params["b"])
    g = 2 * h * (1 + h**2)  # the planted slip: the derivative of tanh is 1 − tanh²
    return {"W": jnp.outer(g, x), "b": g}


def _layer_bwd(res, ct):
    params, x, y = res
    g = ct * (1 + y**2)  # the same slip, in a custom rule's backward function over a dict of parameters
    return {"w": g * x, "b": g}, g * params["w"]


def test_a_derivation_over_a_dict_of_parameters_gets_its_fix(reg):
    """The search read the user's function through the pytree wrappers and called the edited copies with the
    drawn leaves: every candidate raised, and "no single edit found" was all a dict gradient or rule got."""
    spec = dc.inputs(params={"W": dc.normal("m", "n"), "b": dc.normal("m")}, x=dc.normal("n"))
    grad = dc.gradient(of=_dict_loss, wrt="params", inputs=spec, registry=reg, name="dict")(_dict_grad)

    @dc.rule(inputs=dc.inputs(params={"w": dc.normal("n"), "b": dc.normal("n")}, x=dc.normal("n")), registry=reg)
    @jax.custom_vjp
    def layer(params, x):
        return jnp.tanh(params["w"] * x + params["b"])

    layer.defvjp(lambda params, x: (layer(params, x), (params, x, layer(params, x))), _layer_bwd)
    for d, fn in (
        (grad, _dict_grad),
        (reg[next(n for n in reg.names() if n.endswith("layer[rule wrt params]"))], _layer_bwd),
    ):
        r = search(d, budget=BUDGET, confirm_trials=40)
        assert r, r.message
        assert (r[0].before, r[0].after, r[0].line) == (
            "1 + h**2" if fn is _dict_grad else "1 + y**2",
            "1 - h ** 2" if fn is _dict_grad else "1 - y ** 2",
            fn.__code__.co_firstlineno + 2,
        )
        assert dc.check(dataclasses.replace(d, derived=r[0].fixed), trials=20, seed=5).outcome == "holds"
