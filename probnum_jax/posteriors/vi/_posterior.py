"""The mean-field Gaussian posterior shared by every variational method.

``q(theta) = N(mean, diag(std**2))`` with ``mean`` and ``std`` pytrees shaped
like the model's parameters. Mean-field VI, IVON and VOGN all return it, and
:func:`probnum_jax.posteriors.vi.predict` averages the model over its samples.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from .._checks import check_params, is_concrete


def tree_normal_like(key: PRNGKeyArray, tree: PyTree, shape: tuple = ()) -> PyTree:
    """Independent standard-normal draws shaped ``shape + leaf.shape`` for every leaf of ``tree``.

    One draw of the total size, split over the leaves (one random-bits kernel, not one per leaf).
    """
    leaves, treedef = jax.tree.flatten(tree)
    sizes = [int(np.prod(jnp.shape(leaf), dtype=int)) for leaf in leaves]
    dtype = jnp.result_type(*leaves)
    flat = jax.random.normal(key, shape + (sum(sizes),), dtype)
    splits = np.cumsum(sizes)[:-1].tolist()
    parts = jnp.split(flat, splits, axis=-1) if splits else [flat]
    draws = [
        part.reshape(shape + jnp.shape(leaf)).astype(jnp.result_type(leaf)) for part, leaf in zip(parts, leaves)
    ]
    return jax.tree.unflatten(treedef, draws)


def check_positive_scalar(name, value):
    """``value`` must be a (concrete) number > 0; traced values pass through unchecked."""
    if is_concrete(value):
        arr = np.asarray(value)
        if arr.ndim != 0:
            raise ValueError(f"{name} must be a scalar, got an array of shape {arr.shape}.")
        if not arr > 0:
            raise ValueError(f"{name} must be > 0, got {arr}.")
    return value


def check_positive_tree(name, value):
    """``value`` must be positive everywhere (a scalar or a pytree of arrays)."""
    if is_concrete(value):
        for leaf in jax.tree.leaves(value):
            if not np.all(np.asarray(leaf) > 0):
                raise ValueError(f"{name} must be > 0, got {np.asarray(leaf)}.")
    return value


class MeanFieldGaussian(eqx.Module):
    """A diagonal Gaussian over a parameter pytree, ``N(mean, diag(std**2))``.

    Attributes:
        mean: pytree of the posterior means (shaped like the model's parameters).
        std: pytree of the posterior standard deviations, same structure and shapes.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax.posteriors import vi
        >>> q = vi.MeanFieldGaussian({"w": jnp.zeros(3)}, {"w": jnp.full(3, 0.5)})
        >>> q.sample(jax.random.key(0), 4)["w"].shape
        (4, 3)
        >>> q.variance["w"].tolist()
        [0.25, 0.25, 0.25]
    """

    mean: PyTree
    std: PyTree

    def __check_init__(self):
        if jax.tree.structure(self.mean) != jax.tree.structure(self.std):
            raise ValueError(
                "std must have the same pytree structure as mean, got "
                f"{jax.tree.structure(self.std)} and {jax.tree.structure(self.mean)}."
            )
        for m, s in zip(jax.tree.leaves(self.mean), jax.tree.leaves(self.std)):
            if jnp.shape(m) != jnp.shape(s):
                raise ValueError(f"std leaves must match the mean's shapes, got {jnp.shape(s)} for {jnp.shape(m)}.")

    @property
    def variance(self) -> PyTree:
        """Elementwise ``std**2``."""
        return jax.tree.map(jnp.square, self.std)

    def sample(self, key: PRNGKeyArray, num_samples: int | None = None) -> PyTree:
        """Draw parameters by the reparameterisation ``mean + std * eps``, ``eps ~ N(0, I)``.

        Args:
            key: a JAX random key.
            num_samples: number of draws; ``None`` gives one pytree without a sample axis.

        Returns:
            A pytree like ``mean``; with ``num_samples`` every leaf has a leading axis of that size.
        """
        shape = () if num_samples is None else (num_samples,)
        eps = tree_normal_like(key, self.mean, shape)
        return jax.tree.map(lambda m, s, e: m + s * e, self.mean, self.std, eps)


def kl_to_prior(posterior: MeanFieldGaussian, prior_precision: Float[Array, "..."] | float = 1.0) -> Float[Array, ""]:
    """Closed-form ``KL(q || N(0, 1/prior_precision))`` of a mean-field Gaussian ``q``.

    Per parameter, ``0.5 * (p * (std**2 + mean**2) - 1 - log(p * std**2))`` with
    ``p`` the prior precision; summed over all parameters.

    Args:
        posterior: the :class:`MeanFieldGaussian` ``q``.
        prior_precision: a positive scalar, or a pytree like ``posterior.mean`` of
            positive arrays broadcastable to its leaves.

    Returns:
        The KL divergence, a scalar.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import vi
        >>> q = vi.MeanFieldGaussian({"w": jnp.zeros(2)}, {"w": jnp.ones(2)})
        >>> float(vi.kl_to_prior(q, 1.0))
        0.0
    """
    check_positive_tree("prior_precision", prior_precision)
    check_params(posterior.mean)
    if jax.tree.structure(prior_precision) == jax.tree.structure(0.0):
        prior_precision = jax.tree.map(lambda _: prior_precision, posterior.mean)

    def one(m, s, p):
        var = jnp.square(s)
        return 0.5 * jnp.sum(p * (var + jnp.square(m)) - 1.0 - jnp.log(p * var))

    return sum(jax.tree.leaves(jax.tree.map(one, posterior.mean, posterior.std, prior_precision)))
