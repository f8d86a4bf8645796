"""Predictives of a block-diagonal Gaussian: linearised (GLM) or sampled networks."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ... import _small_linalg as small
from .._factors import batch_factors
from ..laplace._predict import check_predict_arguments, link_probabilities
from ._ggn import per_sample_jacobian
from ._posterior import BlockGaussian


def glm_predictive(post: BlockGaussian, x: Array) -> tuple[Float[Array, "n C"], Float[Array, "n C C"]]:
    """Mean and covariance of the linearised network's outputs at ``x``.

    ``f(x; w) ~ f(x; m) + J(x) (w - m)`` gives ``N(f(x; m), sum_b J_b P_b^{-1} J_b^T)``
    (Immer, Korzepa & Bauer, 2021), summed over the blocks ``b``; the
    per-input block Jacobians come from one factor pass with ``C``
    cotangents (memory ``n C p``: pass test inputs in chunks if large).

    Args:
        post: a :class:`BlockGaussian`.
        x: inputs ``[n, ...]``.

    Returns:
        ``(f_mean[n, C], f_cov[n, C, C])``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import blocks
        >>> x = jnp.eye(3); y = jnp.ones((3, 1))
        >>> post = blocks.laplace(lambda p, x: x @ p, jnp.zeros((3, 1)), x, y, likelihood="regression")
        >>> mean, cov = blocks.glm_predictive(post, x)
        >>> [round(float(v), 6) for v in mean[:, 0]], [round(float(v), 6) for v in cov[:, 0, 0]]
        ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    """
    _check_inputs(post, x)
    return _glm_predictive(post, x)


@eqx.filter_jit
def _glm_predictive(post, x):
    leaves = jax.tree.leaves(post.params)
    graph = post.layer_graph()
    f_mean, factors = batch_factors(graph, leaves, tuple(range(len(leaves))), x, _identity_cotangents)
    n, c = f_mean.shape
    cov = jnp.zeros((n, c, c), f_mean.dtype)
    for leaf, f in factors.items():
        jac = per_sample_jacobian(f, post.block)  # [n, C, B, m]
        rhs = jnp.transpose(jac, (2, 3, 0, 1)).reshape(jac.shape[2], jac.shape[3], n * c)
        z = jax.vmap(small.solve_lower)(post.precision_chol[leaf], rhs)  # not batched LAPACK: _small_linalg.py
        z = z.reshape(jac.shape[2], jac.shape[3], n, c)
        cov = cov + jnp.einsum("bmnc,bmnd->ncd", z, z)
    return f_mean, cov


def _identity_cotangents(f, _):
    return jnp.eye(f.shape[0], dtype=f.dtype)


def predict(
    post: BlockGaussian,
    x: Array,
    *,
    method: str = "glm",
    link: str = "probit",
    num_samples: int = 100,
    key: PRNGKeyArray | None = None,
):
    """Posterior predictive of a :class:`BlockGaussian` at inputs ``x``.

    Args:
        post: the posterior (from :func:`laplace` or :func:`vi`).
        x: inputs ``[n, ...]``.
        method: ``"glm"`` (linearised network, :func:`glm_predictive`) or
            ``"nn"`` (average over ``num_samples`` networks drawn from ``post``).
        link: classification with ``"glm"``: ``"probit"``, ``"mc"`` or ``"bridge"``,
            as in :func:`probnum_jax.posteriors.laplace.predict`.
        num_samples: draws for ``method="nn"`` and ``link="mc"``.
        key: random key, needed for ``method="nn"`` and ``link="mc"``.

    Returns:
        Classification: probabilities ``[n, C]``. Regression: ``(mean[n, C],
        variance[n, C])`` of ``y``, observation noise included.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax.posteriors import blocks
        >>> model_fn = lambda p, x: x @ p
        >>> x = jax.random.normal(jax.random.key(0), (20, 2)); y = (x[:, 0] > 0).astype(int)
        >>> post = blocks.laplace(model_fn, jnp.zeros((2, 2)), x, y)
        >>> probs = blocks.predict(post, x[:4], method="nn", key=jax.random.key(1))
        >>> probs.shape, bool(jnp.allclose(probs.sum(-1), 1.0))
        ((4, 2), True)
    """
    if not isinstance(post, BlockGaussian):
        raise TypeError(f"post must be a blocks.BlockGaussian, got {type(post).__name__}.")
    check_predict_arguments(post.likelihood, method, link, num_samples, key)
    _check_inputs(post, x)
    return _predict(post, x, method, link, num_samples, key)


@eqx.filter_jit
def _predict(post, x, method, link, num_samples, key):
    if method == "nn":
        thetas = post.sample(key, num_samples)
        outputs = jax.vmap(lambda theta: post.model_fn(theta, x))(thetas)  # [S, n, C]
        if post.likelihood == "classification":
            return jnp.mean(jax.nn.softmax(outputs, axis=-1), axis=0)
        return jnp.mean(outputs, axis=0), jnp.var(outputs, axis=0) + post.sigma_noise**2
    f_mean, f_cov = _glm_predictive(post, x)
    if post.likelihood == "classification":
        return link_probabilities(f_mean, f_cov, link, num_samples, key)
    return f_mean, jnp.diagonal(f_cov, axis1=1, axis2=2) + post.sigma_noise**2


def _check_inputs(post, x):
    shape, _ = post.input_spec
    if not hasattr(x, "shape") or tuple(x.shape[1:]) != shape:
        raise ValueError(f"x must have shape [n, *{shape}] like the training inputs, got {getattr(x, 'shape', x)}.")
