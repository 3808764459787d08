"""``@dc.rule``: a ``jax.custom_vjp``/``custom_jvp`` rule checked against autodiff of its primal, one
derivation per differentiable argument (and the rule's forward output), from Python and ``--rules``."""

import functools
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import derivcheck as dc
from derivcheck.cli import main

EPS = 1e-5
LN = dc.inputs(x=dc.normal("m", "n"), gamma=dc.normal("n"), beta=dc.normal("n"))


def _layer_norm(bwd, reg, expect=dc.HOLDS):
    """A layer-norm over the last axis whose backward pass is ``bwd(res, ct) -> (dx, dgamma, dbeta)``."""

    @dc.rule(inputs=LN, registry=reg, name="ln", expect=expect)
    @jax.custom_vjp
    def layer_norm(x, gamma, beta):
        mu = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean((x - mu) ** 2, axis=-1, keepdims=True)
        return gamma * (x - mu) / jnp.sqrt(var + EPS) + beta

    def fwd(x, gamma, beta):
        mu = jnp.mean(x, axis=-1, keepdims=True)
        sigma = jnp.sqrt(jnp.mean((x - mu) ** 2, axis=-1, keepdims=True) + EPS)
        xhat = (x - mu) / sigma
        return gamma * xhat + beta, (xhat, sigma, gamma)

    layer_norm.defvjp(fwd, bwd)
    return layer_norm


def ln_bwd(res, ct):
    """``dx = (g − mean g − x̂ mean(g x̂)) / σ`` with ``g = ct γ``; ``dγ = Σ ct x̂``; ``dβ = Σ ct``."""
    xhat, sigma, gamma = res
    g = ct * gamma
    dx = (g - jnp.mean(g, -1, keepdims=True) - xhat * jnp.mean(g * xhat, -1, keepdims=True)) / sigma
    return dx, jnp.sum(ct * xhat, axis=0), jnp.sum(ct, axis=0)


def ln_bwd_missing_term(res, ct):
    xhat, sigma, gamma = res
    g = ct * gamma
    dx = (g - jnp.mean(g, -1, keepdims=True)) / sigma  # drops the x̂ mean(g x̂) term
    return dx, jnp.sum(ct * xhat, axis=0), jnp.sum(ct, axis=0)


def ln_bwd_swapped(res, ct):
    dx, dgamma, dbeta = ln_bwd(res, ct)
    return dx, dbeta, dgamma  # γ's and β's cotangents swapped


def ln_bwd_sign(res, ct):
    dx, dgamma, dbeta = ln_bwd(res, ct)
    return -dx, dgamma, dbeta


def _outcomes(fn, trials=60, seed=0):
    return {d.name: dc.check(d, trials=trials, seed=seed).outcome for d in fn.__derivcheck_rules__}


@pytest.mark.parametrize("seed", range(3))
def test_a_correct_layer_norm_rule_holds_for_every_argument(reg, seed):
    fn = _layer_norm(ln_bwd, reg)
    assert _outcomes(fn, seed=seed) == {
        "ln[rule output]": "holds",
        "ln[rule wrt x]": "holds",
        "ln[rule wrt gamma]": "holds",
        "ln[rule wrt beta]": "holds",
    }
    assert {d.claim_id for d in fn.__derivcheck_rules__} == {"identity", "vjp"}


def test_the_decorated_function_is_unchanged(reg):
    fn = _layer_norm(ln_bwd, reg)
    x, gamma, beta = jnp.ones((2, 3)).at[0, 0].set(2.0), jnp.ones(3), jnp.zeros(3)
    assert isinstance(fn, jax.custom_vjp)
    assert jax.grad(lambda x: jnp.sum(fn(x, gamma, beta) ** 2))(x).shape == (2, 3)


