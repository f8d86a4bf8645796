"""Acquisition functions for adaptive Bayesian quadrature and their gradient-based maximiser.

All acquisitions are returned in log form, which makes their gradients
scale-free for the optimiser:

* ``"us"`` uncertainty sampling: the integrand's posterior variance weighted by
  the squared measure density, ``v(x) p(x)**2`` (Gunter et al., NeurIPS 2014;
  as in EmuKit). For WSABI-L, ``v`` is the variance of the linearised integrand
  ``m_g(x)**2 v_g(x)``.
* ``"ivr"`` integral-variance reduction: the fraction of the integral's posterior
  variance removed by observing ``f(x)``,
  ``(z(x) - k(x, X) K^{-1} z(X))**2 / (v(x) V[F])`` (Gessner, González, Mahsereci,
  "Active multi-information source Bayesian quadrature", UAI 2019).

Acquisitions depend on the nodes but not on the function values (except
WSABI's, which uses the posterior mean of the warped GP), so a batch is chosen
greedily: each chosen node enters the Gram matrix before the next is chosen.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import jax.scipy as jsp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ._gaussian_process import Factor, _masked
from ._kernel_embeddings import initial_error, kernel_mean
from ._kernels import AbstractKernel
from ._measures import AbstractMeasure, GaussianMeasure


def _posterior_variance_terms(kernel, nodes, mask, chol, x):
    cross = _masked(kernel.matrix(nodes, x[None, :])[:, 0], mask)
    c = jsp.linalg.solve_triangular(chol, cross, lower=True)
    var = kernel.variance() - c @ c
    return c, var


def _log_weight(measure: AbstractMeasure, x: Array) -> Array:
    if isinstance(measure, GaussianMeasure):
        r = measure.to_unconstrained(x)
        return -r @ r  # log p(x)**2 up to a constant
    return jnp.zeros((), x.dtype)


def make_acquisition(
    name: str,
    kernel: AbstractKernel,
    measure: AbstractMeasure,
    nodes: Array,
    mask: Array,
    factor: Factor,
    warped_values: Array | None = None,
) -> Callable[[Array], Array]:
    """The log-acquisition ``x [d] -> scalar`` for the current (masked) nodes."""
    chol = factor.cholesky
    floor = factor.jitter * kernel.variance()
    tiny = jnp.finfo(nodes.dtype).tiny
    if name == "ivr":
        a = jsp.linalg.solve_triangular(chol, _masked(kernel_mean(kernel, measure, nodes), mask), lower=True)
        integral_var = jnp.maximum(initial_error(kernel, measure) - a @ a, tiny)

        def log_ivr(x):
            c, var = _posterior_variance_terms(kernel, nodes, mask, chol, x)
            gain = kernel_mean(kernel, measure, x[None, :])[0] - c @ a
            return jnp.log(gain**2 + tiny) - jnp.log(jnp.maximum(var, floor)) - jnp.log(integral_var)

        return log_ivr
    if warped_values is not None:  # WSABI-L uncertainty sampling
        b = jsp.linalg.solve_triangular(chol, warped_values, lower=True)

        def log_wsabi_us(x):
            c, var = _posterior_variance_terms(kernel, nodes, mask, chol, x)
            mean_g = c @ b
            log_var = jnp.log(jnp.maximum(var, floor)) + jnp.log(mean_g**2 + tiny)
            return log_var + _log_weight(measure, x)

        return log_wsabi_us

    def log_us(x):
        _, var = _posterior_variance_terms(kernel, nodes, mask, chol, x)
        return jnp.log(jnp.maximum(var, floor) / kernel.variance()) + _log_weight(measure, x)

    return log_us


def maximise(
    acquisition: Callable[[Array], Array],
    measure: AbstractMeasure,
    *,
    key: PRNGKeyArray,
    num_candidates: int,
    num_restarts: int,
    num_steps: int,
    optimizer: optax.GradientTransformation,
    dtype,
) -> Float[Array, " d"]:
    """Multi-start gradient ascent: the best ``num_restarts`` of ``num_candidates`` random
    points seed ``num_steps`` optax steps each in unconstrained coordinates."""
    u = jax.random.uniform(key, (num_candidates, measure.dim), dtype, 1e-6, 1.0 - 1e-6)
    candidates = measure.from_unit_cube(u)
    values = jax.vmap(acquisition)(candidates)
    values = jnp.where(jnp.isfinite(values), values, -jnp.inf)
    top_values, top = jax.lax.top_k(values, num_restarts)
    starts = jax.vmap(measure.to_unconstrained)(candidates[top])
    value_and_grad = jax.value_and_grad(lambda v: acquisition(measure.from_unconstrained(v)))

    def ascend(v0, value0):
        def body(_, carry):
            v, state, best, best_value = carry
            value, g = value_and_grad(v)
            better = jnp.isfinite(value) & (value > best_value)
            best = jnp.where(better, v, best)
            best_value = jnp.where(better, value, best_value)
            g = jnp.where(jnp.isfinite(g), -g, 0.0)  # optax minimises
            updates, state = optimizer.update(g, state, v)
            return optax.apply_updates(v, updates), state, best, best_value

        init = (v0, optimizer.init(v0), v0, value0)
        _, _, best, best_value = jax.lax.fori_loop(0, num_steps + 1, body, init)
        return best, best_value

    best, best_values = jax.vmap(ascend)(starts, top_values)
    return measure.from_unconstrained(best[jnp.argmax(best_values)])
