"""Per-sample gradient factors: the one backward pass every curvature quantity needs.

For a layer kernel the per-sample gradient with respect to its canonical
matrix ``[d_in, d_out]`` is ``rows.T @ deltas`` (see :mod:`._jaxpr_layers`):
``rows[T, d_in]`` are recorded in the forward pass and ``deltas[T, d_out]``
are the gradients with respect to the layer outputs. Any other parameter leaf
(biases, normalisation scales, ...) is differentiated directly and written in
the same form with ``rows = [[1]]`` and ``deltas = grad[None, :]``.

Backpropagating ``K`` output cotangents per sample (the loss gradient, the
rows of the loss-Hessian square root, or Monte-Carlo draws) gives
``deltas[K, T, d_out]``. From these factors the first-order quantities, the
diagonal GGN and KFAC follow by cheap contractions, and a full
``n x outputs x params`` Jacobian is never formed (Dangel et al., 2020).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


class LeafFactors(NamedTuple):
    """Factors of one leaf over a batch: ``rows[n, T, d_in]``, ``deltas[n, K, T, d_out]``."""

    rows: Float[Array, "n T d_in"]
    deltas: Float[Array, "n K T d_out"]


def batch_factors(graph, leaves, active, x, cotangent_fn, extra=None):
    """Outputs ``[n, C]`` and the factors of the ``active`` leaves over a batch.

    Args:
        graph: the model's :class:`~._jaxpr_layers.LayerGraph`.
        leaves: the parameter leaves (flat list).
        active: leaf numbers to compute factors for; the rest stay constant.
        x: inputs ``[n, ...]``.
        cotangent_fn: ``(f[C], extra_i) -> [K, C]`` output cotangents of one sample.
        extra: per-sample pytree passed to ``cotangent_fn`` (targets, keys), leading axis ``n``.

    Returns:
        ``(outputs[n, C], {leaf: LeafFactors})``.
    """
    layer = [leaf for leaf in active if graph.is_layer(leaf)]
    other = [leaf for leaf in active if not graph.is_layer(leaf)]
    sites = [s for leaf in layer for s in graph.leaf_sites[leaf]]

    def one(x_i, extra_i):
        def forward(other_values, perturbations):
            values = list(leaves)
            for leaf, value in zip(other, other_values):
                values[leaf] = value
            return graph.evaluate(values, x_i, perturbations)

        zeros = {s: jnp.zeros((graph.sites[s].num_rows, graph.sites[s].d_out), x.dtype) for s in sites}
        out, vjp_fn, rows = jax.vjp(forward, [leaves[leaf] for leaf in other], zeros, has_aux=True)
        cotangents = cotangent_fn(out, extra_i).astype(out.dtype)
        d_other, d_sites = jax.vmap(vjp_fn)(cotangents)
        factors = {}
        for leaf in layer:
            numbers = graph.leaf_sites[leaf]
            r = jnp.concatenate([rows[s] for s in numbers], axis=0)
            d = jnp.concatenate([d_sites[s] for s in numbers], axis=1)
            factors[leaf] = LeafFactors(r, d)
        for leaf, g in zip(other, d_other):
            k = g.shape[0]
            factors[leaf] = LeafFactors(jnp.ones((1, 1), g.dtype), g.reshape(k, 1, -1))
        return out, {leaf: factors[leaf] for leaf in active}

    n = x.shape[0]
    if extra is None:
        extra = jnp.zeros((n,), x.dtype)
    return jax.vmap(one)(x, extra)


def to_leaf(graph, leaf, canonical):
    """Map ``[..., d_in, d_out]`` canonical arrays to ``[..., *leaf_shape]``.

    The canonical layout is a permutation of the leaf's entries, so this is a
    gather with the inverse permutation (a scatter is much slower on CPU).
    """
    shape, perm = tuple(graph.leaf_shapes[leaf]), graph.leaf_perm[leaf]
    batch = canonical.shape[: canonical.ndim - 2]
    nb = len(batch)
    if perm is not None:  # a transpose, much faster than a gather
        permuted = canonical.reshape(batch + tuple(shape[a] for a in perm))
        inverse = tuple(range(nb)) + tuple(nb + int(a) for a in np.argsort(perm))
        return jnp.transpose(permuted, inverse)
    inverse_index = np.argsort(graph.leaf_index[leaf].ravel())
    return canonical.reshape(batch + (-1,))[..., inverse_index].reshape(batch + shape)


def to_canonical(graph, leaf, array):
    """Map ``[..., *leaf_shape]`` arrays to canonical ``[..., d_in, d_out]``."""
    index, perm = graph.leaf_index[leaf], graph.leaf_perm[leaf]
    nb = array.ndim - len(graph.leaf_shapes[leaf])
    batch = array.shape[:nb]
    if perm is not None:
        moved = jnp.transpose(array, tuple(range(nb)) + tuple(nb + a for a in perm))
        return moved.reshape(batch + index.shape)
    return array.reshape(batch + (-1,))[..., index]


# Contractions of the factors -------------------------------------------------


def gradient(f: LeafFactors):
    """Summed gradient ``[d_in, d_out]`` (first cotangent)."""
    return jnp.einsum("nti,nto->io", f.rows, f.deltas[:, 0])


def per_sample(f: LeafFactors):
    """Per-sample gradients ``[n, d_in, d_out]`` (first cotangent)."""
    return jnp.einsum("nti,nto->nio", f.rows, f.deltas[:, 0])


def squared_norms(f: LeafFactors):
    """Squared L2 norm of each per-sample gradient, ``[n]`` (first cotangent)."""
    rows, deltas = f.rows, f.deltas[:, 0]
    _, t, d_in = rows.shape
    d_out = deltas.shape[-1]
    if t * t < d_in * d_out:  # ||R^T D||_F^2 = sum((R R^T) * (D D^T))
        gram_r = jnp.einsum("nti,nsi->nts", rows, rows)
        gram_d = jnp.einsum("nto,nso->nts", deltas, deltas)
        return jnp.sum(gram_r * gram_d, axis=(1, 2))
    return jnp.sum(per_sample(f) ** 2, axis=(1, 2))


def sum_of_squares(f: LeafFactors):
    """``sum_n sum_k (R_n^T D_nk)**2`` elementwise, ``[d_in, d_out]``.

    With one row per sample the square factorises: ``(r**2)^T (sum_k d_k**2)``.
    """
    if f.rows.shape[1] == 1:
        return jnp.einsum("ni,no->io", f.rows[:, 0] ** 2, jnp.sum(f.deltas[:, :, 0] ** 2, axis=1))

    def per_cotangent(d):
        return jnp.sum(jnp.einsum("nti,nto->nio", f.rows, d) ** 2, axis=0)

    return jnp.sum(jax.lax.map(per_cotangent, jnp.swapaxes(f.deltas, 0, 1)), axis=0)


def kronecker_sums(f: LeafFactors):
    """``(sum_{n,t} r r^T  [d_in, d_in],  sum_{n,k,t} d d^T  [d_out, d_out])``."""
    a = jnp.einsum("nti,ntj->ij", f.rows, f.rows)
    b = jnp.einsum("nkto,nktp->op", f.deltas, f.deltas)
    return a, b
