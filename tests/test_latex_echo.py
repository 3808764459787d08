"""The reading of a LaTeX statement is echoed where a result is shown: explain, JSON, Jupyter."""

import jax.numpy as jnp

import derivcheck as dc


def _loss(w, X):
    return 0.5 * jnp.sum((X @ w) ** 2)


def test_the_reading_reaches_explain_json_and_the_notebook_display():
    with dc.scoped_registry():
        d = dc.latex(
            r"\frac{\partial J}{\partial w_j} = \sum_{i=1}^m (x_i^\top w) x_{ij}",
            symbols={"J": _loss, "w": "w", "x": "X"},
            claim=dc.Gradient(of=_loss, wrt="w"),
            inputs=dc.inputs(w=dc.normal("d"), X=dc.normal("m", "d")),
            name="echo.gradient",
        )
        r = dc.check(d, trials=20)
        assert r.outcome == "holds"
        assert r.to_dict()["reading"]["claim"].startswith("gradient of _loss")
        assert "read from LaTeX as: gradient" in dc.explanation(d, trials=20)
        assert "einsum" in d._repr_markdown_()
    plain = dc.check("softmax_ce.gradient", trials=8).to_dict()
    assert "reading" not in plain  # a hand-written derivation's JSON is unchanged
