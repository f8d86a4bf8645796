"""A Gaussian over network weights that is block-diagonal over units or layers.

``q(theta) = prod_b N(m_b, P_b^{-1})`` with one dense precision ``P_b`` per
block (the incoming weights of a unit, or a whole leaf; see :mod:`._ggn`),
stored as its lower Cholesky factor ``P_b = L_b L_b^T``. Both
:func:`~probnum_jax.posteriors.blocks.laplace` and
:func:`~probnum_jax.posteriors.blocks.vi` return it.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from ... import _small_linalg as small
from .._jaxpr_layers import layer_graph
from ._ggn import blocks_to_leaf, leaf_to_blocks


class RESULTS(eqx.Enumeration):
    """Outcome of a block-coordinate fit; ``post.result == RESULTS.successful`` when usable."""

    successful = ""
    max_sweeps_reached = "The sweeps stopped at num_sweeps before the tolerance was met."
    nonfinite = "The parameters or the curvature became NaN or inf."


class BlockGaussian(eqx.Module):
    """``N(params, blockdiag_b P_b^{-1})``, dense per unit (or per layer) block.

    Attributes:
        model_fn: the model, ``model_fn(params, x[n, ...]) -> outputs[n, C]``.
        params: the mean, a pytree like the model's parameters.
        precision_chol: per leaf (in ``jax.tree.leaves`` order), lower Cholesky
            factors ``[B, m, m]`` of the block precisions, in the block layout of
            :func:`block_ggn` (unit ``j`` of a kernel is its column ``W[:, j]``).
        likelihood: ``"classification"`` or ``"regression"``.
        block: ``"unit"`` or ``"layer"``.
        sigma_noise: observation-noise standard deviation (regression).
        prior_precision: ``delta`` of the prior ``N(0, I / delta)`` in the precisions.
        num_sweeps: sweeps over the blocks that were run.
        result: :class:`RESULTS` of the fit.
        input_spec: shape (without the batch axis) and dtype of one input.
    """

    model_fn: Callable = eqx.field(static=True)
    params: PyTree
    precision_chol: tuple
    likelihood: str = eqx.field(static=True)
    block: str = eqx.field(static=True)
    sigma_noise: Float[Array, ""]
    prior_precision: Float[Array, ""]
    num_sweeps: Int[Array, ""]
    result: RESULTS
    input_spec: tuple = eqx.field(static=True)

    @property
    def mean(self) -> PyTree:
        return self.params

    @property
    def converged(self) -> Bool[Array, ""]:
        """Whether the fit met its tolerance (``result == RESULTS.successful``)."""
        return self.result == RESULTS.successful

    def layer_graph(self):
        shape, dtype = self.input_spec
        return layer_graph(self.model_fn, self.params, jax.ShapeDtypeStruct((1,) + shape, dtype))

    def covariance(self) -> tuple:
        """Per leaf, the block covariances ``P_b^{-1}``, ``[B, m, m]``."""
        return tuple(jax.vmap(_inverse_from_chol)(chol) for chol in self.precision_chol)

    def sample(self, key: PRNGKeyArray, num_samples: int) -> PyTree:
        """Draw parameter pytrees, each leaf with a leading axis ``num_samples``.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> from probnum_jax.posteriors import blocks
            >>> x = jnp.eye(3); y = jnp.ones((3, 1))
            >>> post = blocks.laplace(lambda p, x: x @ p, jnp.zeros((3, 1)), x, y, likelihood="regression")
            >>> post.sample(jax.random.key(0), 5).shape
            (5, 3, 1)
        """
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be an int >= 1, got {num_samples!r}.")
        leaves, treedef = jax.tree.flatten(self.params)
        draws = sample_leaves(self.layer_graph(), leaves, self.precision_chol, self.block, key, num_samples)
        return jax.tree.unflatten(treedef, draws)


def _inverse_from_chol(chol):
    inv = small.solve_lower(chol, jnp.eye(chol.shape[0], dtype=chol.dtype))
    return inv.T @ inv


def sample_leaves(graph, leaves, chols, block, key, num_samples, antithetic=False):
    """``num_samples`` (``2 num_samples`` if ``antithetic``) draws of every leaf.

    A block draw is ``m_b + L_b^{-T} eps`` with ``eps ~ N(0, I)``; antithetic
    draws add the mirrored ``m_b - L_b^{-T} eps`` (their average is the mean).
    """
    dtype = jnp.result_type(*leaves)
    sizes = [int(np.prod(c.shape[:2])) for c in chols]
    eps = jax.random.normal(key, (num_samples, sum(sizes)), dtype)
    if antithetic:
        eps = jnp.concatenate([eps, -eps], axis=0)
    parts = jnp.split(eps, np.cumsum(sizes)[:-1].tolist(), axis=1) if len(sizes) > 1 else [eps]
    out = []
    for leaf, (value, chol, part) in enumerate(zip(leaves, chols, parts)):
        b, m = chol.shape[:2]
        e = jnp.transpose(part.reshape(-1, b, m), (1, 2, 0))  # [B, m, S]
        dev = jax.vmap(small.solve_lower_transpose)(chol, e)  # L^{-T} eps (loops, not LAPACK: used inside vi's loop)
        dev = jnp.transpose(dev, (2, 0, 1))  # [S, B, m]
        mean = leaf_to_blocks(graph, leaf, value, block)
        out.append(blocks_to_leaf(graph, leaf, mean[None] + dev, block).astype(jnp.result_type(value)))
    return out
