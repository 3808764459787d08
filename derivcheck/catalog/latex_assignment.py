"""The deep-learning assignment read from its LaTeX: deep-learning-assignment-2, Q1, Q2c, Q3 and Q7 as written.

Each statement is the notes' LaTeX; the derived function is what
:func:`derivcheck.latex` reads from it, next to the hand transcription in
:mod:`.sigmoid_neuron`, :mod:`.batch_norm`, :mod:`.two_layer_network` and
:mod:`.softmax_cross_entropy` (named ``<name>_latex``), with the same claim,
inputs and expectation. Where a statement is a chain ``A = B = C``, the
left-hand side is checked against the last member, as the hand transcription
does.
"""

import jax
import jax.numpy as jnp

import derivcheck as dc
from derivcheck.catalog import batch_norm as bn
from derivcheck.catalog import sigmoid_neuron as sn
from derivcheck.catalog import softmax_cross_entropy as ce
from derivcheck.catalog import two_layer_network as tl
from derivcheck.catalog._cases import own_entry

NOTES = "deep-learning-assignment-2"


def _yhat(w, b, x):
    """``\\hat{y} = 1 / (1 + e^{-(w^T x + b)})`` for one sample."""
    return jax.nn.sigmoid(jnp.dot(w, x) + b)


def _neuron_output(w, b, x):
    """``\\hat{y}`` as the function differentiated in ``∂ŷ/∂w``."""
    return jax.nn.sigmoid(jnp.dot(w, x) + b)


def _softmax(z):
    return jax.nn.softmax(z)


NEURON = {
    "E_n": sn.sample_cost,
    r"\hat{y}": dc.tensor(_yhat),
    "y_n": "y",
    "w": "w",
    "b": "b",
    "x": "x",
}


def _q1(statement, of, wrt, claim, inputs, name, where, symbols=NEURON):
    return dc.latex(
        statement, symbols=symbols, claim=claim(of=of, wrt=wrt), inputs=inputs, name=name, source=f"{NOTES}, {where}"
    )


dEn_dw = _q1(
    r"\frac{\partial E_n}{\partial w} = (\hat{y} - y_n)x",
    sn.sample_cost,
    "w",
    dc.Gradient,
    sn.SAMPLE,
    "sigmoid_neuron.dEn_dw_latex",
    "Q1, ∂E_n/∂w",
)
dEn_db = _q1(
    r"\frac{\partial E_n}{\partial b} = (\hat{y} - y_n)",
    sn.sample_cost,
    "b",
    dc.Gradient,
    sn.SAMPLE,
    "sigmoid_neuron.dEn_db_latex",
    "Q1, ∂E_n/∂b",
)
d2En_dw2 = _q1(
    r"\frac{\partial^2 E_n}{\partial w \partial w^T} = \frac{\partial}{\partial w} ((\hat{y} - y_n)x) = \hat{y}(1 - \hat{y})xx^T",
    sn.sample_cost,
    "w",
    dc.Hessian,
    sn.SAMPLE,
    "sigmoid_neuron.d2En_dw2_latex",
    "Q1, ∂²E_n/∂w∂wᵀ",
)
d2En_db2 = _q1(
    r"\frac{\partial^2 E_n}{\partial^2 b} = \frac{\partial}{\partial b} (\hat{y} - y_n) = \hat{y}(1 - \hat{y})",
    sn.sample_cost,
    "b",
    dc.Hessian,
    sn.SAMPLE,
    "sigmoid_neuron.d2En_db2_latex",
    "Q1, ∂²E_n/∂b² (written ∂²E_n/∂²b)",
)
dyhat_dw = dc.latex(
    r"\frac{\partial \hat{y}}{\partial w} = \hat{y}(1 - \hat{y})x",
    symbols={r"\hat{y}": dc.tensor(_yhat), "w": "w", "x": "x"},
    claim=dc.Gradient(of=_neuron_output, wrt="w"),
    inputs=dc.inputs(w=dc.normal("d"), b=dc.normal(), x=dc.normal("d")),
    name="sigmoid_neuron.dyhat_dw_latex",
    source=f"{NOTES}, Q1, ∂ŷ/∂w",
)

# ----------------------------------------------------------------------------- Q2c

