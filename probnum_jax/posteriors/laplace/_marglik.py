"""The Laplace marginal likelihood and tuning of the prior precision."""

import functools
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .. import _checks
from ._posterior import LaplacePosterior
from ._predict import PREDICTIVE_LINKS, link_probabilities
from ._prior import PRIOR_STRUCTURES, expand_prior, log_det_prior, scatter, structured_init


def log_marginal_likelihood(post: LaplacePosterior, prior_precision=None, sigma_noise=None) -> Float[Array, ""]:
    """Laplace approximation of the log evidence ``log p(D | prior_precision, sigma_noise)``.

    ``log p(D | theta*) - 0.5 * (log det P - log det P0 + theta*^T P0 theta*)``
    with ``P`` the posterior and ``P0`` the prior precision (MacKay, 1992;
    Immer et al., 2021). Differentiable in both hyperparameters; for a linear
    model with Gaussian noise it is the exact evidence.

    Args:
        post: a fitted Laplace posterior.
        prior_precision: scalar, one value per subset leaf (layer-wise) or one per
            subset parameter (diagonal); default: ``post.prior_precision``.
        sigma_noise: observation noise (regression); default: ``post.sigma_noise``.

    Returns:
        The log marginal likelihood (a scalar).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax.posteriors import laplace
        >>> model_fn = lambda p, x: x @ p
        >>> x = jax.random.normal(jax.random.key(0), (10, 2)); y = x @ jnp.ones((2, 1))
        >>> post = laplace.fit(model_fn, jnp.ones((2, 1)), (x, y), likelihood="regression", hessian="full")
        >>> jax.grad(lambda a: laplace.log_marginal_likelihood(post, prior_precision=a))(1.0).shape
        ()
    """
    if prior_precision is None:
        prior = post.prior_precision
    else:
        _checks.check_positive("prior_precision", prior_precision)
        prior = expand_prior(prior_precision, post.sub_shapes, post.sigma_noise.dtype)
    if sigma_noise is None:
        sigma = post.sigma_noise
    else:
        _checks.check_positive("sigma_noise", sigma_noise)
        sigma = jnp.asarray(sigma_noise, post.sigma_noise.dtype)
    return _log_marginal_likelihood(post, prior, sigma)


@eqx.filter_jit
def _log_marginal_likelihood(post, prior, sigma):
    log_det_ratio = post.log_det_precision(prior, sigma) - log_det_prior(prior, post.sub_shapes)
    return post.log_likelihood(sigma) - 0.5 * (log_det_ratio + scatter(prior, post.mean))


METHODS = ("marglik", "gridsearch")


