"""Type-II maximum likelihood (ML-II) for the kernel's lengthscales and output scale."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike, Float

from ._gaussian_process import _masked, factorise, log_evidence_masked
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
    return _log_evidence(kernel, nodes, fvals, jitter)


@eqx.filter_jit
def _log_evidence(kernel, nodes, fvals, jitter):
    return log_evidence_masked(kernel, nodes, fvals, None, jitter)


_NUM_GRID = 8


def _profiled(kernel: AbstractKernel, log_ls: Array, nodes, fvals, mask, jitter):
    """Log evidence maximised over the output scale, and the maximising output scale.

    With ``K = s**2 (C + j I)``, the optimal ``s**2 = f^T (C + j I)^{-1} f / (n m)``.
    """
    unit = kernel.with_parameters(jnp.exp(log_ls), jnp.ones_like(kernel.output_scale))
    factor = factorise(unit, nodes, mask, jitter)
    masked = _masked(fvals, mask)
    whitened = jax.scipy.linalg.solve_triangular(factor.cholesky, masked, lower=True)
    n = nodes.shape[0] if mask is None else jnp.maximum(jnp.sum(mask), 1)
    num_outputs = 1 if fvals.ndim == 1 else fvals.shape[1]
    count = n * num_outputs
    s2 = jnp.maximum(jnp.sum(whitened**2) / count, jnp.finfo(nodes.dtype).tiny)
    log_det = num_outputs * jnp.sum(jnp.log(jnp.diagonal(factor.cholesky)))
    value = -0.5 * count * (jnp.log(2 * jnp.pi * s2) + 1.0) - log_det
    value = jnp.where(factor.ok, value, -jnp.inf)
    return value / count, jnp.sqrt(s2)


def fit_kernel_masked(
    kernel: AbstractKernel,
    nodes: Array,
    fvals: Array,
    mask: Array | None,
    *,
    optimizer: optax.GradientTransformation,
    num_steps: int | Array,
    lengthscale_bounds: tuple[Array, Array],
    jitter: float | None,
) -> AbstractKernel:
    """ML-II: optax on the log-lengthscales with the output scale profiled out in closed form.

    The start is the best of the current lengthscales and a log-spaced grid between the
    bounds; the iterate with the highest evidence is returned.
    """
    log_lo = jnp.broadcast_to(jnp.log(lengthscale_bounds[0]), kernel.lengthscales.shape)
    log_hi = jnp.broadcast_to(jnp.log(lengthscale_bounds[1]), kernel.lengthscales.shape)
    dtype = nodes.dtype

    def objective(log_ls):
        value, output_scale = _profiled(kernel, log_ls, nodes, fvals, mask, jitter)
        return -value, output_scale

    value_and_grad = jax.value_and_grad(objective, has_aux=True)
    current = jnp.clip(jnp.log(kernel.lengthscales).astype(dtype), log_lo, log_hi)
    t = jnp.linspace(0.0, 1.0, _NUM_GRID + 2, dtype=dtype)[1:-1]
    grid = log_lo + t.reshape((-1,) + (1,) * current.ndim) * (log_hi - log_lo)
    starts = jnp.concatenate([current[None], grid])
    num_starts = starts.shape[0]

    # One loop, one compiled copy of the objective: the first `num_starts` iterations
    # only evaluate the starting points; the ascent then starts from the best of them.
    def body(i, carry):
        params, opt_state, best, best_value, best_scale = carry
        (value, output_scale), grads = value_and_grad(params)
        better = jnp.isfinite(value) & (value < best_value)
        best = jnp.where(better, params, best)
        best_value = jnp.where(better, value, best_value)
        best_scale = jnp.where(better, output_scale, best_scale)
        grads = jnp.where(jnp.isfinite(grads), grads, 0.0)
        updates, new_state = optimizer.update(grads, opt_state, params)
        ascended = jnp.clip(optax.apply_updates(params, updates), log_lo, log_hi)
        scanning = i + 1 < num_starts
        params = jnp.where(
            scanning, starts[jnp.minimum(i + 1, num_starts - 1)], jnp.where(i + 1 == num_starts, best, ascended)
        )
        restart = i + 1 <= num_starts
        opt_state = jax.tree.map(lambda a, b: jnp.where(restart, a, b), optimizer.init(params), new_state)
        return params, opt_state, best, best_value, best_scale

    inf = jnp.asarray(jnp.inf, dtype)
    carry = (starts[0], optimizer.init(starts[0]), starts[0], inf, jnp.ones((), dtype))
    total = num_starts + num_steps + 1  # the final iteration evaluates the last ascent step
    _, _, best, _, best_scale = jax.lax.fori_loop(0, total, body, carry)
    return kernel.with_parameters(jnp.exp(best), best_scale.astype(kernel.output_scale.dtype))


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

    The evidence is maximised over the output scale in closed form (for fixed
    lengthscales it is optimal at ``s**2 = f^T C^{-1} f / n`` with ``C`` the unit-scale
    Gram matrix) and over ``log(lengthscales)`` by an optax optimiser on this profile
    likelihood. The ascent starts from the best of ``kernel``'s lengthscales and a
    log-spaced grid between the bounds (the profile likelihood is often multimodal),
    and returns the best iterate, so the evidence never falls below that of the
    start. A scalar lengthscale stays isotropic; an array ``[d]`` is fitted per
    dimension (ARD). Jit-compatible.

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
    optimizer = _DEFAULT_OPTIMIZER if optimizer is None else optimizer
    return _fit_kernel(kernel, nodes, fvals, optimizer, num_steps, (lo, hi), jitter)


_DEFAULT_OPTIMIZER = optax.adam(0.05)  # one instance, so that compiled code is reused


@eqx.filter_jit
def _fit_kernel(kernel, nodes, fvals, optimizer, num_steps, bounds, jitter):
    return fit_kernel_masked(
        kernel, nodes, fvals, None,
        optimizer=optimizer, num_steps=num_steps, lengthscale_bounds=bounds, jitter=jitter,
    )  # fmt: skip
