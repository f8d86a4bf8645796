"""The Monte Carlo predictive of a mean-field Gaussian posterior over weights."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_params
from .._likelihoods import check_likelihood
from ._posterior import MeanFieldGaussian, check_positive_scalar


def predict(
    model_fn: Callable,
    posterior: MeanFieldGaussian,
    x: Float[Array, "n ..."],
    *,
    key: PRNGKeyArray,
    num_samples: int = 100,
    likelihood: str = "classification",
    noise_variance: float | None = None,
):
    """Monte Carlo predictive ``E_q[p(y | x, theta)]`` over weights drawn from ``posterior``.

    Args:
        model_fn: ``model_fn(params, x[n, ...]) -> outputs[n, C]``.
        posterior: a :class:`MeanFieldGaussian` (from :func:`mean_field`, or
            :func:`posterior` of an IVON/VOGN state).
        x: inputs ``[n, ...]``.
        key: a JAX random key.
        num_samples: number of weight samples.
        likelihood: ``"classification"`` (softmax) or ``"regression"``.
        noise_variance: regression only: observation-noise variance added to the
            predictive variance (> 0); ``None`` gives the variance of the mean function.

    Returns:
        Classification: probabilities ``[n, C]`` averaged over the samples.
        Regression: ``(mean, variance)``, both ``[n, C]``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax.posteriors import vi
        >>> model_fn = lambda p, x: x @ p["w"]
        >>> q = vi.MeanFieldGaussian({"w": jnp.zeros((2, 3))}, {"w": jnp.ones((2, 3))})
        >>> probs = vi.predict(model_fn, q, jnp.ones((5, 2)), key=jax.random.key(0), num_samples=10)
        >>> probs.shape, bool(jnp.allclose(probs.sum(-1), 1.0))
        ((5, 3), True)
    """
    check_likelihood(likelihood)
    if not isinstance(posterior, MeanFieldGaussian):
        raise TypeError(f"posterior must be a vi.MeanFieldGaussian, got {type(posterior).__name__}.")
    check_params(posterior.mean)
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive int, got {num_samples!r}.")
    if not hasattr(x, "shape") or x.ndim < 1:
        raise ValueError(f"x must be an array with a leading batch axis, got {type(x).__name__}.")
    if noise_variance is not None:
        if likelihood != "regression":
            raise ValueError("noise_variance is only used with likelihood='regression'.")
        check_positive_scalar("noise_variance", noise_variance)
    try:
        out = jax.eval_shape(model_fn, posterior.mean, x)
    except Exception as e:  # noqa: BLE001 - re-raised with context
        raise ValueError(
            f"x does not fit the model: model_fn(posterior.mean, x) failed for x of shape {x.shape} "
            f"({type(e).__name__}: {e})."
        ) from e
    if len(out.shape) != 2 or out.shape[0] != x.shape[0]:
        raise ValueError(f"model_fn(params, x) must return outputs [n, C] = [{x.shape[0]}, C], got {out.shape}.")

    thetas = posterior.sample(key, num_samples)
    if likelihood == "classification":
        probs = jax.vmap(lambda th: jax.nn.softmax(model_fn(th, x), axis=-1))(thetas)
        return jnp.mean(probs, axis=0)
    f = jax.vmap(lambda th: model_fn(th, x))(thetas)
    mean = jnp.mean(f, axis=0)
    var = jnp.var(f, axis=0)
    if noise_variance is not None:
        var = var + noise_variance
    return mean, var