def optimize_prior_precision(
    post: LaplacePosterior,
    data=None,
    *,
    method: str = "marglik",
    prior_structure: str = "scalar",
    num_steps: int = 100,
    learning_rate: float = 0.1,
    optimizer: optax.GradientTransformation | None = None,
    tune_sigma_noise: bool = False,
    grid: Array | None = None,
    link: str = "probit",
    num_samples: int = 100,
    key: PRNGKeyArray | None = None,
) -> LaplacePosterior:
    """Tune the prior precision (and optionally the noise) of a Laplace posterior.

    * ``"marglik"``: gradient ascent of :func:`log_marginal_likelihood` on the
      log-hyperparameters with optax (Adam by default), ``num_steps`` steps
      inside one compiled ``lax.scan`` (Immer et al., 2021).
    * ``"gridsearch"``: the scalar prior precision on ``grid`` (default
      ``logspace(-4, 4, 100)``) minimising the negative log-likelihood of the
      validation ``data`` under the GLM predictive; warns when the optimum
      lies at the edge of the grid.

    Args:
        post: a fitted Laplace posterior.
        data: validation ``(x, y)`` for ``"gridsearch"`` (unused by ``"marglik"``).
        method: ``"marglik"`` or ``"gridsearch"``.
        prior_structure: ``"scalar"``, ``"layerwise"`` or ``"diagonal"`` (marglik).
        num_steps: optimiser steps (marglik).
        learning_rate: Adam's learning rate when ``optimizer`` is ``None``.
        optimizer: an optax transformation to use instead of Adam.
        tune_sigma_noise: also tune ``sigma_noise`` (regression, marglik).
        grid: prior precisions to try (gridsearch).
        link: classification link of the validation predictive (gridsearch).
        num_samples: samples for ``link="mc"`` (gridsearch).
        key: random key for ``link="mc"`` (gridsearch).

    Returns:
        The posterior with the tuned hyperparameters.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax.posteriors import laplace
        >>> model_fn = lambda p, x: x @ p
        >>> x = jax.random.normal(jax.random.key(0), (30, 2)); y = x @ jnp.ones((2, 1))
        >>> post = laplace.fit(model_fn, jnp.ones((2, 1)), (x, y), likelihood="regression", hessian="full")
        >>> tuned = laplace.optimize_prior_precision(post, num_steps=50)
        >>> bool(laplace.log_marginal_likelihood(tuned) >= laplace.log_marginal_likelihood(post))
        True
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if method == "gridsearch":
        return _gridsearch(post, data, grid, link, num_samples, key)
    if prior_structure not in PRIOR_STRUCTURES:
        raise ValueError(f"prior_structure must be one of {PRIOR_STRUCTURES}, got {prior_structure!r}.")
    if tune_sigma_noise and post.likelihood != "regression":
        raise ValueError("tune_sigma_noise=True needs likelihood='regression'.")
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}.")
    init = structured_init(prior_structure, post.prior_precision, post.sub_shapes)
    optimizer = _adam(learning_rate) if optimizer is None else optimizer
    log_prior, log_sigma = _run_marglik(
        post, jnp.log(init), jnp.log(post.sigma_noise), optimizer, num_steps, tune_sigma_noise
    )
    prior = expand_prior(jnp.exp(log_prior), post.sub_shapes, post.sigma_noise.dtype)
    post = eqx.tree_at(lambda p: p.prior_precision, post, prior)
    return eqx.tree_at(lambda p: p.sigma_noise, post, jnp.exp(log_sigma))


@functools.lru_cache(maxsize=16)
def _adam(learning_rate):
    """One optax.adam per learning rate, so that the compiled tuning loop is reused."""
    return optax.adam(learning_rate)


@eqx.filter_jit
def _run_marglik(post, log_prior, log_sigma, optimizer, num_steps, tune_sigma):
    def loss(hyper):
        lp, ls = hyper
        sigma = jnp.exp(ls) if tune_sigma else jax.lax.stop_gradient(jnp.exp(ls))
        prior = expand_prior(jnp.exp(lp), post.sub_shapes, post.sigma_noise.dtype)
        return -_log_marginal_likelihood(post, prior, sigma)

    def step(carry, _):
        hyper, state = carry
        grads = jax.grad(loss)(hyper)
        updates, state = optimizer.update(grads, state, hyper)
        return (optax.apply_updates(hyper, updates), state), None

    hyper = (log_prior, log_sigma)
    (hyper, _), _ = jax.lax.scan(step, (hyper, optimizer.init(hyper)), None, length=num_steps)
    return hyper


def _gridsearch(post, data, grid, link, num_samples, key):
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise ValueError("method='gridsearch' needs validation data as an (x, y) pair.")
    x, y = data
    _checks.check_model_data(post.model_fn, post.params, x, y, post.likelihood)
    if post.likelihood == "classification" and link not in PREDICTIVE_LINKS:
        raise ValueError(f"link must be one of {PREDICTIVE_LINKS}, got {link!r}.")
    if link == "mc" and key is None:
        raise ValueError("link='mc' needs a random key.")
    grid = jnp.logspace(-4, 4, 100) if grid is None else jnp.asarray(grid)
    if grid.ndim != 1 or grid.shape[0] < 2:
        raise ValueError(f"grid must be a 1-D array of at least two prior precisions, got shape {grid.shape}.")
    _checks.check_positive("grid", grid)
    nll = _grid_nll(post, x, y, grid.astype(post.sigma_noise.dtype), link, num_samples, key)
    best = int(np.nanargmin(np.asarray(nll)))
    if best in (0, grid.shape[0] - 1):
        warnings.warn(
            f"The best prior precision {float(grid[best]):.3g} lies at the edge of the grid "
            f"[{float(grid[0]):.3g}, {float(grid[-1]):.3g}]; widen the grid.",
            stacklevel=3,
        )
    prior = expand_prior(grid[best], post.sub_shapes, post.sigma_noise.dtype)
    return eqx.tree_at(lambda p: p.prior_precision, post, prior)


@eqx.filter_jit
def _grid_nll(post, x, y, grid, link, num_samples, key):
    f_mean = post.model_fn(post.params, x)
    features = post.predictive_features(x)

    def nll(prior_value):
        prior = expand_prior(prior_value, post.sub_shapes, post.sigma_noise.dtype)
        f_cov = post.functional_covariance_from(features, prior, post.sigma_noise)
        if post.likelihood == "classification":
            probs = link_probabilities(f_mean, f_cov, link, num_samples, key)
            return -jnp.mean(jnp.log(jnp.take_along_axis(probs, y[:, None], axis=1)))
        var = jnp.diagonal(f_cov, axis1=1, axis2=2) + post.sigma_noise**2
        return jnp.mean(0.5 * jnp.log(2 * jnp.pi * var) + 0.5 * (y - f_mean) ** 2 / var)

    return jax.lax.map(nll, grid)
