"""Prior precision: scalar, layer-wise (one per subset leaf) or diagonal (one per parameter)."""

import jax.numpy as jnp
import numpy as np

PRIOR_STRUCTURES = ("scalar", "layerwise", "diagonal")


def expand_prior(prior_precision, sub_shapes, dtype) -> tuple:
    """Per subset leaf, an array broadcastable to its shape (``()`` or the leaf's shape).

    ``prior_precision`` is a scalar, a 1-D array with one value per subset leaf
    (layer-wise) or one per subset parameter (diagonal).
    """
    prior = jnp.asarray(prior_precision, dtype)
    num_leaves = len(sub_shapes)
    sizes = [int(np.prod(s, dtype=int)) for s in sub_shapes]
    if prior.ndim == 0:
        return tuple(prior for _ in sub_shapes)
    if prior.ndim == 1 and prior.shape[0] == num_leaves:
        return tuple(prior[i] for i in range(num_leaves))
    if prior.ndim == 1 and prior.shape[0] == sum(sizes):
        parts = jnp.split(prior, np.cumsum(sizes)[:-1])
        return tuple(p.reshape(s) for p, s in zip(parts, sub_shapes))
    raise ValueError(
        f"prior_precision must be a scalar, a 1-D array of length {num_leaves} (one per parameter leaf "
        f"of the subset, layer-wise) or of length {sum(sizes)} (one per parameter, diagonal); "
        f"got shape {prior.shape}."
    )


def structured_init(prior_structure, current: tuple, sub_shapes):
    """An initial value of the given structure from the current expanded prior."""
    if prior_structure not in PRIOR_STRUCTURES:
        raise ValueError(f"prior_structure must be one of {PRIOR_STRUCTURES}, got {prior_structure!r}.")
    means = jnp.stack([jnp.mean(p) for p in current])
    if prior_structure == "scalar":
        return jnp.mean(means)
    if prior_structure == "layerwise":
        return means
    return jnp.concatenate([jnp.ravel(jnp.broadcast_to(p, s)) for p, s in zip(current, sub_shapes)])


def log_det_prior(prior: tuple, sub_shapes):
    return sum(jnp.sum(jnp.broadcast_to(jnp.log(p), s)) for p, s in zip(prior, sub_shapes))


def scatter(prior: tuple, mean: tuple):
    """``theta^T P0 theta`` for the zero-mean prior."""
    return sum(jnp.sum(p * m**2) for p, m in zip(prior, mean))
