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

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax import linalg
        >>> A = jnp.array([[4.0, 1.0], [1.0, 3.0]])
        >>> H = linalg.problinsolve(A, jnp.array([1.0, 2.0])).inverse_belief
        >>> bool(jnp.allclose(H.mean.as_matrix(), jnp.linalg.inv(A), atol=1e-6))
        True
        >>> mean, cov = H.vector_belief(jnp.array([1.0, 0.0]))  # belief about A^{-1} e_1
        >>> bool(jnp.allclose(mean, jnp.linalg.inv(A)[:, 0], atol=1e-6))
        True
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
    hy: GrowingBasis | None  # V = H0 U (None unless tracked for the contraction criterion)
    ycoef: Float[Array, "K K"] | None  # Y = U R: column j holds R[:, j]
    log_q: Float[Array, " K"]  # log inverse Rayleigh quotients
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

    # The H0-orthonormal basis of span(Y) is only needed inside the loop for the contraction
    # criterion; otherwise it is computed once at the end (see _y_basis).
    track = "contraction" in stopping
    hy = basis() if track else None
    ybasis = basis() if track and prior is not None else None
    size = basis().rows.shape[0]
    r0 = b - matvec(x0)
    status = jnp.where(jnp.all(jnp.isfinite(r0)), OK, NONFINITE)
    zeros_kk = jnp.zeros((size, size), dtype)
    init = MatrixState(
        x0, r0, basis(), basis(), ybasis, hy, zeros_kk if track else None, jnp.zeros(size, dtype),
        jnp.zeros((), dtype), jnp.zeros((), dtype), jnp.asarray(0), jnp.asarray(False), status,
    )
    trace_h0 = jnp.asarray(n, dtype) if prior is None else jnp.sum(lx.diagonal(prior)).astype(dtype)

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
        # Inverse Rayleigh quotient of H0^{1/2} A H0^{1/2}: s^T H0^{-1} s / s^T A s, where
        # s^T H0^{-1} s = r^T s for the CG direction s = H0 r (Wenger & Hennig 2020, Sec. 3.3);
        # for coordinate directions and a general H0, (s^T A s) / (y^T H0 y) instead.
        if policy == "cg":
            quotient = jnp.dot(s.r, direction) / sy
        elif prior is None:
            quotient = jnp.dot(direction, direction) / sy
        else:
            quotient = 1.0 / jnp.dot(y_new, prior.mv(y_new))
        index = jnp.minimum(k, size - 1)
        log_q = s.log_q.at[index].set(
            jnp.where(accept, jnp.log(jnp.where(accept & (quotient > 0), quotient, 1.0)), s.log_q[index])
        )
        if track:  # H0-orthonormal basis U of span(Y), V = H0 U, Y = U R
            if prior is None:
                u, v, cy, dy = orthonormalise(y_new, s.hy, s.hy)
                ybasis = None
            else:
                u, v, cy, dy = orthonormalise(y_new, s.ybasis, s.hy, prior.mv(y_new), s.hy)
                ybasis = s.ybasis.append(u, accept)
            hy = s.hy.append(v, accept)
            ycoef = _add_column(s.ycoef, k, cy, dy, accept)
            sum_v2 = s.sum_v2 + jnp.where(accept, jnp.dot(v, v), 0.0)
        else:
            ybasis, hy, ycoef, sum_v2 = None, None, None, s.sum_v2
        has_direction = jnp.dot(direction, direction) > 0
        status = jnp.where(~finite | ~jnp.all(jnp.isfinite(x)), NONFINITE, s.status)
        status = jnp.where(finite & has_direction & (sy <= 0), INDEFINITE, status)
        return MatrixState(
            x, r, dirs, obs, ybasis, hy, ycoef, log_q,
            sum_v2,
            s.sum_s2 + jnp.where(accept, jnp.dot(s_new, s_new), 0.0),
            s.step + 1,
            (~accept) & (policy == "cg"), status,
        )

    final = jax.lax.while_loop(cond, body, init)
    converged = criteria(final) | (final.dirs.count >= n)
    # The solution estimate is the line-search iterate x_k (Wenger & Hennig 2020, Alg. 1). The
    # posterior mean of x0 + H r0 is x_k + H_k r_k; with a crude H0 the extra term H_k r_k is
    # typically a worse correction than none, and it vanishes as r_k -> 0.
    aux = dict(
        r0=r0,
        residual=final.r,
        dirs=final.dirs.rows,
        obs=final.obs.rows,
        hy=None if final.hy is None else final.hy.rows,
        ycoef=final.ycoef,
        count=final.dirs.count,
        psi=psi_of(final),
        converged=converged,
        status=final.status,
    )
    return final.x, aux