BATCH_NORM = {
    "x": "x",
    r"\gamma": "gamma",
    r"\frac{\partial L}{\partial y}": dc.tensor("ct", "n"),
}
backward = dc.latex(
    r"\frac{\partial L}{\partial x_i} = \gamma \left(\frac{\partial L}{\partial y_i} - \frac{1}{n} \sum_{k=1}^n \frac{\partial L}{\partial y_k} \right)",
    symbols=BATCH_NORM,
    claim=dc.VJP(of=bn.mean_only_bn, wrt="x"),
    inputs=bn.BN,
    name="batch_norm.backward_latex",
    source=f"{NOTES}, Q2c, result",
)
dL_dxhat = dc.latex(
    r"\frac{\partial L}{\partial \hat{x}_k} = \frac{\partial L}{\partial y_k} \cdot \gamma",
    symbols={r"\hat{x}": "xhat", r"\gamma": "gamma", r"\frac{\partial L}{\partial y}": dc.tensor("ct", "n")},
    claim=dc.VJP(of=lambda xhat, gamma, beta: gamma * xhat + beta, wrt="xhat"),
    inputs=dc.inputs(xhat=dc.normal("n"), gamma=dc.normal(), beta=dc.normal()),
    name="batch_norm.dL_dxhat_latex",
    source=f"{NOTES}, Q2c step 3, ∂L/∂x̂_k (index read as k)",
)
CENTRED = {r"\hat{x}": dc.tensor(bn.centre, "n"), "x": "x"}
dxhat_dx = dc.latex(
    r"\frac{\partial \hat{x}_i}{\partial x_k} = \delta_{ik} - \frac{1}{n}",
    symbols=CENTRED,
    claim=dc.Jacobian(of=bn.centre, wrt="x"),
    inputs=bn.BATCH,
    name="batch_norm.dxhat_dx_latex",
    source=f"{NOTES}, Q2c step 2 (both cases)",
)
dxhat_dx_same_index = dc.latex(
    r"\frac{\partial \hat{x}_i}{\partial x_i} = 1 - \frac{1}{n}",
    symbols=CENTRED,
    claim=dc.Jacobian(of=own_entry(bn.centre), wrt="x"),
    inputs=bn.BATCH,
    name="batch_norm.dxhat_dx_same_index_latex",
    source=f"{NOTES}, Q2c step 2, case i = k",
)

# ----------------------------------------------------------------------------- Q3

LAYER_2 = {r"\hat{y}": dc.tensor(_softmax, "K"), "z^{(2)}": "z"}
softmax_jacobian = dc.latex(
    r"\frac{\partial \hat{y}_k}{\partial z_i^{(2)}} = \begin{cases} \hat{y}_k(1 - \hat{y}_k) & i = k \\ -\hat{y}_k \hat{y}_i & i \neq k \end{cases}",
    symbols=LAYER_2,
    claim=dc.Jacobian(of=jax.nn.softmax, wrt="z"),
    inputs=tl.LOGITS,
    name="two_layer.softmax_jacobian_latex",
    source=f"{NOTES}, Q3.1 (both cases together)",
)
softmax_jacobian_same_index = dc.latex(
    r"\frac{\partial \hat{y}_k}{\partial z_k^{(2)}} = \hat{y}_k(1 - \hat{y}_k)",
    symbols=LAYER_2,
    claim=dc.Jacobian(of=own_entry(jax.nn.softmax), wrt="z"),
    inputs=tl.LOGITS,
    name="two_layer.softmax_jacobian_same_index_latex",
    source=f"{NOTES}, Q3.1 case i = k (restated in Q3.2)",
)
softmax_jacobian_same_index_quotient_step = dc.latex(
    r"\frac{\partial \hat{y}_k}{\partial z_k^{(2)}} = \frac{e^{z_k^{(2)}} \sum_{i=1}^K e^{z_i^{(2)}}}{(\sum_{i=1}^K e^{z_i^{(2)}})^2} - \frac{e^{z_k^{(2)}}}{(\sum_{i=1}^K e^{z_i^{(2)}})^2}",
    symbols=LAYER_2,
    claim=dc.Jacobian(of=own_entry(jax.nn.softmax), wrt="z"),
    inputs=tl.LOGITS,
    name="two_layer.softmax_jacobian_same_index_quotient_step_latex",
    source=f"{NOTES}, Q3.1 case i = k, quotient-rule step",
    expect=dc.fails(
        "the quotient rule's second term is e^{z_k}·e^{z_k}/Σ², not e^{z_k}/Σ² (a factor e^{z_k} is missing; the next step uses the right one)"
    ),
)
dL_dz2 = dc.latex(
    r"\frac{\partial L}{\partial z^{(2)}} = \hat{y} - y",
    symbols={"L": tl.cross_entropy, r"\hat{y}": dc.tensor(_softmax, "K"), "z^{(2)}": "z", "y": "y"},
    claim=dc.Gradient(of=tl.cross_entropy, wrt="z"),
    inputs=tl.LOGITS_LABEL,
    name="two_layer.dL_dz2_latex",
    source=f"{NOTES}, Q3.3, first line",
)

