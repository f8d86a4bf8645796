"""Post-hoc tuning of the prior precision of a block-diagonal Laplace posterior by its evidence."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ... import _small_linalg as small
from ._posterior import BlockGaussian

_DECADES = 4.0  # search delta * 10^[-4, 4]
_GRID = 161  # 20 points per decade


def log_evidence(post: BlockGaussian, prior_precision) -> Float[Array, ""]:
    """The ``prior_precision``-dependent part of the block Laplace evidence.

    With the mode ``w*`` and the Gauss-Newton blocks ``G_b`` held fixed, the
    Laplace approximation of ``log p(D | delta)`` is, up to terms that do not
    depend on ``delta``,

        - delta ||w*||^2 / 2 + (p / 2) log delta - (1/2) sum_b log det(s G_b + delta I)

    (MacKay, 1992; Immer et al., 2021), with ``p`` the number of weights and
    ``s G_b + delta I`` the stored block precision shifted by the change of
    ``delta``. For a linear-Gaussian model with ``block="layer"`` and one leaf
    it is the exact log evidence up to a constant.
    """
    return _log_evidence(post, _precisions(post), prior_precision)


def _precisions(post):
    """The block precisions ``L L^T`` per leaf (formed once, then shifted per candidate ``delta``)."""
    return tuple(chol @ jnp.swapaxes(chol, -1, -2) for chol in post.precision_chol)


def _shifted_chols(precisions, shift):
    return tuple(
        jax.vmap(small.cholesky)(p + shift * jnp.eye(p.shape[-1], dtype=p.dtype)) for p in precisions
    )


def _log_evidence(post, precisions, prior_precision):
    prior_precision = jnp.asarray(prior_precision, post.prior_precision.dtype)
    chols = _shifted_chols(precisions, prior_precision - post.prior_precision)
    sq_norm = sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(post.params))
    num_params = sum(chol.shape[0] * chol.shape[1] for chol in chols)
    log_det = sum(2.0 * jnp.sum(jnp.log(jnp.diagonal(c, axis1=-2, axis2=-1))) for c in chols)
    return -0.5 * prior_precision * sq_norm + 0.5 * num_params * jnp.log(prior_precision) - 0.5 * log_det


def optimize_prior_precision(post: BlockGaussian) -> BlockGaussian:
    """Re-tune ``delta`` of a block-coordinate Laplace posterior by maximising its evidence.

    The mode and the Gauss-Newton blocks are held fixed ("post-hoc" tuning, as
    in Immer et al., 2021 and Daxberger et al., 2021); only the prior term of
    each block precision changes, ``s G_b + delta I``. The maximiser of
    :func:`log_evidence` is found on a grid of ``delta * 10^[-4, 4]`` (20
    points per decade), then on a grid 80 times finer around the best point,
    each refined by parabolic interpolation through its best three points. Re-running :func:`~probnum_jax.posteriors.blocks.laplace`
    with the new ``delta`` would move the mode too (not done here).

    Args:
        post: a :class:`BlockGaussian` from :func:`~probnum_jax.posteriors.blocks.laplace`.

    Returns:
        The posterior with the tuned ``prior_precision`` and its block precisions.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax.posteriors import blocks
        >>> x = jax.random.normal(jax.random.key(0), (50, 3)); y = x @ jnp.ones((3, 1))
        >>> post = blocks.laplace(lambda p, x: x @ p, jnp.zeros((3, 1)), x, y, likelihood="regression",
        ...                       prior_precision=100.0, sigma_noise=0.1)
        >>> bool(blocks.optimize_prior_precision(post).prior_precision < 10.0)
        True
    """
    if not isinstance(post, BlockGaussian):
        raise TypeError(f"post must be a blocks.BlockGaussian, got {type(post).__name__}.")
    return _optimize(post)


def _grid_argmax(post, precisions, log_grid):
    """The maximiser of the evidence on ``log_grid``, refined by a parabola through the best three points."""
    values = jax.lax.map(lambda log_delta: _log_evidence(post, precisions, jnp.exp(log_delta)), log_grid)
    best = jnp.clip(jnp.argmax(jnp.where(jnp.isfinite(values), values, -jnp.inf)), 1, log_grid.shape[0] - 2)
    left, mid, right = values[best - 1], values[best], values[best + 1]
    curvature = left - 2.0 * mid + right
    offset = jnp.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    return log_grid[best] + jnp.clip(offset, -1.0, 1.0) * (log_grid[1] - log_grid[0])


@eqx.filter_jit
def _optimize(post):
    dtype = post.prior_precision.dtype
    unit = jnp.linspace(-1.0, 1.0, _GRID, dtype=dtype)
    precisions = _precisions(post)
    coarse = _grid_argmax(post, precisions, jnp.log(post.prior_precision) + _DECADES * jnp.log(10.0) * unit)
    step = _DECADES * jnp.log(10.0) * 2.0 / (_GRID - 1)
    delta = jnp.exp(_grid_argmax(post, precisions, coarse + 2.0 * step * unit))  # a second grid, 80 times finer
    chols = _shifted_chols(precisions, delta - post.prior_precision)
    return eqx.tree_at(lambda p: (p.prior_precision, p.precision_chol), post, (delta, chols))