@pytest.mark.parametrize(
    "bwd, wrong",
    [(ln_bwd_missing_term, {"x"}), (ln_bwd_swapped, {"gamma", "beta"}), (ln_bwd_sign, {"x"})],
    ids=["missing-term", "swapped-cotangents", "sign"],
)
def test_a_wrong_backward_pass_fails_in_the_arguments_it_gets_wrong(reg, bwd, wrong):
    outcomes = _outcomes(_layer_norm(bwd, reg))
    failing = {name.split("wrt ")[1].rstrip("]") for name, o in outcomes.items() if o == "fails"}
    assert failing == wrong, outcomes
    assert outcomes["ln[rule output]"] == "holds"


def test_a_sign_slip_in_a_rule_is_diagnosed_as_a_sign(reg):
    fn = _layer_norm(ln_bwd_sign, reg)
    d = reg["ln[rule wrt x]"]
    assert d.claim.of.__qualname__.endswith("layer_norm") and fn is not None
    assert "sign error" in dc.explanation(d, trials=60, shrink=False)


def test_a_wrong_forward_output_is_caught(reg):
    @dc.rule(inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="exp2")
    @jax.custom_vjp
    def f(x):
        return jnp.exp(x)

    f.defvjp(lambda x: (jnp.exp(x) + 1.0, jnp.exp(x)), lambda e, ct: (e * ct,))
    assert _outcomes(f) == {"exp2[rule output]": "fails", "exp2[rule wrt x]": "holds"}


def stable_lse(reg):
    @dc.rule(inputs=dc.inputs(x=dc.normal("n", scale=30.0)), registry=reg, name="lse")
    @jax.custom_vjp
    def lse(x):
        return jnp.log(jnp.sum(jnp.exp(x)))

    def fwd(x):
        m = jnp.max(x)
        s = m + jnp.log(jnp.sum(jnp.exp(x - m)))
        return s, (x, s)

    lse.defvjp(fwd, lambda res, ct: (ct * jnp.exp(res[0] - res[1]),))
    return lse


@pytest.mark.parametrize("seed", range(3))
def test_a_stable_log_sum_exp_rule_holds(reg, seed):
    assert set(_outcomes(stable_lse(reg), seed=seed).values()) == {"holds"}


def softplus_jvp_rule(reg, factor):
    @dc.rule(inputs=dc.inputs(x=dc.normal("n"), y=dc.normal("n")), registry=reg, name=f"sp{factor}")
    @jax.custom_jvp
    def f(x, y):
        return jax.nn.softplus(x) * y

    @f.defjvp
    def f_jvp(primals, tangents):
        (x, y), (tx, ty) = primals, tangents
        return f(x, y), factor * jax.nn.sigmoid(x) * y * tx + jax.nn.softplus(x) * ty

    return f


@pytest.mark.parametrize("seed", range(2))
def test_a_custom_jvp_rule_holds(reg, seed):
    assert set(_outcomes(softplus_jvp_rule(reg, 1.0), seed=seed).values()) == {"holds"}


def test_a_custom_jvp_rule_with_a_wrong_factor_fails_in_that_argument(reg):
    assert _outcomes(softplus_jvp_rule(reg, 0.5)) == {
        "sp0.5[rule output]": "holds",
        "sp0.5[rule wrt x]": "fails",
        "sp0.5[rule wrt y]": "holds",
    }


def scaled_tanh(reg, factor, kind):
    """``k tanh(x)`` with ``k`` in ``nondiff_argnums`` (static to JAX)."""
    inputs = dc.inputs(k=dc.constant(3.0), x=dc.normal("n"))
    if kind == "vjp":

        @dc.rule(inputs=inputs, registry=reg, name=f"{kind}{factor}")
        @functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
        def f(k, x):
            return k * jnp.tanh(x)

        f.defvjp(lambda k, x: (f(k, x), x), lambda k, x, ct: (factor * k * (1 - jnp.tanh(x) ** 2) * ct,))
        return f

    @dc.rule(inputs=inputs, registry=reg, name=f"{kind}{factor}")
    @functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
    def g(k, x):
        return k * jnp.tanh(x)

    g.defjvp(lambda k, p, t: (g(k, *p), factor * k * (1 - jnp.tanh(p[0]) ** 2) * t[0]))
    return g


