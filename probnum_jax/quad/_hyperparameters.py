"""Type-II maximum likelihood (ML-II) for the kernel's lengthscales and output scale."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike, Float

from ._gaussian_process import factorise, log_evidence_masked
from ._kernels import AbstractKernel
from ._validation import as_fvals


def log_evidence(
    nodes: Float[Array, "n d"],
    fvals: Float[Array, "n *m"],
    *,
    kernel: AbstractKernel,
    jitter: float | None = None,
) -> Float[Array, ""]:
    """The log marginal likelihood ``log N(fvals; 0, K + jitter)`` of the GP prior.

    For ``fvals`` of shape ``[n, m]`` the ``m`` columns are independent draws from
    the same GP and their log-likelihoods are summed. Differentiable in the kernel
    parameters, the nodes and the function values.

    Args:
        nodes: Nodes ``[n, d]``.
        fvals: Function values ``[n]`` or ``[n, m]``.
        kernel: The covariance kernel.
        jitter: The relative diagonal jitter tried first (times ``output_scale**2``);
            ``None`` picks one from the dtype.

    Returns:
        A scalar, the log evidence.

    Reference: Rasmussen & Williams (2006), eq. (5.8).

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax import quad
        >>> x = jnp.linspace(0.0, 1.0, 5)[:, None]
        >>> float(quad.log_evidence(x, jnp.sin(3 * x[:, 0]), kernel=quad.ExpQuad(0.3))) < 0
        True
    """
    nodes = jnp.asarray(nodes)
    if nodes.ndim != 2:
        raise ValueError(f"nodes must be a 2-D array of shape [n, d], got shape {nodes.shape}.")
    kernel.check_dim(nodes.shape[1])
    fvals = as_fvals(fvals, nodes.shape[0])
    return log_evidence_masked(kernel, nodes, fvals, None, jitter)


def _pack(kernel: AbstractKernel) -> tuple[Array, Array]:
    return jnp.log(kernel.lengthscales), jnp.log(kernel.output_scale)


def _unpack(kernel: AbstractKernel, params) -> AbstractKernel:
    return kernel.with_parameters(jnp.exp(params[0]), jnp.exp(params[1]))


def fit_kernel_masked(
    kernel: AbstractKernel,
    nodes: Array,
    fvals: Array,
    mask: Array | None,
    *,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    lengthscale_bounds: tuple[Array, Array],
    jitter: float | None,
) -> AbstractKernel:
    """ML-II by ``optimizer`` on the log-parameters; returns the best kernel visited."""
    n = nodes.shape[0] if mask is None else jnp.maximum(jnp.sum(mask), 1)
    num_outputs = 1 if fvals.ndim == 1 else fvals.shape[1]
    log_lo, log_hi = jnp.log(lengthscale_bounds[0]), jnp.log(lengthscale_bounds[1])

    def project(params):
        return (jnp.clip(params[0], log_lo, log_hi).astype(params[0].dtype), params[1])

    def profile_output_scale(params):
        # The evidence is maximised in s**2 by s**2 f^T K~^{-1} f / (n m): a warm start.
        k = _unpack(kernel, params)
        chol = factorise(k, nodes, mask, jitter).cholesky
        masked = fvals if mask is None else jnp.where(mask.reshape((-1,) + (1,) * (fvals.ndim - 1)), fvals, 0.0)
        quad_form = jnp.sum(jax.scipy.linalg.solve_triangular(chol, masked, lower=True) ** 2)
        log_s = params[1] + 0.5 * jnp.log(jnp.maximum(quad_form / (n * num_outputs), 1e-300))
        return (params[0], jnp.where(jnp.isfinite(log_s), log_s, params[1]))

    def loss(params):
        return -log_evidence_masked(_unpack(kernel, params), nodes, fvals, mask, jitter) / (
            n * num_outputs
        )

    value_and_grad = jax.value_and_grad(loss)
    params = jax.lax.stop_gradient(profile_output_scale(project(_pack(kernel))))
    opt_state = optimizer.init(params)

    def body(_, carry):
        params, opt_state, best, best_value = carry
        value, grads = value_and_grad(params)
        better = jnp.isfinite(value) & (value < best_value)
        best = jax.tree.map(lambda b, p: jnp.where(better, p, b), best, params)
        best_value = jnp.where(better, value, best_value)
        grads = jax.tree.map(lambda g: jnp.where(jnp.isfinite(g), g, 0.0), grads)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = project(optax.apply_updates(params, updates))
        return params, opt_state, best, best_value

    init_value = jnp.asarray(jnp.inf, params[1].dtype)
    carry = (params, opt_state, params, init_value)
    params, _, best, best_value = jax.lax.fori_loop(0, num_steps, body, carry)
    final_value = loss(params)
    use_final = jnp.isfinite(final_value) & (final_value < best_value)
    best = jax.tree.map(lambda b, p: jnp.where(use_final, p, b), best, params)
    return _unpack(kernel, best)


def fit_kernel(
    nodes: Float[Array, "n d"],
    fvals: Float[Array, "n *m"],
    *,
    kernel: AbstractKernel,
    optimizer: optax.GradientTransformation | None = None,
    num_steps: int = 200,
    lengthscale_bounds: tuple[ArrayLike, ArrayLike] | None = None,
    jitter: float | None = None,
) -> AbstractKernel:
    """Fit the lengthscales and output scale by type-II maximum likelihood (ML-II).

    Maximises :func:`log_evidence` over ``log(lengthscales)`` and ``log(output_scale)``
    with an optax optimiser, starting from ``kernel`` after setting the output scale to
    its closed-form optimum; the iterate with the highest evidence is returned, so the
    evidence never decreases. A scalar lengthscale stays isotropic; an array ``[d]``
    is fitted per dimension (ARD). Jit-compatible.

    Args:
        nodes: Nodes ``[n, d]``.
        fvals: Function values ``[n]`` or ``[n, m]`` (columns share the kernel).
        kernel: The initial kernel (its type and lengthscale shape are kept).
        optimizer: An ``optax.GradientTransformation``; default ``optax.adam(0.05)``.
        num_steps: The number of optimiser steps.
        lengthscale_bounds: ``(lower, upper)``, scalars or arrays ``[d]``; lengthscales are
            projected into this box after each step. Default ``1e-3`` to ``1e2`` times
            the spread of the nodes per dimension.
        jitter: The relative diagonal jitter tried first (see :func:`log_evidence`).

    Returns:
        The fitted kernel.

    Reference: Rasmussen & Williams (2006), sec. 5.4.1.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax import quad
        >>> x = jnp.linspace(0.0, 1.0, 8)[:, None]
        >>> y = jnp.sin(6 * x[:, 0])
        >>> k0 = quad.ExpQuad(1.0)
        >>> k1 = quad.fit_kernel(x, y, kernel=k0)
        >>> bool(quad.log_evidence(x, y, kernel=k1) > quad.log_evidence(x, y, kernel=k0))
        True
    """
    nodes = jnp.asarray(nodes)
    if nodes.ndim != 2:
        raise ValueError(f"nodes must be a 2-D array of shape [n, d], got shape {nodes.shape}.")
    kernel.check_dim(nodes.shape[1])
    fvals = as_fvals(fvals, nodes.shape[0])
    if not isinstance(num_steps, int) or num_steps < 0:
        raise ValueError(f"num_steps must be a non-negative int, got {num_steps!r}.")
    if lengthscale_bounds is None:
        spread = jnp.ptp(nodes, axis=0)
        spread = jnp.where(spread > 0, spread, 1.0)
        lengthscale_bounds = (1e-3 * spread, 1e2 * spread)
    lo, hi = (jnp.asarray(b, nodes.dtype) for b in lengthscale_bounds)
    if kernel.lengthscales.ndim == 0:
        lo, hi = jnp.min(lo), jnp.max(hi)
    optimizer = optax.adam(0.05) if optimizer is None else optimizer
    return fit_kernel_masked(
        kernel,
        nodes,
        fvals,
        None,
        optimizer=optimizer,
        num_steps=num_steps,
        lengthscale_bounds=(lo, hi),
        jitter=jitter,
    )
