"""Logistic and softmax regression read from their LaTeX: logistic-softmax-regression, as the notes write it.

Each statement below is the notes' LaTeX, typos included (the ``1/m``
dropped from ``g = X^T(\\mu - y)``, ``\\delta_{c,c}`` in the last lines of
Ex. 8.4(c)); the derived function is what :func:`derivcheck.latex` reads from
it, next to the hand transcription in :mod:`.logistic_regression` and
:mod:`.softmax_regression` (named ``<name>_latex``), with the same claim,
inputs and expectation. The symbol tables say what the notes say in words:
``x^{(i)}`` is the ``i``-th row of ``X``, ``w = [w_1 … w_C]`` has one column
per class, ``\\mu_{ic} = softmax(X w)_{ic}``.
"""

import jax
import jax.numpy as jnp

import derivcheck as dc
from derivcheck.catalog import logistic_regression as lr
from derivcheck.catalog import softmax_regression as sr

NOTES = "logistic-softmax-regression"


def _mu_binary(theta, X):
    """``\\mu_i = \\sigma(\\theta^\\top x^{(i)})``."""
    return jax.nn.sigmoid(X @ theta)


def _mu_softmax(w, X):
    """``\\mu_{ik} = softmax(w^\\top x_i)_k``, ``w`` is ``D × C``."""
    return jax.nn.softmax(X @ w, axis=-1)


def _softmax(eta):
    """``v(\\eta) = softmax(\\eta)``."""
    return jax.nn.softmax(eta)


def _binary(J):
    return {
        "J": J,
        r"\theta": "theta",
        "x": "X",
        "X": "X",
        "y": "y",
        r"h_\theta(x)": r"\sigma(\theta^\top x)",
        r"\mu": dc.tensor(_mu_binary, "m"),
        "S": r"\operatorname{diag}(\mu \odot (1 - \mu))",
        "g": r"\nabla_\theta J",
        "H": r"\nabla^2_\theta J",
    }


MEAN, SUM = _binary(lr.cost_mean), _binary(lr.cost_sum)
COMPONENT = r"\frac{\partial J}{\partial \theta_j} (\theta) = \left( \frac{1}{m} \sum_{i=1}^m \left[ h_\theta(x^{(i)}) - y^{(i)} \right] x_j^{(i)} \right)"
G_MATRIX = r"g = X^T (\mu - y)"
G_SUM = r"g = \sum_{i=1}^m (\mu_i - y^{(i)}) x^{(i)}"
H_ENTRY = r"\frac{\partial^2 J}{\partial \theta_k \partial \theta_j}(\theta) = \frac{\partial}{\partial \theta_k} \left( \sum_{i=1}^m (\mu_i - y_i) x_j^{(i)} \right) = \sum_{i=1}^m \mu_i (1 - \mu_i) x_j^{(i)} x_k^{(i)}"
H_SIGMOID = r"\frac{\partial^2 J}{\partial \theta_k \partial \theta_j}(\theta) = \sum_{i=1}^m x_j^{(i)} \sigma(\theta^\top x^{(i)}) \left[ 1 - \sigma(\theta^\top x^{(i)}) \right] x_k^{(i)}"
H_MATRIX = r"H = X^T S X"


def _lr(statement, symbols, claim, name, where, expect=dc.HOLDS):
    return dc.latex(
        statement, symbols=symbols, claim=claim, inputs=lr.DATA, name=name, source=f"{NOTES}, {where}", expect=expect
    )


gradient_component = _lr(
    COMPONENT, MEAN, dc.Gradient(of=lr.cost_mean, wrt="theta"), "logistic.gradient_component_latex", "∂J/∂θ_j"
)
gradient_vector_as_written = _lr(
    G_MATRIX,
    MEAN,
    dc.Gradient(of=lr.cost_mean, wrt="theta"),
    "logistic.gradient_vector_as_written_latex",
    "g = Xᵀ(μ − y)",
    dc.fails("the 1/m of ∂J/∂θ_j is dropped when the partials are stacked: g is m times the gradient of J"),
)
gradient_vector_sum = _lr(
    G_MATRIX,
    SUM,
    dc.Gradient(of=lr.cost_sum, wrt="theta"),
    "logistic.gradient_vector_sum_latex",
    "g = Xᵀ(μ − y) (reading J as the summed likelihood)",
)
gradient_vector_sum_form = _lr(
    G_SUM,
    SUM,
    dc.Gradient(of=lr.cost_sum, wrt="theta"),
    "logistic.gradient_vector_sum_form_latex",
    "g = Σ_i (μ_i − y⁽ⁱ⁾) x⁽ⁱ⁾ (reading J as the summed likelihood)",
)
hessian_entry = _lr(
    H_ENTRY, SUM, dc.Hessian(of=lr.cost_sum, wrt="theta"), "logistic.hessian_entry_latex", "∂²J/∂θ_k∂θ_j"
)
hessian_entry_sigmoid_form = _lr(
    H_SIGMOID,
    SUM,
    dc.Hessian(of=lr.cost_sum, wrt="theta"),
    "logistic.hessian_entry_sigmoid_form_latex",
    "∂²J/∂θ_k∂θ_j, the step with σ(θᵀx⁽ⁱ⁾)[1 − σ(θᵀx⁽ⁱ⁾)]",
)
hessian_entry_as_written = _lr(
    H_ENTRY,
    MEAN,
    dc.Hessian(of=lr.cost_mean, wrt="theta"),
    "logistic.hessian_entry_as_written_latex",
    "∂²J/∂θ_k∂θ_j (J with the 1/m it was defined with)",
    dc.fails(
        "the derivation differentiates ∂J/∂θ_j without its 1/m: the entries are m times those of the Hessian of J"
    ),
)
hessian = _lr(H_MATRIX, SUM, dc.Hessian(of=lr.cost_sum, wrt="theta"), "logistic.hessian_latex", "H = XᵀSX")
hessian_of_mean_cost = _lr(
    H_MATRIX,
    MEAN,
    dc.Hessian(of=lr.cost_mean, wrt="theta"),
    "logistic.hessian_of_mean_cost_latex",
    "H = XᵀSX (reading J with the 1/m it was defined with)",
    dc.fails("XᵀSX is the Hessian of the summed likelihood; for J with its 1/m it is (1/m) XᵀSX"),
)