@pytest.mark.parametrize("kind", ["vjp", "jvp"])
def test_nondiff_argnums_are_fixed_not_drawn_nor_differentiated(reg, kind):
    good = scaled_tanh(reg, 1.0, kind)
    assert [d.name for d in good.__derivcheck_rules__] == [f"{kind}1.0[rule output]", f"{kind}1.0[rule wrt x]"]
    assert all(d.arg_names == ("x",) for d in good.__derivcheck_rules__)
    assert set(_outcomes(good).values()) == {"holds"}
    bad = scaled_tanh(reg, 1.0 / 3.0, kind)  # forgets k
    assert _outcomes(bad)[f"{kind}{1.0 / 3.0}[rule wrt x]"] == "fails"


def _declaration_error(reg, name):
    """The one error row a bad ``@dc.rule`` declaration leaves, its message, and its check's outcome."""
    (d,) = [d for d in reg if d.name == f"{name}[rule]"]
    r = dc.check(d)
    assert r.outcome == "error" and "\n" not in r.message
    return r.message


def test_a_drawn_nondiff_argument_is_one_error_row_pointing_at_the_decorator(reg):
    @dc.rule(inputs=dc.inputs(k=dc.normal(), x=dc.normal("n")), registry=reg, name="drawn")
    @functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
    def f(k, x):
        return k * x

    assert [d.name for d in f.__derivcheck_rules__] == ["drawn[rule]"]
    line = f.fun.__code__.co_firstlineno  # a decorated function's first line is its first decorator's
    message = _declaration_error(reg, "drawn")
    assert "nondiff_argnums" in message and "k=dc.constant(value)" in message
    assert message.endswith(f"(test_rules.py:{line})"), message


def test_rule_decorates_only_custom_functions(reg):
    assert dc.rule(inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="sin")(jnp.sin) is jnp.sin
    assert "custom_vjp or jax.custom_jvp" in _declaration_error(reg, "sin")
    dc.rule(inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="three")(3)  # not even callable
    assert "got int" in _declaration_error(reg, "three")


def test_a_primal_calling_the_host_is_a_one_line_error(reg):
    @dc.rule(inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="host")
    @jax.custom_vjp
    def host_sin(x):
        return jax.pure_callback(np.sin, jax.ShapeDtypeStruct(x.shape, x.dtype), x, vmap_method="sequential")

    host_sin.defvjp(lambda x: (jnp.sin(x), x), lambda x, ct: (jnp.cos(x) * ct,))
    r = dc.check(reg["host[rule wrt x]"], trials=20)
    assert r.outcome == "error" and "host function" in r.message and "\n" not in r.message


def test_a_rule_not_yet_defined_says_so(reg):
    @dc.rule(inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="nodef")
    @jax.custom_vjp
    def f(x):
        return x

    r = dc.check(reg["nodef[rule wrt x]"], trials=20)
    assert r.outcome == "error" and "defvjp(fwd, bwd)" in r.message


def clipped(reg, bound):
    @dc.rule(inputs=dc.inputs(x=dc.normal("n")), registry=reg, name=f"clip{bound}", expect=dc.deviates("clips"))
    @jax.custom_vjp
    def f(x):
        return 3.0 * x

    f.defvjp(lambda x: (3.0 * x, None), lambda _, ct: (jnp.clip(3.0 * ct, -bound, bound),))
    return f


def test_a_declared_deviation_is_an_expected_failure_and_a_match_is_reported(reg):
    deviating = {d.name: dc.check(d, trials=60) for d in clipped(reg, 1.0).__derivcheck_rules__}
    assert deviating["clip1.0[rule wrt x]"].outcome == "fails" and deviating["clip1.0[rule wrt x]"].ok
    assert "deviates on purpose: clips" in deviating["clip1.0[rule wrt x]"].expect.reason
    assert deviating["clip1.0[rule output]"].outcome == "holds" and deviating["clip1.0[rule output]"].ok
    never_clips = dc.check(clipped(reg, 1e3).__derivcheck_rules__[1], trials=60)
    assert never_clips.outcome == "holds" and not never_clips.ok  # the rule now matches: reported