# ----------------------------------------------------------------------------- Q7

CROSS_ENTROPY = {
    "L": ce.cross_entropy,
    "z": "z",
    "y": "y",
    r"\hat{y}": dc.tensor(_softmax, "K"),
    "H": r"\nabla^2_{z} L",
}
gradient = dc.latex(
    r"\nabla_{\mathbf{z}} L = \hat{\mathbf{y}} - \mathbf{y}.",
    symbols=CROSS_ENTROPY,
    claim=dc.Gradient(of=ce.cross_entropy, wrt="z"),
    inputs=ce.LOGITS_ONE_HOT,
    name="softmax_ce.gradient_latex",
    source=f"{NOTES}, Q7a (condition: y one-hot)",
)
hessian = dc.latex(
    r"H = \text{diag}(\hat{y}) - \hat{y}\hat{y}^T",
    symbols=CROSS_ENTROPY,
    claim=dc.Hessian(of=ce.cross_entropy, wrt="z"),
    inputs=ce.LOGITS_ONE_HOT,
    name="softmax_ce.hessian_latex",
    source=f"{NOTES}, Q7b-ii ('We know H = diag(ŷ) − ŷŷᵀ')",
)
gradient_component_as_written = dc.latex(
    r"\frac{\partial}{\partial z_i} L(\mathbf{z}, \mathbf{y}) = \hat{y}_i - 1",
    symbols=CROSS_ENTROPY,
    claim=dc.Gradient(of=ce.cross_entropy, wrt="z"),
    inputs=ce.LOGITS_ONE_HOT,
    name="softmax_ce.gradient_component_as_written_latex",
    source=f"{NOTES}, Q7a (derivation) and Q7b-i ('we know ∂L/∂z_i = ŷ_i − 1')",
    expect=dc.fails(
        "∂L/∂z_i = ŷ_i − 1 holds only for the true class i = k; for i ≠ k it is ŷ_i (ŷ_i − y_i in general)"
    ),
)

UNREAD = (
    (
        r"\frac{\partial^2 E_{w,b}}{\partial w \partial w^T} = \sum_n \hat{y}(1 - \hat{y})x_n x_n^T",
        "Q1: ŷ is written without its sample index n inside Σ_n (ŷ(1 − ŷ) of the vector ŷ is a column times a column)",
    ),
    (r"w_{n+1} = w_n - \eta \sum_n (\hat{y}(x_n) - y_n)x_n", "Q1: an update rule, not a derivative"),
    (
        r"\frac{\partial \hat{x}_i}{\partial x_k} = -\frac{1}{n}",
        "Q2c, case i ≠ k: the condition is in the prose ('For i ≠ k'), not in the statement",
    ),
    (
        r"\frac{\partial L}{\partial x_i} = \frac{\partial L}{\partial \hat{x}_i} \cdot 1 + \sum_{k=1}^n \frac{\partial L}{\partial \hat{x}_k} \cdot \frac{\partial \hat{x}_k}{\partial x_i} - \frac{1}{n}",
        "Q2c chain rule: derivatives of intermediate quantities (∂L/∂x̂, ∂x̂/∂x) on the right-hand side",
    ),
    (
        r"\frac{\partial L}{\partial W^{(1)}} = ((\hat{y} - y)(W^{(2)})^T \odot M \odot A)x^T",
        "Q3.3: A is defined by cases on z_i⁽¹⁾ (a condition on values, not indices)",
    ),
    (r"\frac{\partial L}{\partial z_k^{(2)}} = \hat{y}_k - 1", "Q3.2: k is 'the true class' (y_k = 1), not an index"),
    (
        r"\frac{\partial^2}{\partial z_i^2} L(\mathbf{z}, \mathbf{y}) = \hat{y}_i (1 - \hat{y}_i)",
        "Q7b-i: ∂z_i² (a squared differential) is not in the dialect",
    ),
    (r"\sigma'(z) = \sigma(z)\,[1 - \sigma(z)]", "a prime for a derivative is not in the dialect"),
    (r"\mathbb{E}\left[\frac{\partial J_1}{\partial W_i}\right] = …", "Q5: expectations are not in the dialect"),
)
