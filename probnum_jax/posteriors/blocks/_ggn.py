"""Per-unit and per-layer blocks of the exact GGN, from one factor pass.

A parameter leaf is written in its canonical form ``W[d_in, d_out]`` (see
:mod:`probnum_jax.posteriors._layer_sites`). Its blocks are

* ``block="unit"``: the incoming weights of each output unit, the columns
  ``W[:, j]``: ``d_out`` blocks of size ``d_in``;
* ``block="layer"``: the whole leaf, ``vec(W)`` row-major: one block of size
  ``d_in * d_out``.

A leaf that is not a layer kernel (a bias, a scale) has canonical form
``[1, size]``, so its "units" are single entries: with ``block="unit"`` it
gets its exact GGN *diagonal*, with ``block="layer"`` its dense GGN block.

With per-sample layer inputs ``r[n, t]`` and backpropagated loss-Hessian
square-root rows ``d[n, k, t]`` (Dangel et al., 2020), the per-sample
Jacobian row of unit ``j`` is ``sum_t r[n, t] d[n, k, t, j]``, and

    G_j = sum_n sum_k (sum_t r_nt d_nktj) (sum_t r_nt d_nktj)^T        [d_in, d_in],

the diagonal blocks of the exact GGN (Martens & Grosse, 2015, keep the same
blocks of a layer but approximate each by a Kronecker product).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from .. import _checks
from .._factors import LeafFactors, batch_factors, to_canonical, to_leaf
from .._jaxpr_layers import layer_graph
from .._likelihoods import check_likelihood, hessian_sqrt, loss_gradient

BLOCKS = ("unit", "layer")


def check_block(block) -> str:
    if block not in BLOCKS:
        raise ValueError(f"block must be one of {BLOCKS}, got {block!r}.")
    return block


def check_count(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
    return value


# Layout: leaf <-> canonical [d_in, d_out] <-> blocks [B, m] ------------------


def leaf_to_blocks(graph, leaf, array, block):
    """``[..., *leaf_shape]`` -> ``[..., B, m]``."""
    canonical = to_canonical(graph, leaf, array)
    if block == "unit":
        return jnp.swapaxes(canonical, -1, -2)
    return canonical.reshape(canonical.shape[:-2] + (1, -1))


def blocks_to_leaf(graph, leaf, blocks, block):
    """``[..., B, m]`` -> ``[..., *leaf_shape]``."""
    d_in, d_out = graph.leaf_index[leaf].shape
    if block == "unit":
        canonical = jnp.swapaxes(blocks, -1, -2)
    else:
        canonical = blocks.reshape(blocks.shape[:-2] + (d_in, d_out))
    return to_leaf(graph, leaf, canonical)


def block_shape(graph, leaf, block) -> tuple:
    """``(B, m)``: number and size of the blocks of a leaf."""
    d_in, d_out = graph.leaf_index[leaf].shape
    return (d_out, d_in) if block == "unit" else (1, d_in * d_out)


# Curvature ------------------------------------------------------------------


def per_sample_jacobian(f: LeafFactors, block):
    """Per-sample, per-cotangent rows ``[n, K, B, m]`` of a leaf in block layout."""
    jac = jnp.einsum("nti,nkto->nkoi", f.rows, f.deltas)  # [n, K, d_out, d_in]
    if block == "unit":
        return jac
    n, k = jac.shape[:2]
    return jnp.swapaxes(jac, -1, -2).reshape(n, k, 1, -1)


def block_curvature(f: LeafFactors, block, num_rows):
    """GGN blocks ``[B, m, m]`` from the first ``num_rows`` cotangents of ``f``.

    The remaining cotangents (if any) are summed into a gradient ``[B, m]``.
    """
    rows, deltas = f.rows, f.deltas
    hess, grad_rows = deltas[:, :num_rows], deltas[:, num_rows:]
    if block == "unit" and rows.shape[1] == 1:  # one row per sample: the outer product factorises
        weight = jnp.sum(hess[:, :, 0] ** 2, axis=1)  # [n, d_out]
        ggn = jnp.einsum("ni,nl,nj->jil", rows[:, 0], rows[:, 0], weight)
    else:
        jac = per_sample_jacobian(LeafFactors(rows, hess), block)
        ggn = jnp.einsum("nkbi,nkbl->bil", jac, jac)
    grad = None
    if grad_rows.shape[1]:
        grad = jnp.sum(per_sample_jacobian(LeafFactors(rows, grad_rows), block), axis=(0, 1))
    return ggn, grad


def curvature_pass(graph, leaves, active, x, y, likelihood, block, with_gradient=True):
    """``{leaf: (G[B, m, m], grad[B, m] or None)}`` of the summed loss, one factor pass."""

    def cotangents(f, y_i):
        rows = hessian_sqrt(likelihood, f)
        if with_gradient:
            rows = jnp.concatenate([rows, loss_gradient(likelihood, f, y_i)], axis=0)
        return rows

    num_outputs = graph.jaxpr.out_avals[0].shape[-1]
    _, factors = batch_factors(graph, list(leaves), tuple(active), x, cotangents, y)
    return {leaf: block_curvature(f, block, num_outputs) for leaf, f in factors.items()}


def block_ggn(
    model_fn,
    params: PyTree,
    x: Float[Array, "n ..."],
    y: Array,
    *,
    likelihood: str = "classification",
    block: str = "unit",
) -> PyTree:
    """Diagonal blocks of the exact GGN of the summed loss, per unit or per layer.

    For a leaf with canonical kernel ``W[d_in, d_out]`` and ``block="unit"``,
    block ``j`` is the GGN of unit ``j``'s incoming weights ``W[:, j]``,
    ``G_j = sum_n J_nj^T Lambda_n J_nj`` (``[d_out, d_in, d_in]``); with
    ``block="layer"`` it is the dense GGN of ``vec(W)`` (row-major,
    ``[1, d_in d_out, d_in d_out]``; memory quadratic in the leaf size, so
    for small layers only). Leaves that are not kernels (biases, scales)
    have canonical form ``[1, size]``: their unit blocks are the GGN
    diagonal, their layer block the dense GGN of the leaf. Computed from
    per-sample layer inputs and ``C`` backpropagated loss-Hessian
    square-root rows (Dangel et al., 2020); the blocks are those kept by
    block-diagonal curvature methods (Martens & Grosse, 2015).

    Args:
        model_fn: ``model_fn(params, x[n, ...]) -> outputs[n, C]``.
        params: parameter pytree.
        x: inputs ``[n, ...]``.
        y: integer labels ``[n]`` (classification) or targets ``[n, C]`` (regression, unit noise).
        likelihood: ``"classification"`` or ``"regression"``.
        block: ``"unit"`` or ``"layer"``.

    Returns:
        A pytree like ``params`` with an array ``[B, m, m]`` per leaf.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import blocks
        >>> model_fn = lambda p, x: x @ p["w"] + p["b"]
        >>> params = {"w": jnp.zeros((3, 2)), "b": jnp.zeros(2)}
        >>> g = blocks.block_ggn(model_fn, params, jnp.eye(3), jnp.array([0, 1, 0]))
        >>> g["w"].shape, g["b"].shape
        ((2, 3, 3), (2, 1, 1))
    """
    check_likelihood(likelihood)
    check_block(block)
    _checks.check_params(params)
    _checks.check_model_data(model_fn, params, x, y, likelihood)
    return _block_ggn(model_fn, params, x, y, likelihood, block)


@eqx.filter_jit
def _block_ggn(model_fn, params, x, y, likelihood, block):
    leaves, treedef = jax.tree.flatten(params)
    graph = layer_graph(model_fn, params, x)
    out = curvature_pass(graph, leaves, range(len(leaves)), x, y, likelihood, block, with_gradient=False)
    return jax.tree.unflatten(treedef, [out[leaf][0] for leaf in range(len(leaves))])
