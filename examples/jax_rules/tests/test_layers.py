"""Importing the rule-checked layers makes their rules test items (the derivcheck plugin);
ordinary tests of the model sit beside them."""

import jax
import jax.numpy as jnp
from jax_rules.layers import attention, block, layer_norm  # noqa: F401  (collected: their rules are checked)


def test_the_block_trains_through_the_rules():
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (4, 3))
    params = {
        "norm": {"gamma": jnp.ones(3), "beta": jnp.zeros(3)},
        "attention": {name: jnp.eye(3) for name in ("Wq", "Wk", "Wv")},
    }
    grads = jax.grad(lambda p: jnp.sum(block(x, p) ** 2))(params)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
