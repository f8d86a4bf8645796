"""Gaussian-process regression on quadrature nodes: Cholesky with jitter, posteriors, evidence.

Every routine takes an optional boolean ``mask`` over the nodes so that the
adaptive loop can keep fixed-size buffers under ``jit``: a masked-out node is
replaced by a decoupled dummy (unit diagonal, zero cross-covariance, zero
kernel mean, zero value), which leaves every posterior quantity exactly as if
the node were absent.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy as jsp
from jaxtyping import Array, Bool, Float

from ._kernel_embeddings import initial_error, kernel_mean
from ._kernels import AbstractKernel
from ._measures import AbstractMeasure

_JITTER_GROWTH = 10.0
_MAX_JITTER_TRIES = 8


def default_jitter(dtype) -> float:
    """The relative jitter (times ``s**2``) tried first: ``1e-12`` in float64, ``1e-6`` in float32."""
    return 1e-12 if jnp.finfo(dtype).bits == 64 else 1e-6


def masked_gram(kernel: AbstractKernel, nodes: Array, mask: Bool[Array, " n"] | None) -> Array:
    gram = kernel.matrix(nodes, nodes)
    if mask is None:
        return gram
    both = mask[:, None] & mask[None, :]
    return jnp.where(both, gram, jnp.eye(gram.shape[0], dtype=gram.dtype))


class Factor(eqx.Module):
    """A Cholesky factor ``L`` of ``K + jitter * s**2 * I`` and whether it succeeded."""

    cholesky: Float[Array, "n n"]
    jitter: Float[Array, ""]
    ok: Bool[Array, ""]


def stable_cholesky(gram: Float[Array, "n n"], scale: Array, jitter: float | None) -> Factor:
    """Cholesky of ``gram + j * scale * I`` with ``j`` grown tenfold until the factor is finite.

    The search for ``j`` runs without gradients; the final factorisation is
    differentiable in ``gram``, so ``grad`` flows through kernel parameters and nodes.
    """
    rel = default_jitter(gram.dtype) if jitter is None else jitter
    eye = jnp.eye(gram.shape[0], dtype=gram.dtype)
    gram_const = jax.lax.stop_gradient(gram)
    scale_const = jax.lax.stop_gradient(scale)

    def failed(carry):
        j, tries = carry
        chol = jnp.linalg.cholesky(gram_const + j * scale_const * eye)
        return ~jnp.all(jnp.isfinite(chol)) & (tries < _MAX_JITTER_TRIES)

    def grow(carry):
        j, tries = carry
        return j * _JITTER_GROWTH, tries + 1

    j, _ = jax.lax.while_loop(failed, grow, (jnp.asarray(rel, gram.dtype), jnp.asarray(0)))
    chol = jnp.linalg.cholesky(gram + j * scale * eye)
    ok = jnp.all(jnp.isfinite(chol))
    # Keep downstream arithmetic finite when the factorisation failed; `ok` reports it.
    chol = jnp.where(ok, chol, eye)
    return Factor(cholesky=chol, jitter=j, ok=ok)


def factorise(kernel, nodes, mask=None, jitter=None) -> Factor:
    return stable_cholesky(masked_gram(kernel, nodes, mask), kernel.variance(), jitter)


def _solve_lower(chol, b):
    return jsp.linalg.solve_triangular(chol, b, lower=True)


def _masked(values, mask):
    if mask is None:
        return values
    m = mask.reshape(mask.shape + (1,) * (values.ndim - 1))
    return jnp.where(m, values, 0.0)


class IntegralBelief(eqx.Module):
    """The Gaussian belief over the integral(s) and the quantities it was computed from."""

    mean: Array
    var: Array
    weights: Array  # K^{-1} z, the Bayesian-quadrature weights
    log_evidence: Array
    factor: Factor


def integral_belief(
    kernel: AbstractKernel,
    measure: AbstractMeasure,
    nodes: Float[Array, "n d"],
    fvals: Float[Array, "n *m"],
    mask: Bool[Array, " n"] | None = None,
    jitter: float | None = None,
) -> IntegralBelief:
    """Posterior mean ``z^T K^{-1} f`` and variance ``int int k - z^T K^{-1} z`` of the integral."""
    factor = factorise(kernel, nodes, mask, jitter)
    chol = factor.cholesky
    z = _masked(kernel_mean(kernel, measure, nodes), mask)
    fvals = _masked(fvals, mask)
    a = _solve_lower(chol, z)
    b = _solve_lower(chol, fvals)
    mean = jnp.tensordot(a, b, axes=(0, 0))
    prior = initial_error(kernel, measure)
    # The difference of two numbers cannot be resolved below their rounding error.
    floor = 10.0 * jnp.finfo(prior.dtype).eps * prior
    var = jnp.maximum(prior - a @ a, floor)
    weights = jsp.linalg.solve_triangular(chol.T, a, lower=False)
    log_ev = _log_evidence_from(factor, b, mask)
    return IntegralBelief(mean=mean, var=var, weights=weights, log_evidence=log_ev, factor=factor)


def _log_evidence_from(factor: Factor, whitened: Array, mask) -> Array:
    num_outputs = 1 if whitened.ndim == 1 else whitened.shape[1]
    n = whitened.shape[0] if mask is None else jnp.sum(mask)
    log_det = jnp.sum(jnp.log(jnp.diagonal(factor.cholesky)))
    return -0.5 * jnp.sum(whitened**2) - num_outputs * (log_det + 0.5 * n * jnp.log(2 * jnp.pi))


def predict_integrand(
    kernel: AbstractKernel,
    nodes: Float[Array, "n d"],
    fvals: Float[Array, "n *m"],
    x: Float[Array, "k d"],
    mask: Bool[Array, " n"] | None = None,
    factor: Factor | None = None,
    jitter: float | None = None,
) -> tuple[Array, Array]:
    """GP posterior mean ``[k, *m]`` and standard deviation ``[k]`` of the integrand at ``x``."""
    if factor is None:
        factor = factorise(kernel, nodes, mask, jitter)
    cross = _masked(kernel.matrix(nodes, x), mask)  # [n, k]
    c = _solve_lower(factor.cholesky, cross)
    b = _solve_lower(factor.cholesky, _masked(fvals, mask))
    mean = jnp.tensordot(c, b, axes=(0, 0))
    var = jnp.maximum(kernel.variance() - jnp.sum(c**2, axis=0), 0.0)
    return mean, jnp.sqrt(var)


def log_evidence_masked(kernel, nodes, fvals, mask=None, jitter=None) -> Array:
    """``log N(f; 0, K)`` summed over the columns of ``fvals`` (with masked-out nodes removed)."""
    factor = factorise(kernel, nodes, mask, jitter)
    b = _solve_lower(factor.cholesky, _masked(fvals, mask))
    return _log_evidence_from(factor, b, mask)
