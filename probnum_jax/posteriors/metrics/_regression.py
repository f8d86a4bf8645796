"""Regression metrics for a Gaussian predictive: NLL, RMSE and CRPS."""

import jax
import jax.numpy as jnp
import jax.scipy.stats as jss
from jaxtyping import Array, Float


def _check(mean, var, y):
    if not hasattr(mean, "shape") or not hasattr(y, "shape") or mean.shape != y.shape:
        raise ValueError(f"mean and y must have the same shape, got {jnp.shape(mean)} and {jnp.shape(y)}.")
    if var is not None and (not hasattr(var, "shape") or var.shape != mean.shape):
        raise ValueError(f"var must have the shape of mean {mean.shape}, got {jnp.shape(var)}.")


@jax.jit
def gaussian_nll(mean: Float[Array, "n C"], var: Float[Array, "n C"], y: Float[Array, "n C"]) -> Float[Array, ""]:
    """Mean negative log-density of ``y`` under ``N(mean, var)``, per entry.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import metrics
        >>> round(float(metrics.gaussian_nll(jnp.zeros((1, 1)), jnp.ones((1, 1)), jnp.zeros((1, 1)))), 4)  # log(2 pi) / 2
        0.9189
    """
    _check(mean, var, y)
    return jnp.mean(0.5 * jnp.log(2 * jnp.pi * var) + 0.5 * (y - mean) ** 2 / var)


@jax.jit
def rmse(mean: Float[Array, "n C"], y: Float[Array, "n C"]) -> Float[Array, ""]:
    """Root mean squared error of the predictive mean.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import metrics
        >>> round(float(metrics.rmse(jnp.array([[1.0], [3.0]]), jnp.array([[0.0], [0.0]]))), 4)  # sqrt(5)
        2.2361
    """
    _check(mean, None, y)
    return jnp.sqrt(jnp.mean((y - mean) ** 2))


@jax.jit
def crps_gaussian(mean: Float[Array, "n C"], var: Float[Array, "n C"], y: Float[Array, "n C"]) -> Float[Array, ""]:
    """Mean continuous ranked probability score of ``N(mean, var)`` at ``y``.

    Closed form ``sigma * (z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi))`` with
    ``z = (y - mean) / sigma`` (Gneiting & Raftery, 2007); lower is better.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import metrics
        >>> round(float(metrics.crps_gaussian(jnp.zeros((1, 1)), jnp.ones((1, 1)), jnp.zeros((1, 1)))), 4)
        0.2337
    """
    _check(mean, var, y)
    sigma = jnp.sqrt(var)
    z = (y - mean) / sigma
    return jnp.mean(sigma * (z * (2 * jss.norm.cdf(z) - 1) + 2 * jss.norm.pdf(z) - 1 / jnp.sqrt(jnp.pi)))
