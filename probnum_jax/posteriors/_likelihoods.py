"""Likelihoods: the per-sample loss and its curvature with respect to the outputs.

Losses are negative log-likelihoods, summed over the data:

* ``"classification"``: softmax cross-entropy of logits ``f[C]`` and an integer label;
* ``"regression"``: ``0.5 * ||y - f||^2``, the Gaussian negative log-likelihood with
  unit noise and without its constant. A noise ``sigma`` scales the curvature
  by ``1 / sigma**2`` (laplace-torch's convention); the Laplace posterior does that.

The Hessian of the loss with respect to the outputs, ``Lambda``, is given as a
square root: rows ``s_k`` with ``sum_k s_k s_k^T = Lambda`` (exact, ``C`` rows)
or rows drawn so that the identity holds in expectation (Monte Carlo), as in
BackPACK (Dangel et al., 2020).
"""

import jax
import jax.numpy as jnp

LIKELIHOODS = ("classification", "regression")


def check_likelihood(likelihood) -> str:
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}.")
    return likelihood


def sample_loss(likelihood, f, y):
    """Loss of one sample: outputs ``f[C]``, target ``y`` (label or ``[C]``)."""
    if likelihood == "classification":
        return -jax.nn.log_softmax(f)[y]
    return 0.5 * jnp.sum((y - f) ** 2)


def sum_loss(likelihood, f, y):
    """Summed loss of a batch: outputs ``f[n, C]``."""
    return jnp.sum(jax.vmap(lambda fi, yi: sample_loss(likelihood, fi, yi))(f, y))


def loss_gradient(likelihood, f, y):
    """Gradient of the per-sample loss with respect to ``f[C]``, as one row ``[1, C]``."""
    return jax.grad(lambda g: sample_loss(likelihood, g, y))(f)[None]


def hessian_sqrt(likelihood, f):
    """Rows ``S[C, C]`` with ``S.T @ S`` the Hessian of the loss w.r.t. ``f[C]``."""
    if likelihood == "classification":
        p = jax.nn.softmax(f)
        # sum_k p_k (e_k - p)(e_k - p)^T = diag(p) - p p^T
        return jnp.sqrt(p)[:, None] * (jnp.eye(f.shape[0], dtype=f.dtype) - p[None, :])
    return jnp.eye(f.shape[0], dtype=f.dtype)


def draws_for_sampled_sqrt(likelihood, key, n, num_samples, num_outputs, dtype):
    """The random numbers :func:`sampled_hessian_sqrt` needs for ``n`` samples, in one call."""
    if likelihood == "classification":
        return jax.random.uniform(key, (n, num_samples), dtype)
    return jax.random.normal(key, (n, num_samples, num_outputs), dtype)


def sampled_hessian_sqrt(likelihood, f, draws):
    """Rows ``S[M, C]`` with ``E[S.T @ S]`` the Hessian of the loss w.r.t. ``f[C]``.

    For classification a row is the loss gradient at a label drawn from the
    model, ``p - e_y`` (the label by inverting the CDF at uniform ``draws[M]``);
    for regression the standard-normal ``draws[M, C]`` themselves.
    """
    num_samples = draws.shape[0]
    if likelihood == "classification":
        p = jax.nn.softmax(f)
        labels = jnp.minimum(jnp.sum(jnp.cumsum(p)[None, :] < draws[:, None], axis=1), f.shape[0] - 1)
        rows = p[None, :] - jax.nn.one_hot(labels, f.shape[0], dtype=f.dtype)
    else:
        rows = draws.astype(f.dtype)
    return rows / jnp.sqrt(num_samples).astype(f.dtype)


def hessian_vector(likelihood, f, v):
    """Hessian of the per-sample loss w.r.t. ``f[C]`` times ``v[C]``."""
    if likelihood == "classification":
        p = jax.nn.softmax(f)
        return p * v - p * jnp.dot(p, v)
    return v
