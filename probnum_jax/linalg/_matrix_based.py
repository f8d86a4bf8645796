"""Matrix-based inference: symmetric matrix-variate Gaussian beliefs about ``A`` and ``H = A^{-1}``.

Priors ``A ~ N(A0, W^A ⊗_s W^A)`` and ``H ~ N(H0, W^H ⊗_s W^H)`` are conditioned on
the observations ``Y = A S`` (equivalently ``S = H Y``). With the
posterior-consistent covariance class of Wenger & Hennig (2020, Sec. 3), for
which ``W^A S = Y`` and ``W^H Y = S``, and ``A``-orthonormal directions
(``S^T A S = I``) the posterior means are the symmetric rank-2k updates
(Hennig 2015)

    A_k = A0 + D Y^T + Y D^T - Y (S^T D) Y^T,        D = Y - A0 S,
    H_k = H0 + E S^T + S E^T - S (Y^T E) S^T,        E = S - H0 Y,

and the covariance factors on the unexplored spaces are
``W^A_k = phi (I - P_S)`` and ``W^H_k = psi (H0 - H0 Y (Y^T H0 Y)^{-1} Y^T H0)``
(``P_S`` the orthogonal projector onto ``span(S)``), with ``phi = 1 / psi``
calibrated from Rayleigh quotients. The induced belief about the solution
``x = H b`` has covariance ``(W b^T W b + W b b^T W) / 2``.

Noisy matrix-vector products ``Y = (A + E) S`` with ``E ~ N(0, eps^2 W ⊗_s W)``
keep the posterior closed-form: the mean updates shrink by ``1 / (1 + eps^2)``
and the covariance becomes the mixture
``eps^2/(1+eps^2) W0 ⊗_s W0 + 1/(1+eps^2) W_k ⊗_s W_k`` of the prior and the
noise-free posterior (Wenger & Hennig 2020, Sec. 3.4, for the ``A`` view; the
``H`` view uses the same form as an approximation).

The solver follows Algorithm 1 of Wenger & Hennig (2020): the CG policy takes
``s_k = -H_{k-1} r_{k-1}``, which after ``A``-orthogonalisation against the past
directions is the preconditioned residual ``H0 r`` conjugated against them
(Hennig 2015, Thm. 2.4): preconditioned CG with full reorthogonalisation. The
iterate ``x_k`` is found by exact line search and is the solution estimate.

References:
    P. Hennig. Probabilistic interpretation of linear solvers. SIAM J. Optim.
    25(1), 2015.
    J. Wenger, P. Hennig. Probabilistic linear solvers for machine learning.
    NeurIPS 2020.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float, Int

from ._calibration import extrapolated_rayleigh_scale
from ._operators import GrowingBasis, PriorPlusLowRank, apply_rows, concatenate, orthonormalise, prior_mv
from ._results import INDEFINITE, NONFINITE, OK


class SymmetricKroneckerNormal(eqx.Module):
    """A Gaussian over symmetric ``n × n`` matrices, ``X ~ N(M, sum_j w_j W_j ⊗_s W_j)``.

    One component (``weights = (1,)``) is the usual symmetric Kronecker
    covariance ``Cov(X_ij, X_kl) = (W_ik W_jl + W_il W_jk) / 2``; two arise for
    noisy observations.

    Attributes:
        mean: the mean matrix ``M`` as a :class:`PriorPlusLowRank` operator.
        factors: the Kronecker factors ``W_j`` (same prior operator).
        weights: their mixture weights.
    """

    mean: PriorPlusLowRank
    factors: tuple[PriorPlusLowRank, ...]
    weights: tuple[Array, ...]

    def vector_belief(self, v: Float[Array, " n"]) -> tuple[Array, PriorPlusLowRank]:
        """Mean and covariance of ``X v``: ``(M v, sum_j w_j (W_j v^T W_j v + W_j v v^T W_j) / 2)``."""
        parts = [_vector_cov(factor, v) for factor in self.factors]
        return self.mean.mv(v), concatenate(parts, list(self.weights))

    def entry_variances(self) -> Float[Array, "n n"]:
        """``Var(X_ij) = sum_j w_j (W_ii W_jj + W_ij^2) / 2`` as a dense matrix (on request)."""
        out = 0.0
        for w, factor in zip(self.weights, self.factors):
            dense = factor.as_matrix()
            d = jnp.diag(dense)
            out = out + w * (jnp.outer(d, d) + dense**2) / 2
        return out


def _vector_cov(factor: PriorPlusLowRank, v) -> PriorPlusLowRank:
    """``Cov(X v) = (W v^T W v + W v v^T W) / 2`` for ``X ~ N(M, W ⊗_s W)``."""
    wv = factor.mv(v)
    beta = jnp.dot(v, wv)
    rank_one = PriorPlusLowRank(factor.prior, jnp.zeros_like(beta), wv[:, None], jnp.ones(1, v.dtype))
    return concatenate([factor, rank_one], [beta / 2, jnp.asarray(0.5, v.dtype)])


class MatrixState(eqx.Module):
    x: Float[Array, " n"]
    r: Float[Array, " n"]
    dirs: GrowingBasis  # S, A-orthonormal
    obs: GrowingBasis  # Y = A S
    ybasis: GrowingBasis | None  # H0-orthonormal basis U of span(Y) (None when H0 = I: U = V)
    hy: GrowingBasis  # V = H0 U
    ycoef: Float[Array, "K K"]  # Y = U R: column j holds R[:, j]
    sbasis: GrowingBasis  # Euclidean orthonormal basis Q of span(S)
    scoef: Float[Array, "K K"]  # S = Q R_S
    log_q: Float[Array, " K"]  # log inverse Rayleigh quotients 1 / (y^T H0 y)
    sum_v2: Float[Array, ""]  # ||V||_F^2
    sum_s2: Float[Array, ""]  # ||S||_F^2
    step: Int[Array, ""]
    stalled: Array
    status: Int[Array, ""]


def _add_column(coef, count, c, diag, accept):
    column = c.at[jnp.minimum(count, c.shape[0] - 1)].set(diag)
    index = jnp.minimum(count, coef.shape[1] - 1)
    return jnp.where(accept, coef.at[:, index].set(column), coef)


def matrix_based_solve(
    matvec, b, x0, prior: lx.AbstractLinearOperator | None, policy, permutation, tol2, maxiter: int,
    stopping, calibration, noise_var,
):
    """Run the matrix-based solver; return the iterate and the arrays of the beliefs."""
    n = b.shape[0]
    dtype = b.dtype
    K = maxiter

    def basis():
        return GrowingBasis.empty(K, n, dtype)

    hy = basis()
    ybasis = None if prior is None else basis()
    size = hy.rows.shape[0]
    r0 = b - matvec(x0)
    status = jnp.where(jnp.all(jnp.isfinite(r0)), OK, NONFINITE)
    zeros_kk = jnp.zeros((size, size), dtype)
    init = MatrixState(
        x0, r0, basis(), basis(), ybasis, hy, zeros_kk, basis(), zeros_kk, jnp.zeros(size, dtype),
        jnp.zeros((), dtype), jnp.zeros((), dtype), jnp.asarray(0), jnp.asarray(False), status,
    )
    trace_h0 = jnp.asarray(n, dtype) if prior is None else jnp.sum(lx.diagonal(prior))

    def psi_of(s):
        if calibration == "rayleigh":
            return extrapolated_rayleigh_scale(s.log_q, s.dirs.count, n)
        if calibration == "none":
            return jnp.ones((), dtype)
        return jnp.asarray(calibration, dtype)

    def trace_solution_cov(s):
        psi = psi_of(s)
        # W_k r0 = W_k r_k since W_k vanishes on span(Y) and r0 - r_k lies in span(Y).
        wb = psi * (prior_mv(prior, s.r) - s.hy.combine(s.hy.project(s.r)))
        beta = jnp.dot(s.r, wb)
        trace_w = psi * (trace_h0 - s.sum_v2)
        tr = 0.5 * (beta * trace_w + jnp.dot(wb, wb))
        if noise_var is not None:
            sb = s.dirs.project(r0)
            w0b = wb + s.dirs.combine(sb)
            beta0 = beta + jnp.dot(sb, sb)
            trace_w0 = trace_w + s.sum_s2
            tr0 = 0.5 * (beta0 * trace_w0 + jnp.dot(w0b, w0b))
            tr = (noise_var * tr0 + tr) / (1 + noise_var)
        return tr

    def criteria(s):
        met = jnp.asarray(False)
        if "residual" in stopping:
            met = met | (jnp.dot(s.r, s.r) <= tol2)
        if "contraction" in stopping:
            met = met | (trace_solution_cov(s) <= tol2)
        return met

    def cond(s):
        return (~criteria(s)) & (s.step < maxiter) & (s.status == OK) & ~s.stalled & (s.dirs.count < n)

    def body(s):
        if policy == "cg":
            direction = prior_mv(prior, s.r)
        else:
            direction = jax.nn.one_hot(permutation[s.step % n], n, dtype=dtype)
        y = matvec(direction)
        sy = jnp.dot(direction, y)
        s_new, y_new, _, norm = orthonormalise(direction, s.dirs, s.obs, y, s.obs)
        eps = jnp.finfo(dtype).eps
        finite = jnp.isfinite(sy) & jnp.isfinite(norm)
        accept = finite & (sy > 0) & (norm**2 > 100 * eps * sy)
        alpha = jnp.where(accept, jnp.dot(s_new, s.r), 0.0)
        x = s.x + alpha * s_new
        r = jnp.where(accept, s.r - alpha * y_new, s.r)
        k = s.dirs.count
        dirs = s.dirs.append(s_new, accept)
        obs = s.obs.append(y_new, accept)
        # H0-orthonormal basis of span(Y), with Y = U R tracked in ycoef.
        t = prior_mv(prior, y_new)
        log_q = s.log_q.at[jnp.minimum(k, size - 1)].set(
            jnp.where(accept, -jnp.log(jnp.where(accept, jnp.dot(y_new, t), 1.0)), s.log_q[jnp.minimum(k, size - 1)])
        )
        if prior is None:
            u, v, cy, dy = orthonormalise(y_new, s.hy, s.hy)
            ybasis = None
        else:
            u, v, cy, dy = orthonormalise(y_new, s.ybasis, s.hy, t, s.hy)
            ybasis = s.ybasis.append(u, accept)
        hy = s.hy.append(v, accept)
        ycoef = _add_column(s.ycoef, k, cy, dy, accept)
        q, _, cs, ds = orthonormalise(s_new, s.sbasis, s.sbasis)
        sbasis = s.sbasis.append(q, accept)
        scoef = _add_column(s.scoef, k, cs, ds, accept)
        has_direction = jnp.dot(direction, direction) > 0
        status = jnp.where(~finite | ~jnp.all(jnp.isfinite(x)), NONFINITE, s.status)
        status = jnp.where(finite & has_direction & (sy <= 0), INDEFINITE, status)
        return MatrixState(
            x, r, dirs, obs, ybasis, hy, ycoef, sbasis, scoef, log_q,
            s.sum_v2 + jnp.where(accept, jnp.dot(v, v), 0.0),
            s.sum_s2 + jnp.where(accept, jnp.dot(s_new, s_new), 0.0),
            s.step + 1,
            (~accept) & (policy == "cg"), status,
        )

    final = jax.lax.while_loop(cond, body, init)
    converged = criteria(final) | (final.dirs.count >= n)
    # Posterior mean of x = x0 + H r0 with r0 = Y c + r_k and S^T r_k = 0: without noise
    # H_k Y c = S c = x_k - x0, so the mean is x_k + H_k r_k; noise shrinks towards H0 r0.
    h0r = prior_mv(prior, final.r)
    correction = final.x - x0 + h0r - final.dirs.combine(final.obs.project(h0r))
    if noise_var is None:
        mean = x0 + correction
    else:
        shrink = 1.0 / (1.0 + noise_var)
        mean = x0 + shrink * correction + (1.0 - shrink) * prior_mv(prior, r0)
    aux = dict(
        iterate=final.x,
        r0=r0,
        residual=final.r,
        dirs=final.dirs.rows,
        obs=final.obs.rows,
        hy=final.hy.rows,
        ycoef=final.ycoef,
        sbasis=final.sbasis.rows,
        scoef=final.scoef,
        count=final.dirs.count,
        psi=psi_of(final),
        converged=converged,
        status=final.status,
    )
    return mean, aux


def matrix_beliefs(aux, prior: lx.AbstractLinearOperator | None, noise_var):
    """Assemble the beliefs about ``A``, ``A^{-1}`` and the solution's covariance from ``aux``.

    The solution is ``x = x0 + H r0``, so its covariance is that of ``H r0``.
    """
    r0 = aux["r0"]
    n = r0.shape[0]
    dtype = r0.dtype
    identity = lx.IdentityLinearOperator(jax.ShapeDtypeStruct((n,), dtype))
    h0 = identity if prior is None else prior
    size = aux["dirs"].shape[0]
    mask = (jnp.arange(size) < aux["count"]).astype(dtype)
    shrink = 1.0 if noise_var is None else 1.0 / (1.0 + noise_var)
    S, Y = aux["dirs"].T, aux["obs"].T
    zero = jnp.zeros((size, size), dtype)

    def symmetric_update(prior_op, delta, basis, gram):
        # prior + shrink * (delta basis^T + basis delta^T - basis gram basis^T)
        middle = jnp.block([[zero, jnp.diag(mask)], [jnp.diag(mask), -gram]])
        return PriorPlusLowRank(prior_op, jnp.ones((), dtype), jnp.concatenate([delta, basis], axis=1), shrink * middle)

    # Inverse view: E = S - H0 Y, Y^T E = I - Y^T H0 Y = I - R^T R.
    E = S - apply_rows(prior, aux["obs"]).T
    R = aux["ycoef"]
    h_mean = symmetric_update(h0, E, S, jnp.diag(mask) - R.T @ R)
    # Matrix view with A0 = I: D = Y - S, S^T D = I - S^T S = I - R_S^T R_S.
    RS = aux["scoef"]
    a_mean = symmetric_update(identity, Y - S, Y, jnp.diag(mask) - RS.T @ RS)
    psi = aux["psi"]
    phi = 1.0 / psi
    wh = PriorPlusLowRank(h0, psi, aux["hy"].T, -psi * mask)
    wa = PriorPlusLowRank(identity, phi, aux["sbasis"].T, -phi * mask)
    if noise_var is None:
        h_factors, a_factors, weights = (wh,), (wa,), (jnp.ones((), dtype),)
    else:
        wh0 = concatenate([wh, PriorPlusLowRank(h0, jnp.zeros((), dtype), S, mask)], [1.0, 1.0])
        wa0 = concatenate([wa, PriorPlusLowRank(identity, jnp.zeros((), dtype), Y, mask)], [1.0, 1.0])
        h_factors, a_factors = (wh, wh0), (wa, wa0)
        weights = (jnp.asarray(shrink, dtype), jnp.asarray(1.0 - shrink, dtype))
    inverse = SymmetricKroneckerNormal(h_mean, h_factors, weights)
    matrix = SymmetricKroneckerNormal(a_mean, a_factors, weights)
    # Cov(H r0): W_k r0 = W_k r_k (W_k vanishes on span(Y)); r_k is the better-conditioned input.
    parts = [_vector_cov(wh, aux["residual"])]
    if noise_var is not None:
        parts.append(_vector_cov(wh0, r0))
    cov = concatenate(parts, list(weights))
    return matrix, inverse, cov
