"""The exact conditionals of one block-Gibbs sweep (Piccioli, Troiani and Zdeborová, 2023, Sec. 3).

Every block is a Gaussian or a (mixture of) truncated Gaussian(s):

* the weights of a layer: each row ``w_i`` (the incoming weights of unit ``i``)
  is Gaussian with the precision ``lambda I + X^T X / Delta`` shared by all rows,
  so one Cholesky factor serves the whole layer;
* the hidden post-activations: each row ``x_mu`` (one data point) is Gaussian
  with the precision ``I / Delta_X + W^T W / Delta`` shared by all rows;
* the hidden pre-activations: independent entries, Gaussian for the identity
  activation and a two-piece mixture of truncated Gaussians for ReLU;
* the probit latents: independent truncated Gaussians (Albert and Chib, 1993).

The samplers take their randomness as arrays of ``Uniform(0, 1)`` draws
(:class:`Uniforms`), so that a sweep draws all its random bits in one kernel:
on CPU every separate random-number call site costs about a second of
compilation, which would dominate the compile time of a sweep. Gaussians are
``Phi^{-1}(u)``.
"""

import math

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jax.scipy.special import log_ndtr, ndtri
from jaxtyping import Array, Float, PRNGKeyArray


class Uniforms:
    """Hands out consecutive slices of one draw of ``num_uniform`` uniforms and ``num_normal`` standard normals.

    Both come from one ``jax.random.uniform`` call; the normals are ``Phi^{-1}`` of
    their uniforms, computed in one call too (each call site of these
    elementwise functions adds to the compile time).
    """

    def __init__(self, key: PRNGKeyArray, num_uniform: int, num_normal: int, dtype):
        flat = jax.random.uniform(key, (num_uniform + num_normal,), dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)
        self.uniforms, self.normals = flat[:num_uniform], ndtri(flat[num_uniform:])
        self.used_uniform = self.used_normal = 0

    def take(self, shape) -> Array:
        size = math.prod(shape)
        out = self.uniforms[self.used_uniform : self.used_uniform + size].reshape(shape)
        self.used_uniform += size
        return out

    def normal(self, shape) -> Array:
        size = math.prod(shape)
        out = self.normals[self.used_normal : self.used_normal + size].reshape(shape)
        self.used_normal += size
        return out


def truncated_below(u: Float[Array, "..."], lower: Float[Array, "..."], log_mass=None) -> Float[Array, "..."]:
    """Standard normals truncated to ``[lower, inf)`` by the inverse CDF in log space.

    ``z = -Phi^{-1}(u Phi(-lower))`` for uniforms ``u`` (one per entry): the tail mass
    ``Phi(-lower)`` comes from ``log_ndtr``, so a truncation point far in the
    upper tail (``lower = 30``) is as accurate as one in the bulk. ``log_mass``,
    if given, is ``log_ndtr(-lower)`` computed by the caller.
    """
    log_mass = log_ndtr(-lower) if log_mass is None else log_mass
    p = jnp.exp(jnp.log(u) + log_mass)
    z = -ndtri(p)
    return jnp.where(jnp.isfinite(z), jnp.maximum(z, lower), lower)


def sample_rows(eps: Float[Array, "d k"], precision: Float[Array, "d d"], rhs: Float[Array, "d k"]) -> Float[Array, "k d"]:
    """``k`` independent draws ``N(P^{-1} b_j, P^{-1})`` for the columns ``b_j`` of ``rhs``, as rows.

    ``eps [d, k]`` are standard normals.

    One Cholesky factorisation ``P = C C^T`` serves all ``k`` draws:
    ``mean = C^{-T} C^{-1} b``, ``draw = mean + C^{-T} eps``.
    """
    chol = jnp.linalg.cholesky(precision)
    half = jsl.solve_triangular(chol, rhs, lower=True)
    draws = jsl.solve_triangular(chol, half + eps, lower=True, trans="T")
    return draws.T


def sample_weights(eps, inputs, targets, noise, prior_precision):
    """Rows of ``W`` given ``targets = inputs W^T + N(0, noise)`` and the prior ``N(0, I / prior_precision)``.

    Args:
        inputs: ``X [n, d]`` (with the ones column if the layer has a bias).
        targets: ``T [n, k]``, the layer's pre-activations (or observations).
        noise: the variance of ``T`` given ``X W^T``.
        prior_precision: ``lambda``.

    Returns:
        ``W [k, d]``; cost ``O(n d^2 + d^3 + n d k + d^2 k)``.
    """
    d = inputs.shape[1]
    precision = prior_precision * jnp.eye(d, dtype=inputs.dtype) + inputs.T @ inputs / noise
    return sample_rows(eps, precision, inputs.T @ targets / noise)


