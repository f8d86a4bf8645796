"""First-order BackPACK quantities: per-sample gradients and their statistics.

All are computed from one forward and one backward pass over the batch
(see :mod:`probnum_jax.posteriors._factors`); for a dense layer the squared
norms and the sum of squared gradients never form the per-sample gradients
(Dangel, Kunstner & Hennig, 2020, "BackPACK: Packing more into backprop").
The loss is the per-sample negative log-likelihood of ``likelihood`` (see
:func:`probnum_jax.posteriors.curvature.ggn_diag`), summed over the batch.
"""

from jaxtyping import Array, Float, PyTree

from ._setup import check, reduce_factors


def per_sample_grads(
    model_fn, params: PyTree, x: Float[Array, "n ..."], y: Array, *, likelihood: str = "classification"
) -> PyTree:
    """Gradient of each sample's loss, ``grad_theta loss(f(theta, x_i), y_i)``.

    Args:
        model_fn: ``model_fn(params, x[n, ...]) -> outputs[n, C]``.
        params: parameter pytree.
        x: inputs ``[n, ...]``.
        y: integer labels ``[n]`` (classification) or targets ``[n, C]`` (regression).
        likelihood: ``"classification"`` (softmax cross-entropy) or ``"regression"``
            (``0.5 * ||y - f||^2``).

    Returns:
        A pytree like ``params`` whose leaves have a leading axis ``n``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax.posteriors import curvature
        >>> model_fn = lambda p, x: x @ p["w"] + p["b"]
        >>> params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
        >>> x, y = jnp.ones((4, 3)), jnp.array([0, 1, 0, 1])
        >>> curvature.per_sample_grads(model_fn, params, x, y)["w"].shape
        (4, 3, 2)
    """
    check(model_fn, params, x, y, likelihood)
    return reduce_factors(model_fn, params, x, y, likelihood, "gradient", "per_sample")


def batch_l2(
    model_fn, params: PyTree, x: Float[Array, "n ..."], y: Array, *, likelihood: str = "classification"
) -> PyTree:
    """Squared L2 norm of each per-sample gradient, per leaf (BackPACK's ``BatchL2Grad``).

    For a dense layer ``||a_i d_i^T||^2 = ||a_i||^2 ||d_i||^2``; with weight
    sharing (``T`` rows per sample) ``sum((R R^T) * (D D^T))``; neither forms the
    per-sample gradients.

    Args:
        model_fn, params, x, y, likelihood: as in :func:`per_sample_grads`.

    Returns:
        A pytree like ``params`` whose leaves are ``[n]`` arrays.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import curvature
        >>> model_fn = lambda p, x: x @ p["w"]
        >>> params = {"w": jnp.ones((3, 2))}
        >>> curvature.batch_l2(model_fn, params, jnp.ones((4, 3)), jnp.zeros(4, int))["w"].shape
        (4,)
    """
    check(model_fn, params, x, y, likelihood)
    return reduce_factors(model_fn, params, x, y, likelihood, "gradient", "squared_norms")


def sum_grad_squared(
    model_fn, params: PyTree, x: Float[Array, "n ..."], y: Array, *, likelihood: str = "classification"
) -> PyTree:
    """Sum of the squared per-sample gradients, ``sum_i g_i**2`` elementwise (``SumGradSquared``).

    Args:
        model_fn, params, x, y, likelihood: as in :func:`per_sample_grads`.

    Returns:
        A pytree like ``params``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import curvature
        >>> model_fn = lambda p, x: x @ p["w"]
        >>> params = {"w": jnp.ones((3, 2))}
        >>> curvature.sum_grad_squared(model_fn, params, jnp.ones((4, 3)), jnp.zeros(4, int))["w"].shape
        (3, 2)
    """
    check(model_fn, params, x, y, likelihood)
    return reduce_factors(model_fn, params, x, y, likelihood, "gradient", "sum_of_squares")


def grad_variance(
    model_fn, params: PyTree, x: Float[Array, "n ..."], y: Array, *, likelihood: str = "classification"
) -> PyTree:
    """Elementwise variance of the per-sample gradients over the batch (``Variance``).

    Computes ``mean_i g_i**2 - (mean_i g_i)**2`` (divisor ``n``), clipped at zero
    against round-off, from the sum of squares and the gradient.

    Args:
        model_fn, params, x, y, likelihood: as in :func:`per_sample_grads`.

    Returns:
        A pytree like ``params``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import curvature
        >>> model_fn = lambda p, x: x @ p["w"]
        >>> params = {"w": jnp.ones((3, 2))}
        >>> x = jnp.arange(12.0).reshape(4, 3)
        >>> v = curvature.grad_variance(model_fn, params, x, jnp.array([0, 1, 1, 0]))
        >>> bool((v["w"] >= 0).all())
        True
    """
    check(model_fn, params, x, y, likelihood)
    return reduce_factors(model_fn, params, x, y, likelihood, "gradient", "variance")