RULES_FILE = textwrap.dedent(
    """
    import jax, jax.numpy as jnp
    import derivcheck as dc

    @dc.rule(inputs=dc.inputs(x=dc.normal("n")))
    @jax.custom_vjp
    def good(x):
        return jnp.sin(x)

    good.defvjp(lambda x: (jnp.sin(x), x), lambda x, ct: (jnp.cos(x) * ct,))

    @dc.rule(inputs=dc.inputs(x=dc.normal("n")))
    @jax.custom_vjp
    def bad(x):
        return jnp.sin(x)

    bad.defvjp(lambda x: (jnp.sin(x), x), lambda x, ct: (-jnp.cos(x) * ct,))

    @jax.custom_jvp
    def undeclared(x):
        return x

    undeclared.defjvp(lambda p, t: (p[0], t[0]))
    """
)


def test_run_rules_checks_every_declared_rule_and_lists_the_others(fresh_default_registry, tmp_path, capsys):
    path = tmp_path / "my_rules.py"
    path.write_text(RULES_FILE)
    status = main(["run", "--rules", str(path), "--trials", "40"])
    out = capsys.readouterr().out
    assert status == 1  # bad's rule is wrong
    assert "skipped my_rules.undeclared: a custom_jvp rule without declared inputs" in out
    for name, outcome in [("good[rule wrt x]", "holds"), ("bad[rule wrt x]", "fails"), ("bad[rule output]", "holds")]:
        assert any(f"my_rules.{name}" in line and outcome in line for line in out.splitlines()), out
    assert main(["run", "--rules", str(path), "--trials", "40", "*good*"]) == 0


def test_run_rules_shows_a_rule_on_a_plain_function_as_its_error(fresh_default_registry, tmp_path, capsys):
    path = tmp_path / "plain_rules.py"
    path.write_text(
        "import jax.numpy as jnp\nimport derivcheck as dc\n\n\n"
        "@dc.rule(inputs=dc.inputs(x=dc.normal('n')))\ndef forgot_custom_vjp(x):\n    return jnp.sin(x)\n"
    )
    assert main(["run", "--rules", str(path)]) == 1
    out = capsys.readouterr().out
    assert "ERROR: plain_rules.forgot_custom_vjp[rule] — @dc.rule decorates a jax.custom_vjp" in out
    assert "(plain_rules.py:5)" in out