def sample_post_activations(eps, prior_mean, noise_post, weights, targets, noise, bias):
    """Rows of ``X`` given ``X ~ N(prior_mean, noise_post)`` and ``targets = [X, 1] W^T + N(0, noise)``.

    Args:
        prior_mean: ``sigma(Z) [n, d]``.
        weights: the next layer's ``W [k, d (+1)]``; the last column is the bias if ``bias``.
        targets: the next layer's pre-activations (or observations) ``[n, k]``.

    Returns:
        ``X [n, d]``; cost ``O(k d^2 + d^3 + n d k + n d^2)``.
    """
    if bias:
        weights, b = weights[:, :-1], weights[:, -1]
        targets = targets - b
    d = weights.shape[1]
    precision = jnp.eye(d, dtype=weights.dtype) / noise_post + weights.T @ weights / noise
    rhs = prior_mean.T / noise_post + weights.T @ targets.T / noise
    return sample_rows(eps, precision, rhs)


def sample_pre_activations_linear(rng, mean, noise_pre, post, noise_post):
    """``Z`` entrywise from ``N(z; mean, noise_pre) N(post; z, noise_post)``: a Gaussian."""
    var = 1.0 / (1.0 / noise_pre + 1.0 / noise_post)
    centre = var * (mean / noise_pre + post / noise_post)
    return centre + jnp.sqrt(var) * rng.normal(mean.shape)


def relu_pieces(mean, noise_pre, post, noise_post):
    """The two pieces of ``p(z) ∝ N(z; mean, noise_pre) N(post; relu(z), noise_post)``.

    Returns ``(log_weight_neg, log_weight_pos, centre_pos, var_pos, log_tail_neg,
    log_tail_pos)``, the last two the log-``Phi`` factors of the masses: on ``z < 0``
    the density is ``N(post; 0, noise_post) N(z; mean, noise_pre)`` with mass
    ``N(post; 0, noise_post) Phi(-mean / sqrt(noise_pre))``; on ``z >= 0`` it is
    ``N(post; mean, noise_pre + noise_post) N(z; centre_pos, var_pos)`` with mass
    ``N(post; mean, noise_pre + noise_post) Phi(centre_pos / sqrt(var_pos))``.
    Both log masses use ``log_ndtr`` (stable far in the tails); the common
    constant ``-log(2 pi) / 2`` is dropped.
    """
    var_pos = 1.0 / (1.0 / noise_pre + 1.0 / noise_post)
    centre_pos = var_pos * (mean / noise_pre + post / noise_post)
    # One log_ndtr call for both tails: log Phi(-mean / sd_pre) and log Phi(centre_pos / sd_pos).
    log_tail_neg, log_tail_pos = log_ndtr(jnp.stack([-mean / jnp.sqrt(noise_pre), centre_pos / jnp.sqrt(var_pos)]))
    total = noise_pre + noise_post
    log_neg = -0.5 * post**2 / noise_post - 0.5 * jnp.log(noise_post) + log_tail_neg
    log_pos = -0.5 * (post - mean) ** 2 / total - 0.5 * jnp.log(total) + log_tail_pos
    return log_neg, log_pos, centre_pos, var_pos, log_tail_neg, log_tail_pos


def sample_pre_activations_relu(rng, mean, noise_pre, post, noise_post):
    """``Z`` entrywise from ``N(z; mean, noise_pre) N(post; relu(z), noise_post)``.

    Picks the piece ``z >= 0`` with probability ``sigmoid(log_pos - log_neg)``
    (see :func:`relu_pieces`), then draws the truncated Gaussian of the chosen
    piece with :func:`truncated_below`. Uses ``2 * mean.size`` uniforms.
    """
    log_neg, log_pos, centre_pos, var_pos, log_tail_neg, log_tail_pos = relu_pieces(mean, noise_pre, post, noise_post)
    positive = jnp.log(rng.take(mean.shape)) < jax.nn.log_sigmoid(log_pos - log_neg)
    sd_pre, sd_pos = jnp.sqrt(noise_pre), jnp.sqrt(var_pos)
    # z < 0: z = mean - sd_pre * e with e >= mean / sd_pre; z >= 0: z = centre_pos + sd_pos * e
    # with e >= -centre_pos / sd_pos.
    lower = jnp.where(positive, -centre_pos / sd_pos, mean / sd_pre)
    log_mass = jnp.where(positive, log_tail_pos, log_tail_neg)
    e = truncated_below(rng.take(mean.shape), lower, log_mass)
    return jnp.where(positive, jnp.maximum(centre_pos + sd_pos * e, 0.0), jnp.minimum(mean - sd_pre * e, 0.0))


def sample_probit_latents(u, mean, labels):
    """``u ~ N(mean, 1)`` truncated to ``u > 0`` where ``labels = 1`` and to ``u <= 0`` where 0."""
    sign = 2.0 * labels - 1.0
    # sign * u = sign * mean + e with e >= -sign * mean.
    return mean + sign * truncated_below(u, -sign * mean)
