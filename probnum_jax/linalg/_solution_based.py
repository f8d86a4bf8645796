"""Solution-based inference: a Gaussian prior over ``x`` conditioned on ``s_i^T A x = s_i^T b``.

Prior ``x ~ N(x0, sigma^2 Sigma0)``; after observing the projected equations
along directions ``S`` the posterior is (Cockayne et al. 2019, Prop. 1)

    mean = x0 + Sigma0 A S (S^T A Sigma0 A S)^{-1} S^T (b - A x0)
    cov  = sigma^2 (Sigma0 - Sigma0 A S (S^T A Sigma0 A S)^{-1} S^T A Sigma0).

The directions are orthonormalised in the ``A Sigma0 A`` inner product as they
arrive, so that with ``z_j = Sigma0 A s_j`` the covariance is
``sigma^2 (Sigma0 - Z Z^T)`` and each step is an exact line search in the
``Sigma0^{-1}``-norm. Policies: ``"cg"`` observes the current residual
(Cockayne et al.'s BayesCG directions; with ``Sigma0 = A^{-1}`` this is CG);
``"random"`` observes random unit coordinate vectors (a probabilistic
Kaczmarz method). ``sigma^2`` is set by empirical Bayes: the normalised
observations are i.i.d. ``N(0, sigma^2)`` under the prior (Cockayne et al.
2019, Sec. 4.2.2).

Reference:
    J. Cockayne, C. J. Oates, I. C. F. Ipsen, M. Girolami. A Bayesian conjugate
    gradient method. Bayesian Analysis 14(3), 2019.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float, Int

from ._operators import GrowingBasis, orthonormalise
from ._results import INDEFINITE, NONFINITE, OK


class SolutionState(eqx.Module):
    x: Float[Array, " n"]
    r: Float[Array, " n"]
    images: GrowingBasis | None  # rows w_j = A s_j, Sigma0-orthonormal (None when Sigma0 = I)
    covs: GrowingBasis  # rows z_j = Sigma0 w_j (= w_j when Sigma0 = I)
    sum_obs2: Float[Array, ""]  # sum of squared normalised observations
    sum_z2: Float[Array, ""]  # ||Z||_F^2
    step: Int[Array, ""]
    stalled: Array
    status: Int[Array, ""]


def prior_scale(state: SolutionState, calibration):
    if calibration == "empirical_bayes":
        k = jnp.maximum(state.covs.count, 1).astype(state.x.dtype)
        return jnp.where(state.covs.count > 0, state.sum_obs2 / k, 1.0)
    if calibration == "none":
        return jnp.ones((), state.x.dtype)
    return jnp.asarray(calibration, state.x.dtype)


def solution_based_solve(
    matvec, b, x0, prior: lx.AbstractLinearOperator | None, policy, permutation, tol2, maxiter: int,
    stopping, calibration,
):
    """Run the solution-based solver; return the mean and the arrays of its posterior."""
    n = b.shape[0]
    dtype = b.dtype
    covs = GrowingBasis.empty(maxiter, n, dtype)
    images = None if prior is None else GrowingBasis.empty(maxiter, n, dtype)
    trace_prior = jnp.asarray(n, dtype) if prior is None else jnp.sum(lx.diagonal(prior)).astype(dtype)
    r0 = b - matvec(x0)
    status = jnp.where(jnp.all(jnp.isfinite(r0)), OK, NONFINITE)
    zero = jnp.zeros((), dtype)
    init = SolutionState(x0, r0, images, covs, zero, zero, jnp.asarray(0), jnp.asarray(False), status)

    def criteria(s):
        met = jnp.asarray(False)
        if "residual" in stopping:
            met = met | (jnp.dot(s.r, s.r) <= tol2)
        if "contraction" in stopping:
            met = met | (prior_scale(s, calibration) * (trace_prior - s.sum_z2) <= tol2)
        return met

    def cond(s):
        return (~criteria(s)) & (s.step < maxiter) & (s.status == OK) & ~s.stalled & (s.covs.count < n)

    def body(s):
        if policy == "cg":
            direction = s.r
        else:
            direction = jax.nn.one_hot(permutation[s.step % n], n, dtype=dtype)
        w = matvec(direction)
        sAs = jnp.dot(direction, w)
        if prior is None:
            raw2 = jnp.dot(w, w)
            w_new, z_new, _, norm = orthonormalise(w, s.covs, s.covs)
        else:
            t = prior.mv(w)
            raw2 = jnp.dot(w, t)
            w_new, z_new, _, norm = orthonormalise(w, s.images, s.covs, t, s.covs)
        norm2 = norm**2
        eps = jnp.finfo(dtype).eps
        finite = jnp.isfinite(sAs) & jnp.isfinite(norm2)
        accept = finite & (sAs > 0) & (norm2 > 100 * eps * raw2)
        obs = jnp.where(accept, jnp.dot(direction, s.r) / jnp.where(accept, norm, 1.0), 0.0)
        x = s.x + obs * z_new
        images = None if prior is None else s.images.append(w_new, accept)
        covs = s.covs.append(z_new, accept)
        r = b - matvec(x)
        has_direction = jnp.dot(direction, direction) > 0
        status = jnp.where(~finite | ~jnp.all(jnp.isfinite(r)), NONFINITE, s.status)
        status = jnp.where(finite & has_direction & (sAs <= 0), INDEFINITE, status)
        stalled = (~accept) & (policy == "cg")
        return SolutionState(
            jnp.where(status == OK, x, s.x),
            jnp.where(status == OK, r, s.r),
            images,
            covs,
            s.sum_obs2 + obs**2,
            s.sum_z2 + jnp.where(accept, jnp.dot(z_new, z_new), 0.0),
            s.step + 1,
            stalled,
            status,
        )

    final = jax.lax.while_loop(cond, body, init)
    converged = criteria(final) | (final.covs.count >= n)
    scale = prior_scale(final, calibration)
    aux = (final.covs.columns(), final.covs.mask(), scale, final.covs.count, converged, final.status)
    return final.x, aux