class MatrixBasedPosterior(eqx.Module):
    """What the matrix-based solver learned; the beliefs are assembled on access.

    Holds the ``A``-orthonormal directions ``S`` and observations ``Y = A S``
    (rows of ``[K, n]`` buffers, the first ``count`` filled), the ``H0``-weighted
    basis ``V`` of ``span(Y)`` with ``Y = U R``, the calibrated scale ``psi`` and
    the initial and final residuals. :attr:`inverse_belief` and
    :attr:`matrix_belief` cost ``O(n K^2)`` (a QR of ``S`` for the latter).

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax import linalg
        >>> A = jnp.diag(jnp.arange(1.0, 9.0))
        >>> res = linalg.problinsolve(A, jnp.ones(8), maxiter=3, throw=False)
        >>> posterior = res.matrix_posterior
        >>> int(posterior.count), posterior.dirs.shape
        (3, (3, 8))
        >>> A_belief = posterior.matrix_belief  # equals A on the explored directions
        >>> S = posterior.dirs[:3].T
        >>> bool(jnp.allclose(jnp.stack([A_belief.mean.mv(s) for s in S.T], 1), A @ S, atol=1e-8))
        True
    """

    prior: lx.AbstractLinearOperator | None
    dirs: Float[Array, "K n"]
    obs: Float[Array, "K n"]
    hy: Float[Array, "K n"]
    ycoef: Float[Array, "K K"]
    count: Int[Array, ""]
    psi: Float[Array, ""]
    r0: Float[Array, " n"]
    residual: Float[Array, " n"]
    noise_var: Array | None

    def _setup(self):
        n = self.r0.shape[0]
        dtype = self.r0.dtype
        identity = lx.IdentityLinearOperator(jax.ShapeDtypeStruct((n,), dtype))
        h0 = identity if self.prior is None else self.prior
        mask = (jnp.arange(self.dirs.shape[0]) < self.count).astype(dtype)
        shrink = 1.0 if self.noise_var is None else 1.0 / (1.0 + self.noise_var)
        if self.noise_var is None:
            weights = (jnp.ones((), dtype),)
        else:
            weights = (jnp.asarray(shrink, dtype), jnp.asarray(1.0 - shrink, dtype))
        return identity, h0, mask, shrink, weights

    def _symmetric_update(self, prior_op, delta, basis, gram, mask, shrink):
        # prior + shrink * (delta basis^T + basis delta^T - basis gram basis^T)
        zero = jnp.zeros_like(gram)
        middle = jnp.block([[zero, jnp.diag(mask)], [jnp.diag(mask), -gram]])
        factor = jnp.concatenate([delta, basis], axis=1)
        return PriorPlusLowRank(prior_op, jnp.ones((), delta.dtype), factor, shrink * middle)

    def _inverse_factors(self):
        _, h0, mask, _, weights = self._setup()
        wh = PriorPlusLowRank(h0, self.psi, self.hy.T, -self.psi * mask[: self.hy.shape[0]])
        if self.noise_var is None:
            return (wh,), weights
        wh0 = concatenate([wh, PriorPlusLowRank(h0, jnp.zeros_like(self.psi), self.dirs.T, mask)], [1.0, 1.0])
        return (wh, wh0), weights

    @property
    def inverse_belief(self) -> SymmetricKroneckerNormal:
        """The belief about ``H = A^{-1}``: mean ``H0 + E S^T + S E^T - S (Y^T E) S^T``."""
        _, h0, mask, shrink, _ = self._setup()
        S = self.dirs.T
        E = S - apply_rows(self.prior, self.obs).T
        R = self.ycoef  # Y^T H0 Y = R^T R
        mean = self._symmetric_update(h0, E, S, jnp.diag(mask) - R.T @ R, mask, shrink)
        factors, weights = self._inverse_factors()
        return SymmetricKroneckerNormal(mean, factors, weights)

    @property
    def matrix_belief(self) -> SymmetricKroneckerNormal:
        """The belief about ``A``: mean ``I + D Y^T + Y D^T - Y (S^T D) Y^T`` with ``D = Y - S``."""
        identity, _, mask, shrink, weights = self._setup()
        S, Y = self.dirs.T, self.obs.T
        QS, RS = jnp.linalg.qr(S)  # [n, min(n, K)], [min(n, K), K]; S^T S = RS^T RS
        kq = QS.shape[1]
        mean = self._symmetric_update(identity, Y - S, Y, jnp.diag(mask) - RS.T @ RS, mask, shrink)
        phi = 1.0 / self.psi
        wa = PriorPlusLowRank(identity, phi, QS * mask[:kq], -phi * mask[:kq])
        if self.noise_var is None:
            return SymmetricKroneckerNormal(mean, (wa,), weights)
        wa0 = concatenate([wa, PriorPlusLowRank(identity, jnp.zeros_like(phi), Y, mask)], [1.0, 1.0])
        return SymmetricKroneckerNormal(mean, (wa, wa0), weights)

    def solution_cov(self) -> PriorPlusLowRank:
        """``Cov(x) = Cov(H r0)``; ``W_k r0 = W_k r_k`` as ``W_k`` vanishes on ``span(Y)``."""
        factors, weights = self._inverse_factors()
        parts = [_vector_cov(factors[0], self.residual)]
        if self.noise_var is not None:
            parts.append(_vector_cov(factors[1], self.r0))
        return concatenate(parts, list(weights))