def test_run_rules_names_a_module_that_does_not_import(fresh_default_registry, tmp_path, capsys):
    assert main(["run", "--rules", str(tmp_path / "missing.py")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_an_argument_without_a_spec_is_named_on_every_derivation(reg):
    @dc.rule(inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="xy")
    @jax.custom_vjp
    def f(x, y):
        return x * y

    f.defvjp(lambda x, y: (x * y, (x, y)), lambda r, ct: (r[1] * ct, r[0] * ct))
    assert {d.name for d in f.__derivcheck_rules__} == {"xy[rule output]", "xy[rule wrt x]", "xy[rule wrt y]"}
    for d in f.__derivcheck_rules__:
        assert "no input spec for ['y']" in d.problem
        assert dc.check(d).outcome == "error"


def test_a_primal_without_named_parameters_is_refused(reg):
    @dc.rule(inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="star")
    @jax.custom_vjp
    def f(*args):
        return args[0]

    assert "no named positional parameters" in _declaration_error(reg, "star")


BAD_RULE_FILE = textwrap.dedent(
    """
    import functools
    import jax
    import jax.numpy as jnp
    import derivcheck as dc

    @dc.gradient(of=lambda x: jnp.sum(x**2), inputs=dc.inputs(x=dc.normal("n")))
    def sq_grad(x):
        return 2 * x

    @dc.rule(inputs=dc.inputs(beta=dc.normal(), x=dc.normal("n")))
    @functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
    def ssp(beta, x):
        return jnp.logaddexp(0.0, beta * x) / beta

    ssp.defvjp(lambda beta, x: (ssp(beta, x), x), lambda beta, x, ct: (ct * jax.nn.sigmoid(beta * x),))
    """
)


def test_a_bad_rule_declaration_leaves_the_rest_of_its_file_to_run(fresh_default_registry, tmp_path, capsys):
    path = tmp_path / "bad_rule.py"
    path.write_text(BAD_RULE_FILE)
    assert main(["run", "--load", str(path), "--trials", "20"]) == 1
    out = capsys.readouterr().out
    assert "failed to import" not in out
    assert any("bad_rule.sq_grad" in line and "holds" in line for line in out.splitlines()), out
    assert "ERROR: bad_rule.ssp[rule] — argument 'beta' is in nondiff_argnums" in out
    assert "declare it as beta=dc.constant(value) (bad_rule.py:11)" in out


def test_a_rule_with_a_transposed_factor_fails_in_that_argument_and_says_transpose(reg):
    """``y = W x``: the cotangent of ``x`` is ``Wᵀ ct``; a backward pass written ``W ct`` (square ``W``,
    so it runs) is wrong in ``x`` only, and the diagnosis names the transpose: it fails exactly where
    ``W ≠ Wᵀ``."""

    @dc.rule(inputs=dc.inputs(W=dc.normal("n", "n"), x=dc.normal("n")), registry=reg, name="matvec")
    @jax.custom_vjp
    def matvec(W, x):
        return W @ x

    matvec.defvjp(lambda W, x: (W @ x, (W, x)), lambda res, ct: (jnp.outer(ct, res[1]), res[0] @ ct))
    outcomes = {d.name: dc.check(d, trials=40) for d in matvec.__derivcheck_rules__}
    assert {n: r.outcome for n, r in outcomes.items()} == {
        "matvec[rule output]": "holds",
        "matvec[rule wrt W]": "holds",
        "matvec[rule wrt x]": "fails",
    }
    diagnosis = outcomes["matvec[rule wrt x]"].diagnosis
    assert diagnosis is not None and "W is not symmetric (W ≠ Wᵀ)" in diagnosis.summary, diagnosis


def test_a_rule_on_a_library_function_leaves_it_untouched(reg):
    dc.rule(inputs=dc.inputs(x=dc.normal("n")), registry=reg, name="npsum")(np.sum)
    assert not hasattr(np.sum, "__derivcheck_rules__")
    assert "custom_vjp or jax.custom_jvp" in _declaration_error(reg, "npsum")


def _draw_logits_and_labels(key):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, (4, 3)), jax.random.randint(k2, (4,), 0, 3)


def _draw_x_and_key(key):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, (5,)), jax.random.split(k2)[0]  # a raw uint32 key, as jax.random.PRNGKey makes


def test_integer_labels_and_keys_a_custom_sampler_draws_are_not_differentiated(fresh_default_registry):
    """A custom sampler's labels and PRNG keys got a ``[rule wrt labels]`` check that errs ("must map
    floating-point values"): only its float outputs are differentiated, as with dc.inputs."""

    @dc.rule(inputs=_draw_logits_and_labels)
    @jax.custom_vjp
    def ce(logits, labels):
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1))

    def ce_fwd(logits, labels):
        return ce(logits, labels), (logits, labels)

    def ce_bwd(res, ct):
        logits, labels = res
        return ct * (jax.nn.softmax(logits) - jax.nn.one_hot(labels, 3)) / logits.shape[0], None

    ce.defvjp(ce_fwd, ce_bwd)

    @dc.rule(inputs=_draw_x_and_key)
    @jax.custom_vjp
    def dropout(x, key):
        return jnp.where(jax.random.bernoulli(key, 0.9, x.shape), x / 0.9, 0.0)

    def dropout_fwd(x, key):
        keep = jax.random.bernoulli(key, 0.9, x.shape)
        return jnp.where(keep, x / 0.9, 0.0), keep

    def dropout_bwd(keep, ct):
        return jnp.where(keep, ct / 0.9, 0.0), None

    dropout.defvjp(dropout_fwd, dropout_bwd)
    names = [d.name for d in dc.registry()]
    assert not any("wrt labels" in n or "wrt key" in n for n in names), names
    results = dc.run(*names, trials=12)
    assert {r.name: r.outcome for r in results} == {n: "holds" for n in names}
