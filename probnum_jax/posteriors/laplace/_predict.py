"""Predictive distributions of a Laplace posterior: linearised (GLM) or sampled networks."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._posterior import LaplacePosterior

PREDICTIVE_METHODS = ("glm", "nn")
PREDICTIVE_LINKS = ("probit", "mc", "bridge")


def link_probabilities(f_mean, f_cov, link, num_samples, key):
    """Class probabilities of logits ``N(f_mean[n, C], f_cov[n, C, C])`` through the softmax."""
    if link == "probit":
        # Extended probit approximation (MacKay, 1992; Daxberger et al., 2021).
        kappa = 1.0 / jnp.sqrt(1.0 + jnp.pi / 8.0 * jnp.diagonal(f_cov, axis1=1, axis2=2))
        return jax.nn.softmax(kappa * f_mean, axis=-1)
    if link == "mc":
        c = f_mean.shape[1]
        jitter = jnp.finfo(f_cov.dtype).eps * jnp.trace(f_cov, axis1=1, axis2=2)[:, None, None] * jnp.eye(c)
        chol = jnp.linalg.cholesky(f_cov + jitter)
        eps = jax.random.normal(key, (num_samples,) + f_mean.shape, f_mean.dtype)
        logits = f_mean[None] + jnp.einsum("ncd,snd->snc", chol, eps)
        return jnp.mean(jax.nn.softmax(logits, axis=-1), axis=0)
    # Laplace bridge (Hobbhahn, Kristiadi & Hennig, 2022): condition the logits on
    # summing to zero, then match a Dirichlet to the Gaussian.
    total = jnp.sum(f_cov, axis=(1, 2))[:, None]
    scale = jnp.trace(f_cov, axis1=1, axis2=2)[:, None]
    # Already summing to zero (total ~ 0): nothing to condition on.
    total = jnp.where(total > jnp.finfo(f_cov.dtype).eps * scale, total, jnp.inf)
    row = jnp.sum(f_cov, axis=2)
    mean = f_mean - row * jnp.sum(f_mean, axis=1, keepdims=True) / total
    cov = f_cov - jnp.einsum("ni,nj->nij", row, row) / total[:, :, None]
    var = jnp.diagonal(cov, axis1=1, axis2=2)
    k = f_mean.shape[1]
    sum_exp = jnp.sum(jnp.exp(-mean), axis=1, keepdims=True)
    alpha = (1.0 - 2.0 / k + jnp.exp(mean) / k**2 * sum_exp) / var
    return alpha / jnp.sum(alpha, axis=1, keepdims=True)


def glm_predictive(post: LaplacePosterior, x: Array) -> tuple[Float[Array, "n C"], Float[Array, "n C C"]]:
    """Mean and covariance of the linearised model's outputs at ``x``.

    ``f(x; theta) ~ f(x; theta*) + J(x) (theta - theta*)`` gives outputs
    ``N(f(x; theta*), J(x) Sigma J(x)^T)`` (Immer, Korzepa & Bauer, 2021). The
    covariance comes from per-layer factors (diag, kfac), Jacobian-vector
    products (lowrank) or per-sample Jacobians in chunks (full); the
    ``n x C x p`` Jacobian of all inputs is never formed.

    Args:
        post: a fitted Laplace posterior.
        x: inputs ``[n, ...]``.

    Returns:
        ``(f_mean[n, C], f_cov[n, C, C])``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax.posteriors import laplace
        >>> model_fn = lambda p, x: x @ p
        >>> x = jax.random.normal(jax.random.key(0), (10, 2)); y = x @ jnp.ones((2, 1))
        >>> post = laplace.fit(model_fn, jnp.ones((2, 1)), (x, y), likelihood="regression", hessian="full")
        >>> mean, cov = laplace.glm_predictive(post, x[:3])
        >>> mean.shape, cov.shape
        ((3, 1), (3, 1, 1))
    """
    _check_inputs(post, x)
    return _glm_predictive(post, x)


@eqx.filter_jit
def _glm_predictive(post, x):
    return post.model_fn(post.params, x), post.functional_covariance(x)


def predict(
    post: LaplacePosterior,
    x: Array,
    *,
    method: str = "glm",
    link: str = "probit",
    num_samples: int = 100,
    key: PRNGKeyArray | None = None,
):
    """Posterior predictive of a Laplace posterior at inputs ``x``.

    Args:
        post: a fitted Laplace posterior.
        x: inputs ``[n, ...]``.
        method: ``"glm"`` (linearised network, recommended) or ``"nn"``
            (average over ``num_samples`` networks drawn from the posterior).
        link: for classification with ``"glm"``: ``"probit"`` (extended probit
            approximation), ``"mc"`` (``num_samples`` logit draws) or
            ``"bridge"`` (Laplace bridge to a Dirichlet).
        num_samples: draws for ``link="mc"`` and ``method="nn"``.
        key: random key, needed for ``link="mc"`` and ``method="nn"``.

    Returns:
        Classification: probabilities ``[n, C]``. Regression: ``(mean[n, C],
        variance[n, C])``, the predictive of ``y`` (observation noise included).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax.posteriors import laplace
        >>> model_fn = lambda p, x: x @ p
        >>> x = jax.random.normal(jax.random.key(0), (10, 2)); y = x @ jnp.ones((2, 1))
        >>> post = laplace.fit(model_fn, jnp.ones((2, 1)), (x, y), likelihood="regression", hessian="full")
        >>> mean, var = laplace.predict(post, x[:3])
        >>> var.shape
        (3, 1)
    """
    check_predict_arguments(post.likelihood, method, link, num_samples, key)
    _check_inputs(post, x)
    return _predict(post, x, method, link, num_samples, key)


def check_predict_arguments(likelihood, method, link, num_samples, key):
    """Trace-time checks of a predictive's options (shared with ``blocks.predict``)."""
    if method not in PREDICTIVE_METHODS:
        raise ValueError(f"method must be one of {PREDICTIVE_METHODS}, got {method!r}.")
    if likelihood == "classification" and link not in PREDICTIVE_LINKS:
        raise ValueError(f"link must be one of {PREDICTIVE_LINKS}, got {link!r}.")
    needs_key = method == "nn" or (likelihood == "classification" and link == "mc")
    if needs_key and key is None:
        raise ValueError(f"method={method!r} with link={link!r} draws samples: pass key=jax.random.key(...).")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive int, got {num_samples!r}.")


@eqx.filter_jit
def _predict(post, x, method, link, num_samples, key):
    if method == "nn":
        thetas = post.sample(key, num_samples)
        outputs = jax.vmap(lambda theta: post.model_fn(theta, x))(thetas)  # [S, n, C]
        if post.likelihood == "classification":
            return jnp.mean(jax.nn.softmax(outputs, axis=-1), axis=0)
        return jnp.mean(outputs, axis=0), jnp.var(outputs, axis=0) + post.sigma_noise**2
    f_mean, f_cov = post.model_fn(post.params, x), post.functional_covariance(x)
    if post.likelihood == "classification":
        return link_probabilities(f_mean, f_cov, link, num_samples, key)
    return f_mean, jnp.diagonal(f_cov, axis1=1, axis2=2) + post.sigma_noise**2


def _check_inputs(post, x):
    shape, dtype = post.input_spec
    if not hasattr(x, "shape") or tuple(x.shape[1:]) != shape:
        raise ValueError(f"x must have shape [n, *{shape}] like the training inputs, got {getattr(x, 'shape', x)}.")