def _y_basis(prior, obs, count):
    """``V = H0 U`` and ``R`` with ``Y = U R``, ``U^T H0 U = I`` (``Y`` = filled rows of ``obs``).

    A Householder QR for ``H0 = I``; otherwise Cholesky-QR in the ``H0`` inner
    product, applied twice for orthogonality (Fukaya et al. 2014, CholeskyQR2).
    """
    Y = obs.T
    mask = (jnp.arange(Y.shape[1]) < count).astype(Y.dtype)
    if prior is None:
        Q, R = jnp.linalg.qr(Y)  # [n, min(n, K)], [min(n, K), K]
        return (Q * mask[: Q.shape[1]]).T, R
    HY = apply_rows(prior, obs).T
    keep = jnp.outer(mask, mask)
    R = jnp.eye(Y.shape[1], dtype=Y.dtype)
    U, V = Y, HY
    for _ in range(2):
        gram = (U.T @ V) * keep + jnp.diag(1.0 - mask)
        Rk = jnp.linalg.cholesky((gram + gram.T) / 2).T
        U = jax.scipy.linalg.solve_triangular(Rk, U.T, trans=1, lower=False).T
        V = jax.scipy.linalg.solve_triangular(Rk, V.T, trans=1, lower=False).T
        R = Rk @ R
    return V.T, R * keep


def matrix_posterior(aux, prior, noise_var) -> MatrixBasedPosterior:
    if aux["hy"] is None:
        hy, ycoef = _y_basis(prior, aux["obs"], aux["count"])
    else:
        hy, ycoef = aux["hy"], aux["ycoef"]
    return MatrixBasedPosterior(
        prior, aux["dirs"], aux["obs"], hy, ycoef, aux["count"], aux["psi"], aux["r0"],
        aux["residual"], None if noise_var is None else jnp.asarray(noise_var),
    )