# ----------------------------------------------------------------------------- Ex. 8.4

softmax_jacobian = dc.latex(
    r"\frac{\partial v_k}{\partial n_j}(\eta) = v_k(\eta) (\delta_{kj} - v_j(\eta))",
    symbols={"v": dc.tensor(_softmax, "C"), "n": "eta", r"\eta": "eta"},
    claim=dc.Jacobian(of=jax.nn.softmax, wrt="eta"),
    inputs=sr.ETA,
    name="softmax_regression.softmax_jacobian_latex",
    source=f"{NOTES}, Ex. 8.4(a)",
)

CLASSES = {
    "l": sr.log_likelihood,
    r"\ell": sr.log_likelihood,
    "w": dc.tensor("w", axes=(1, 0)),
    "x": "X",
    "y": "Y",
    r"\mu": dc.tensor(_mu_softmax, "m", "C"),
    "H_{c,c'}": r"\frac{\partial^2 \ell}{\partial w_c \partial w_{c'}^\top}",
}
GRADIENT_B = r"\nabla_{w_c} l (w) = \sum_{i=1}^m (y_{ic} - \mu_{ic}(w)) x_i"
HESSIAN_C = r"H_{c,c'} \ell(w) = - \sum_{i=1}^m \mu_{ic}(w) (\delta_{c,c'} - \mu_{i,c'}(w)) x_i x_i^T"
HESSIAN_C_LAST = r"H_{c,c'}(w) = - \sum_{i=1}^m \mu_{ic}(w) (\delta_{c,c} - \mu_{i,c'}(w)) x_i x_i^\top."


def _sr(statement, claim, inputs, name, where, expect=dc.HOLDS):
    return dc.latex(
        statement, symbols=CLASSES, claim=claim, inputs=inputs, name=name, source=f"{NOTES}, {where}", expect=expect
    )


gradient_class = _sr(
    GRADIENT_B,
    dc.Gradient(of=sr.log_likelihood, wrt="w"),
    sr.ONE_HOT,
    "softmax_regression.gradient_class_latex",
    "Ex. 8.4(b) (condition: one-hot y)",
)
gradient_any_labels = _sr(
    r"\nabla_{w_c} l(w) = \sum_{i=1}^m \left[ y_{ic} - \left( \sum_{k=1}^C y_{ik} \right) \mu_{ic}(w) \right] x_i",
    dc.Gradient(of=sr.log_likelihood, wrt="w"),
    sr.MULTI_HOT,
    "softmax_regression.gradient_any_labels_latex",
    "Ex. 8.4(b), the line before Σ_k y_ik = 1 is used",
)
gradient_multi_hot_labels = _sr(
    GRADIENT_B,
    dc.Gradient(of=sr.log_likelihood, wrt="w"),
    sr.MULTI_HOT,
    "softmax_regression.gradient_multi_hot_labels_latex",
    "Ex. 8.4(b) (condition fails: multi-hot labels, Σ_k y_ik ≠ 1)",
    dc.fails("the last step uses Σ_k y_ik = 1; for multi-hot labels the gradient is Σ_i [y_ic − (Σ_k y_ik) μ_ic] x_i"),
)
hessian_blocks = _sr(
    HESSIAN_C,
    dc.Hessian(of=sr.log_likelihood, wrt="w"),
    sr.ONE_HOT,
    "softmax_regression.hessian_latex",
    "Ex. 8.4(c), statement",
)
hessian_blocks_as_written = _sr(
    HESSIAN_C_LAST,
    dc.Hessian(of=sr.log_likelihood, wrt="w"),
    sr.ONE_HOT,
    "softmax_regression.hessian_as_written_latex",
    "Ex. 8.4(c), last lines (δ_{c,c})",
    dc.fails(
        "δ_{c,c} = 1 for every pair: the blocks with c ≠ c' get −Σ μ_ic(1 − μ_ic')x_i x_iᵀ instead of +Σ μ_ic μ_ic' x_i x_iᵀ (δ_{c,c'} is meant)"
    ),
)

UNREAD = (
    (
        r"\frac{\partial v_k \circ g_i}{\partial w_{cr}}(w) = \mu_{ik}(w) (\delta_{kc} - \mu_{ic}(w)) x_{ir}",
        "Ex. 8.4(b): the numerator is a composition v_k ∘ g_i (\\circ is not in the dialect)",
    ),
    (
        r"H_{c,c'} \ell(w) = \sum_{i=1}^m \mu_{ic}(w) \mu_{i,c'}(w) x_i x_i^T \quad (c \neq c')",
        "Ex. 8.4(c) blocks c ≠ c': conditions on indices outside a cases environment are not read",
    ),
    (r"a^T H a = (Xa)^T S (Xa) > 0", "definiteness claims (> 0, ⪰ 0) are not equations of a derivative"),
    (
        r"\frac{\partial v_k}{\partial n_j}(\eta) = \frac{\delta_{kj} \exp(n_k) \sum - \exp(n_k) \exp(n_j)}{\sum^2}",
        "Ex. 8.4(a), quotient step: a bare \\sum (for Σ_c exp(η_c)) has no index or summand",
    ),
)

_ = jnp  # the module reads like the hand transcriptions; jnp is used by readers extending it
