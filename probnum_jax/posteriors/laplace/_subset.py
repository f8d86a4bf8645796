"""Which parameters the Laplace approximation covers: all, the last layer, or a mask."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._jaxpr_layers import layer_graph


class Subset(eqx.Module):
    """A selection of parameter entries; the rest stay at the MAP.

    The selected entries form a tuple of arrays (the *subset parameters*):
    whole leaves keep their shape, a leaf selected elementwise becomes the
    1-D vector of its selected entries.

    Attributes:
        leaves: numbers of the selected leaves (in ``jax.tree.leaves`` order).
        indices: per selected leaf, the flat indices of the selected entries,
            or ``None`` for the whole leaf.
    """

    leaves: tuple = eqx.field(static=True)
    indices: tuple

    @property
    def is_whole_leaves(self) -> bool:
        return all(i is None for i in self.indices)

    def restrict(self, params) -> tuple:
        """The subset parameters of a parameter pytree."""
        flat = jax.tree.leaves(params)
        return tuple(
            flat[leaf] if idx is None else jnp.ravel(flat[leaf])[idx] for leaf, idx in zip(self.leaves, self.indices)
        )

    def embed(self, sub, params):
        """``params`` with the subset parameters replaced by ``sub``."""
        flat, treedef = jax.tree.flatten(params)
        flat = list(flat)
        for leaf, idx, value in zip(self.leaves, self.indices, sub):
            if idx is None:
                flat[leaf] = value
            else:
                flat[leaf] = jnp.ravel(flat[leaf]).at[idx].set(value).reshape(flat[leaf].shape)
        return jax.tree.unflatten(treedef, flat)

    def embed_batch(self, sub, params):
        """Like :meth:`embed` for subset parameters with a leading sample axis."""
        return jax.vmap(lambda s: self.embed(s, params))(sub)


SUBSETS = ("all", "last_layer")


def make_subset(subset, model_fn, params, x) -> Subset:
    """Build a :class:`Subset` from ``"all"``, ``"last_layer"`` or a boolean mask pytree."""
    flat, treedef = jax.tree.flatten(params)
    if isinstance(subset, str):
        if subset == "all":
            return Subset(tuple(range(len(flat))), (None,) * len(flat))
        if subset == "last_layer":
            leaves = layer_graph(model_fn, params, x).last_dense
            if not leaves:
                raise ValueError(
                    "subset='last_layer' needs a dense layer: a dot_general whose kernel is a parameter "
                    "leaf, used only as that kernel. None was found in the model's jaxpr; pass a mask instead."
                )
            return Subset(tuple(sorted(leaves)), (None,) * len(leaves))
        raise ValueError(f"subset must be one of {SUBSETS} or a boolean mask pytree like params, got {subset!r}.")
    try:
        masks = treedef.flatten_up_to(subset)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"subset must be one of {SUBSETS} or a boolean mask pytree with the structure of params ({e})."
        ) from e
    leaves, indices = [], []
    for number, (mask, leaf) in enumerate(zip(masks, flat)):
        m = np.asarray(mask)
        if m.dtype != bool or m.shape not in ((), jnp.shape(leaf)):
            raise ValueError(
                f"subset mask leaves must be a bool or a bool array of the leaf's shape {jnp.shape(leaf)}, "
                f"got dtype {m.dtype} and shape {m.shape} for leaf {number}."
            )
        if m.shape == () or m.all():
            if m.all():
                leaves.append(number)
                indices.append(None)
        elif m.any():
            leaves.append(number)
            indices.append(jnp.asarray(np.flatnonzero(m.ravel()), dtype=jnp.int32))
    if not leaves:
        raise ValueError("subset mask selects no parameters.")
    return Subset(tuple(leaves), tuple(indices))


def subset_size(sub_shapes) -> int:
    return int(sum(np.prod(s, dtype=int) for s in sub_shapes))
