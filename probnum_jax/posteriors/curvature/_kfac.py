"""Kronecker-factored curvature (KFAC) of the GGN, per layer found in the jaxpr.

For a layer with canonical kernel ``W[d_in, d_out]`` used at ``T`` positions
per sample (1 for a dense layer, the output pixels of a convolution),

    G_W  ~  1 / (n T)  *  (sum_{i,t} r_it r_it^T)  kron  (sum_{i,k,t} d_ikt d_ikt^T),

with ``r`` the layer inputs (im2col patches for a convolution) and ``d`` the
backpropagated rows of the loss-Hessian square root (exact: ``C`` rows per
sample, "KFLR"; or Monte-Carlo draws, "KFAC"). For ``T = 1`` this is the
KFAC of Martens & Grosse (2015) for a summed loss; for ``T > 1`` the "expand"
setting of Eschenhagen et al. (2023), which for convolutions is KFC (Grosse &
Martens, 2016). A leaf that is not a layer kernel (a bias, a scale) gets its
exact GGN block, written as ``[[1]] kron B``.
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from .. import _factors
from ._setup import check, reduce_factors


class KroneckerFactors(eqx.Module):
    """The Kronecker-factored GGN block of one parameter leaf.

    ``scale * kron(a, b)`` approximates the GGN block of the leaf's canonical
    matrix ``W[d_in, d_out]`` (row-major vectorisation); ``index[d_in, d_out]``
    gives the position of each canonical entry in the flattened leaf.

    Attributes:
        a: input factor ``[d_in, d_in]``.
        b: output-gradient factor ``[d_out, d_out]``.
        scale: ``1 / (n T)``.
        index: flat leaf index of each canonical entry.
    """

    a: Float[Array, "d_in d_in"]
    b: Float[Array, "d_out d_out"]
    scale: Float[Array, ""]
    index: Int[Array, "d_in d_out"]

    def to_dense(self) -> Float[Array, "p p"]:
        """The block as a dense ``[size, size]`` matrix in the flattened leaf's order."""
        block = self.scale * jnp.kron(self.a, self.b)
        idx = self.index.ravel()
        size = idx.size
        return jnp.zeros((size, size), block.dtype).at[idx[:, None], idx[None, :]].set(block)


def kfac(
    model_fn,
    params: PyTree,
    x: Float[Array, "n ..."],
    y: Array,
    *,
    likelihood: str = "classification",
    key: PRNGKeyArray | None = None,
    num_samples: int = 1,
) -> PyTree:
    """Kronecker factors of the GGN for every dense and convolutional layer.

    Layers are found in the model's jaxpr (a ``dot_general`` or a convolution
    whose kernel is a parameter leaf), so equinox, flax and plain functions
    are handled alike.

    Args:
        model_fn: ``model_fn(params, x[n, ...]) -> outputs[n, C]``.
        params: parameter pytree.
        x: inputs ``[n, ...]``.
        y: integer labels ``[n]`` (classification) or targets ``[n, C]`` (regression).
        likelihood: ``"classification"`` or ``"regression"`` (unit noise), as in
            :func:`ggn_diag`.
        key: ``None`` for the exact output factor (``C`` backward passes, KFLR);
            a key for the Monte-Carlo one (``num_samples`` passes, KFAC).
        num_samples: Monte-Carlo draws per sample when ``key`` is given.

    Returns:
        A pytree like ``params`` with a :class:`KroneckerFactors` per leaf.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax.posteriors import curvature
        >>> model_fn = lambda p, x: x @ p["w"] + p["b"]
        >>> params = {"w": jnp.zeros((3, 2)), "b": jnp.zeros(2)}
        >>> k = curvature.kfac(model_fn, params, jnp.eye(3), jnp.array([0, 1, 0]))
        >>> k["w"].a.shape, k["w"].b.shape, k["w"].to_dense().shape
        ((3, 3), (2, 2), (6, 6))
    """
    check(model_fn, params, x, y, likelihood)
    if key is None:
        return reduce_factors(model_fn, params, x, y, likelihood, "exact", kronecker_factors)
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive int, got {num_samples!r}.")
    return reduce_factors(
        model_fn, params, x, y, likelihood, "sampled", kronecker_factors, key=key, num_samples=num_samples
    )


def kronecker_factors(graph, leaf, f: _factors.LeafFactors, n) -> KroneckerFactors:
    """The :class:`KroneckerFactors` of a leaf from its per-sample factors."""
    a, b = _factors.kronecker_sums(f)
    rows_per_sample = f.rows.shape[1]
    scale = jnp.asarray(1.0 / (n * rows_per_sample), a.dtype)
    return KroneckerFactors(a, b, scale, jnp.asarray(graph.leaf_index[leaf]))
